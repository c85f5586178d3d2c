"""Exact parity with the official StyleGAN2-ADA code on random weights (fixtures/README.md).

Every `out/` entry of the fixture is reproduced through the public entry point
`jaxstyle.interop.load_stylegan2_ada` with relative error below 1e-5.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import FIXTURES, rel_err
from jaxstyle.interop import load_stylegan2_ada

TOL = 1e-5


def nhwc(x):
    return jnp.asarray(np.asarray(x).transpose(0, 2, 3, 1))


def nchw(x):
    return np.asarray(x).transpose(0, 3, 1, 2)


@pytest.fixture(scope="module")
def net_weights():
    """The same fixture loaded with per-sample-weight modulated convolutions."""
    return load_stylegan2_ada(FIXTURES / "stylegan2_ada_visible.npz", modconv="weights")


@pytest.mark.parametrize("name,psi,cutoff", [("ws", 1.0, None), ("ws_trunc_psi0.5", 0.5, None),
                                             ("ws_trunc_psi0.7_cutoff2", 0.7, 2)])
def test_mapping(sg2_net, sg2_fixture, name, psi, cutoff):
    ws = jax.jit(sg2_net.mapping, static_argnames="cutoff")(sg2_fixture["in/z"], psi=psi, cutoff=cutoff)
    assert ws.shape == (4, 6, 32)
    assert rel_err(ws, sg2_fixture[f"out/{name}"]) < TOL


@pytest.mark.parametrize("modconv", ["activation", "weights"])
@pytest.mark.parametrize("mode", ["const", "none"])
def test_synthesis_noise_modes(sg2_net, net_weights, sg2_fixture, modconv, mode):
    net = sg2_net if modconv == "activation" else net_weights
    img = jax.jit(net.synthesis, static_argnames="noise_mode")(
        jnp.asarray(sg2_fixture["out/ws"]), noise_mode=mode)
    assert img.shape == (4, 16, 16, 3) and img.dtype == jnp.float32
    assert rel_err(nchw(img), sg2_fixture[f"out/img_{mode}"]) < TOL


def test_truncated_generator(sg2_net, sg2_fixture):
    img = sg2_net.generate(sg2_fixture["in/z"], psi=0.5, noise_mode="const")
    assert rel_err(nchw(img), sg2_fixture["out/img_trunc_psi0.5_const"]) < TOL


def test_style_mixing(sg2_net, sg2_fixture):
    from jaxstyle.models import mix_styles
    ws = mix_styles(sg2_net.mapping(sg2_fixture["in/z"]), sg2_net.mapping(sg2_fixture["in/z2"]), 3)
    assert rel_err(ws, sg2_fixture["out/ws_mixed_cutoff3"]) < TOL
    img = sg2_net.synthesis(ws, noise_mode="const")
    assert rel_err(nchw(img), sg2_fixture["out/img_mixed_cutoff3_const"]) < TOL


@pytest.mark.parametrize("which,source", [("reals", "out/reals"), ("fakes", "out/img_const")])
def test_discriminator_logits(sg2_net, sg2_fixture, which, source):
    logits = jax.jit(sg2_net.discriminate)(nhwc(sg2_fixture[source]))
    assert logits.shape == (4, 1)
    assert rel_err(logits, sg2_fixture[f"out/d_logits_{which}"]) < TOL


def test_discriminator_on_own_fakes(sg2_net, sg2_fixture):
    # End to end: D on jaxstyle's own images; errors of G and D compound, so 1e-5 still holds
    # only because G's images match to ~1e-6.
    img = sg2_net.synthesis(jnp.asarray(sg2_fixture["out/ws"]), noise_mode="const")
    assert rel_err(sg2_net.discriminate(img), sg2_fixture["out/d_logits_fakes"]) < TOL


def test_r1_squared_gradient_norm(sg2_net, sg2_fixture):
    grad = jax.jit(jax.grad(lambda x: jnp.sum(sg2_net.discriminate(x))))(nhwc(sg2_fixture["out/reals"]))
    sqnorm = jnp.sum(jnp.square(grad), axis=(1, 2, 3))
    assert rel_err(sqnorm, sg2_fixture["out/r1_sqnorm_per_sample"]) < TOL


def test_path_lengths(sg2_net, sg2_fixture):
    ws = jnp.asarray(sg2_fixture["out/ws"])
    noise = nhwc(sg2_fixture["out/pl_noise"])
    _, vjp = jax.vjp(lambda w: sg2_net.synthesis(w, noise_mode="const"), ws)
    (g,) = vjp(noise)  # d sum(img * pl_noise) / d ws
    lengths = jnp.sqrt(jnp.mean(jnp.sum(jnp.square(g), axis=2), axis=1))
    assert rel_err(lengths, sg2_fixture["out/pl_lengths"]) < TOL

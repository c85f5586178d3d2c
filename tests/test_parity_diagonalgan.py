"""Exact parity with the official DiagonalGAN generator on random weights (fixtures/README.md).

Through the public entry point `jaxstyle.interop.load_diagonalgan`: both mapping networks, the
32x32 image, another content code, the progressive fade-in (alpha 0.3) and per-slot routing.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import FIXTURES, read_fixture, rel_err
from jaxstyle.interop import ConversionError, load_diagonalgan

TOL = 1e-5


@pytest.fixture(scope="module")
def fx():
    return read_fixture("diagonalgan_visible.npz")


@pytest.fixture(scope="module")
def net():
    return load_diagonalgan(FIXTURES / "diagonalgan_visible.npz")


@pytest.fixture(scope="module")
def codes(net, fx):
    return (net.style_mapping(fx["in/z_style"]), net.content_mapping(fx["in/z_content"]),
            net.content_mapping(fx["in/z_content2"]))


def nchw(x):
    return np.asarray(x).transpose(0, 3, 1, 2)


def test_mapping_networks(codes, fx):
    styles, contents, _ = codes
    assert styles.shape == (4, 32)
    assert rel_err(styles, fx["out/styles"]) < TOL
    assert rel_err(contents, fx["out/contents"]) < TOL


@pytest.mark.parametrize("which,alpha", [("img", 1.0), ("img_content2", 1.0), ("img_fade_alpha0.3", 0.3)])
def test_images(net, codes, fx, which, alpha):
    styles, contents, contents2 = codes
    synth = jax.jit(net.synthesis, static_argnames="resolution")
    img = synth(styles, contents2 if which == "img_content2" else contents, resolution=32, alpha=alpha)
    assert img.shape == (4, 32, 32, 3)
    assert rel_err(nchw(img), fx[f"out/{which}"]) < TOL


def test_per_slot_routing(net, codes, fx):
    styles, contents, contents2 = codes
    per_slot = jnp.broadcast_to(contents[:, None], (4, net.num_slots, 32))
    per_slot = per_slot.at[:, 2:4].set(contents2[:, None])  # block 1 (8x8) takes slots 2 and 3
    img = net.synthesis(jnp.broadcast_to(styles[:, None], (4, net.num_slots, 32)), per_slot, resolution=32)
    assert rel_err(nchw(img), fx["out/img_slots_content23_from_content2"]) < TOL


def test_lower_resolution_steps_run(net, codes):
    styles, contents, _ = codes
    for res in (4, 8, 16):
        assert net.synthesis(styles, contents, resolution=res, alpha=0.5).shape == (4, res, res, 3)


@pytest.mark.parametrize("edit,message", [
    (lambda a: a.pop("G/generator.progression.2.adaat1.gamma"), "missing key 'generator.progression.2.adaat1.gamma'"),
    (lambda a: a.update({"G/generator.extra": np.zeros(2, np.float32)}), "unexpected key 'generator.extra'"),
    (lambda a: a.update({"G/generator.progression.1.conv1.2.weight": np.ones((32, 1, 3, 3), np.float32)}),
     "not the \\[1, 2, 1\\] blur kernel"),
])
def test_mismatches_name_the_key(tmp_path, fx, edit, message):
    arrays = dict(fx)
    edit(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ConversionError, match=message):
        load_diagonalgan(tmp_path / "bad.npz")


def test_resolution_above_the_network_is_refused(net, codes):
    styles, contents, _ = codes
    with pytest.raises(ValueError, match="resolution 64 is above this network's 32"):
        net.synthesis(styles, contents, resolution=64)


def test_dat_only_up_to_256_as_official():
    from jaxstyle.models import SynthesisNetwork
    synth = SynthesisNetwork(img_resolution=512, channel_base=1024, channel_max=4, style_op="adain", content_op="dat")
    codes = jnp.zeros((1, synth.num_ws, 8))
    params = jax.eval_shape(lambda: synth.init({"params": jax.random.key(0)}, codes, "const", codes))["params"]
    assert {"dat1", "dat2"} <= set(params["b256"]) and params["b256"]["dat1"]["fc"]["kernel"].shape == (8, 256 * 256)
    assert not {"dat1", "dat2", "noise1", "noise2"} & set(params["b512"])


def test_size_and_the_official_alpha_convention(net, codes):
    styles, contents, _ = codes
    small = load_diagonalgan(FIXTURES / "diagonalgan_visible.npz", size=16)
    np.testing.assert_allclose(small.synthesis(styles, contents), net.synthesis(styles, contents, resolution=16))
    np.testing.assert_allclose(net.synthesis(styles, contents, alpha=-1), net.synthesis(styles, contents))
    with pytest.raises(ValueError, match="size 64 must be a power of two from 4 to the model's 32"):
        load_diagonalgan(FIXTURES / "diagonalgan_visible.npz", size=64)


def test_a_stylegan2_file_is_named_as_such():
    with pytest.raises(ConversionError, match="not a DiagonalGAN fixture.*load_stylegan2_ada"):
        load_diagonalgan(FIXTURES / "stylegan2_ada_visible.npz")

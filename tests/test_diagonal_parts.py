"""DiagonalGAN parts: instance norm, AdaIN, DAT, the StyleGAN1 blur, the diversity-sensitive loss.

Closed forms and the official fixture (tests/fixtures/diagonalgan_visible.npz) as references.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np

from conftest import FIXTURES
from jaxstyle.losses import diversity_sensitive_loss
from jaxstyle.nn import filter2d, setup_filter
from jaxstyle.nn.adain import AdaIN, instance_norm
from jaxstyle.nn.dat import DiagonalAttention

RNG = np.random.default_rng(7)


def test_instance_norm_is_torch_instancenorm2d():
    x = RNG.standard_normal((2, 5, 6, 3)) * 3 + 1
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)  # biased, as torch
    np.testing.assert_allclose(instance_norm(jnp.asarray(x, jnp.float32)), (x - mean) / np.sqrt(var + 1e-5),
                               rtol=1e-5, atol=1e-5)


def test_adain_closed_form_and_init():
    x = jnp.asarray(RNG.standard_normal((2, 4, 4, 3)), jnp.float32)
    s = jnp.asarray(RNG.standard_normal((2, 8)), jnp.float32)
    layer = AdaIN()
    params = layer.init(jax.random.key(0), x, s)["params"]
    np.testing.assert_array_equal(params["bias"], [1, 1, 1, 0, 0, 0])
    affine = np.asarray(s) @ (np.asarray(params["affine"]["kernel"]) * math.sqrt(2 / 8)) + np.asarray(params["bias"])
    want = affine[:, None, None, :3] * np.asarray(instance_norm(x)) + affine[:, None, None, 3:]
    np.testing.assert_allclose(layer.apply({"params": params}, x, s), want, rtol=1e-5, atol=1e-5)


def test_dat_closed_form_and_init():
    x = jnp.asarray(RNG.standard_normal((2, 4, 4, 3)), jnp.float32)
    c = jnp.asarray(RNG.standard_normal((2, 8)), jnp.float32)
    layer = DiagonalAttention()
    params = layer.init(jax.random.key(0), x, c)["params"]
    assert float(params["gamma"]) == 1.0 and np.all(np.asarray(params["fc"]["bias"]) == 0)
    params = {**params, "gamma": jnp.float32(0.7)}
    y, d = layer.apply({"params": params}, x, c, return_map=True)
    logits = np.asarray(c) @ (np.asarray(params["fc"]["kernel"]) * math.sqrt(2 / 8))
    want_d = (1 / (1 + np.exp(-logits))).reshape(2, 4, 4)  # row-major map, as torch's view
    np.testing.assert_allclose(d, want_d, rtol=1e-5)
    np.testing.assert_allclose(y, np.asarray(x) * (1 + 0.7 * want_d[..., None]), rtol=1e-5, atol=1e-6)


def test_normalized_dat_for_the_modconv_path():
    x = jnp.asarray(RNG.standard_normal((2, 4, 4, 3)), jnp.float32)
    c = jnp.asarray(RNG.standard_normal((2, 8)), jnp.float32)
    layer = DiagonalAttention(normalize=True)
    params = {**layer.init(jax.random.key(0), x, c)["params"], "gamma": jnp.float32(0.7)}
    y, d = layer.apply({"params": params}, x, c, return_map=True)
    f = 1 + 0.7 * np.asarray(d)
    f = f / np.sqrt(np.mean(f**2, axis=(1, 2), keepdims=True))
    np.testing.assert_allclose(y, np.asarray(x) * f[..., None], rtol=1e-5, atol=1e-6)
    # A spatially constant map changes nothing, as the instance norm makes it in the AdaIN model.
    flat = {**params, "fc": {"kernel": jnp.zeros_like(params["fc"]["kernel"]), "bias": params["fc"]["bias"] + 0.4}}
    np.testing.assert_allclose(layer.apply({"params": flat}, x, c), x, rtol=1e-6, atol=1e-6)


def test_spatially_constant_attention_is_cancelled_by_instance_norm():
    x = jnp.asarray(RNG.standard_normal((2, 4, 4, 3)), jnp.float32)
    c = jnp.asarray(RNG.standard_normal((2, 8)), jnp.float32)
    layer = DiagonalAttention()
    params = layer.init(jax.random.key(0), x, c)["params"]
    params = {**params, "fc": {"kernel": jnp.zeros_like(params["fc"]["kernel"]),
                               "bias": jnp.full_like(params["fc"]["bias"], 0.4)}}
    np.testing.assert_allclose(instance_norm(layer.apply({"params": params}, x, c)), instance_norm(x),
                               rtol=1e-4, atol=1e-4)


def test_stylegan1_blur_is_the_official_kernel():
    with np.load(FIXTURES / "diagonalgan_visible.npz") as data:
        official = data["G/generator.progression.1.conv1.2.weight"]  # (C, 1, 3, 3) depthwise kernel
    np.testing.assert_allclose(official[0, 0], np.outer([1, 2, 1], [1, 2, 1]) / 16, rtol=1e-6)
    x = RNG.standard_normal((1, 5, 5, 2)).astype(np.float32)
    got = filter2d(jnp.asarray(x), setup_filter([1, 2, 1]))
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    want = sum(official[0, 0, i, j] * padded[:, i:i + 5, j:j + 5] for i in range(3) for j in range(3))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_diversity_sensitive_loss_matches_the_official_value():
    with np.load(FIXTURES / "diagonalgan_visible.npz") as data:
        img, img2, official = data["out/img"], data["out/img_content2"], data["out/ds_loss"]
    got = diversity_sensitive_loss(jnp.asarray(img), jnp.asarray(img2), 0.3)
    np.testing.assert_allclose(got, official[0], rtol=1e-5)


def test_diversity_sensitive_loss_gradient_on_both_sides_of_the_hinge():
    a = jnp.zeros((1, 2, 2, 1))
    b = jnp.array([0.1, -0.2, 0.05, -0.05]).reshape(1, 2, 2, 1)  # mean |a - b| = 0.1 < 0.3: active
    ga, gb = jax.grad(diversity_sensitive_loss, argnums=(0, 1))(a, b)
    np.testing.assert_allclose(gb, -np.sign(np.asarray(b)) / 4)  # d/db of -mean|a - b|
    np.testing.assert_allclose(ga, -np.asarray(gb))
    far = b * 10  # mean difference 1.0 > 0.3: the hinge is flat, no gradient, zero loss
    assert float(diversity_sensitive_loss(a, far)) == 0.0
    ga, gb = jax.grad(diversity_sensitive_loss, argnums=(0, 1))(a, far)
    assert not np.any(ga) and not np.any(gb)

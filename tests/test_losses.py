"""The objective against closed forms (METHODS.md 0.2-0.3) and the official fixture."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import rel_err
from jaxstyle import losses
from jaxstyle.training import ema_beta, ema_update, lazy_adam

RNG = np.random.default_rng(4)


def softplus(x):
    return np.log1p(np.exp(x))


def test_logistic_losses_closed_form():
    real, fake = RNG.standard_normal(6), RNG.standard_normal(6)
    np.testing.assert_allclose(losses.d_logistic_loss(real, fake),
                               softplus(fake).mean() + softplus(-real).mean(), rtol=1e-6)
    np.testing.assert_allclose(losses.g_nonsaturating_loss(fake), softplus(-fake).mean(), rtol=1e-6)


def test_r1_of_a_linear_discriminator_is_the_squared_weight_norm():
    v = jnp.asarray(RNG.standard_normal((4, 4, 3)), jnp.float32)
    d = lambda x: jnp.sum(x * v, axis=(1, 2, 3))[:, None]
    r1, logits = losses.r1_penalty(d, jnp.asarray(RNG.standard_normal((5, 4, 4, 3)), jnp.float32))
    np.testing.assert_allclose(r1, np.full(5, float(jnp.sum(v**2))), rtol=1e-5)
    assert logits.shape == (5, 1)


def test_r1_and_path_lengths_match_the_official_code(sg2_net, sg2_fixture):
    reals = jnp.asarray(sg2_fixture["out/reals"].transpose(0, 2, 3, 1))
    r1, _ = losses.r1_penalty(sg2_net.discriminate, reals)
    assert rel_err(r1, sg2_fixture["out/r1_sqnorm_per_sample"]) < 1e-5
    noise = jnp.asarray(sg2_fixture["out/pl_noise"].transpose(0, 2, 3, 1))
    lengths, _ = losses.path_lengths(lambda w: sg2_net.synthesis(w, "const"),
                                     jnp.asarray(sg2_fixture["out/ws"]), noise)
    assert rel_err(lengths, sg2_fixture["out/pl_lengths"]) < 1e-5


def test_path_length_of_a_linear_generator_closed_form():
    # G(w) = A vec(w): E[pl^2] = tr(A A^T) / (H W num_ws) with y ~ N(0, I / (H W)).
    num_ws, w_dim, h, w, c = 3, 4, 4, 4, 2
    A = jnp.asarray(RNG.standard_normal((h * w * c, num_ws * w_dim)), jnp.float32)
    synth = lambda ws: (ws.reshape(ws.shape[0], -1) @ A.T).reshape(-1, h, w, c)
    ws = jnp.zeros((20000, num_ws, w_dim))
    noise = losses.pl_noise(jax.random.key(0), (20000, h, w, c))
    lengths, _ = losses.path_lengths(synth, ws, noise)
    want = float(jnp.trace(A @ A.T)) / (h * w * num_ws)
    assert abs(float(jnp.mean(lengths**2)) / want - 1) < 0.03
    assert abs(float(jnp.std(noise)) * np.sqrt(h * w) - 1) < 0.02


def test_path_length_penalty_uses_the_updated_mean():
    lengths = jnp.array([1.0, 2.0, 3.0])
    penalty, mean = losses.path_length_penalty(lengths, jnp.float32(0.5), decay=0.01)
    np.testing.assert_allclose(mean, 0.5 + 0.01 * (2.0 - 0.5), rtol=1e-6)
    np.testing.assert_allclose(penalty, (np.array([1.0, 2.0, 3.0]) - 0.515) ** 2, rtol=1e-6)
    # pl_mean is a running statistic: no gradient flows into it.
    g = jax.grad(lambda l: losses.path_length_penalty(l, jnp.float32(0.5))[1])(lengths)
    np.testing.assert_array_equal(g, 0)


@pytest.mark.parametrize("interval", [None, 4, 16])
def test_lazy_adam_scales_lr_and_betas(interval):
    c = interval / (interval + 1) if interval else 1.0
    lr, b2 = 0.002 * c, 0.99**c
    tx = lazy_adam(0.002, (0.0, 0.99), 1e-8, interval)
    p = jnp.zeros(3)
    g1, g2 = jnp.array([1.0, -2.0, 0.5]), jnp.array([0.3, 1.0, -4.0])
    s = tx.init(p)
    u1, s = tx.update(g1, s, p)
    u2, s = tx.update(g2, s, p)
    # Adam with beta1 = 0: m = g; v bias-corrected by 1 - b2^t (torch.optim.Adam's formula).
    v2 = (b2 * (1 - b2) * g1**2 + (1 - b2) * g2**2) / (1 - b2**2)
    np.testing.assert_allclose(u1, -lr * g1 / (jnp.abs(g1) + 1e-8), rtol=1e-5)
    np.testing.assert_allclose(u2, -lr * g2 / (jnp.sqrt(v2) + 1e-8), rtol=1e-5)


def test_ema_beta_and_update():
    np.testing.assert_allclose(ema_beta(32, 10.0), 0.5 ** (32 / 10000), rtol=1e-6)
    # Ramp-up: ema_nimg = min(ema_kimg * 1000, cur_nimg * rampup).
    np.testing.assert_allclose(ema_beta(32, 10.0, cur_nimg=1000.0, rampup=0.05), 0.5 ** (32 / 50), rtol=1e-6)
    ema = {"params": {"w": jnp.array([1.0, 1.0])}, "buffers": {"n": jnp.array([0.0])}}
    new = {"params": {"w": jnp.array([3.0, -1.0])}, "buffers": {"n": jnp.array([7.0])}}
    out = ema_update(ema, new, 0.75)
    np.testing.assert_allclose(out["params"]["w"], [1.5, 0.5])
    np.testing.assert_array_equal(out["buffers"]["n"], [7.0])

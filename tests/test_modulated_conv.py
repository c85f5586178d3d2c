"""Modulated convolution: both formulations against the NumPy reference and closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle.nn import demodulation_coefficients, modulated_conv2d, setup_filter
import numpy_reference as ref

RNG = np.random.default_rng(1)


def inputs(batch=3, cin=5, cout=4, size=6, k=3):
    x = RNG.standard_normal((batch, cin, size, size))
    w = RNG.standard_normal((cout, cin, k, k))
    s = RNG.standard_normal((batch, cin)) + 1.0
    return x, w, s


def run(x, w, s, **kw):
    k = w.shape[-1]
    y = modulated_conv2d(jnp.asarray(x.transpose(0, 2, 3, 1), jnp.float32),
                         jnp.asarray(w.transpose(2, 3, 1, 0), jnp.float32),
                         jnp.asarray(s, jnp.float32), padding=k // 2,
                         resample_filter=setup_filter([1, 3, 3, 1]), **kw)
    return np.asarray(y).transpose(0, 3, 1, 2)


@pytest.mark.parametrize("formulation", ["activation", "weights"])
@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("demodulate", [True, False])
def test_matches_per_sample_weight_reference(formulation, up, demodulate):
    x, w, s = inputs()
    got = run(x, w, s, up=up, demodulate=demodulate, formulation=formulation)
    want = ref.modulated_conv2d(x, w, s, demodulate=demodulate, up=up)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("up", [1, 2])
def test_formulations_agree(up):
    x, w, s = inputs(batch=4, cin=16, cout=8, size=8)
    a = run(x, w, s, up=up, formulation="activation")
    b = run(x, w, s, up=up, formulation="weights")
    assert np.max(np.abs(a - b)) / np.max(np.abs(a)) < 2e-6


@pytest.mark.parametrize("formulation", ["activation", "weights"])
def test_demodulation_makes_output_invariant_to_style_scale(formulation):
    x, w, s = inputs()
    base = run(x, w, s, formulation=formulation)
    scales = np.array([0.3, 7.0, 120.0])[:, None]
    np.testing.assert_allclose(run(x, w, s * scales, formulation=formulation), base, rtol=1e-4, atol=1e-5)
    # Without demodulation the output scales linearly with the style.
    np.testing.assert_allclose(run(x, w, 2 * s, demodulate=False, formulation=formulation),
                               2 * run(x, w, s, demodulate=False, formulation=formulation),
                               rtol=1e-5, atol=1e-5)


def test_demodulated_output_has_unit_variance_for_unit_inputs():
    # Closed form: with i.i.d. N(0, 1) inputs, each demodulated output channel has E[y^2] = 1
    # (away from the zero-padded border).
    x = RNG.standard_normal((16, 64, 16, 16))
    w = RNG.standard_normal((8, 64, 3, 3))
    s = RNG.standard_normal((16, 64)) + 2.0
    y = run(x, w, s, formulation="activation")[:, :, 1:-1, 1:-1]
    np.testing.assert_allclose(np.mean(y**2, axis=(0, 2, 3)), 1.0, atol=0.05)


def test_demodulation_coefficients_closed_form():
    w = RNG.standard_normal((3, 3, 5, 4)).astype(np.float32)
    s = RNG.standard_normal((2, 5)).astype(np.float32)
    got = demodulation_coefficients(jnp.asarray(w), jnp.asarray(s))
    per_sample = w[None] * s[:, None, None, :, None]
    want = 1 / np.sqrt((per_sample**2).sum(axis=(1, 2, 3)) + 1e-8)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_unknown_formulation_is_refused():
    x, w, s = inputs()
    with pytest.raises(ValueError, match="formulation 'grouped'.*activation"):
        run(x, w, s, formulation="grouped")


def test_gradients_of_formulations_agree():
    x, w, s = inputs(batch=2, cin=4, cout=3, size=5)
    xj, wj, sj = (jnp.asarray(a, jnp.float32) for a in (x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0), s))

    def loss(form):
        return lambda x, w, s: jnp.sum(jnp.sin(modulated_conv2d(
            x, w, s, up=2, padding=1, resample_filter=setup_filter([1, 3, 3, 1]), formulation=form)))

    ga = jax.grad(loss("activation"), argnums=(0, 1, 2))(xj, wj, sj)
    gw = jax.grad(loss("weights"), argnums=(0, 1, 2))(xj, wj, sj)
    for a, b in zip(ga, gw):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)

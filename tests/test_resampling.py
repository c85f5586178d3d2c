"""FIR resampling and resampling convolutions against the NumPy reference and closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle.nn import conv2d_resample, downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d
from jaxstyle.nn.upfirdn2d import fir_impl, separable_factors
import numpy_reference as ref

RNG = np.random.default_rng(0)


def nhwc(x):
    return jnp.asarray(x.transpose(0, 2, 3, 1), jnp.float32)


def nchw(x):
    return np.asarray(x).transpose(0, 3, 1, 2)


def test_setup_filter_is_normalised_outer_product():
    f = setup_filter([1, 3, 3, 1])
    np.testing.assert_allclose(f, np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0)


# An asymmetric filter catches a missing or doubled flip; odd sizes and negative pads catch
# off-by-one padding.
@pytest.mark.parametrize("up,down,pad", [(1, 1, (1, 2, 0, 1)), (2, 1, (2, 1, 2, 1)),
                                         (1, 2, (1, 1, 1, 1)), (2, 2, (1, 2, 2, 1)),
                                         (1, 1, (-1, 2, 1, -1)), (3, 1, (1, 1, 1, 1))])
@pytest.mark.parametrize("flip", [False, True])
def test_upfirdn2d_matches_reference(up, down, pad, flip):
    x = RNG.standard_normal((2, 3, 7, 6))
    f = RNG.standard_normal((4, 3))
    got = upfirdn2d(nhwc(x), f, up=up, down=down, padding=pad, flip_filter=flip, gain=1.7)
    want = ref.upfirdn2d(x, f, up=up, down=down, pad=pad, gain=1.7, flip_filter=flip)
    np.testing.assert_allclose(nchw(got), want, rtol=1e-5, atol=1e-5)


# Both formulations on an asymmetric outer-product filter (what the separable form needs).
@pytest.mark.parametrize("up,down,pad", [(1, 1, (1, 2, 0, 1)), (2, 1, (2, 1, 2, 1)), (1, 2, (1, 1, 1, 1)),
                                         (2, 2, (1, 2, 2, 1)), (1, 1, (-1, 2, 1, -1)), (3, 1, (1, 1, 1, 1)),
                                         (1, 3, (2, 0, 1, 2))])
@pytest.mark.parametrize("impl", ["separable", "conv"])
@pytest.mark.parametrize("flip", [False, True])
def test_upfirdn2d_formulations_match_reference_on_separable_filters(up, down, pad, impl, flip):
    x = RNG.standard_normal((2, 3, 7, 6))
    f = np.outer(RNG.standard_normal(4), RNG.standard_normal(3))
    got = upfirdn2d(nhwc(x), f, up=up, down=down, padding=pad, flip_filter=flip, gain=1.7, impl=impl)
    want = ref.upfirdn2d(x, f, up=up, down=down, pad=pad, gain=1.7, flip_filter=flip)
    np.testing.assert_allclose(nchw(got), want, rtol=1e-5, atol=1e-5)


def test_upfirdn2d_formulations_have_the_same_gradients():
    x = nhwc(RNG.standard_normal((2, 3, 9, 8)))
    f = setup_filter([1, 3, 3, 1])

    def grads(impl):
        loss = lambda x: jnp.sum(jnp.sin(upfirdn2d(x, f, up=2, down=2, padding=(2, 1, 2, 1), impl=impl)))
        return jax.grad(loss)(x)
    np.testing.assert_allclose(grads("separable"), grads("conv"), rtol=1e-5, atol=1e-6)


def test_separable_factors_recover_outer_products_and_refuse_the_rest():
    fy, fx = separable_factors(setup_filter([1, 3, 3, 1]))
    np.testing.assert_allclose(np.outer(fy, fx), np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0, rtol=1e-7)
    assert separable_factors(np.eye(3)) is None
    assert fir_impl(np.eye(3)) == "conv"
    with pytest.raises(ValueError, match="outer-product filter"):
        upfirdn2d(jnp.zeros((1, 4, 4, 1)), np.eye(3), impl="separable")


def test_fir_setting_is_checked(monkeypatch):
    monkeypatch.setenv("JAXSTYLE_FIR", "fast")
    with pytest.raises(ValueError, match="JAXSTYLE_FIR must be auto, separable or conv"):
        fir_impl(setup_filter([1, 3, 3, 1]))
    monkeypatch.setenv("JAXSTYLE_FIR", "conv")
    assert fir_impl(setup_filter([1, 3, 3, 1])) == "conv"


def test_resampling_keeps_a_constant_image_constant_away_from_borders():
    x = jnp.full((1, 8, 8, 2), 0.37)
    f = setup_filter([1, 3, 3, 1])
    up = np.asarray(upsample2d(x, f))
    down = np.asarray(downsample2d(x, f))
    same = np.asarray(filter2d(x, f))
    assert up.shape == (1, 16, 16, 2) and down.shape == (1, 4, 4, 2) and same.shape == x.shape
    np.testing.assert_allclose(up[:, 2:-2, 2:-2], 0.37, rtol=1e-6)
    np.testing.assert_allclose(down[:, 1:-1, 1:-1], 0.37, rtol=1e-6)
    np.testing.assert_allclose(same[:, 2:-2, 2:-2], 0.37, rtol=1e-6)
    assert not np.allclose(up[:, 0], 0.37)  # zero padding does reach the border


@pytest.mark.parametrize("k", [1, 3])
def test_up_conv_is_transposed_conv_then_filter(k):
    x = RNG.standard_normal((2, 4, 5, 5))
    w = RNG.standard_normal((6, 4, k, k))  # OIHW
    f = setup_filter([1, 3, 3, 1])
    got = conv2d_resample(nhwc(x), jnp.asarray(w.transpose(2, 3, 1, 0), jnp.float32), f, up=2,
                          padding=k // 2, flip_weight=False)
    if k == 3:  # official: conv_transpose2d(x, w^T, stride 2) then upfirdn2d(pad 1, gain 4)
        want = ref.upfirdn2d(ref.conv_transpose2d(x, w.transpose(1, 0, 2, 3)), ref.FIR(),
                             pad=(1, 1, 1, 1), gain=4)
    else:  # 1x1 fast path: convolve, then upsample2d
        want = ref.upfirdn2d(ref.conv2d(x, w), ref.FIR(), up=2, pad=(2, 1, 2, 1), gain=4)
    assert got.shape == (2, 10, 10, 6)
    np.testing.assert_allclose(nchw(got), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k", [1, 3])
def test_down_conv_is_filter_then_strided_conv(k):
    x = RNG.standard_normal((2, 4, 8, 8))
    w = RNG.standard_normal((6, 4, k, k))
    f = setup_filter([1, 3, 3, 1])
    got = conv2d_resample(nhwc(x), jnp.asarray(w.transpose(2, 3, 1, 0), jnp.float32), f, down=2,
                          padding=k // 2)
    if k == 3:
        want = ref.conv2d(ref.upfirdn2d(x, ref.FIR(), pad=(2, 2, 2, 2)), w, stride=2)
    else:
        want = ref.conv2d(ref.upfirdn2d(x, ref.FIR(), down=2, pad=(1, 1, 1, 1)), w)
    assert got.shape == (2, 4, 4, 6)
    np.testing.assert_allclose(nchw(got), want, rtol=1e-5, atol=1e-5)

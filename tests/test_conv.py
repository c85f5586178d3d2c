"""jaxstyle.nn.conv: the matmul-per-tap weight gradient equals XLA's convolution gradient, to
first and second order (R1 and path length differentiate gradients), for every conv form the
networks use: 3x3 same, strided (down), input-dilated (transposed, up), 1x1, uneven crops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle.nn import conv as conv_module
from jaxstyle.nn.conv import conv, matmul_weight_grad, xla_conv

CASES = {
    "3x3 same": (3, 1, ((1, 1), (1, 1)), 1),
    "3x3 stride 2": (3, 2, ((0, 0), (0, 0)), 1),
    "3x3 input-dilated": (3, 1, ((2, 2), (2, 2)), 2),
    "3x3 input-dilated, cropped": (3, 1, ((-1, 1), (0, -2)), 2),
    "2x2 input-dilated by 3": (2, 1, ((1, 2), (2, 0)), 3),
    "1x1": (1, 1, ((0, 0), (0, 0)), 1),
    "uneven crop": (3, 1, ((-1, 2), (0, 1)), 1),
}


@pytest.fixture
def matmul_on(monkeypatch):
    monkeypatch.setenv("JAXSTYLE_MATMUL_WEIGHT_GRAD", "1")


def numpy_weight_grad(x, g, k, stride, padding, dilate):
    """dL/dW by the definition: sum over batch and output pixels of input patch x output grad."""
    b, h, w, i = x.shape
    xe = np.zeros((b, (h - 1) * dilate + 1, (w - 1) * dilate + 1, i))
    xe[:, ::dilate, ::dilate] = x
    (pt, pb), (pl, pr) = padding
    xe = np.pad(xe, ((0, 0), (max(pt, 0), max(pb, 0)), (max(pl, 0), max(pr, 0)), (0, 0)))
    xe = xe[:, max(-pt, 0):xe.shape[1] - max(-pb, 0), max(-pl, 0):xe.shape[2] - max(-pr, 0)]
    _, ho, wo, o = g.shape
    dw = np.zeros((k, k, i, o))
    for dy in range(k):
        for dx in range(k):
            patch = xe[:, dy:dy + (ho - 1) * stride + 1:stride, dx:dx + (wo - 1) * stride + 1:stride]
            dw[dy, dx] = np.einsum("bhwi,bhwo->io", patch, g)
    return dw


@pytest.mark.parametrize("name", CASES)
def test_weight_gradient_is_the_definition(name):
    k, stride, padding, dilate = CASES[name]
    x = np.random.default_rng(0).standard_normal((2, 7, 9, 3)).astype(np.float32)
    out = xla_conv(jnp.asarray(x), jnp.zeros((k, k, 3, 4)), stride, padding, dilate)
    g = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    got = matmul_weight_grad(jnp.asarray(x), jnp.asarray(g), (k, k), stride, padding, dilate)
    np.testing.assert_allclose(got, numpy_weight_grad(x, g, k, stride, padding, dilate), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", CASES)
def test_gradients_match_xla_to_second_order(name, matmul_on):
    k, stride, padding, dilate = CASES[name]
    kx, kw = jax.random.split(jax.random.key(1))
    x, w = jax.random.normal(kx, (2, 9, 9, 5)), jax.random.normal(kw, (k, k, 5, 4))

    def loss(fn):
        return lambda x, w: jnp.sum(jnp.sin(fn(x, w, stride, padding, dilate)))

    def r1(fn):   # a gradient penalty: d/dw |dL/dx|^2
        return lambda w: jnp.sum(jax.grad(loss(fn))(x, w) ** 2)
    for got, want in ((jax.grad(loss(conv), (0, 1))(x, w), jax.grad(loss(xla_conv), (0, 1))(x, w)),
                      ((jax.grad(r1(conv))(w),), (jax.grad(r1(xla_conv))(w),))):
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5 * float(jnp.abs(b).max()))


def test_backend_form_and_width_choice(monkeypatch):
    monkeypatch.setenv("JAXSTYLE_MATMUL_WEIGHT_GRAD", "auto")
    on_cpu = jax.default_backend() == "cpu"
    choose = conv_module.use_matmul_weight_grad
    assert choose(128, 128) == on_cpu == choose(512, 64)
    assert not choose(64, 128)                        # a narrow 3x3 same conv keeps XLA's
    assert choose(64, 64, (3, 3), 1, 2) == on_cpu     # up (input-dilated), down (strided), 1x1: matmuls
    assert choose(64, 64, (3, 3), 2, 1) == on_cpu
    assert choose(64, 64, (1, 1)) == on_cpu
    monkeypatch.setenv("JAXSTYLE_MATMUL_WEIGHT_GRAD", "0")
    assert not choose(512, 512, (3, 3), 1, 2)
    monkeypatch.setenv("JAXSTYLE_MATMUL_WEIGHT_GRAD", "1")
    assert choose(3, 4)

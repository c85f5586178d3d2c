"""The plain NHWC/HWIO convolution every layer uses, with a faster weight gradient on XLA CPU.

XLA CPU lowers a wide convolution's weight gradient to a convolution that runs well below its
matmul speed. The weight gradient is a sum over output positions, which for each kernel tap
(dy, dx) is one matmul of the shifted input's rows with the output gradient:

    dW[dy, dx] = X[:, dy::s, dx::s]^T  @  dY        (rows: batch x output pixels)

`conv` computes the forward pass and the input gradient with XLA's convolution, and the weight
gradient as those kh * kw matmuls on the CPU backend where that measured faster
(benchmarks/conv_grad.py, 16x16x16, 64-512 channels): input-dilated (up) convolutions 11.6-100x,
using only the input samples each tap meets; strided (down) 1.6-2.5x; 1x1 1.8-2.6x; stride-1
k x k ones from 128 x 128 channels (whole training steps: 2.46 -> 3.92 images/s on the 256-channel
32x32 setup). GPU and TPU use the library convolution.
The rule is itself differentiable, so R1 and path length regularisation (gradients of
gradients) go through it.
"""

import functools

import jax
import jax.numpy as jnp
from jax import lax

DIMS = ("NHWC", "HWIO", "NHWC")


def xla_conv(x, w, stride=1, padding=((0, 0), (0, 0)), dilate_input=1, groups=1):
    """Returns lax's correlation of x (B, H, W, I) with w (kh, kw, I / groups, O)."""
    return lax.conv_general_dilated(x, w, (stride, stride), padding, lhs_dilation=(dilate_input, dilate_input),
                                    dimension_numbers=DIMS, feature_group_count=groups)


def _expanded_input(x, padding, dilate_input):
    """Returns x with zeros inserted between pixels (dilate_input) and padded (negative crops)."""
    (pt, pb), (pl, pr) = padding
    zero = jnp.zeros((), x.dtype)
    return lax.pad(x, zero, ((0, 0, 0), (pt, pb, dilate_input - 1), (pl, pr, dilate_input - 1), (0, 0, 0)))


def _tap_rows(n, m, low, dilate, tap):
    """Returns (first input index, count, first output index) of the input samples that tap `tap`
    of a stride-1 convolution reads into its m outputs, along one axis of n samples that are
    dilated by `dilate` and padded by `low` in front; None if it reads only inserted zeros."""
    # Output i reads expanded position i + tap, which holds input k where i + tap - low = k * dilate.
    k0 = max(0, -(-(tap - low) // dilate))
    k1 = min(n - 1, (m - 1 + tap - low) // dilate)
    return (k0, k1 - k0 + 1, k0 * dilate + low - tap) if k1 >= k0 else None


def _dilated_weight_grad(x, g, kernel_size, padding, dilate_input):
    """Returns dL/dW of a stride-1 input-dilated convolution as one matmul per tap over the input
    samples that tap actually meets: (dilate_input ** 2) times fewer rows than the expanded input."""
    batch, h, w, in_ch = x.shape
    _, ho, wo, out_ch = g.shape
    taps = []
    for dy in range(kernel_size[0]):
        for dx in range(kernel_size[1]):
            rows = _tap_rows(h, ho, padding[0][0], dilate_input, dy)
            cols = _tap_rows(w, wo, padding[1][0], dilate_input, dx)
            if rows is None or cols is None:
                taps.append(jnp.zeros((in_ch, out_ch), x.dtype))
                continue
            (ky, ny, iy), (kx, nx, ix) = rows, cols
            xs = lax.slice(x, (0, ky, kx, 0), (batch, ky + ny, kx + nx, in_ch))
            gs = lax.slice(g, (0, iy, ix, 0), (batch, iy + (ny - 1) * dilate_input + 1,
                                               ix + (nx - 1) * dilate_input + 1, out_ch),
                           (1, dilate_input, dilate_input, 1))
            taps.append(xs.reshape(-1, in_ch).T @ gs.reshape(-1, out_ch))
    return jnp.stack(taps).reshape(*kernel_size, in_ch, out_ch)


def matmul_weight_grad(x, g, kernel_size, stride, padding, dilate_input):
    """Returns dL/dW (kh, kw, I, O) of xla_conv(x, W, ...) for the output gradient g, as one matmul per tap."""
    if dilate_input > 1 and stride == 1:
        return _dilated_weight_grad(x, g, kernel_size, padding, dilate_input)
    kh, kw = kernel_size
    xe = _expanded_input(x, padding, dilate_input)
    batch, ho, wo, out_ch = g.shape
    rows = g.reshape(batch * ho * wo, out_ch)
    taps = []
    for dy in range(kh):
        for dx in range(kw):
            shifted = lax.slice(xe, (0, dy, dx, 0), (batch, dy + (ho - 1) * stride + 1, dx + (wo - 1) * stride + 1,
                                                     xe.shape[3]), (1, stride, stride, 1))
            taps.append(shifted.reshape(-1, xe.shape[3]).T @ rows)
    return jnp.stack(taps).reshape(kh, kw, xe.shape[3], out_ch)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv_fast_wgrad(x, w, stride, padding, dilate_input):
    return xla_conv(x, w, stride, padding, dilate_input)


def _fwd(x, w, stride, padding, dilate_input):
    return xla_conv(x, w, stride, padding, dilate_input), (x, w)


def _bwd(stride, padding, dilate_input, residuals, g):
    x, w = residuals
    dx = _input_grad(g, w, (stride, padding, dilate_input), x.shape)
    dw = matmul_weight_grad(x, g, w.shape[:2], stride, padding, dilate_input)
    return dx, dw.astype(w.dtype)


_conv_fast_wgrad.defvjp(_fwd, _bwd)


# The input gradient is itself differentiated by R1 and path-length regularisation. For a
# strided conv it is an input-dilated conv, whose XLA weight gradient is the slowest case of all,
# so it gets the same treatment: <h, dX(g, w)> = <conv(h, w), g> gives its cotangents as a
# forward conv (w.r.t. g) and a matmul weight gradient (w.r.t. w).
@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _input_grad(g, w, form, x_shape):
    """Returns dL/dX of xla_conv(X, w, *form) for the output gradient g, X of shape x_shape."""
    _, vjp = jax.vjp(lambda x: xla_conv(x, w, *form), jnp.zeros(x_shape, g.dtype))
    return vjp(g)[0]


def _input_grad_fwd(g, w, form, x_shape):
    return _input_grad(g, w, form, x_shape), (g, w)


def _input_grad_bwd(form, x_shape, residuals, h):
    g, w = residuals
    stride, padding, dilate_input = form
    return (conv(h, w, stride, padding, dilate_input),
            matmul_weight_grad(h, g, w.shape[:2], stride, padding, dilate_input).astype(w.dtype))


_input_grad.defvjp(_input_grad_fwd, _input_grad_bwd)


MATMUL_MIN_CHANNELS = 128 * 128   # in x out channels from which the matmul form wins for k x k same convs


def use_matmul_weight_grad(in_channels, out_channels, kernel_size=(3, 3), stride=1, dilate_input=1):
    """Returns whether `conv` computes this layer's weight gradient as matmuls.

    On the CPU backend: always for input-dilated (up), strided (down) and 1x1 convolutions, and
    for stride-1 k x k ones from in x out >= MATMUL_MIN_CHANNELS (benchmarks/conv_grad.py).
    $JAXSTYLE_MATMUL_WEIGHT_GRAD=1 forces it for every layer, 0 turns it off.
    """
    import os
    setting = os.environ.get("JAXSTYLE_MATMUL_WEIGHT_GRAD", "auto")
    if setting != "auto":
        return setting == "1"
    if jax.default_backend() != "cpu":
        return False
    if dilate_input > 1 or stride > 1 or tuple(kernel_size) == (1, 1):
        return True
    return in_channels * out_channels >= MATMUL_MIN_CHANNELS


def conv(x, w, stride=1, padding=((0, 0), (0, 0)), dilate_input=1, groups=1):
    """Returns the correlation of x (B, H, W, I) with w (kh, kw, I / groups, O), NHWC.

    padding: ((top, bottom), (left, right)); dilate_input inserts zeros between input pixels
    (transposed convolution). Grouped convolutions keep XLA's own gradient.
    """
    padding = tuple((int(a), int(b)) for a, b in padding)
    if groups == 1 and use_matmul_weight_grad(w.shape[2], w.shape[3], w.shape[:2], stride, dilate_input):
        return _conv_fast_wgrad(x, w, int(stride), padding, int(dilate_input))
    return xla_conv(x, w, stride, padding, dilate_input, groups)

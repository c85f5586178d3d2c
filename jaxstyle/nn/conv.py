"""The plain NHWC/HWIO convolution every layer uses, with a faster weight gradient on XLA CPU.

XLA CPU lowers a wide convolution's weight gradient to a convolution that runs well below its
matmul speed. The weight gradient is a sum over output positions, which for each kernel tap
(dy, dx) is one matmul of the shifted input's rows with the output gradient:

    dW[dy, dx] = X[:, dy::s, dx::s]^T  @  dY        (rows: batch x output pixels)

`conv` computes the forward pass and the input gradient with XLA's convolution, and the weight
gradient as those kh * kw matmuls for layers of at least 128 x 128 channels on the CPU backend;
on GPU and TPU the library convolution is used. The threshold comes from whole training steps
(benchmarks/throughput.py, official 32x32 setups): with 256/128 channels it took the step from
2.46 to 3.92 images/s (3.37 with matmuls in every layer); with 64 channels matmuls lost 8%.
Layers alone (benchmarks/conv_grad.py, 16x32x32) gain only at 512 channels (1.37x; 0.94x at
256, 0.4x at 64), so XLA treats the convolution differently inside the full step.
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


def matmul_weight_grad(x, g, kernel_size, stride, padding, dilate_input):
    """Returns dL/dW (kh, kw, I, O) of xla_conv(x, W, ...) for the output gradient g, as one matmul per tap."""
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
    _, input_vjp = jax.vjp(lambda x: xla_conv(x, w, stride, padding, dilate_input), x)
    dw = matmul_weight_grad(x, g, w.shape[:2], stride, padding, dilate_input)
    return input_vjp(g)[0], dw.astype(w.dtype)


_conv_fast_wgrad.defvjp(_fwd, _bwd)


MATMUL_MIN_CHANNELS = 128 * 128   # in x out channels from which the matmul form is faster on CPU


def use_matmul_weight_grad(in_channels, out_channels):
    """Returns whether `conv` computes this layer's weight gradient as matmuls: on the CPU backend
    for in x out >= MATMUL_MIN_CHANNELS; $JAXSTYLE_MATMUL_WEIGHT_GRAD=1 forces it for every layer,
    0 turns it off."""
    import os
    setting = os.environ.get("JAXSTYLE_MATMUL_WEIGHT_GRAD", "auto")
    if setting != "auto":
        return setting == "1"
    return jax.default_backend() == "cpu" and in_channels * out_channels >= MATMUL_MIN_CHANNELS


def conv(x, w, stride=1, padding=((0, 0), (0, 0)), dilate_input=1, groups=1):
    """Returns the correlation of x (B, H, W, I) with w (kh, kw, I / groups, O), NHWC.

    padding: ((top, bottom), (left, right)); dilate_input inserts zeros between input pixels
    (transposed convolution). Grouped convolutions keep XLA's own gradient.
    """
    padding = tuple((int(a), int(b)) for a, b in padding)
    if groups == 1 and use_matmul_weight_grad(w.shape[2], w.shape[3]):
        return _conv_fast_wgrad(x, w, int(stride), padding, int(dilate_input))
    return xla_conv(x, w, stride, padding, dilate_input, groups)

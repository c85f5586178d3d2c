"""StyleGAN1's fused resampling convolutions (`FusedUpsample` / `FusedDownsample`), NHWC.

The official progressive StyleGAN1 port (rosinality, which DiagonalGAN builds on) uses these at
its highest resolutions: the generator's 512 and 1024 blocks up-sample with FusedUpsample, the
discriminator's 1024 and 512 blocks down-sample with FusedDownsample. A 3x3 equalized kernel
(He gain sqrt(2 / fan_in)) is zero-padded to 5x5 and averaged over its four 1-pixel shifts into
a 4x4 kernel, which is the 3x3 kernel convolved with a 2x2 box: the down version computes exactly
a 3x3 conv followed by 2x2 average pooling (only cheaper); the up version is a stride-2 transposed
3x3 conv followed by a 2x2 box filter, which differs from nearest x2 + 3x3 conv. Parameters: `kernel` (3, 3, in, out), N(0, 1), and `bias` (out,), zero.
Official weights map as kernel = weight.transpose(2, 3, 0, 1) for FusedUpsample (stored
(in, out, kh, kw)) and weight.transpose(2, 3, 1, 0) for FusedDownsample (stored (out, in, kh, kw)).
"""

import math

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

from jaxstyle.nn.equalized import normal_init

_DIMS = ("NHWC", "HWIO", "NHWC")


def box_kernel(kernel):
    """Returns the 4x4 kernel (4, 4, in, out): `kernel` (3, 3, in, out) averaged over 4 shifts."""
    w = jnp.pad(kernel, ((1, 1), (1, 1), (0, 0), (0, 0)))
    return (w[1:, 1:] + w[:-1, 1:] + w[1:, :-1] + w[:-1, :-1]) / 4


class _FusedParams(nn.Module):
    """Shared parameter set-up: returns the equalized 4x4 kernel and the bias."""

    features: int

    def weights(self, in_channels):
        kernel = self.param("kernel", normal_init(), (3, 3, in_channels, self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        gain = math.sqrt(2 / (in_channels * 9))  # fan_in of the 3x3 kernel, as official
        return box_kernel(kernel * gain), bias


class FusedUpsample(_FusedParams):
    """torch `conv_transpose2d(x, w4, bias, stride=2, padding=1)`: (B, H, W, in) -> (B, 2H, 2W, out)."""

    @nn.compact
    def __call__(self, x):
        """Returns the up-sampled features (B, 2H, 2W, features), bias added."""
        w, b = self.weights(x.shape[-1])
        # A transposed conv is the gradient of a conv: correlate the zero-inserted input
        # (lhs_dilation) with the spatially flipped kernel. Padding k - 1 - p = 2 per side
        # gives (2H - 1) + 4 - 3 = 2H outputs, i.e. torch's padding=1 crop.
        y = lax.conv_general_dilated(x, w[::-1, ::-1].astype(x.dtype), window_strides=(1, 1),
                                     padding=((2, 2), (2, 2)), lhs_dilation=(2, 2),
                                     dimension_numbers=_DIMS)
        return y + b.astype(x.dtype)


class FusedDownsample(_FusedParams):
    """torch `conv2d(x, w4, bias, stride=2, padding=1)`: (B, H, W, in) -> (B, H/2, W/2, out)."""

    @nn.compact
    def __call__(self, x):
        """Returns the down-sampled features (B, H/2, W/2, features), bias added."""
        w, b = self.weights(x.shape[-1])
        y = lax.conv_general_dilated(x, w.astype(x.dtype), window_strides=(2, 2),
                                     padding=((1, 1), (1, 1)), dimension_numbers=_DIMS)
        return y + b.astype(x.dtype)

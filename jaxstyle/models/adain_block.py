"""The StyleGAN1 / DiagonalGAN synthesis block: the "adain" style op of the synthesis network.

    conv1 (constant input, or up-conv -> blur) -> content op -> AdaIN -> lrelu
    conv2 (3x3 conv)                           -> content op -> AdaIN -> lrelu

The up-conv is nearest x2 -> 3x3 conv, or, as in the official `fused=True` blocks, at
`fused_min_resolution` (512) and above a FusedUpsample (`nn/fused_resample.py`, a stride-2
transposed conv) still named conv1, so the official `progression.{7,8}.conv1.0.weight/bias`
land in `b512/conv1/...` and `b1024/conv1/...`.

Convolutions use StyleGAN1's equalized learning rate (He gain sqrt(2/fan_in)) and a plain leaky
ReLU (slope 0.2, no gain). The content op is DAT (DiagonalGAN), noise (StyleGAN1) or none.
Block i reads style and content slots 2i and 2i+1. Submodule names follow the official ones
(conv1, conv2, adain1, adain2, dat1, dat2, torgb) so weights import by name.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxstyle.nn.adain import AdaIN
from jaxstyle.nn.dat import DiagonalAttention
from jaxstyle.nn.equalized import EqualConv, normal_init
from jaxstyle.nn.fused_resample import FusedUpsample
from jaxstyle.nn.noise import NoiseInjection
from jaxstyle.nn.upfirdn2d import filter2d, setup_filter

HE_GAIN = math.sqrt(2)
CONTENT_OPS = ("dat", "noise", "none")


def upsample_nearest(x, factor=2):
    """Returns x (B, H, W, C) repeated `factor` times along H and W."""
    return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


class AdaINBlock(nn.Module):
    """One resolution of the AdaIN synthesis; returns features (B, R, R, out_channels)."""

    in_channels: int                           # 0 for the first (constant-input) block
    out_channels: int
    resolution: int
    content_op: str = "dat"
    fused_min_resolution: int = 512            # official: fused up-conv in the 512 and 1024 blocks

    def _content(self, x, content, index, noise_mode):
        if self.content_op == "dat":
            return DiagonalAttention(name=f"dat{index}")(x, content)
        if self.content_op == "noise":
            return NoiseInjection(name=f"noise{index}")(x, noise_mode)
        return x

    @nn.compact
    def __call__(self, x, styles, contents, noise_mode="random"):
        """styles, contents: (B, 2, dim) slots of this block (contents None without DAT)."""
        if self.content_op not in CONTENT_OPS:
            raise ValueError(f"unknown content op {self.content_op!r}; use one of {CONTENT_OPS}")
        conv = dict(weight_gain=HE_GAIN)
        if self.in_channels == 0:
            const = self.param("const", normal_init(), (self.resolution, self.resolution, self.out_channels))
            x = jnp.broadcast_to(const[None], (styles.shape[0],) + const.shape)
        else:
            if self.resolution >= self.fused_min_resolution:
                x = FusedUpsample(self.out_channels, name="conv1")(x)
            else:
                x = EqualConv(self.out_channels, 3, name="conv1", **conv)(upsample_nearest(x))
            x = filter2d(x, setup_filter([1, 2, 1]))
        slot = lambda a, i: None if a is None else a[:, i]
        for i in (1, 2):
            if i == 2:
                x = EqualConv(self.out_channels, 3, name="conv2", **conv)(x)
            x = self._content(x, slot(contents, i - 1), i, noise_mode)
            x = AdaIN(name=f"adain{i}")(x, styles[:, i - 1])
            x = jax.nn.leaky_relu(x, 0.2)
        return x


class PlainToRGB(nn.Module):
    """StyleGAN1's ToRGB: an equalized 1x1 convolution with bias, no style."""

    img_channels: int

    @nn.compact
    def __call__(self, x):
        """Returns the image (B, H, W, img_channels)."""
        return EqualConv(self.img_channels, 1, weight_gain=HE_GAIN, name="conv")(x)

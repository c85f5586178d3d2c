"""The progressive StyleGAN1 discriminator (rosinality's port, as DiagonalGAN uses it), NHWC.

An image at any power-of-two resolution r <= R enters through its own from_rgb, then runs the
blocks from r down to 8; progressive growing feeds lower resolutions early in training.

    fromrgb{r}: equalized 1x1 conv, lrelu (from_rgb_activate)
    b{r} (r = R .. 8): conv1 3x3 -> lrelu -> blur -> conv2 3x3 -> 2x2 avg pool -> lrelu
                       (r >= fused_min_resolution: blur -> FusedDownsample conv2 -> lrelu)
    fade-in (0 <= alpha < 1, r > 4), after b{r}: (1 - alpha) fromrgb{r/2}(avg_pool(img)) + alpha x
    b4: minibatch stddev (one scalar channel) -> conv1 3x3 (C+1 -> C) -> lrelu
        -> conv2 4x4 valid -> lrelu
    linear: equalized (C -> 1)

Channels at resolution r: channels_for(r, channel_base, channel_max); the defaults give the
official 16 (1024) ... 512 (32 and below). Every layer uses StyleGAN1's equalized lr (N(0, 1)
weights times sqrt(2 / fan_in), zero biases) and a plain leaky ReLU 0.2.

Official names: the official model always holds the full 1024 progression (9 blocks, 9 from_rgb),
whatever size it was trained to; the entries for resolution r have index i(r) = 10 - log2(r)
(1024 -> 0, ..., 8 -> 7, 4 -> 8). Keys of `ckpt["discriminator"]` map by rule:

    from_rgb.{i(r)}.0.conv.{weight_orig,bias}           -> fromrgb{r}/{kernel,bias}
    progression.{i(r)}.conv1.0.conv.{weight_orig,bias}  -> b{r}/conv1/{kernel,bias}
    progression.{i(r)}.conv2.1.conv.{weight_orig,bias}  -> b{r}/conv2/{kernel,bias}  (r < 512)
    progression.{i(r)}.conv2.1.{weight,bias}            -> b{r}/conv2/{kernel,bias}  (fused, r >= 512)
    progression.8.conv1.0.conv.*, progression.8.conv2.0.conv.* -> b4/conv1/*, b4/conv2/*
    linear.linear.{weight_orig,bias}                    -> linear/{kernel,bias}

Conv weights (out, in, kh, kw) become kernel[kh, kw, in, out], i.e. transpose(2, 3, 1, 0); the
linear weight (1, C) is transposed. Without from_rgb_activate the official from_rgb has no
Sequential, so its names lose the `.0`. The blur buffers (`conv2.0.weight`) carry no parameters.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxstyle.models.adain_block import HE_GAIN
from jaxstyle.models.synthesis import channels_for, check_resolution
from jaxstyle.nn.equalized import EqualConv, EqualDense, normal_init
from jaxstyle.nn.fused_resample import FusedDownsample
from jaxstyle.nn.mbstd import minibatch_stddev
from jaxstyle.nn.upfirdn2d import filter2d, setup_filter


def lrelu(x):
    return jax.nn.leaky_relu(x, 0.2)


def avg_pool2(x):
    """Returns the 2x2 average pool of x (B, H, W, C): (B, H/2, W/2, C)."""
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


class ValidConv(nn.Module):
    """Equalized (He gain) conv without padding: the official final 4x4 conv, 4x4 -> 1x1."""

    features: int
    kernel_size: int

    @nn.compact
    def __call__(self, x):
        """Returns conv(x, kernel * sqrt(2 / fan_in)) + bias, (B, H - k + 1, W - k + 1, features)."""
        k = self.kernel_size
        kernel = self.param("kernel", normal_init(), (k, k, x.shape[-1], self.features))
        w = kernel * (HE_GAIN / math.sqrt(x.shape[-1] * k * k))
        y = lax.conv_general_dilated(x, w.astype(x.dtype), (1, 1), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + self.param("bias", nn.initializers.zeros, (self.features,))


class ProgressiveBlock(nn.Module):
    """Official `ConvBlock(..., downsample=True)`: (B, r, r, C_r) -> (B, r/2, r/2, out_channels)."""

    out_channels: int
    fused: bool = False

    @nn.compact
    def __call__(self, x):
        """Returns the features at half resolution."""
        x = lrelu(EqualConv(self.out_channels, 3, weight_gain=HE_GAIN, name="conv1")(x))
        x = filter2d(x, setup_filter([1, 2, 1]))
        # Fused: one stride-2 4x4 conv, exactly the 3x3 conv + 2x2 average below but cheaper; it
        # matters for the official parameter names (conv2.1.weight vs conv2.1.conv.weight_orig).
        if self.fused:
            return lrelu(FusedDownsample(self.out_channels, name="conv2")(x))
        return lrelu(avg_pool2(EqualConv(self.out_channels, 3, weight_gain=HE_GAIN, name="conv2")(x)))


class ProgressiveEpilogue(nn.Module):
    """The 4x4 block: minibatch stddev, 3x3 conv, 4x4 valid conv; returns (B, channels)."""

    channels: int

    @nn.compact
    def __call__(self, x, num_shards=1):
        # One scalar per device shard: the batch stddev per feature, averaged over C, H, W.
        x = minibatch_stddev(x, group_size=None, num_channels=1, num_shards=num_shards)
        x = lrelu(EqualConv(self.channels, 3, weight_gain=HE_GAIN, name="conv1")(x))
        x = lrelu(ValidConv(self.channels, 4, name="conv2")(x))
        return x.reshape(x.shape[0], -1)


class ProgressiveDiscriminator(nn.Module):
    """Image (B, r, r, img_channels), r a power of two in 4..img_resolution -> logits (B, 1)."""

    img_resolution: int
    img_channels: int = 3
    channel_base: int = 16384
    channel_max: int = 512
    c_dim: int = 0
    from_rgb_activate: bool = True             # official train.py: not --no_from_rgb_activate
    fused_min_resolution: int = 512            # official: fused down-conv in the 1024 and 512 blocks

    @nn.compact
    def __call__(self, img, c=None, num_shards=1, alpha=1.0):
        """Returns the logits (B, 1); alpha in [0, 1) fades in the input resolution (official).

        c: unused (c_dim must be 0). num_shards: minibatch stddev per contiguous batch shard.
        """
        res = self._check(img)
        ch = lambda r: channels_for(r, self.channel_base, self.channel_max)
        resolutions = [2**i for i in range(int(math.log2(self.img_resolution)), 1, -1)]  # R .. 4
        fromrgb = {r: EqualConv(ch(r), 1, weight_gain=HE_GAIN, name=f"fromrgb{r}") for r in resolutions}
        blocks = {r: ProgressiveBlock(ch(r // 2), fused=r >= self.fused_min_resolution, name=f"b{r}")
                  for r in resolutions[:-1]}
        from_rgb = lambda r, x: lrelu(fromrgb[r](x)) if self.from_rgb_activate else fromrgb[r](x)
        if self.is_initializing():
            # Create every resolution's parameters; their shapes depend on channels only.
            for r in resolutions:
                fromrgb[r](jnp.zeros((1, 1, 1, self.img_channels), img.dtype))
                if r > 4:
                    blocks[r](jnp.zeros((1, 4, 4, ch(r)), img.dtype))
        # As official, a Python alpha outside [0, 1) means no fade-in; a traced alpha always blends.
        fade = res > 4 and not (isinstance(alpha, (int, float)) and not 0 <= alpha < 1)
        x = from_rgb(res, img)
        for r in resolutions[:-1]:
            if r > res:
                continue
            x = blocks[r](x)
            if r == res and fade:
                x = (1 - alpha) * from_rgb(r // 2, avg_pool2(img)) + alpha * x
        x = ProgressiveEpilogue(ch(4), name="b4")(x, num_shards)
        return EqualDense(1, gain=HE_GAIN, name="linear")(x)

    def _check(self, img):
        """Validates the configuration and the input; returns the input resolution."""
        check_resolution(self.img_resolution)
        if self.c_dim != 0:
            raise ValueError(f"the progressive discriminator is unconditional (c_dim=0), got c_dim={self.c_dim}")
        res = img.shape[1] if img.ndim == 4 else None
        if (res is None or img.shape[2] != res or img.shape[3] != self.img_channels
                or res not in [2**i for i in range(2, int(math.log2(self.img_resolution)) + 1)]):
            raise ValueError(f"expected images (B, r, r, {self.img_channels}) NHWC with r a power of two "
                             f"in 4..{self.img_resolution}, got {img.shape}")
        return res

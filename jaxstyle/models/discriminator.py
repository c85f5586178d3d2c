"""Discriminator image -> logit (StyleGAN2-ADA `Discriminator`), NHWC.

Blocks from R down to 8, each two 3x3 convs with the second downsampling by 2 (FIR
filter, then strided conv); "resnet" (the StyleGAN2 default) adds a 1x1 downsampling
skip and scales both paths by sqrt(1/2). The 4x4 epilogue appends minibatch stddev,
then conv, dense and the output layer (projected onto the embedded label if c_dim > 0).
"""

import math
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxstyle.models.mapping import MappingNetwork
from jaxstyle.models.synthesis import ARCHITECTURES, block_dtype, channels_for, check_resolution
from jaxstyle.nn.equalized import EqualConv, EqualDense
from jaxstyle.nn.mbstd import minibatch_stddev
from jaxstyle.nn.upfirdn2d import downsample2d, setup_filter


class DiscriminatorBlock(nn.Module):
    """FromRGB (first block, or every block in "skip"), conv, down-conv, optional resnet skip."""

    in_channels: int                           # 0 for the first block, which reads the image
    tmp_channels: int
    out_channels: int
    architecture: str = "resnet"
    activation: str = "lrelu"
    resample_filter: Sequence[int] = (1, 3, 3, 1)
    conv_clamp: Optional[float] = None
    dtype: Any = jnp.float32                   # compute dtype; parameters stay float32

    @nn.compact
    def __call__(self, x, img):
        """Returns (features at half resolution, image for the next block or None)."""
        conv = dict(activation=self.activation, conv_clamp=self.conv_clamp)
        x = x.astype(self.dtype) if x is not None else None
        if self.in_channels == 0 or self.architecture == "skip":
            y = EqualConv(self.tmp_channels, 1, name="fromrgb", **conv)(img.astype(self.dtype))
            x = y if x is None else x + y
            img = downsample2d(img, setup_filter(self.resample_filter)) if self.architecture == "skip" else None
        down = dict(down=2, resample_filter=self.resample_filter)
        if self.architecture == "resnet":
            y = EqualConv(self.out_channels, 1, use_bias=False, name="skip", **down)(x, gain=math.sqrt(0.5))
            x = EqualConv(self.tmp_channels, 3, name="conv0", **conv)(x)
            x = EqualConv(self.out_channels, 3, name="conv1", **conv, **down)(x, gain=math.sqrt(0.5))
            x = y + x
        else:
            x = EqualConv(self.tmp_channels, 3, name="conv0", **conv)(x)
            x = EqualConv(self.out_channels, 3, name="conv1", **conv, **down)(x)
        return x, img


class DiscriminatorEpilogue(nn.Module):
    """4x4 head: (fromrgb in "skip"), minibatch stddev, conv, dense, output (B, 1 or cmap_dim)."""

    in_channels: int
    cmap_dim: int
    resolution: int = 4
    architecture: str = "resnet"
    mbstd_group_size: Optional[int] = 4
    mbstd_num_channels: int = 1
    activation: str = "lrelu"
    conv_clamp: Optional[float] = None

    @nn.compact
    def __call__(self, x, img, cmap=None, num_shards=1):
        """Returns the logits (B, 1)."""
        x = x.astype(jnp.float32)
        if self.architecture == "skip":
            x = x + EqualConv(self.in_channels, 1, activation=self.activation, name="fromrgb")(img)
        if self.mbstd_num_channels > 0:
            x = minibatch_stddev(x, self.mbstd_group_size, self.mbstd_num_channels, num_shards)
        x = EqualConv(self.in_channels, 3, activation=self.activation, conv_clamp=self.conv_clamp,
                      name="conv")(x)
        # Flatten in NCHW order, as the official dense layer's weights expect.
        x = jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)
        x = EqualDense(self.in_channels, activation=self.activation, name="fc")(x)
        x = EqualDense(1 if self.cmap_dim == 0 else self.cmap_dim, name="out")(x)
        if self.cmap_dim > 0:
            x = jnp.sum(x * cmap, axis=1, keepdims=True) / math.sqrt(self.cmap_dim)
        return x


class Discriminator(nn.Module):
    """Image (B, R, R, img_channels) [and label c] -> logits (B, 1)."""

    img_resolution: int
    img_channels: int = 3
    c_dim: int = 0
    architecture: str = "resnet"
    channel_base: int = 32768
    channel_max: int = 512
    conv_clamp: Optional[float] = None
    cmap_dim: Optional[int] = None             # label projection width, default channels at 4x4
    mbstd_group_size: Optional[int] = 4
    mbstd_num_channels: int = 1
    mapping_layers: int = 8                    # of the label mapping network (c_dim > 0)
    resample_filter: Sequence[int] = (1, 3, 3, 1)
    num_bf16_res: int = 0                      # mixed precision: blocks of the N highest resolutions in bfloat16

    @nn.compact
    def __call__(self, img, c=None, num_shards=1):
        """Returns the logits (B, 1). `num_shards`: per-device batch split, for minibatch stddev."""
        check_resolution(self.img_resolution)
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"unknown discriminator architecture {self.architecture!r}; use one of {ARCHITECTURES}")
        if img.ndim != 4 or img.shape[1:] != (self.img_resolution, self.img_resolution, self.img_channels):
            raise ValueError(f"expected images (B, {self.img_resolution}, {self.img_resolution}, "
                             f"{self.img_channels}) NHWC, got {img.shape}")
        ch = lambda res: channels_for(res, self.channel_base, self.channel_max)
        x = None
        res_log2 = int(math.log2(self.img_resolution))
        for res in [2**i for i in range(res_log2, 2, -1)]:
            x, img = DiscriminatorBlock(
                in_channels=ch(res) if res < self.img_resolution else 0, tmp_channels=ch(res),
                out_channels=ch(res // 2), architecture=self.architecture,
                resample_filter=self.resample_filter, conv_clamp=self.conv_clamp,
                dtype=block_dtype(res, self.img_resolution, self.num_bf16_res), name=f"b{res}")(x, img)
        cmap_dim = 0 if self.c_dim == 0 else (self.cmap_dim if self.cmap_dim is not None else ch(4))
        cmap = None
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"this discriminator is conditional (c_dim={self.c_dim}); pass c")
            cmap = MappingNetwork(z_dim=0, c_dim=self.c_dim, w_dim=cmap_dim, num_ws=None,
                                  num_layers=self.mapping_layers, name="mapping")(None, c)
        return DiscriminatorEpilogue(
            ch(4), cmap_dim, architecture=self.architecture, mbstd_group_size=self.mbstd_group_size,
            mbstd_num_channels=self.mbstd_num_channels, conv_clamp=self.conv_clamp, name="b4")(
                x, img, cmap, num_shards)

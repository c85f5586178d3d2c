"""Synthesis network W+ -> image (StyleGAN2-ADA `SynthesisNetwork`), NHWC, read bottom-up.

Layer: affine style -> modulated 3x3 conv (up by 2 in a block's first layer) -> content op
(noise as StyleGAN2; DAT, diagonal attention from a content code, as DiagonalGAN on this
backbone; or none) -> bias + lrelu. An optional SEGAN subspace per layer, conv or ToRGB
(`jaxstyle.nn.subspace`; subspace_mode 0 = none): mode 1 adds U diag(L) w + mu to the layer
output, modes 2 and 3 transform the layer's w before its affine. Block: two layers and a
ToRGB. Network: a block per resolution 4..R with channels min(channel_base // res, channel_max).
Architectures as official: "skip" (the StyleGAN2 default: RGB outputs of all blocks upsampled
and summed), "orig" (ToRGB on the last block only) and "resnet" (residual blocks, ToRGB on the
last block only).
"""

import math
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxstyle.models.adain_block import CONTENT_OPS, AdaINBlock, PlainToRGB, upsample_nearest
from jaxstyle.nn.bias_act import activation_gain, bias_act
from jaxstyle.nn.dat import DiagonalAttention
from jaxstyle.nn.equalized import EqualConv, EqualDense, normal_init
from jaxstyle.nn.modulated_conv import modulated_conv2d
from jaxstyle.nn.noise import NoiseInjection
from jaxstyle.nn.subspace import check_mode, subspace_layer
from jaxstyle.nn.upfirdn2d import setup_filter, upsample2d

ARCHITECTURES = ("orig", "skip", "resnet")
STYLE_OPS = ("modconv", "adain")


def channels_for(res, channel_base, channel_max):
    """Returns the feature-map count at resolution res: min(channel_base // res, channel_max)."""
    return min(channel_base // res, channel_max)


def check_resolution(res):
    """Raises ValueError unless res is a power of two in 4..1024."""
    if res not in [2**i for i in range(2, 11)]:
        raise ValueError(f"resolution must be a power of two from 4 to 1024, got {res}")


def block_dtype(res, img_resolution, num_bf16_res):
    """Returns the compute dtype of the block at `res`: bfloat16 for the num_bf16_res highest
    resolutions (never below 8x8, as the official num_fp16_res), else float32."""
    if num_bf16_res <= 0:
        return jnp.float32
    first = max(2 ** (int(math.log2(img_resolution)) + 1 - num_bf16_res), 8)
    return jnp.bfloat16 if res >= first else jnp.float32


def synthesis_num_ws(img_resolution):
    """Returns the number of w slots: one per conv layer plus the last ToRGB (2 log2 R - 2)."""
    check_resolution(img_resolution)
    return 2 * int(math.log2(img_resolution)) - 2


class SynthesisLayer(nn.Module):
    """Modulated conv + content op (noise | dat | none) + bias + lrelu; `up=2` doubles the resolution."""

    features: int
    kernel_size: int = 3
    up: int = 1
    content_op: str = "noise"
    activation: str = "lrelu"
    resample_filter: Sequence[int] = (1, 3, 3, 1)
    conv_clamp: Optional[float] = None
    modconv: str = "activation"                # "activation" | "weights" (see nn.modulated_conv)
    subspace_mode: int = 0                     # SEGAN subspace: 0 none, 1 | 2 | 3 (nn.subspace)

    @nn.compact
    def __call__(self, x, w, noise_mode="random", gain=1.0, content=None):
        """Returns the layer output (B, H*up, W*up, features); `content` (B, dim) feeds DAT."""
        in_ch, k = x.shape[-1], self.kernel_size
        w_layer, res = w, x.shape[1] * self.up
        if self.subspace_mode in (2, 3):
            w = subspace_layer(self.subspace_mode, res, self.features)(w)
        styles = EqualDense(in_ch, bias_init=1.0, name="affine")(w)
        kernel = self.param("kernel", normal_init(), (k, k, in_ch, self.features))
        x = modulated_conv2d(x, kernel, styles, demodulate=True, up=self.up, padding=k // 2,
                             resample_filter=setup_filter(self.resample_filter),
                             formulation=self.modconv)
        if self.content_op == "noise":
            x = NoiseInjection(name="noise")(x, noise_mode)
        elif self.content_op == "dat":
            x = DiagonalAttention(normalize=True, name="dat")(x, content)  # no instance norm follows
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        x = bias_act(x, bias, self.activation, gain=activation_gain(self.activation) * gain, clamp=clamp)
        if self.subspace_mode == 1:  # SEGAN mode 1: out = StyleBlock(x, w) + EigenSpace(w)
            x = x + subspace_layer(1, res, self.features)(w_layer).astype(x.dtype)
        return x


class ToRGB(nn.Module):
    """1x1 modulated conv without demodulation, plus bias: features -> image channels."""

    img_channels: int
    kernel_size: int = 1
    conv_clamp: Optional[float] = None
    modconv: str = "activation"
    subspace_mode: int = 0

    @nn.compact
    def __call__(self, x, w):
        """Returns the RGB contribution (B, H, W, img_channels)."""
        in_ch, k = x.shape[-1], self.kernel_size
        w_layer, res = w, x.shape[1]
        if self.subspace_mode in (2, 3):
            w = subspace_layer(self.subspace_mode, res, self.img_channels)(w)
        # The weight gain sits on the styles here (no demodulation to normalise it away).
        styles = EqualDense(in_ch, bias_init=1.0, name="affine")(w) / math.sqrt(in_ch * k * k)
        kernel = self.param("kernel", normal_init(), (k, k, in_ch, self.img_channels))
        x = modulated_conv2d(x, kernel, styles, demodulate=False, padding=k // 2,
                             formulation=self.modconv)
        bias = self.param("bias", nn.initializers.zeros, (self.img_channels,))
        x = bias_act(x, bias, clamp=self.conv_clamp)
        if self.subspace_mode == 1:  # SEGAN mode 1: skip = ToRGB(out, w, skip) + EigenSpace(w)
            x = x + subspace_layer(1, res, self.img_channels)(w_layer).astype(x.dtype)
        return x


class SynthesisBlock(nn.Module):
    """One resolution: const input (first block) or up-conv, a conv, and a ToRGB."""

    in_channels: int                           # 0 for the first (4x4, constant-input) block
    out_channels: int
    resolution: int
    img_channels: int
    is_last: bool
    architecture: str = "skip"
    resample_filter: Sequence[int] = (1, 3, 3, 1)
    conv_clamp: Optional[float] = None
    modconv: str = "activation"
    content_op: str = "noise"
    subspace_mode: int = 0
    dtype: Any = jnp.float32                   # compute dtype; parameters stay float32

    @property
    def num_conv(self):
        return 1 if self.in_channels == 0 else 2

    @property
    def num_torgb(self):
        return 1 if (self.is_last or self.architecture == "skip") else 0

    @nn.compact
    def __call__(self, x, img, ws, noise_mode="random", contents=None):
        """Returns (features, image) after this block; ws (and contents) hold num_conv + num_torgb slots."""
        layer = dict(resample_filter=self.resample_filter, conv_clamp=self.conv_clamp,
                     modconv=self.modconv, content_op=self.content_op, subspace_mode=self.subspace_mode)
        c = lambda i: None if contents is None else contents[:, i]
        if self.in_channels == 0:
            const = self.param("const", normal_init(),
                               (self.resolution, self.resolution, self.out_channels))
            x = jnp.broadcast_to(const[None].astype(self.dtype), (ws.shape[0],) + const.shape)
            x = SynthesisLayer(self.out_channels, name="conv1", **layer)(x, ws[:, 0], noise_mode, content=c(0))
        elif self.architecture == "resnet":
            x = x.astype(self.dtype)
            y = EqualConv(self.out_channels, 1, use_bias=False, up=2,
                          resample_filter=self.resample_filter, name="skip")(x, gain=math.sqrt(0.5))
            x = SynthesisLayer(self.out_channels, up=2, name="conv0", **layer)(
                x, ws[:, 0], noise_mode, content=c(0))
            x = SynthesisLayer(self.out_channels, name="conv1", **layer)(
                x, ws[:, 1], noise_mode, gain=math.sqrt(0.5), content=c(1))
            x = y + x
        else:
            x = SynthesisLayer(self.out_channels, up=2, name="conv0", **layer)(
                x.astype(self.dtype), ws[:, 0], noise_mode, content=c(0))
            x = SynthesisLayer(self.out_channels, name="conv1", **layer)(
                x, ws[:, 1], noise_mode, content=c(1))

        if img is not None:
            img = upsample2d(img, setup_filter(self.resample_filter))
        if self.num_torgb:
            y = ToRGB(self.img_channels, conv_clamp=self.conv_clamp, modconv=self.modconv,
                      subspace_mode=self.subspace_mode, name="torgb")(x, ws[:, self.num_conv])
            img = y.astype(jnp.float32) if img is None else img + y.astype(jnp.float32)
        return x, img


class SynthesisNetwork(nn.Module):
    """W+ (B, num_ws, w_dim) -> image (B, R, R, img_channels), float32, roughly in [-1, 1].

    style_op "modconv" is StyleGAN2 (blocks above, architectures orig/skip/resnet); "adain" is
    StyleGAN1 / DiagonalGAN (`adain_block.py`): progressive output at `resolution` with the
    official nearest-upsampled fade-in. content_op "noise" (StyleGAN), "dat" (DiagonalGAN:
    diagonal attention from content codes, which route per slot as the styles do; no noise
    in those layers) or "none", for either style op. subspace_mode 1 | 2 | 3 (style op
    "modconv") gives every conv and ToRGB layer a SEGAN subspace; 0 (default) none.
    """

    img_resolution: int
    img_channels: int = 3
    channel_base: int = 32768
    channel_max: int = 512
    architecture: str = "skip"
    resample_filter: Sequence[int] = (1, 3, 3, 1)
    conv_clamp: Optional[float] = None
    modconv: str = "activation"
    style_op: str = "modconv"
    content_op: str = "noise"                  # "noise" | "dat" | "none"
    dat_max_resolution: int = 256              # official DiagonalGAN: no DAT at 512 and 1024
    subspace_mode: int = 0                     # SEGAN: 0 none, 1 | 2 | 3 (jaxstyle.nn.subspace)
    remat: bool = False                        # recompute each block's activations in the backward pass
    num_bf16_res: int = 0                      # mixed precision: blocks of the N highest resolutions in bfloat16

    @property
    def num_ws(self):
        return synthesis_num_ws(self.img_resolution)

    @nn.compact
    def __call__(self, ws, noise_mode="random", contents=None, resolution=None, alpha=1.0):
        """Returns the image (B, r, r, img_channels); block b reads slots [i_b, i_b + conv + torgb).

        ws: (B, num_ws, w_dim), or (B, w_dim) for every slot.
        contents (content_op "dat"): (B, dim) for every slot or (B, num_ws, dim) per slot.
        resolution (r, default R) and alpha (fade-in weight) apply to style_op "adain".
        """
        check_resolution(self.img_resolution)
        if self.style_op not in STYLE_OPS:
            raise ValueError(f"unknown style op {self.style_op!r}; use one of {STYLE_OPS}")
        if self.content_op not in CONTENT_OPS:
            raise ValueError(f"unknown content op {self.content_op!r}; use one of {CONTENT_OPS}")
        check_mode(self.subspace_mode)
        if self.subspace_mode and self.style_op != "modconv":
            raise ValueError(f"SEGAN subspaces (subspace_mode {self.subspace_mode}) need style_op 'modconv'")
        if self.content_op == "dat" and contents is None:
            raise ValueError('content_op "dat" needs content codes (contents=...)')
        ws, contents = self._slots(ws), self._slots(contents)
        if self.num_bf16_res and self.style_op != "modconv":
            raise ValueError(f"mixed precision (num_bf16_res {self.num_bf16_res}) needs style_op 'modconv'")
        if self.style_op == "adain":
            return self._adain(ws, contents, noise_mode, resolution or self.img_resolution, alpha)
        if resolution not in (None, self.img_resolution):
            raise ValueError("progressive output (resolution=...) needs style_op 'adain'")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"unknown synthesis architecture {self.architecture!r}; use one of {ARCHITECTURES}")
        if self.img_channels < 1:
            raise ValueError(f"img_channels must be positive, got {self.img_channels}")
        if ws.ndim != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f"ws must have shape (B, {self.num_ws}, w_dim), got {ws.shape}")
        x = img = None
        w_idx = 0
        res_log2 = int(math.log2(self.img_resolution))
        # Rematerialisation keeps only block inputs for the backward pass, for one more forward
        # (benchmarks/remat_memory.py, paper256 G gradient, batch 16: H100 2805 -> 2160 MiB
        # temporaries; XLA CPU 9810 -> 10039, no gain). noise_mode (argument 4, counting self) is static.
        block_type = nn.remat(SynthesisBlock, static_argnums=(4,)) if self.remat else SynthesisBlock
        for res in [2**i for i in range(2, res_log2 + 1)]:
            block = block_type(
                in_channels=channels_for(res // 2, self.channel_base, self.channel_max) if res > 4 else 0,
                out_channels=channels_for(res, self.channel_base, self.channel_max),
                resolution=res, img_channels=self.img_channels, is_last=res == self.img_resolution,
                architecture=self.architecture, resample_filter=self.resample_filter,
                conv_clamp=self.conv_clamp, modconv=self.modconv,
                content_op=self._content_op(res), subspace_mode=self.subspace_mode,
                dtype=block_dtype(res, self.img_resolution, self.num_bf16_res), name=f"b{res}")
            n = block.num_conv + block.num_torgb
            x, img = block(x, img, ws[:, w_idx:w_idx + n], noise_mode,
                           None if contents is None else contents[:, w_idx:w_idx + n])
            w_idx += block.num_conv
        return img

    def _slots(self, codes):
        """Returns codes as (B, num_ws, dim): one code for every slot is broadcast."""
        if codes is None or codes.ndim == 3:
            return codes
        return jnp.broadcast_to(codes[:, None], (codes.shape[0], self.num_ws, codes.shape[-1]))

    def _content_op(self, res):
        """Returns the content op at resolution res: DAT only up to dat_max_resolution."""
        return "none" if self.content_op == "dat" and res > self.dat_max_resolution else self.content_op

    def _adain(self, ws, contents, noise_mode, out_res, alpha):
        """StyleGAN1 / DiagonalGAN synthesis: block i uses slots 2i, 2i+1; ToRGB at out_res."""
        check_resolution(out_res)
        if out_res > self.img_resolution:
            raise ValueError(f"resolution {out_res} is above this network's {self.img_resolution}")
        resolutions = [2**i for i in range(2, int(math.log2(self.img_resolution)) + 1)]
        torgbs = {r: PlainToRGB(self.img_channels, name=f"torgb{r}") for r in resolutions}
        x = prev = None
        for i, res in enumerate(resolutions):
            if res > out_res and not self.is_initializing():
                break
            prev, x = x, AdaINBlock(
                in_channels=channels_for(res // 2, self.channel_base, self.channel_max) if i else 0,
                out_channels=channels_for(res, self.channel_base, self.channel_max), resolution=res,
                content_op=self._content_op(res), name=f"b{res}")(
                    x, ws[:, 2 * i:2 * i + 2], None if contents is None else contents[:, 2 * i:2 * i + 2],
                    noise_mode)
            if self.is_initializing():
                torgbs[res](x)  # create every ToRGB's parameters
            if res == out_res:
                img = torgbs[res](x)
                if i > 0 and not (isinstance(alpha, (int, float)) and not 0 <= alpha < 1):
                    skip = upsample_nearest(torgbs[resolutions[i - 1]](prev))
                    img = (1 - alpha) * skip + alpha * img
                if not self.is_initializing():
                    return img
        return img

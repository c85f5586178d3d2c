"""Generator = mapping network(s) + synthesis network (StyleGAN2-ADA `Generator`).

With content_op "dat" (DiagonalGAN) a second mapping network of the same form maps a content
latent z_content to content codes, which drive the synthesis network's DAT layers while the
style codes drive its style op (modulated conv or AdaIN).

With subspace_mode 1 | 2 | 3 (SEGAN) every synthesis layer has a linear subspace whose
coordinates are the w it reads, so the inputs stay (z, c).
"""

from typing import Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxstyle.models.mapping import MappingNetwork, truncate
from jaxstyle.models.synthesis import SynthesisNetwork, synthesis_num_ws


class Generator(nn.Module):
    """(z, c[, z_content]) -> image. Parameters live under 'mapping', 'content_mapping' (DAT only)
    and 'synthesis'; w_avg is passed in."""

    z_dim: int = 512
    c_dim: int = 0
    w_dim: int = 512
    img_resolution: int = 1024
    img_channels: int = 3
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    mapping_weight_gain: float = 1.0           # StyleGAN1 / DiagonalGAN: sqrt(2), plain lrelu
    mapping_act_gain: Optional[float] = None   # StyleGAN1 / DiagonalGAN: 1.0
    channel_base: int = 32768
    channel_max: int = 512
    architecture: str = "skip"
    conv_clamp: Optional[float] = None
    modconv: str = "activation"                # "activation" | "weights"
    resample_filter: Sequence[int] = (1, 3, 3, 1)
    style_op: str = "modconv"                  # "modconv" (StyleGAN2) | "adain" (StyleGAN1, DiagonalGAN)
    content_op: str = "noise"                  # "noise" | "dat" (DiagonalGAN) | "none"
    dat_max_resolution: int = 256
    subspace_mode: int = 0                     # SEGAN subspaces: 0 none, 1 | 2 | 3 (nn.subspace)
    remat: bool = False                        # rematerialise synthesis blocks (large resolutions)
    num_bf16_res: int = 0                      # mixed precision: the N highest resolutions in bfloat16

    @property
    def num_ws(self):
        return synthesis_num_ws(self.img_resolution)

    @property
    def has_content(self):
        """True when the generator takes a content latent (DAT)."""
        return self.content_op == "dat"

    def setup(self):
        mapping = dict(z_dim=self.z_dim, w_dim=self.w_dim, num_ws=self.num_ws,
                       num_layers=self.mapping_layers, lr_multiplier=self.mapping_lr_multiplier,
                       weight_gain=self.mapping_weight_gain, act_gain=self.mapping_act_gain)
        self.mapping = MappingNetwork(c_dim=self.c_dim, **mapping)
        if self.has_content:
            self.content_mapping = MappingNetwork(c_dim=0, **mapping)
        self.synthesis = SynthesisNetwork(
            img_resolution=self.img_resolution, img_channels=self.img_channels,
            channel_base=self.channel_base, channel_max=self.channel_max,
            architecture=self.architecture, resample_filter=self.resample_filter,
            conv_clamp=self.conv_clamp, modconv=self.modconv, style_op=self.style_op,
            content_op=self.content_op, dat_max_resolution=self.dat_max_resolution,
            subspace_mode=self.subspace_mode, remat=self.remat, num_bf16_res=self.num_bf16_res)

    def map(self, z, c=None, w_avg=None, psi=1.0, cutoff=None):
        """Returns W+ codes (B, num_ws, w_dim), truncated towards w_avg when psi != 1."""
        ws = self.mapping(z, c)
        if w_avg is None and not (isinstance(psi, (int, float)) and psi == 1):
            raise ValueError("truncation (psi != 1) needs w_avg")
        return truncate(ws, w_avg, psi, cutoff)

    def map_content(self, z_content, c_avg=None, psi=1.0):
        """Returns content codes (B, num_ws, w_dim), truncated towards c_avg when psi != 1."""
        if not self.has_content:
            raise ValueError(f"this generator has no content codes (content_op {self.content_op!r})")
        contents = self.content_mapping(z_content)
        if c_avg is None and not (isinstance(psi, (int, float)) and psi == 1):
            raise ValueError("truncation (psi != 1) needs c_avg")
        return truncate(contents, c_avg, psi)

    def synthesize(self, ws, noise_mode="random", contents=None, resolution=None, alpha=1.0):
        """Returns images (B, r, r, img_channels) from W+ codes (and content codes with DAT).

        resolution and alpha select a progressive output (style_op "adain")."""
        return self.synthesis(ws, noise_mode, contents, resolution, alpha)

    def __call__(self, z, c=None, w_avg=None, psi=1.0, cutoff=None, noise_mode="random",
                 z_content=None):
        """Returns images (B, R, R, img_channels) from latents z (and z_content with DAT)."""
        contents = None
        if self.has_content:
            if z_content is None:
                raise ValueError('content_op "dat" needs a content latent (z_content=...)')
            contents = self.map_content(z_content)
        return self.synthesize(self.map(z, c, w_avg, psi, cutoff), noise_mode, contents)

    def example_inputs(self, batch=1):
        """Returns (args, kwargs) that `init` needs: zero latents of the right shapes."""
        kwargs = dict(noise_mode="const")
        if self.has_content:
            kwargs["z_content"] = jnp.zeros((batch, self.z_dim))
        return (jnp.zeros((batch, self.z_dim)), jnp.zeros((batch, self.c_dim)) if self.c_dim else None), kwargs

"""Generator = mapping network + synthesis network (StyleGAN2-ADA `Generator`)."""

from typing import Optional, Sequence

import flax.linen as nn

from jaxstyle.models.mapping import MappingNetwork, truncate
from jaxstyle.models.synthesis import SynthesisNetwork, synthesis_num_ws


class Generator(nn.Module):
    """(z, c) -> image. Parameters live under 'mapping' and 'synthesis'; w_avg is passed in."""

    z_dim: int = 512
    c_dim: int = 0
    w_dim: int = 512
    img_resolution: int = 1024
    img_channels: int = 3
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    channel_base: int = 32768
    channel_max: int = 512
    architecture: str = "skip"
    conv_clamp: Optional[float] = None
    modconv: str = "activation"                # "activation" | "weights"
    resample_filter: Sequence[int] = (1, 3, 3, 1)

    @property
    def num_ws(self):
        return synthesis_num_ws(self.img_resolution)

    def setup(self):
        self.mapping = MappingNetwork(
            z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim, num_ws=self.num_ws,
            num_layers=self.mapping_layers, lr_multiplier=self.mapping_lr_multiplier)
        self.synthesis = SynthesisNetwork(
            img_resolution=self.img_resolution, img_channels=self.img_channels,
            channel_base=self.channel_base, channel_max=self.channel_max,
            architecture=self.architecture, resample_filter=self.resample_filter,
            conv_clamp=self.conv_clamp, modconv=self.modconv)

    def map(self, z, c=None, w_avg=None, psi=1.0, cutoff=None):
        """Returns W+ codes (B, num_ws, w_dim), truncated towards w_avg when psi != 1."""
        ws = self.mapping(z, c)
        if w_avg is None and not (isinstance(psi, (int, float)) and psi == 1):
            raise ValueError("truncation (psi != 1) needs w_avg")
        return truncate(ws, w_avg, psi, cutoff)

    def synthesize(self, ws, noise_mode="random"):
        """Returns images (B, R, R, img_channels) from W+ codes."""
        return self.synthesis(ws, noise_mode)

    def __call__(self, z, c=None, w_avg=None, psi=1.0, cutoff=None, noise_mode="random"):
        """Returns images (B, R, R, img_channels) from latents z (B, z_dim)."""
        return self.synthesize(self.map(z, c, w_avg, psi, cutoff), noise_mode)

"""Per-pixel noise injection with a learned strength (StyleGAN, Karras et al. 2019, sec. 3.2)."""

import flax.linen as nn
import jax

NOISE_MODES = ("random", "const", "none")


class NoiseInjection(nn.Module):
    """Adds strength * noise, one noise image (B, H, W, 1) shared by all channels.

    "random" draws fresh noise from the 'noise' RNG stream, "const" uses the fixed
    `noise_const` buffer (collection 'buffers', drawn once at init), "none" adds nothing.
    """

    @nn.compact
    def __call__(self, x, noise_mode="random"):
        """Returns x plus scaled noise, same shape as x (B, H, W, C)."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"unknown noise_mode {noise_mode!r}; use one of {NOISE_MODES}")
        _, h, w, _ = x.shape
        noise_const = self.variable(
            "buffers", "noise_const", lambda: jax.random.normal(self.make_rng("params"), (h, w)))
        strength = self.param("noise_strength", nn.initializers.zeros, ())
        if noise_mode == "random":
            noise = jax.random.normal(self.make_rng("noise"), (x.shape[0], h, w, 1), x.dtype)
        elif noise_mode == "const":
            noise = noise_const.value[None, :, :, None].astype(x.dtype)
        else:
            return x
        return x + noise * strength.astype(x.dtype)

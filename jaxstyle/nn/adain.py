"""Adaptive instance normalisation (StyleGAN, Karras et al. 2019, eq. 1), as DiagonalGAN uses it."""

import math

import flax.linen as nn
import jax.numpy as jnp

from jaxstyle.nn.equalized import EqualDense


def instance_norm(x, eps=1e-5):
    """Returns x normalised per sample and channel over H, W (biased variance, torch InstanceNorm2d)."""
    mean = jnp.mean(x, axis=(1, 2), keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=(1, 2), keepdims=True)
    return (x - mean) * jnp.reciprocal(jnp.sqrt(var + eps))


class AdaIN(nn.Module):
    """y = scale(s) * IN(x) + shift(s); the affine's bias starts at 1 for the scale, 0 for the shift."""

    @nn.compact
    def __call__(self, x, style):
        """Returns the restyled features, same shape as x (B, H, W, C); style (B, dim)."""
        c = x.shape[-1]
        # StyleGAN1 equalized linear (He gain sqrt(2)); bias without gain, initialised [1]*C + [0]*C.
        affine = EqualDense(2 * c, use_bias=False, gain=math.sqrt(2), name="affine")(style)
        bias = self.param("bias", lambda key, shape: jnp.concatenate([jnp.ones(c), jnp.zeros(c)]), (2 * c,))
        scale, shift = jnp.split(affine + bias, 2, axis=-1)
        return scale[:, None, None, :] * instance_norm(x) + shift[:, None, None, :]

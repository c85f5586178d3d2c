"""Mapping network Z -> W, truncation and style mixing (StyleGAN2-ADA `MappingNetwork`)."""

from typing import Optional

import flax.linen as nn
import jax.numpy as jnp

from jaxstyle.nn.equalized import EqualDense


def normalize_2nd_moment(x, axis=-1, eps=1e-8):
    """Returns x divided by its root mean square along `axis` (StyleGAN's PixelNorm on z)."""
    return x * jnp.reciprocal(jnp.sqrt(jnp.mean(jnp.square(x), axis=axis, keepdims=True) + eps))


class MappingNetwork(nn.Module):
    """MLP from (z, c) to w: normalised z (and embedded c), `num_layers` lrelu layers at lr x 0.01."""

    z_dim: int
    c_dim: int
    w_dim: int
    num_ws: Optional[int]                      # broadcast w to (B, num_ws, w_dim); None keeps (B, w_dim)
    num_layers: int = 8
    embed_features: Optional[int] = None       # label embedding width, default w_dim
    layer_features: Optional[int] = None       # hidden width, default w_dim
    activation: str = "lrelu"
    lr_multiplier: float = 0.01
    weight_gain: float = 1.0                   # StyleGAN1 / DiagonalGAN: sqrt(2) (He scaling)
    act_gain: Optional[float] = None           # StyleGAN1 / DiagonalGAN: 1.0 (plain leaky ReLU)

    @nn.compact
    def __call__(self, z, c=None):
        """Returns w, shape (B, num_ws, w_dim), or (B, w_dim) when num_ws is None."""
        x = None
        if self.z_dim > 0:
            x = normalize_2nd_moment(z.astype(jnp.float32))
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"this mapping network is conditional (c_dim={self.c_dim}); pass c")
            embed = self.embed_features if self.embed_features is not None else self.w_dim
            y = normalize_2nd_moment(EqualDense(embed, name="embed")(c.astype(jnp.float32)))
            x = y if x is None else jnp.concatenate([x, y], axis=1)
        hidden = self.layer_features if self.layer_features is not None else self.w_dim
        for idx in range(self.num_layers):
            out = self.w_dim if idx == self.num_layers - 1 else hidden
            x = EqualDense(out, activation=self.activation, lr_multiplier=self.lr_multiplier,
                           gain=self.weight_gain, act_gain=self.act_gain, name=f"fc{idx}")(x)
        if self.num_ws is None:
            return x
        return jnp.broadcast_to(x[:, None, :], (x.shape[0], self.num_ws, self.w_dim))


def truncate(ws, w_avg, psi=1.0, cutoff=None):
    """Returns w_avg + psi * (ws - w_avg) on slots [0, cutoff) (all slots if cutoff is None).

    ws: (B, num_ws, w_dim). psi = 1 returns ws itself; psi = 0 returns w_avg everywhere.
    psi may be a traced scalar.
    """
    if isinstance(psi, (int, float)) and psi == 1:
        return ws  # the official code skips truncation here; lerp would round
    if cutoff is None:
        return w_avg + psi * (ws - w_avg)
    slot = jnp.arange(ws.shape[1])[None, :, None]
    return jnp.where(slot < cutoff, w_avg + psi * (ws - w_avg), ws)


def mix_styles(ws, ws2, cutoff):
    """Returns W+ codes taking slots [0, cutoff) from ws and the rest from ws2 (style mixing).

    `cutoff` may be a traced integer (or one per sample, shape (B,)) so a training step
    can draw it at random without recompiling.
    """
    cutoff = jnp.asarray(cutoff)
    if cutoff.ndim == 1:
        cutoff = cutoff[:, None, None]
    slot = jnp.arange(ws.shape[1])[None, :, None]
    return jnp.where(slot < cutoff, ws, ws2)


def update_w_avg(w_avg, ws, beta=0.995):
    """Returns the tracked average of w: lerp(mean over the batch of w, w_avg, beta)."""
    w = ws[:, 0] if ws.ndim == 3 else ws
    return w.mean(axis=0) + beta * (w_avg - w.mean(axis=0))

"""Bias, activation, gain and clamp in one fused expression (official `bias_act`)."""

import math

import jax
import jax.numpy as jnp

# name -> (function, default gain). The default gain keeps the activation's output variance
# close to its input's; StyleGAN2 multiplies lrelu by sqrt(2) for that reason.
ACTIVATIONS = {
    "linear": (lambda x: x, 1.0),
    "relu": (jax.nn.relu, math.sqrt(2)),
    "lrelu": (lambda x: jax.nn.leaky_relu(x, 0.2), math.sqrt(2)),
    "tanh": (jnp.tanh, 1.0),
    "sigmoid": (jax.nn.sigmoid, 1.0),
    "swish": (jax.nn.swish, math.sqrt(2)),
}


def activation_gain(act: str) -> float:
    """Returns the default gain of activation `act`."""
    _check(act)
    return ACTIVATIONS[act][1]


def bias_act(x, b=None, act="linear", gain=None, clamp=None):
    """Returns clamp(act(x + b) * gain), the bias broadcast over the last (channel) axis.

    `gain=None` uses the activation's default gain; `clamp=None` disables clamping.
    """
    _check(act)
    fn, default_gain = ACTIVATIONS[act]
    if b is not None:
        x = x + b.astype(x.dtype)
    x = fn(x)
    gain = default_gain if gain is None else gain
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = jnp.clip(x, -clamp, clamp)
    return x


def _check(act):
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; use one of {sorted(ACTIVATIONS)}")

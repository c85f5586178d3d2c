"""Equalized-learning-rate layers (StyleGAN2 `FullyConnectedLayer` and `Conv2dLayer`).

Parameters are stored with unit variance and scaled at run time by gain*lr_multiplier/sqrt(fan_in),
so Adam's per-parameter step sizes act equally on every layer (Karras et al. 2018). StyleGAN2
uses gain 1 (its activations carry the sqrt(2)); StyleGAN1 and DiagonalGAN use He's gain sqrt(2)
with a plain leaky ReLU.
"""

import math
from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxstyle.nn.bias_act import activation_gain, bias_act
from jaxstyle.nn.conv2d_resample import conv2d_resample
from jaxstyle.nn.upfirdn2d import setup_filter


def normal_init(scale=1.0):
    """Returns an initializer drawing N(0, 1) * scale."""
    return lambda key, shape, dtype=jnp.float32: jax.random.normal(key, shape, dtype) * scale


class EqualDense(nn.Module):
    """Dense layer with runtime weight gain lr_multiplier/sqrt(fan_in) and bias gain lr_multiplier."""

    features: int
    activation: str = "linear"
    lr_multiplier: float = 1.0
    bias_init: float = 0.0
    use_bias: bool = True
    gain: float = 1.0                          # sqrt(2) for StyleGAN1's He scaling
    act_gain: Optional[float] = None           # None: the activation's default (lrelu: sqrt(2))

    @nn.compact
    def __call__(self, x):
        """Returns act(x @ W * weight_gain + b * lr_multiplier), shape (..., features)."""
        fan_in = x.shape[-1]
        kernel = self.param("kernel", normal_init(1.0 / self.lr_multiplier), (fan_in, self.features))
        w = kernel * (self.gain * self.lr_multiplier / math.sqrt(fan_in))
        b = None
        if self.use_bias:
            b = self.param("bias", nn.initializers.constant(self.bias_init), (self.features,))
            b = b * self.lr_multiplier
        return bias_act(x @ w.astype(x.dtype), b, act=self.activation, gain=self.act_gain)


class EqualConv(nn.Module):
    """Convolution with runtime weight gain 1/sqrt(fan_in), optional FIR up/down by 2, NHWC."""

    features: int
    kernel_size: int
    activation: str = "linear"
    use_bias: bool = True
    up: int = 1
    down: int = 1
    resample_filter: Sequence[int] = (1, 3, 3, 1)
    conv_clamp: Optional[float] = None
    weight_gain: float = 1.0                   # sqrt(2) for StyleGAN1's He scaling

    @nn.compact
    def __call__(self, x, gain=1.0):
        """Returns clamp(act(conv(x, W * gain_w) + b) * act_gain * gain), NHWC."""
        k, fan_in = self.kernel_size, x.shape[-1] * self.kernel_size**2
        kernel = self.param("kernel", normal_init(), (k, k, x.shape[-1], self.features))
        w = kernel * (self.weight_gain / math.sqrt(fan_in))
        x = conv2d_resample(x, w, setup_filter(self.resample_filter), up=self.up, down=self.down,
                            padding=k // 2, flip_weight=(self.up == 1))
        b = self.param("bias", nn.initializers.zeros, (self.features,)) if self.use_bias else None
        act_gain = activation_gain(self.activation) * gain
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, b, act=self.activation, gain=act_gain, clamp=clamp)

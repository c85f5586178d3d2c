"""Primitive, purely functional layers (NHWC)."""

from jaxstyle.nn.adain import AdaIN, instance_norm
from jaxstyle.nn.bias_act import ACTIVATIONS, activation_gain, bias_act
from jaxstyle.nn.conv2d_resample import conv2d_resample
from jaxstyle.nn.dat import DiagonalAttention
from jaxstyle.nn.equalized import EqualConv, EqualDense
from jaxstyle.nn.mbstd import minibatch_stddev
from jaxstyle.nn.modulated_conv import demodulation_coefficients, modulated_conv2d
from jaxstyle.nn.noise import NoiseInjection
from jaxstyle.nn.upfirdn2d import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d

"""jaxstyle: style-based GANs (StyleGAN2, DiagonalGAN, SEGAN, SeFa) in JAX/Flax."""

from jaxstyle import data, interop, models, nn

__version__ = "0.1.0"

"""jaxstyle: style-based GANs (StyleGAN2, DiagonalGAN, SEGAN, SeFa) in JAX/Flax."""

__version__ = "0.1.0"

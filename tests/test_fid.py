"""FID Inception-v3 parity with pytorch-fid, FID/KID formulas and the real-feature cache."""

import json

import numpy as np
import pytest
from conftest import read_fixture, rel_err
from inception_weights import random_state_dict

from jaxstyle.metrics import fid
from jaxstyle.metrics import inception as inc


@pytest.fixture(scope="module")
def fixture():
    """pytorch-fid's outputs on the stand-in weights (tests/fixtures/README.md)."""
    return read_fixture("inception_random.npz")


@pytest.fixture(scope="module")
def state_dict(fixture):
    """The stand-in weights under pytorch-fid's state-dict names, built in NumPy."""
    return random_state_dict(json.loads(bytes(fixture["meta_json"]))["state_dict_shapes"])


@pytest.fixture(scope="module")
def net(state_dict):
    """jaxstyle's Inception on the stand-in weights (compiled once for the module)."""
    return inc.inception_from_state_dict(state_dict)


@pytest.mark.parametrize("size", [32, 64])
def test_inception_matches_pytorch_fid(net, fixture, size):
    images = fixture[f"in/images{size}"]
    expected = fixture[f"out/features{size}"]
    # uint8 as read from disk, and the same images as jaxstyle floats in [-1, 1]
    assert rel_err(net.features(images), expected) < 1e-4
    assert rel_err(net.features(images.astype(np.float32) / 127.5 - 1), expected) < 1e-4


@pytest.mark.parametrize("hw", [(7, 5), (41, 50)])
def test_resize_matches_torch_bilinear(fixture, hw):
    out = inc.resize_bilinear(fixture["in/resize"], hw)
    assert rel_err(out, fixture[f"out/resize{hw[0]}x{hw[1]}"]) < 1e-6


def test_mapping_names_the_bad_key(state_dict):
    missing = {k: v for k, v in state_dict.items() if k != "Mixed_6c.branch7x7_2.conv.weight"}
    with pytest.raises(KeyError, match="Mixed_6c.branch7x7_2.conv.weight"):
        inc.variables_from_state_dict(missing)
    with pytest.raises(KeyError, match="Mixed_9z.conv.weight"):
        inc.variables_from_state_dict({**state_dict, "Mixed_9z.conv.weight": np.zeros((1, 1, 1, 1))})
    with pytest.raises(ValueError, match="Mixed_5b.bn|Mixed_5b.branch_pool.bn.running_var"):
        inc.variables_from_state_dict({**state_dict, "Mixed_5b.branch_pool.bn.running_var": np.ones(3)})


def test_load_inception_reads_the_file_through_torch_pickle(tmp_path, monkeypatch, state_dict, net):
    path = tmp_path / inc.WEIGHTS_NAME
    path.write_bytes(b"")
    monkeypatch.setattr(inc.torch_pickle, "load", lambda p: state_dict if p == str(path) else None)
    monkeypatch.setenv(inc.WEIGHTS_ENV, str(path))
    assert inc.load_inception().digest == net.digest


def test_missing_weights_says_what_and_where(tmp_path, monkeypatch):
    monkeypatch.delenv(inc.WEIGHTS_ENV, raising=False)
    missing = tmp_path / "nowhere" / inc.WEIGHTS_NAME
    with pytest.raises(FileNotFoundError) as err:
        inc.load_inception(str(missing))
    message = str(err.value)
    for part in (str(missing), inc.WEIGHTS_URL, inc.WEIGHTS_ENV, "--inception",
                 ".cache/jaxstyle/" + inc.WEIGHTS_NAME):
        assert part in message
    assert inc.weights_path().endswith(".cache/jaxstyle/" + inc.WEIGHTS_NAME)


def test_fid_of_identical_statistics_is_zero():
    feats = np.random.default_rng(0).standard_normal((300, 16))
    mu, sigma = fid.feature_statistics(feats)
    assert abs(fid.frechet_distance(mu, sigma, mu, sigma)) < 1e-8


def test_fid_of_diagonal_gaussians_has_closed_form():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.standard_normal(8), rng.standard_normal(8)
    s1, s2 = rng.uniform(0.1, 2, 8), rng.uniform(0.1, 2, 8)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert fid.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)


def _mmd2_unbiased_loops(x, y):
    d = x.shape[1]
    k = lambda a, b: (np.dot(a, b) / d + 1) ** 3
    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_unbiased_mmd_by_loops():
    rng = np.random.default_rng(2)
    real, gen = rng.standard_normal((6, 5)), rng.standard_normal((6, 5)) + 0.5
    # m = N: every subset is a permutation of all rows, and the estimate ignores order
    assert fid.kernel_inception_distance(real, gen, num_subsets=3) == pytest.approx(
        _mmd2_unbiased_loops(gen, real), rel=1e-10)


def test_kid_of_identical_sets_is_near_zero():
    rng = np.random.default_rng(3)
    feats = rng.standard_normal((200, 64))
    same = fid.kernel_inception_distance(feats, feats, num_subsets=5)
    shifted = fid.kernel_inception_distance(feats, feats + 0.5, num_subsets=5)
    # One sample on both sides is not independent: the "unbiased" estimate is off by exactly
    # -2 (mean diagonal - mean off-diagonal kernel) / m, O(1/m), and nothing else.
    k = (feats @ feats.T / feats.shape[1] + 1) ** 3
    m = len(feats)
    off_diagonal = (k.sum() - np.trace(k)) / (m * (m - 1))
    assert same == pytest.approx(-2 * (np.trace(k) / m - off_diagonal) / m, rel=1e-9)
    assert abs(same) < 0.1 * shifted


class _Source:
    """A tiny in-memory dataset source."""

    def __init__(self, n, resolution):
        self.resolution = resolution
        self.images = np.random.default_rng(resolution).integers(0, 256, (n, resolution, resolution, 3),
                                                                 dtype=np.uint8)

    def __len__(self):
        return len(self.images)

    def get_batch(self, indices):
        return {"image": self.images[np.asarray(indices)]}


class _CountingInception:
    """A stand-in Inception: per-channel means and spreads of the image, counting its calls."""
    digest = "stand-in"

    def __init__(self):
        self.calls = 0

    def features(self, images):
        self.calls += 1
        x = np.asarray(images, np.float32)
        x = x / 127.5 - 1 if images.dtype == np.uint8 else x
        return np.concatenate([x.mean(axis=(1, 2)), x.std(axis=(1, 2)), x[:, ::4, ::4, 0].reshape(len(x), -1)], 1)


def test_real_features_are_cached_per_count_and_resolution(tmp_path):
    source, net = _Source(20, 8), _CountingInception()
    first = fid.real_features(source, 10, net, batch=4, cache_dir=tmp_path)
    calls = net.calls
    assert calls == 3 and first.shape == (10, 10)
    again = fid.real_features(source, 10, net, batch=4, cache_dir=tmp_path)
    assert net.calls == calls and np.array_equal(first, again)
    fid.real_features(source, 12, net, batch=4, cache_dir=tmp_path)
    assert net.calls == calls + 3
    fid.real_features(_Source(20, 16), 10, net, batch=4, cache_dir=tmp_path)
    assert net.calls == calls + 6
    assert fid.real_features(source, None, net, batch=4, cache_dir=tmp_path).shape == (20, 10)
    assert len(list(tmp_path.glob("*.npz"))) == 4 and not list(tmp_path.glob(".tmp-*"))


def test_compute_fid_kid_of_the_data_itself_is_small(tmp_path):
    source, net = _Source(64, 8), _CountingInception()
    data = source.images.astype(np.float32) / 127.5 - 1
    served = []

    def same(key, n):  # the dataset itself, batch after batch
        served.append(n)
        return data[sum(served) - n:sum(served)]

    noise = lambda key, n: np.random.default_rng(0).uniform(-1, 1, (n, 8, 8, 3))
    good = fid.compute_fid_kid(same, source, 64, 64, net, batch=16, cache_dir=tmp_path)
    bad = fid.compute_fid_kid(noise, source, 64, 64, net, batch=16, cache_dir=tmp_path)
    assert set(good) == {"fid", "kid"} and all(isinstance(v, float) for v in good.values())
    assert abs(good["fid"]) < 1e-6 and good["fid"] < bad["fid"] and good["kid"] < bad["kid"]

"""The shipped toyfaces oracle reads every factor off held-out images; the Fréchet distance."""

import numpy as np
import pytest
import scipy.linalg

from jaxstyle.data.toyfaces import FACTOR_NAMES, ToyFaces
from jaxstyle.metrics import oracle as oracle_lib
from jaxstyle.metrics.frechet import feature_statistics, frechet_distance
from jaxstyle.metrics.train_oracle import HELDOUT_SEED, TRAIN_SEED, r_squared


def heldout(resolution, n=600):
    batch = ToyFaces(resolution=resolution, size=n, seed=HELDOUT_SEED).get_batch(np.arange(n))
    return batch["image"].astype(np.float32) / 127.5 - 1, batch["factors"]


@pytest.mark.parametrize("resolution", [32, 64])
def test_oracle_predicts_every_factor_on_held_out_faces(resolution):
    assert HELDOUT_SEED != TRAIN_SEED
    oracle = oracle_lib.load_oracle(resolution)
    assert oracle.resolution == resolution and oracle.factor_names == FACTOR_NAMES
    images, factors = heldout(resolution)
    r2 = r_squared(oracle.predict(images), factors)
    assert r2.min() > 0.95, dict(zip(FACTOR_NAMES, r2.round(3)))
    assert oracle.features(images[:4]).shape == (4, oracle_lib.FEATURE_DIM)


def test_other_resolutions_use_the_nearest_oracle():
    oracle = oracle_lib.load_oracle(48)
    images, factors = heldout(48, 300)
    assert oracle.resolution in (32, 64)
    assert r_squared(oracle.predict(images), factors).min() > 0.8  # resized input, still informative


def test_r_squared_closed_form():
    true = np.array([[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]])
    np.testing.assert_allclose(r_squared(true, true), [1.0, 1.0])
    np.testing.assert_allclose(r_squared(np.full_like(true, true.mean(0)), true), [0.0, 0.0])
    np.testing.assert_allclose(r_squared(true + [1.0, 0.0], true), [1 - 3 / 2, 1.0])


def test_missing_weights_say_how_to_get_them(monkeypatch, tmp_path):
    monkeypatch.setattr(oracle_lib, "weights_path", lambda r: tmp_path / f"missing_{r}.npz")
    oracle_lib.load_oracle.cache_clear()
    try:
        with pytest.raises(FileNotFoundError, match="train_oracle --resolution 32"):
            oracle_lib.load_oracle(32)
    finally:
        oracle_lib.load_oracle.cache_clear()


def test_frechet_distance_closed_forms():
    rng = np.random.default_rng(0)
    # Diagonal covariances: |dmu|^2 + sum (sqrt(a) - sqrt(b))^2.
    a, b = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 5)
    mu1, mu2 = rng.standard_normal(5), rng.standard_normal(5)
    want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    np.testing.assert_allclose(frechet_distance(mu1, np.diag(a), mu2, np.diag(b)), want, rtol=1e-10)
    # General covariances against scipy's sqrtm form, and FD(x, x) = 0.
    x, y = rng.standard_normal((400, 6)), rng.standard_normal((400, 6)) @ rng.standard_normal((6, 6))
    (m1, s1), (m2, s2) = feature_statistics(x), feature_statistics(y)
    ref = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    np.testing.assert_allclose(frechet_distance(m1, s1, m2, s2), ref, rtol=1e-8)
    assert abs(frechet_distance(m1, s1, m1, s1)) < 1e-9

"""FID and KID of a generator against a dataset, on FID Inception-v3 pool3 features.

FID follows pytorch-fid 0.3.0 `calculate_frechet_distance` (scipy sqrtm of S1 S2, tiny imaginary
parts dropped); KID follows StyleGAN2-ADA `metrics/kernel_inception_distance.py` (cubic polynomial
kernel, unbiased MMD^2 averaged over 100 random subsets of at most 1000). Real features are
cached on disk per dataset, resolution, count and Inception weights, since they never change.
Generated images are quantised to uint8 first, as StyleGAN2-ADA does and as saved PNGs would be,
so both sides reach Inception through the same uint8 path.
"""

import hashlib
import json
import os
import tempfile

import jax
import numpy as np
from scipy import linalg

from jaxstyle.metrics.frechet import feature_statistics  # noqa: F401  (also this module's API)

DEFAULT_CACHE = os.path.join("~", ".cache", "jaxstyle", "stats")


def frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """Returns |mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrtm(S1 S2)), as pytorch-fid computes it.

    A singular product gets eps added to both diagonals (as pytorch-fid); an imaginary part of
    sqrtm larger than numerical noise (1e-3 on the diagonal) raises ValueError.
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    covmean = linalg.sqrtm(sigma1 @ sigma2)  # pytorch-fid's disp=False is deprecated in SciPy 1.17
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"imaginary component {np.max(np.abs(covmean.imag))} in sqrtm(S1 S2)")
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def kernel_inception_distance(real, gen, num_subsets=100, max_subset_size=1000, seed=0):
    """Returns KID: the unbiased MMD^2 with kernel (x.y/d + 1)^3, averaged over random subsets.

    Each subset draws m = min(N_real, N_gen, max_subset_size) rows of each set without
    replacement (seeded here; StyleGAN2-ADA uses NumPy's global generator).
    """
    real, gen = np.asarray(real, np.float64), np.asarray(gen, np.float64)
    rng = np.random.default_rng(seed)
    d = real.shape[1]
    m = min(len(real), len(gen), max_subset_size)
    total = 0.0
    for _ in range(num_subsets):
        x = gen[rng.choice(len(gen), m, replace=False)]
        y = real[rng.choice(len(real), m, replace=False)]
        within = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3
        across = (x @ y.T / d + 1) ** 3
        total += (within.sum() - np.trace(within)) / (m - 1) - across.sum() * 2 / m
    return float(total / num_subsets / m)


def _padded_features(inception, images, batch):
    # A fixed batch shape keeps Inception to one compilation; the padding rows are dropped.
    n = len(images)
    if n < batch:
        images = np.concatenate([images, np.repeat(images[-1:], batch - n, axis=0)])
    return inception.features(images)[:n]


def _source_images(source, indices):
    if hasattr(source, "get_batch"):
        return np.asarray(source.get_batch(indices)["image"])
    return np.stack([source[int(i)]["image"] for i in indices])


def source_fingerprint(source):
    """Returns a short digest of a source: type, length, resolution and three of its images."""
    n = len(source)
    h = hashlib.sha256(f"{type(source).__name__}:{n}:{source.resolution}".encode())
    for i in sorted({0, n // 2, n - 1}):
        h.update(np.ascontiguousarray(_source_images(source, np.array([i]))).tobytes())
    return h.hexdigest()[:16]


def cache_path(source, num, inception, cache_dir=None, spec=None):
    """Returns the cache file of `num` real features of `source` under cache_dir (default ~/.cache)."""
    key = json.dumps({"data": spec or getattr(source, "spec", None) or source_fingerprint(source),
                      "resolution": int(source.resolution), "num": int(num),
                      "inception": inception.digest}, sort_keys=True)
    name = f"inception-{int(source.resolution)}px-{int(num)}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    return os.path.join(os.path.expanduser(cache_dir or DEFAULT_CACHE), name)


def _save_atomic(path, **arrays):
    # Written beside the target and renamed, so a reader never sees half a file.
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def real_features(source, num, inception, batch=64, cache_dir=None, spec=None, seed=123):
    """Returns float32 (min(num, len(source)), 2048) Inception features of real images, cached on disk.

    The images are a seeded random subset without replacement (all of them when num is None or >= len).
    """
    num = len(source) if num is None else min(num, len(source))
    path = cache_path(source, num, inception, cache_dir, spec)
    if os.path.isfile(path):
        with np.load(path) as cached:
            return cached["features"]
    idx = np.random.default_rng(seed).choice(len(source), size=num, replace=False)
    feats = np.concatenate([_padded_features(inception, _source_images(source, idx[i:i + batch]), batch)
                            for i in range(0, num, batch)])
    _save_atomic(path, features=feats)
    return feats


def quantize(images):
    """Returns uint8 images from images in [-1, 1]: (x * 127.5 + 128) clipped and truncated, as StyleGAN2-ADA."""
    return np.clip(np.asarray(images, np.float32) * 127.5 + 128, 0, 255).astype(np.uint8)


def generated_features(generate, num, inception, batch=64, seed=0):
    """Returns float32 (num, 2048) Inception features of generate(key, n) images in [-1, 1]."""
    feats = []
    for i in range(0, num, batch):
        images = generate(jax.random.fold_in(jax.random.key(seed), i), min(batch, num - i))
        feats.append(_padded_features(inception, quantize(images), batch))
    return np.concatenate(feats)


def fid_from_features(real, gen):
    """Returns FID between two feature sets (N, D)."""
    return frechet_distance(*feature_statistics(gen), *feature_statistics(real))


def compute_fid_kid(generate, source, num_gen, num_real, inception, batch=64, cache_dir=None):
    """Returns {"fid": float, "kid": float} of generate(key, n) -> images in [-1, 1] against `source`.

    num_real None uses every real image; cache_dir None is ~/.cache/jaxstyle/stats.
    """
    real = real_features(source, num_real, inception, batch, cache_dir)
    gen = generated_features(generate, num_gen, inception, batch)
    return {"fid": fid_from_features(real, gen), "kid": kernel_inception_distance(real, gen)}

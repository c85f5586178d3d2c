"""Fréchet distance between Gaussians fitted to features (FID's formula; FD_oracle on toyfaces)."""

import numpy as np


def feature_statistics(features):
    """Returns (mean (D,), covariance (D, D)) of features (N, D), in float64 (unbiased covariance)."""
    features = np.asarray(features, np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(sigma):
    w, v = np.linalg.eigh((sigma + sigma.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """Returns |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2).

    Uses the symmetric form (equal to tr sqrt(S1 S2)) so the square root is of a symmetric
    PSD matrix: an eigendecomposition, no complex parts to discard as scipy's sqrtm needs.
    """
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    w = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = float(np.sum(np.sqrt(np.clip(w, 0, None))))
    diff = np.asarray(mu1) - np.asarray(mu2)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)

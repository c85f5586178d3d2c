"""Test set-up: 8 simulated CPU devices (set before JAX starts) and shared fixtures."""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pathlib  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def rel_err(actual, expected):
    """Returns max |actual - expected| / max |expected|, the fixtures' parity measure."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


def read_fixture(name):
    """Returns every array of tests/fixtures/<name> as a dict."""
    with np.load(FIXTURES / name) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="session")
def sg2_fixture():
    """The official StyleGAN2-ADA outputs on random weights (tests/fixtures/README.md)."""
    return read_fixture("stylegan2_ada_visible.npz")


@pytest.fixture(scope="session")
def sg2_net():
    """The fixture's networks loaded through the public importer."""
    from jaxstyle.interop import load_stylegan2_ada
    return load_stylegan2_ada(FIXTURES / "stylegan2_ada_visible.npz")

"""Global batches: order, determinism, exact resume, sharding, host rows and errors."""

import jax
import numpy as np
import pytest

from jaxstyle.data.loader import GlobalBatches, batch_indices
from jaxstyle.data.source import DataError
from jaxstyle.parallel import make_mesh


class IndexImages:
    """Example i is an image filled with i % 256 (and i as a 'factor'): contents reveal the index."""

    resolution, num_channels, label_dim = 4, 3, 0

    def __init__(self, n, fail_at=None):
        self.n, self.fail_at = n, fail_at

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            raise DataError(f"example {i} is broken")
        return {"image": np.full((4, 4, 3), i % 256, np.uint8), "factors": np.array([i], np.float32)}


def take(batches, k):
    return [np.asarray(next(batches)["factors"])[:, 0].astype(int) for _ in range(k)]


@pytest.fixture(scope="module")
def mesh8():
    return make_mesh(jax.devices()[:8])


def test_each_epoch_is_a_permutation_and_epochs_differ(mesh8):
    with GlobalBatches(IndexImages(48), 16, mesh8, seed=3) as batches:
        seen = take(batches, 6)  # two epochs
    first, second = np.concatenate(seen[:3]), np.concatenate(seen[3:])
    assert sorted(first) == list(range(48)) and sorted(second) == list(range(48))
    assert not np.array_equal(first, second)


def test_order_depends_only_on_seed(mesh8):
    with GlobalBatches(IndexImages(40), 8, mesh8, seed=1) as a, \
            GlobalBatches(IndexImages(40), 8, mesh8, seed=1, workers=0, prefetch=1) as b, \
            GlobalBatches(IndexImages(40), 8, mesh8, seed=2) as c:
        xa, xb, xc = take(a, 7), take(b, 7), take(c, 7)
    assert all(np.array_equal(p, q) for p, q in zip(xa, xb))
    assert not all(np.array_equal(p, q) for p, q in zip(xa, xc))


def test_resume_from_position_sees_the_same_batches(mesh8):
    with GlobalBatches(IndexImages(40), 8, mesh8, seed=5) as full:
        reference = take(full, 9)
        assert full.state() == {"position": 9, "seed": 5}
    with GlobalBatches(IndexImages(40), 8, mesh8, seed=5, position=4) as resumed:
        assert resumed.position == 4
        again = take(resumed, 5)
    assert all(np.array_equal(p, q) for p, q in zip(reference[4:], again))


def test_images_are_float_in_unit_range_and_sharded(mesh8):
    with GlobalBatches(IndexImages(300), 16, mesh8, seed=0) as batches:
        batch = next(batches)
    image, idx = batch["image"], np.asarray(batch["factors"])[:, 0]
    assert image.dtype == np.float32 and image.shape == (16, 4, 4, 3)
    assert len(image.sharding.device_set) == 8
    assert image.addressable_shards[0].data.shape == (2, 4, 4, 3)
    np.testing.assert_allclose(np.asarray(image)[:, 0, 0, 0], (idx % 256) / 127.5 - 1, atol=1e-6)


def test_host_rows_partition_the_global_batch():
    full = batch_indices(7, 3, 12, 50)
    parts = [batch_indices(7, 3, 12, 50, rows=(p * 3, p * 3 + 3)) for p in range(4)]
    np.testing.assert_array_equal(np.concatenate(parts), full)


def test_errors(mesh8):
    with pytest.raises(DataError, match="global batch 12 does not split over 8 devices"):
        GlobalBatches(IndexImages(40), 12, mesh8)
    with pytest.raises(DataError, match="empty"):
        GlobalBatches(IndexImages(0), 8, mesh8)
    # A broken example surfaces in the consumer with its own message.
    broken = IndexImages(8, fail_at=int(batch_indices(0, 0, 8, 8)[3]))
    with GlobalBatches(broken, 8, mesh8, seed=0) as batches:
        with pytest.raises(DataError, match="is broken"):
            next(batches)

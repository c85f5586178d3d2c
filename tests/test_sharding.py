"""The same networks on 1 device and on 8 simulated CPU devices (data parallel over 'data')."""

import jax
import numpy as np
import pytest

from conftest import rel_err
from jaxstyle.parallel import data_sharding, make_mesh, num_shards, replicated, shard_batch


@pytest.fixture(scope="module")
def mesh8():
    if jax.device_count() < 8:
        pytest.fail("tests need 8 simulated CPU devices; conftest.py sets XLA_FLAGS before JAX starts")
    return make_mesh(jax.devices()[:8])


def test_generator_same_images_on_1_and_8_devices(sg2_net, mesh8):
    z = jax.random.normal(jax.random.key(0), (16, 32))

    def generate(z):
        return sg2_net.generate(z, psi=0.7, noise_mode="const")

    single = jax.jit(generate)(z)
    sharded_fn = jax.jit(generate, in_shardings=data_sharding(mesh8), out_shardings=data_sharding(mesh8))
    sharded = sharded_fn(jax.device_put(z, data_sharding(mesh8)))
    assert len(sharded.sharding.device_set) == 8
    assert sharded.addressable_shards[0].data.shape == (2, 16, 16, 3)
    assert rel_err(sharded, single) < 1e-5  # batch size per conv differs: rounding only


def test_discriminator_mbstd_groups_stay_on_their_device(sg2_net, mesh8):
    img = jax.random.normal(jax.random.key(1), (16, 16, 16, 3))
    shards = num_shards(mesh8)
    fn = jax.jit(lambda x: sg2_net.discriminate(x, num_shards=shards),
                 in_shardings=data_sharding(mesh8), out_shardings=replicated(mesh8))
    sharded = fn(shard_batch(np.asarray(img), mesh8))
    # Each device's 2 samples form one mbstd group: the logits equal D run on each shard alone.
    per_shard = np.concatenate([sg2_net.discriminate(img[i:i + 2]) for i in range(0, 16, 2)])
    assert rel_err(sharded, per_shard) < 1e-5
    # Grouping across the whole batch (strided, as one device would) gives other logits.
    assert not np.allclose(sg2_net.discriminate(img), per_shard, atol=1e-4)

"""Device mesh and shardings: data parallelism over one `data` axis (jax.jit + NamedSharding)."""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(devices=None):
    """Returns a 1-D Mesh over `devices` (default: all devices, all hosts) named 'data'."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def data_sharding(mesh):
    """Returns the sharding that splits an array's leading (batch) axis over the mesh."""
    return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh):
    """Returns the sharding that keeps a full copy of an array on every device."""
    return NamedSharding(mesh, P())


def shard_batch(batch, mesh):
    """Returns `batch` (a pytree of host arrays, this process's part) as global sharded arrays."""
    sharding = data_sharding(mesh)
    return jax.tree_util.tree_map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch)


def num_shards(mesh):
    """Returns the number of batch shards (devices along 'data'), for minibatch stddev."""
    return mesh.shape[DATA_AXIS]

"""Minibatch standard deviation (Karras et al. 2018, sec. 3; StyleGAN2 `MinibatchStdLayer`)."""

import jax.numpy as jnp


def minibatch_stddev(x, group_size=4, num_channels=1, num_shards=1):
    """Returns x (N, H, W, C) with `num_channels` stddev feature maps appended on the channel axis.

    As in the official layer, sample i of a shard of n*G samples joins group i % n (groups
    are strided, not contiguous), channels split into `num_channels` groups, and each
    feature is the stddev over the group averaged over its channels and pixels. The batch
    is first split into `num_shards` contiguous shards (one per device), so a group never
    spans two devices and the result does not depend on how the batch is sharded.
    """
    n_total, h, w, c = x.shape
    if n_total % num_shards:
        raise ValueError(f"batch {n_total} does not split into {num_shards} shards")
    local = n_total // num_shards
    g = min(group_size, local) if group_size is not None else local
    if local % g:
        raise ValueError(f"per-device batch {local} is not a multiple of mbstd group size {g}")
    f = num_channels
    y = x.reshape(num_shards, g, local // g, h, w, f, c // f).astype(jnp.float32)
    y = y - y.mean(axis=1, keepdims=True)
    y = jnp.sqrt(jnp.square(y).mean(axis=1) + 1e-8)  # (S, n, H, W, F, c)
    y = y.mean(axis=(2, 3, 5))  # (S, n, F)
    y = jnp.broadcast_to(y[:, None, :, None, None, :], (num_shards, g, local // g, h, w, f))
    return jnp.concatenate([x, y.reshape(n_total, h, w, f).astype(x.dtype)], axis=-1)

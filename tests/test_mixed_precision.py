"""bfloat16 mixed precision (model.num_bf16_res): which blocks compute in bfloat16 (the official
num_fp16_res rule), outputs within bfloat16 rounding of float32 on the same float32 weights, and
a short training run with finite losses, float32 weights and no loss scaling."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle.models import Discriminator, Generator
from jaxstyle.models.synthesis import block_dtype
from jaxstyle.parallel import make_mesh, shard_batch
from jaxstyle.training import Objective, Trainer
from jaxstyle.training.loop import ConfigError, build
from train_helpers import tiny_config

RES, BATCH = 16, 8
NETS = dict(img_resolution=RES, channel_base=256, channel_max=16)


def networks(num_bf16_res):
    G = Generator(z_dim=16, w_dim=16, mapping_layers=2, num_bf16_res=num_bf16_res, **NETS)
    D = Discriminator(mbstd_group_size=4, num_bf16_res=num_bf16_res, **NETS)
    return G, D


def test_bf16_blocks_follow_the_official_fp16_rule():
    # stylegan2-ada-pytorch: fp16_resolution = max(2 ** (log2 R + 1 - num_fp16_res), 8).
    dtypes = {r: block_dtype(r, 256, 4) for r in (4, 8, 16, 32, 64, 128, 256)}
    assert [r for r, d in dtypes.items() if d == jnp.bfloat16] == [32, 64, 128, 256]
    assert block_dtype(4, 256, 9) == jnp.float32 and block_dtype(8, 256, 9) == jnp.bfloat16
    assert all(block_dtype(r, 256, 0) == jnp.float32 for r in dtypes)


def bf16_convolutions(fn, *args):
    """Returns how many convolutions in fn's jaxpr take bfloat16 operands."""
    jaxpr = str(jax.make_jaxpr(fn)(*args))
    return sum("bf16" in line for line in jaxpr.splitlines() if "conv_general_dilated" in line)


def test_outputs_are_float32_and_within_bfloat16_rounding(num_bf16_res=3):
    G32, D32 = networks(0)
    G16, D16 = networks(num_bf16_res)
    z = jax.random.normal(jax.random.key(0), (BATCH, 16))
    g = G32.init({"params": jax.random.key(1)}, z, noise_mode="const")
    img32 = G32.apply(g, z, noise_mode="const")
    img16 = G16.apply(g, z, noise_mode="const")       # the same float32 weights
    d = D32.init(jax.random.key(2), img32)
    logits32, logits16 = D32.apply(d, img32), D16.apply(d, img32)
    assert img16.dtype == logits16.dtype == jnp.float32
    for lo, hi in ((img16, img32), (logits16, logits32)):
        err = float(jnp.max(jnp.abs(lo - hi)) / jnp.max(jnp.abs(hi)))
        assert 1e-4 < err < 5e-2   # bfloat16 really ran (8-bit mantissa), and only rounding differs
    # Each bfloat16 block of G has two modulated convs and a ToRGB (one conv each), of D two convs
    # and the 1x1 skip (plus fromRGB in the first). N = 1: the 16x16 blocks; N = 3: 16 and 8, as
    # 4x4 always stays float32.
    assert bf16_convolutions(lambda z: G16.apply(g, z, noise_mode="const"), z) == (3 if num_bf16_res == 1 else 6)
    assert bf16_convolutions(lambda x: D16.apply(d, x), img32) == (4 if num_bf16_res == 1 else 7)


@pytest.fixture(scope="module")
def bf16_run():
    """Five iterations of both networks in bfloat16 at every resolution from 8 (num_bf16_res 2),
    with R1 and path length regularisation (every 4 and 2), on 2 devices."""
    G, D = networks(2)
    obj = Objective(batch_size=BATCH, r1_gamma=1.0, r1_interval=4, pl_interval=2, ema_kimg=0.01,
                    mbstd_group_size=4)
    trainer = Trainer(G, D, obj, make_mesh(jax.devices()[:2]))
    state = trainer.init_state(jax.random.key(0))
    fresh = jax.device_get(state)
    rng, history = np.random.default_rng(0), []
    for step in range(5):
        batch = {"image": rng.uniform(-1, 1, (BATCH, RES, RES, 3)).astype(np.float32)}
        state, metrics = trainer.iteration(state, shard_batch(batch, trainer.mesh), step)
        history.append(jax.device_get(metrics))
    return fresh, jax.device_get(state), history


def test_short_bf16_run_has_finite_losses_and_float32_weights(bf16_run):
    fresh, state, history = bf16_run
    assert sum("loss/pl_penalty" in h for h in history) == 3 and sum("loss/r1_penalty" in h for h in history) == 2
    for h in history:
        assert all(np.isfinite(v).all() for v in h.values()), h
    for tree in (state.g["params"], state.d["params"], state.g_ema["params"], state.g_opt, state.d_opt):
        for leaf in jax.tree_util.tree_leaves(tree):
            if np.issubdtype(np.asarray(leaf).dtype, np.floating):
                assert np.asarray(leaf).dtype == np.float32 and np.isfinite(leaf).all()
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(jax.tree_util.tree_leaves(state.g["params"]),
                                                             jax.tree_util.tree_leaves(fresh.g["params"])))
    assert moved > 1e-3


def test_bad_mixed_precision_settings_are_config_errors():
    source = types.SimpleNamespace(resolution=16, num_channels=3, label_dim=0)
    with pytest.raises(ConfigError, match="num_bf16_res must be 0"):
        build(tiny_config(**{"model.num_bf16_res": -1}), source)
    config = tiny_config("diagonalgan")
    config.model.num_bf16_res = 2
    with pytest.raises(ConfigError, match="mixed precision .* needs StyleGAN2 networks"):
        build(config, source)
    assert build(tiny_config(**{"model.num_bf16_res": 2}), source)[0].num_bf16_res == 2

"""The jitted training phases: compiled once, identical on 1 and 8 devices, and they learn."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle.models import Discriminator, Generator
from jaxstyle.parallel import make_mesh, shard_batch
from jaxstyle.training import Objective, Trainer

RES, BATCH = 8, 8


def tiny_trainer(mesh, **objective):
    G = Generator(z_dim=16, w_dim=16, img_resolution=RES, mapping_layers=2, channel_base=128, channel_max=16)
    D = Discriminator(img_resolution=RES, channel_base=128, channel_max=16, mbstd_group_size=4)
    obj = Objective(**{**dict(batch_size=BATCH, r1_gamma=1.0, r1_interval=4, pl_interval=2,
                              ema_kimg=0.01, mbstd_group_size=4), **objective})
    return Trainer(G, D, obj, mesh)


def batches(n):
    rng = np.random.default_rng(0)
    return [{"image": rng.uniform(-1, 1, (BATCH, RES, RES, 3)).astype(np.float32)} for _ in range(n)]


def run(trainer, data, seed=0):
    state = trainer.init_state(jax.random.key(seed))
    history = []
    for step, batch in enumerate(data):
        state, metrics = trainer.iteration(state, shard_batch(batch, trainer.mesh), step)
        history.append(jax.device_get(metrics))
    return state, history


@pytest.fixture(scope="module")
def run8():
    trainer = tiny_trainer(make_mesh(jax.devices()[:8]))
    state, history = run(trainer, batches(9))
    return trainer, state, history


def test_each_phase_compiles_once(run8):
    trainer, state, history = run8
    # 9 iterations ran G reg at 0, 2, 4, 6, 8 and D reg at 0, 4, 8 with fresh data each time.
    assert sum("loss/pl_penalty" in h for h in history) == 5
    assert sum("loss/r1_penalty" in h for h in history) == 3
    assert trainer.traces == {"g_main": 1, "g_reg": 1, "d_main": 1, "d_reg": 1, "ema": 1}
    assert int(state.step) == 9


def test_state_is_finite_and_changes(run8):
    trainer, state, history = run8
    fresh = trainer.init_state(jax.random.key(0))
    for tree in (state.g["params"], state.d["params"], state.g_ema["params"]):
        assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree_util.tree_leaves(tree))
    moved = jax.tree_util.tree_map(lambda a, b: float(jnp.max(jnp.abs(a - b))), state.g["params"], fresh.g["params"])
    assert max(jax.tree_util.tree_leaves(moved)) > 1e-3
    # G_ema lags G: between the fresh weights and the trained ones.
    assert not np.allclose(state.g_ema["params"]["synthesis"]["b8"]["conv1"]["kernel"],
                           state.g["params"]["synthesis"]["b8"]["conv1"]["kernel"])
    assert float(state.pl_mean) > 0 and float(jnp.linalg.norm(state.w_avg)) > 0


def test_same_parameters_on_1_and_8_devices(run8):
    _, state8, history8 = run8
    state1, history1 = run(tiny_trainer(make_mesh(jax.devices()[:1])), batches(9))
    for a, b in zip(history1, history8):
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-3, atol=1e-5, err_msg=k)
    flat1 = jax.tree_util.tree_leaves_with_path(state1.g["params"]) + jax.tree_util.tree_leaves_with_path(state1.d["params"])
    flat8 = jax.tree_util.tree_leaves(state8.g["params"]) + jax.tree_util.tree_leaves(state8.d["params"])
    for (path, a), b in zip(flat1, flat8):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4, err_msg=jax.tree_util.keystr(path))


def test_r1_every_step_joins_the_main_d_loss(run8):
    _, _, lazy = run8
    trainer = tiny_trainer(make_mesh(jax.devices()[:8]), r1_interval=0, r1_gamma=1000.0)
    _, history = run(trainer, batches(2))
    assert "d_reg" not in trainer.traces and all("loss/r1_penalty" not in h for h in history)
    # Same weights and data at iteration 0: the difference is gamma / 2 * mean R1 (~500 * r1).
    extra = history[0]["loss/D"] - lazy[0]["loss/D"]
    assert 0.5 * 500 * lazy[0]["loss/r1_penalty"] < extra < 2 * 500 * lazy[0]["loss/r1_penalty"]


def test_batch_size_must_fit_the_mbstd_groups():
    with pytest.raises(ValueError, match="multiple of the minibatch-stddev group size 4"):
        Objective(batch_size=6, mbstd_group_size=4)

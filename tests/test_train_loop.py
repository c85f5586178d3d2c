"""The training loop: exact resume, refusal of another config's checkpoint, NaN stop, outputs."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle.checkpoint import CheckpointMismatch
from jaxstyle.parallel import make_mesh
from jaxstyle.training.loop import NonFiniteLoss, train
from train_helpers import tiny_config


@pytest.fixture(scope="module")
def mesh():
    return make_mesh(jax.devices()[:8])


def leaves(state):
    return jax.tree_util.tree_leaves((state.g, state.d, state.g_ema, state.g_opt, state.d_opt,
                                      state.w_avg, state.pl_mean, jax.random.key_data(state.key)))


@pytest.fixture(scope="module")
def straight(tmp_path_factory, mesh):
    """6 iterations in one call."""
    workdir = tmp_path_factory.mktemp("straight")
    return workdir, train(tiny_config(), str(workdir), mesh=mesh, max_steps=6, progress=False)


def test_n_steps_resume_n_steps_equals_2n_steps(straight, tmp_path, mesh):
    _, reference = straight
    first = train(tiny_config(), str(tmp_path), mesh=mesh, max_steps=3, progress=False)
    assert int(first.step) == 3
    resumed = train(tiny_config(), str(tmp_path), mesh=mesh, max_steps=3, progress=False)
    assert int(resumed.step) == 6
    for a, b in zip(leaves(reference), leaves(resumed)):
        np.testing.assert_array_equal(a, b)


def test_run_writes_metrics_config_samples_and_tensorboard(straight):
    workdir, _ = straight
    records = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert {"loss/G", "loss/D", "kimg", "sec_per_kimg"} <= set(records[0])
    assert "loss/r1_penalty" in records[0] and "loss/pl_penalty" in records[0]
    assert json.load(open(workdir / "config.json"))["objective"]["batch_size"] == 8
    samples = sorted(os.listdir(workdir / "samples"))
    assert samples == ["fakes000000kimg.png", "latest.png"]  # a tiny run stays under 1 kimg
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(workdir / "tb"))
    assert sorted(int(s) for s in os.listdir(workdir / "checkpoints")) == [4, 6]  # keep the last 2


def test_checkpoint_of_another_config_is_refused(straight, mesh):
    workdir, _ = straight
    before = sorted(os.listdir(workdir / "checkpoints"))
    with pytest.raises(CheckpointMismatch, match=r"model.channel_max: checkpoint 16, now 32.*new --workdir"):
        train(tiny_config(**{"model.channel_max": 32}), str(workdir), mesh=mesh, max_steps=1, progress=False)
    assert sorted(os.listdir(workdir / "checkpoints")) == before


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, mesh):
    # D jumps to ~1e30 after its first update: iteration 1 is finite (and saved), iteration 2 not.
    config = tiny_config(**{"objective.d_lr": 1e30, "objective.r1_gamma": 0.0, "checkpoint_every_kimg": 0.008})
    with pytest.raises(NonFiniteLoss, match="non-finite loss"):
        train(config, str(tmp_path), mesh=mesh, max_steps=20, progress=False)
    saved = sorted(int(s) for s in os.listdir(tmp_path / "checkpoints"))
    records = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert saved and saved[-1] == records[-1]["step"]  # nothing saved after the last finite log
    assert all(np.isfinite(v) for r in records for k, v in r.items() if k.startswith("loss"))


def test_saves_are_never_skipped_by_orbax_policy(tmp_path):
    # Orbax's default policy skips a save while an asynchronous one is in flight; that once lost
    # a SIGTERM checkpoint. The loop decides when to save, so a policy saying no must not matter.
    from jaxstyle.checkpoint import Checkpointer
    from jaxstyle.training import TrainState
    small = {"params": {"w": jnp.ones((4, 4))}}
    state = TrainState(step=jnp.zeros((), jnp.int32), g=small, d=small, g_ema=small, g_opt=(), d_opt=(),
                       w_avg=jnp.zeros(4), pl_mean=jnp.zeros(()), key=jax.random.key(0))
    ckpt = Checkpointer(str(tmp_path), keep=3)
    ckpt.manager.should_save = lambda step: False   # as while an earlier save is committing
    for step in (1, 2):
        ckpt.save(step, state, {"position": step}, {"seed": 0})
    ckpt.close()
    assert sorted(int(p.name) for p in tmp_path.iterdir() if p.name.isdigit()) == [1, 2]


def test_train_py_takes_the_run_directory_preset_without_config(tmp_path):
    from jaxstyle.training.main import default_preset
    assert default_preset(["train.py", "--workdir", str(tmp_path)]) == "configs/default.py"
    (tmp_path / "config.py").write_text("")   # what python -m jaxstyle.convert writes beside config.json
    for argv in (["--workdir", str(tmp_path)], [f"--workdir={tmp_path}", "--config.total_kimg=1"]):
        assert default_preset(["train.py", *argv]) == str(tmp_path / "config.py")
    assert default_preset(["train.py", "--workdir"]) == "configs/default.py"

"""train.py as a process: SIGTERM saves and exits, SIGKILL leaves a resumable run, 2 hosts = 1 host."""

import os
import random
import signal
import socket
import time

import jax
import numpy as np
import pytest

from jaxstyle.checkpoint import Checkpointer
from jaxstyle.training.loop import build, identity, trainer_for
from jaxstyle.data.registry import open_source
from jaxstyle.parallel import make_mesh
from train_helpers import spawn, tiny_config

TIMEOUT = 240


def wait_for(predicate, proc, what):
    deadline = time.time() + TIMEOUT
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"train.py exited ({proc.returncode}) before {what}:\n{proc.stdout.read()}")
        if time.time() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def steps_saved(workdir):
    path = workdir / "checkpoints"
    return sorted(int(n) for n in os.listdir(path) if n.isdigit()) if path.exists() else []


def logged_steps(workdir):
    path = workdir / "metrics.jsonl"
    return len(open(path).read().splitlines()) if path.exists() else 0


def restore(workdir, devices=None, **overrides):
    config = tiny_config(**overrides)
    mesh = make_mesh(devices)
    G, D, objective = build(config, open_source("toyfaces", 16))
    template = trainer_for(G, D, objective, mesh).init_state(jax.random.key(0))
    return Checkpointer(str(workdir / "checkpoints")).restore(template, identity(config))


def test_sigterm_saves_and_exits_cleanly(tmp_path):
    proc = spawn(tmp_path, **{"checkpoint_every_kimg": 100.0, "total_kimg": 100.0})
    wait_for(lambda: logged_steps(tmp_path) >= 2, proc, "two logged iterations")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, out
    saved = steps_saved(tmp_path)
    assert len(saved) == 1 and f"SIGTERM: saved iteration {saved[0]}" in out
    state, data = restore(tmp_path, **{"checkpoint_every_kimg": 100.0, "total_kimg": 100.0})
    assert int(state.step) == saved[0] == data["position"]


def test_sigkill_at_an_arbitrary_moment_resumes_from_the_last_checkpoint(tmp_path):
    proc = spawn(tmp_path, **{"checkpoint_every_kimg": 0.008, "total_kimg": 100.0})
    wait_for(lambda: len(steps_saved(tmp_path)) >= 2, proc, "two checkpoints")
    time.sleep(random.uniform(0.0, 1.0))  # mid-step or mid-save, wherever it lands
    proc.kill()
    proc.wait()
    last = steps_saved(tmp_path)[-1]
    state, data = restore(tmp_path, **{"checkpoint_every_kimg": 0.008, "total_kimg": 100.0})
    assert int(state.step) == data["position"] and int(state.step) >= last - 1
    for leaf in jax.tree_util.tree_leaves((state.g, state.d, state.g_ema)):
        assert np.isfinite(np.asarray(leaf)).all()
    # The run itself continues from there.
    resumed = spawn(tmp_path, **{"checkpoint_every_kimg": 0.008, "total_kimg": (int(state.step) + 2) * 8 / 1000})
    out, _ = resumed.communicate(timeout=TIMEOUT)
    assert resumed.returncode == 0, out
    assert steps_saved(tmp_path)[-1] == int(state.step) + 2


def free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_end_like_one(tmp_path):
    run = {"total_kimg": 0.032, "checkpoint_every_kimg": 0.032}  # 4 iterations of 8 images
    single = spawn(tmp_path / "one", env={"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}, **run)
    assert single.wait(timeout=TIMEOUT) == 0, single.stdout.read()
    port = free_port()
    procs = [spawn(tmp_path / "two", env={
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_COORDINATOR_ADDRESS": f"localhost:{port}",
        "JAXSTYLE_NUM_PROCESSES": "2", "JAXSTYLE_PROCESS_ID": str(i)}, **run) for i in range(2)]
    for p in procs:
        out, _ = p.communicate(timeout=TIMEOUT)
        assert p.returncode == 0, out
    one, _ = restore(tmp_path / "one", jax.devices()[:4], **run)
    two, data = restore(tmp_path / "two", jax.devices()[:4], **run)
    assert int(one.step) == int(two.step) == data["position"] == 4
    for a, b in zip(jax.tree_util.tree_leaves((one.g, one.d)), jax.tree_util.tree_leaves((two.g, two.d))):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)

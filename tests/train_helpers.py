"""A tiny training configuration for tests (16x16 toyfaces, 16 channels, batch 8)."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = {
    "total_kimg": 1.0, "data.resolution": 16, "data.workers": 1,
    "model.z_dim": 16, "model.w_dim": 16, "model.channel_base": 256, "model.channel_max": 16,
    "objective.batch_size": 8, "objective.r1_interval": 4, "objective.pl_interval": 2,
    "objective.ema_kimg": 0.01, "log_every_kimg": 0.008, "sample_every_kimg": 0.016,
    "checkpoint_every_kimg": 0.016, "keep_checkpoints": 2, "sample_grid": (2, 2), "tensorboard": True,
}


def tiny_config(preset="default", tiny=TINY, **overrides):
    """Returns configs/<preset>.py with `tiny` and `overrides` ('a.b' keys) applied."""
    sys.path.insert(0, ROOT)
    import importlib
    config = importlib.import_module(f"configs.{preset}").get_config()
    for key, value in {**tiny, **overrides}.items():
        node, *path = key.split(".")[::-1]
        target = config
        for part in reversed(path):
            target = target[part]
        target[node] = value
    return config


def train_command(workdir, **overrides):
    """Returns the argv running train.py with the tiny config."""
    flags = [f"--config.{k}={v}" for k, v in {**TINY, **overrides}.items() if k != "sample_grid"]
    return [sys.executable, os.path.join(ROOT, "train.py"), "--config", os.path.join(ROOT, "configs/default.py"),
            "--config.sample_grid=(2,2)", "--workdir", str(workdir)] + flags


def spawn(workdir, env=None, **overrides):
    """Starts train.py with the tiny config in a subprocess; returns the Popen."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})}
    return subprocess.Popen(train_command(workdir, **overrides), cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

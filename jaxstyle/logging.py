"""What a run writes: JSON-lines metrics, TensorBoard events (no TensorFlow), PNG grids, config."""

import json
import os
import time

import numpy as np

from jaxstyle.images import save_png


class RunLogger:
    """Writes metrics to <workdir>/metrics.jsonl and TensorBoard, images to PNG and TensorBoard."""

    def __init__(self, workdir, tensorboard=True):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")
        self._tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter  # writes event files without TensorFlow
            self._tb = SummaryWriter(os.path.join(workdir, "tb"))

    def scalars(self, step, values, **extra):
        """Appends one JSON line {step, time, **values, **extra} and the scalars to TensorBoard."""
        values = {k: float(v) for k, v in values.items()}
        record = {"step": int(step), "time": round(time.time(), 3), **extra, **values}
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()
        if self._tb is not None:
            for k, v in {**values, **{k: v for k, v in extra.items() if isinstance(v, (int, float))}}.items():
                self._tb.add_scalar(k, v, int(step))

    def image(self, step, name, grid):
        """Writes a uint8 (H, W, C) grid as <workdir>/<name>.png and to TensorBoard; returns the path."""
        path = save_png(grid, os.path.join(self.workdir, f"{name}.png"))
        if self._tb is not None:
            self._tb.add_image(name.split("/")[0], np.asarray(grid), int(step), dataformats="HWC")
        return path

    def close(self):
        """Flushes and closes every file."""
        self._jsonl.close()
        if self._tb is not None:
            self._tb.close()


def save_config(workdir, config_dict):
    """Writes the resolved config as <workdir>/config.json (atomically); returns the path."""
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "config.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(config_dict, f, indent=2, sort_keys=True)
    os.replace(tmp, path)
    return path

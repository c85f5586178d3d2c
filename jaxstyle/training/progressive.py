"""Progressive growing's schedule (ProGAN / StyleGAN1 as rosinality's and DiagonalGAN's train.py).

Training starts at `init_resolution` and doubles the resolution after each stage. A stage runs
until its image count exceeds 2 * phase images; in every stage but the first, the new block
fades in over the first `phase` images: alpha = min(1, (used + 1) / phase), 0 on the stage's
first iteration. The last resolution trains at alpha 1 once faded in, for as long as the run
lasts. Batch size and learning rate are per resolution (official `--sched` tables).
"""

import dataclasses
from typing import Mapping


@dataclasses.dataclass(frozen=True)
class Phase:
    """Where a progressive run stands before an iteration."""

    stage: int                 # 0 for init_resolution, +1 per doubling
    resolution: int
    alpha: float               # fade-in weight of the newest block (1: fully in)
    batch_size: int
    lr: float
    stage_start: int           # images shown before this stage began
    used: int                  # images shown in this stage before this iteration


def _table(table, res, default):
    return {int(k): v for k, v in dict(table).items()}.get(res, default)


def phase_at(nimg, init_resolution, max_resolution, phase_kimg, batch: Mapping, lr: Mapping,
             batch_default=8, lr_default=0.001):
    """Returns the Phase of the iteration that starts after `nimg` images.

    batch and lr map resolutions to values (keys may be strings, as configs store them);
    missing resolutions take batch_default / lr_default, as the official code does.
    """
    phase = int(round(phase_kimg * 1000))
    res, start, stage = init_resolution, 0, 0
    while True:
        b = _table(batch, res, batch_default)
        length = b * (2 * phase // b + 1)  # the first count past 2 * phase, in whole batches
        if res >= max_resolution or nimg < start + length:
            break
        res, start, stage = res * 2, start + length, stage + 1
    used = nimg - start
    alpha = 1.0 if stage == 0 or used >= phase else (0.0 if used == 0 else min(1.0, (used + 1) / phase))
    return Phase(stage, res, alpha, b, _table(lr, res, lr_default), start, used)

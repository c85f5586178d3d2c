"""Open a training run's newest checkpoint for sampling, evaluation and editing tools."""

import dataclasses
import json
import os
from typing import Any

import jax
from ml_collections import ConfigDict

from jaxstyle.checkpoint import Checkpointer


@dataclasses.dataclass(frozen=True)
class Run:
    """A restored run: its config, data source, networks, objective and train states."""

    config: ConfigDict
    source: Any
    G: Any
    D: Any
    objective: Any
    state: Any                 # newest checkpoint's TrainState
    init: Any                  # the run's TrainState at initialisation (same seed)
    nimg: int = 0              # real images shown up to the newest checkpoint
    phase: Any = None          # progressive growing: the Phase the run stands at (else full resolution)

    @property
    def kimg(self):
        return self.nimg / 1000

    @property
    def grown(self):
        """True when the run trains at full resolution with the newest block fully faded in."""
        return self.phase is None or (self.phase.resolution == self.G.img_resolution and self.phase.alpha == 1)


def load_run(workdir):
    """Returns the Run in `workdir` (config.json and checkpoints/ as train.py writes them).

    Raises FileNotFoundError naming what is missing.
    """
    from jaxstyle.data.registry import open_source
    from jaxstyle.parallel import make_mesh
    from jaxstyle.training.loop import _progressive, build, identity, schedule, trainer_for

    path = os.path.join(workdir, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: pass the --workdir of a train.py run")
    with open(path) as f:
        config = ConfigDict(json.load(f))
    config.sample_grid = tuple(config.sample_grid)
    # The data options train() passes (labels, seed, ...), so a class-conditional run opens as it trained.
    loader_keys = ("source", "resolution", "workers", "prefetch", "verify")
    source = open_source(config.data.source, config.data.resolution,
                         **{k: v for k, v in config.data.to_dict().items() if k not in loader_keys})
    G, D, objective = build(config, source)
    trainer = trainer_for(G, D, objective, make_mesh())
    init = trainer.init_state(jax.random.key(config.seed))
    restored = Checkpointer(os.path.join(workdir, "checkpoints"), asynchronous=False).restore(init, identity(config))
    if restored is None:
        raise FileNotFoundError(f"no checkpoint in {workdir}/checkpoints")
    state, data_state = restored
    nimg = data_state.get("nimg", int(state.step) * objective.batch_size)
    phase = schedule(config, G, objective)(nimg) if _progressive(config) is not None else None
    return Run(config, source, G, D, objective, state, init, nimg, phase)


def load_diagonalgan_run(workdir):
    """Returns a DiagonalGAN handle on the G_ema of the newest checkpoint in `workdir`; a
    progressive run still growing renders at the resolution it has reached."""
    from jaxstyle.models.diagonalgan import DiagonalGAN
    run = load_run(workdir)
    if not run.G.has_content:
        raise ValueError(f"{workdir} trained a generator without content codes "
                         f"(content_op {run.G.content_op!r}); use a diagonalgan preset")
    size = run.phase.resolution if run.phase is not None and run.phase.resolution < run.G.img_resolution else None
    return DiagonalGAN(run.G, run.state.g_ema, size=size)

"""The training loop: data, jitted phases, logging, sample grids, checkpoints, preemption.

The loop never waits on the device except at log, sample and checkpoint points, where it
fetches the metrics once (and stops on a NaN before anything is saved).
"""

import dataclasses
import functools
import math
import os
import signal
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from jaxstyle.checkpoint import Checkpointer
from jaxstyle.data.loader import GlobalBatches
from jaxstyle.images import make_grid, to_uint8
from jaxstyle.logging import RunLogger, save_config
from jaxstyle.models import Discriminator, Generator
from jaxstyle.parallel import make_mesh
from jaxstyle.training.progressive import Phase, phase_at
from jaxstyle.training.steps import Objective, Trainer


class NonFiniteLoss(FloatingPointError):
    """A loss became NaN or Inf; the run stopped without saving."""


class ConfigError(ValueError):
    """The configuration cannot be trained; the message names the setting."""


def build(config, source):
    """Returns (Generator, Discriminator, Objective) for a config and its data source.

    Raises ConfigError for settings the networks or the objective reject, before any compute.
    """
    try:
        G, D, objective = _build(config, source)
        args, kwargs = G.example_inputs()
        jax.eval_shape(lambda: G.init({"params": jax.random.key(0)}, *args, **kwargs))
        img = jnp.zeros((objective.mbstd_group_size or 1, G.img_resolution, G.img_resolution, G.img_channels))
        jax.eval_shape(lambda: D.init(jax.random.key(0), img, jnp.zeros((img.shape[0], D.c_dim)) if D.c_dim else None))
    except (ValueError, TypeError, AttributeError, KeyError) as e:
        raise ConfigError(f"invalid configuration: {e}") from e
    return G, D, objective


# Model settings a preset may leave out (the StyleGAN2 defaults).
MODEL_DEFAULTS = dict(style_op="modconv", content_op="noise", dat_max_resolution=256,
                      mapping_lr_multiplier=0.01, mapping_weight_gain=1.0, mapping_act_gain=None,
                      subspace_mode=0, remat=False, num_bf16_res=0)


def _build(config, source):
    m = {**MODEL_DEFAULTS, **config.model.to_dict()}
    G = Generator(z_dim=m["z_dim"], c_dim=source.label_dim, w_dim=m["w_dim"],
                  img_resolution=source.resolution, img_channels=source.num_channels,
                  mapping_layers=m["mapping_layers"], channel_base=m["channel_base"],
                  channel_max=m["channel_max"], architecture=m["architecture"], conv_clamp=m["conv_clamp"],
                  modconv=m["modconv"], **{k: m[k] for k in MODEL_DEFAULTS})
    if m["d_architecture"] == "progressive":
        from jaxstyle.models.progressive_discriminator import ProgressiveDiscriminator
        D = ProgressiveDiscriminator(img_resolution=source.resolution, img_channels=source.num_channels,
                                     c_dim=source.label_dim, channel_base=m["channel_base"],
                                     channel_max=m["channel_max"])
    else:
        # d_channel_base / d_channel_max (optional): D widths apart from G's (SEGAN: G 128, D 512).
        D = Discriminator(img_resolution=source.resolution, img_channels=source.num_channels,
                          c_dim=source.label_dim, architecture=m["d_architecture"],
                          channel_base=m.get("d_channel_base", m["channel_base"]),
                          channel_max=m.get("d_channel_max", m["channel_max"]),
                          conv_clamp=m["conv_clamp"], mbstd_group_size=config.objective.mbstd_group_size,
                          mbstd_num_channels=m["mbstd_num_channels"], num_bf16_res=m["num_bf16_res"])
    if m["num_bf16_res"] < 0:
        raise ValueError(f"model.num_bf16_res must be 0 (float32) or a positive number of resolutions, "
                         f"got {m['num_bf16_res']}")
    if m["num_bf16_res"] and (m["style_op"] != "modconv" or m["d_architecture"] == "progressive"):
        raise ValueError("mixed precision (model.num_bf16_res) needs StyleGAN2 networks: model.style_op "
                         "'modconv' and a non-progressive model.d_architecture; set num_bf16_res to 0")
    if config.objective.get("orth_weight", 0) and m["subspace_mode"] not in (1, 2):
        raise ValueError("objective.orth_weight needs subspace bases U: set model.subspace_mode to 1 or 2")
    if _progressive(config) and m["style_op"] != "adain":
        raise ValueError("progressive growing needs model.style_op 'adain' (fade-in between ToRGB outputs)")
    if _progressive(config) and m["d_architecture"] != "progressive":
        raise ValueError("progressive growing needs model.d_architecture 'progressive'")
    p = _progressive(config)
    if p is not None and (p.init_resolution not in [2**i for i in range(2, 11)] or p.init_resolution > source.resolution):
        raise ValueError(f"progressive.init_resolution {p.init_resolution} must be a power of two from 4 "
                         f"to the data resolution {source.resolution}")
    if p is not None and not p.phase_kimg > 0:
        raise ValueError(f"progressive.phase_kimg must be positive, got {p.phase_kimg}")
    return G, D, Objective(**config.objective.to_dict())


def _progressive(config):
    p = config.get("progressive")
    return p if p is not None and p.get("enabled", True) else None


@functools.lru_cache(maxsize=16)
def trainer_for(G, D, objective, mesh, resolution=None):
    """Returns a Trainer, reused for equal arguments so a process compiles each phase once."""
    return Trainer(G, D, objective, mesh, resolution)


def schedule(config, G, objective):
    """Returns nimg -> Phase: the progressive schedule, or one phase at full resolution."""
    p = _progressive(config)
    if p is None:
        return lambda nimg: Phase(0, G.img_resolution, 1.0, objective.batch_size, objective.g_lr, 0, nimg)
    return lambda nimg: phase_at(nimg, p.init_resolution, G.img_resolution, p.phase_kimg,
                                 p.batch.to_dict(), p.lr.to_dict(), p.batch_default, p.lr_default)


def identity(config):
    """Returns the part of the config a checkpoint must match to be resumed (not run length or logging)."""
    ident = {"seed": config.seed, "data": config.data.to_dict(), "model": config.model.to_dict(),
             "objective": config.objective.to_dict()}
    if config.get("progressive") is not None:  # absent for other runs, so their checkpoints still match
        ident["progressive"] = config.progressive.to_dict()
    return ident


class _Preemption:
    """Turns SIGTERM into a flag the loop checks between iterations."""

    def __init__(self):
        self.requested = False
        self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        self.requested = True

    def restore(self):
        signal.signal(signal.SIGTERM, self._previous)


def _sample_fn(G, seed, n):
    keys = jax.random.split(jax.random.key(seed))
    z = jax.random.normal(keys[0], (n, G.z_dim))
    z_content = jax.random.normal(keys[1], (n, G.z_dim)) if G.has_content else None

    @functools.partial(jax.jit, static_argnums=2)
    def sample(g_ema, c, resolution, alpha):
        def run(module):
            contents = module.map_content(z_content) if G.has_content else None
            return module.synthesize(module.map(z, c), "const", contents, resolution, alpha)
        return nn.apply(run, G)(g_ema)
    return sample


def _check_finite(step, metrics):
    bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
    if bad:
        raise NonFiniteLoss(f"iteration {step}: non-finite {', '.join(f'{k}={v}' for k, v in bad.items())}; "
                            "stopped without saving, the last checkpoint is the last good state. "
                            "Lower the learning rates, raise r1_gamma, or set model.conv_clamp.")


def train(config, workdir, source=None, mesh=None, max_steps=None, progress=True):
    """Trains per `config`, resuming from `workdir` if it holds a checkpoint; returns the final state.

    `max_steps` stops after that many iterations of this call (tests); the run length is
    config.total_kimg.
    """
    from jaxstyle.data.registry import open_source
    loader_keys = ("source", "resolution", "workers", "prefetch", "verify")
    source = source if source is not None else open_source(
        config.data.source, config.data.resolution,
        **{k: v for k, v in config.data.to_dict().items() if k not in loader_keys})
    if config.data.get("verify", True) and hasattr(source, "check"):
        source.check()  # decode every image now, not hours into the run
    mesh = mesh if mesh is not None else make_mesh()
    G, D, objective = build(config, source)
    phase_of = schedule(config, G, objective)
    progressive = _progressive(config) is not None
    total_nimg = int(round(config.total_kimg * 1000))
    every = {name: max(1, int(round(config[f"{name}_every_kimg"] * 1000)))
             for name in ("log", "sample", "checkpoint")}

    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=config.keep_checkpoints)
    state = trainer_for(G, D, objective, mesh).init_state(jax.random.key(config.seed))
    restored = ckpt.restore(state, identity(config))
    data_state = {}
    if restored is not None:
        state, data_state = restored
    start = int(state.step)
    nimg = data_state.get("nimg", start * objective.batch_size)
    chief = jax.process_index() == 0  # one process writes logs and images
    if chief:
        save_config(workdir, config.to_dict())
    logger = RunLogger(workdir, tensorboard=config.tensorboard) if chief else None
    rows, cols = config.sample_grid
    sample = _sample_fn(G, config.seed + 12345, rows * cols)
    labels = None
    if G.c_dim:
        labels = jnp.asarray(np.eye(G.c_dim, dtype=np.float32)[np.arange(rows * cols) % G.c_dim])

    def save_grid(step, nimg, phase):
        images = sample(state.g_ema, labels, phase.resolution if progressive else None, jnp.float32(phase.alpha))
        grid = make_grid(to_uint8(images), rows, cols)
        if logger is None:
            return
        logger.image(step, f"samples/fakes{nimg // 1000:06d}kimg", grid)
        logger.image(step, "samples/latest", grid)

    def open_batches(phase, position):
        # Progressive: a fresh stream per stage (its own batch size), positioned by images used.
        seed = config.data.get("seed", 0) + config.seed + (phase.stage if progressive else 0)
        return GlobalBatches(source, phase.batch_size, mesh, seed=seed, position=position,
                             prefetch=config.data.get("prefetch", 2), workers=config.data.get("workers", 2))

    preemption = _Preemption()
    phase = phase_of(nimg)
    batches = open_batches(phase, phase.used // phase.batch_size if progressive else data_state.get("position", start))
    end = None if max_steps is None else start + max_steps
    bar = tqdm(total=total_nimg // 1000, initial=nimg // 1000, disable=not (progress and chief), unit="kimg",
               dynamic_ncols=True)
    pending, tick_time, tick_nimg, step = [], time.time(), nimg, start
    try:
        if start == 0:
            save_grid(0, 0, phase)
        while nimg < total_nimg and (end is None or step < end):
            phase = phase_of(nimg)
            trainer = trainer_for(G, D, _phase_objective(objective, phase, progressive), mesh,
                                  phase.resolution if progressive else None)
            if progressive and phase.used == 0 and step > start:
                batches.close()
                batches = open_batches(phase, 0)
            state, metrics = trainer.iteration(state, next(batches), step, phase.alpha, nimg + phase.batch_size)
            pending.append(metrics)
            prev, nimg, step = nimg, nimg + phase.batch_size, step + 1
            fires = {k: nimg // v > prev // v or nimg >= total_nimg for k, v in every.items()}
            stop = preemption.requested or step == end
            if fires["log"] or fires["checkpoint"] or stop:
                host = _mean_metrics(jax.device_get(pending))
                pending = []
                _check_finite(step, host)
                sec_per_kimg = (time.time() - tick_time) / max((nimg - tick_nimg) / 1000, 1e-9)
                tick_time, tick_nimg = time.time(), nimg
                extra = dict(resolution=phase.resolution, alpha=round(phase.alpha, 4)) if progressive else {}
                if logger is not None:
                    logger.scalars(step, host, kimg=round(nimg / 1000, 3), sec_per_kimg=round(sec_per_kimg, 3), **extra)
                bar.set_postfix_str(f"sec/kimg {sec_per_kimg:.1f} G {host.get('loss/G', float('nan')):.3f} "
                                    f"D {host.get('loss/D', float('nan')):.3f}"
                                    + (f" res {phase.resolution} alpha {phase.alpha:.2f}" if progressive else ""))
            if fires["sample"]:
                save_grid(step, nimg, phase)
            if fires["checkpoint"] or stop:
                ckpt.save(step, state, {**batches.state(), "nimg": nimg}, identity(config))
            bar.update(nimg // 1000 - prev // 1000)
            if preemption.requested:
                print(f"SIGTERM: saved iteration {step} to {workdir}; resume with the same command.", flush=True)
                break
    finally:
        bar.close()
        batches.close()
        ckpt.close()
        if logger is not None:
            logger.close()
        preemption.restore()
    return state


def _phase_objective(objective, phase, progressive):
    """Returns the objective of a progressive phase: its batch size and learning rate."""
    if not progressive:
        return objective
    return dataclasses.replace(objective, batch_size=phase.batch_size, g_lr=phase.lr, d_lr=phase.lr)


def _mean_metrics(records):
    keys = {k for r in records for k in r}
    return {k: float(np.mean([r[k] for r in records if k in r])) for k in sorted(keys)}

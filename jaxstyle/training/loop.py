"""The training loop: data, jitted phases, logging, sample grids, checkpoints, preemption.

The loop never waits on the device except at log, sample and checkpoint points, where it
fetches the metrics once (and stops on a NaN before anything is saved).
"""

import functools
import math
import os
import signal
import time

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
        jax.eval_shape(lambda: G.init({"params": jax.random.key(0)}, jnp.zeros((1, G.z_dim)),
                                      jnp.zeros((1, G.c_dim)) if G.c_dim else None, noise_mode="const"))
        img = jnp.zeros((objective.mbstd_group_size, G.img_resolution, G.img_resolution, G.img_channels))
        jax.eval_shape(lambda: D.init(jax.random.key(0), img, jnp.zeros((img.shape[0], D.c_dim)) if D.c_dim else None))
    except (ValueError, TypeError, AttributeError, KeyError) as e:
        raise ConfigError(f"invalid configuration: {e}") from e
    return G, D, objective


def _build(config, source):
    m = config.model
    G = Generator(z_dim=m.z_dim, c_dim=source.label_dim, w_dim=m.w_dim,
                  img_resolution=source.resolution, img_channels=source.num_channels,
                  mapping_layers=m.mapping_layers, channel_base=m.channel_base,
                  channel_max=m.channel_max, architecture=m.architecture, conv_clamp=m.conv_clamp,
                  modconv=m.modconv)
    D = Discriminator(img_resolution=source.resolution, img_channels=source.num_channels,
                      c_dim=source.label_dim, architecture=m.d_architecture,
                      channel_base=m.channel_base, channel_max=m.channel_max,
                      conv_clamp=m.conv_clamp, mbstd_group_size=config.objective.mbstd_group_size,
                      mbstd_num_channels=m.mbstd_num_channels)
    return G, D, Objective(**config.objective.to_dict())


@functools.lru_cache(maxsize=8)
def trainer_for(G, D, objective, mesh):
    """Returns a Trainer, reused for equal (G, D, objective, mesh) so a process compiles once."""
    return Trainer(G, D, objective, mesh)


def identity(config):
    """Returns the part of the config a checkpoint must match to be resumed (not run length or logging)."""
    return {"seed": config.seed, "data": config.data.to_dict(), "model": config.model.to_dict(),
            "objective": config.objective.to_dict()}


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
    z = jax.random.normal(jax.random.key(seed), (n, G.z_dim))

    @jax.jit
    def sample(g_ema, c):
        return G.apply(g_ema, z, c, noise_mode="const")
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
    trainer = trainer_for(G, D, objective, mesh)
    batch_size = objective.batch_size
    total_steps = int(math.ceil(config.total_kimg * 1000 / batch_size))
    every = lambda kimg: max(1, int(round(kimg * 1000 / batch_size)))
    log_every, sample_every, ckpt_every = (every(config.log_every_kimg), every(config.sample_every_kimg),
                                           every(config.checkpoint_every_kimg))

    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=config.keep_checkpoints)
    state = trainer.init_state(jax.random.key(config.seed))
    restored = ckpt.restore(state, identity(config))
    position = 0
    if restored is not None:
        state, data_state = restored
        position = data_state["position"]
    start = int(state.step)
    chief = jax.process_index() == 0  # one process writes logs and images
    if chief:
        save_config(workdir, config.to_dict())
    logger = RunLogger(workdir, tensorboard=config.tensorboard) if chief else None
    rows, cols = config.sample_grid
    sample = _sample_fn(G, config.seed + 12345, rows * cols)
    labels = None
    if G.c_dim:
        labels = jnp.asarray(np.eye(G.c_dim, dtype=np.float32)[np.arange(rows * cols) % G.c_dim])

    def save_grid(step):
        grid = make_grid(to_uint8(sample(state.g_ema, labels)), rows, cols)
        if logger is None:
            return
        logger.image(step, f"samples/fakes{step * batch_size // 1000:06d}kimg", grid)
        logger.image(step, "samples/latest", grid)

    preemption = _Preemption()
    batches = GlobalBatches(source, batch_size, mesh, seed=config.data.get("seed", 0) + config.seed,
                            position=position, prefetch=config.data.get("prefetch", 2),
                            workers=config.data.get("workers", 2))
    end = total_steps if max_steps is None else min(total_steps, start + max_steps)
    bar = tqdm(total=end, initial=start, disable=not (progress and chief), unit="it", dynamic_ncols=True)
    pending, tick_time, tick_step = [], time.time(), start
    try:
        if start == 0:
            save_grid(0)
        for step in range(start, end):
            state, metrics = trainer.iteration(state, next(batches), step)
            pending.append(metrics)
            done = step + 1
            stop = preemption.requested
            if done % log_every == 0 or done % ckpt_every == 0 or done == end or stop:
                host = _mean_metrics(jax.device_get(pending))
                pending = []
                _check_finite(done, host)
                sec_per_kimg = (time.time() - tick_time) / max((done - tick_step) * batch_size / 1000, 1e-9)
                tick_time, tick_step = time.time(), done
                kimg = done * batch_size / 1000
                if logger is not None:
                    logger.scalars(done, host, kimg=round(kimg, 3), sec_per_kimg=round(sec_per_kimg, 3))
                bar.set_postfix_str(f"kimg {kimg:.1f} sec/kimg {sec_per_kimg:.1f} "
                                    f"G {host.get('loss/G', float('nan')):.3f} D {host.get('loss/D', float('nan')):.3f}")
            if done % sample_every == 0 or done == end:
                save_grid(done)
            if done % ckpt_every == 0 or done == end or stop:
                ckpt.save(done, state, batches.state(), identity(config))
            bar.update(1)
            if stop:
                print(f"SIGTERM: saved iteration {done} to {workdir}; resume with the same command.", flush=True)
                break
    finally:
        bar.close()
        batches.close()
        ckpt.close()
        if logger is not None:
            logger.close()
        preemption.restore()
    return state


def _mean_metrics(records):
    keys = {k for r in records for k in r}
    return {k: float(np.mean([r[k] for r in records if k in r])) for k in sorted(keys)}

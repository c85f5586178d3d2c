"""Training phases as pure functions, jit-compiled once each over a data-parallel mesh.

An iteration runs, as StyleGAN2-ADA's loop does: G main; G path-length reg (every
`pl_interval` iterations, its own Adam step); D main (+ R1 when `r1_interval` is 0); D R1
reg (every `r1_interval` iterations, its own Adam step); then the G_ema update. Each phase
is a separate jitted function of (state, batch, alpha), so the four never retrace whatever
the schedule, and the schedule lives in Python where it costs nothing.

DiagonalGAN adds a content latent per image (content_op "dat") and the diversity-sensitive
loss (two content codes under one style, both in the graph). Progressive growing runs a
Trainer per resolution (`resolution`, static) with the fade-in weight `alpha` traced; reals
are box-downsampled to that resolution inside the step.
"""

import collections
import dataclasses
from typing import Optional

import jax
import jax.numpy as jnp
import optax

from jaxstyle import losses
from jaxstyle.models import Generator, mix_styles, update_w_avg
from jaxstyle.nn.subspace import subspace_bases
from jaxstyle.parallel import data_sharding, replicated
from jaxstyle.training.state import TrainState, ema_beta, ema_update, lazy_adam


@dataclasses.dataclass(frozen=True)
class Objective:
    """Loss and schedule hyperparameters (defaults: StyleGAN2-ADA)."""

    batch_size: int
    g_lr: float = 0.0025
    d_lr: float = 0.0025
    betas: tuple = (0.0, 0.99)
    eps: float = 1e-8
    r1_gamma: float = 10.0
    r1_interval: int = 16             # 0: R1 on every D step, inside the main loss
    pl_weight: float = 2.0            # 0 disables path-length regularisation
    pl_interval: int = 4
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    style_mixing_prob: float = 0.9
    w_avg_beta: float = 0.995
    ema_kimg: float = 10.0
    ema_rampup: Optional[float] = None
    ema_decay: Optional[float] = None  # a fixed G_ema decay per step (DiagonalGAN: 0.999)
    mbstd_group_size: int = 4         # 0: the whole batch on each device (StyleGAN1 / DiagonalGAN D)
    mapping_lr_scale: float = 1.0     # DiagonalGAN: 0.01 on both mapping networks, in the optimizer
    ds_weight: float = 0.0            # diversity-sensitive loss (DiagonalGAN: 1)
    ds_margin: float = 0.3
    orth_weight: float = 0.0          # EigenGAN's orthogonality regulariser on subspace bases (EigenGAN: 1)

    def __post_init__(self):
        if self.mbstd_group_size and self.batch_size % self.mbstd_group_size:
            raise ValueError(f"batch_size {self.batch_size} must be a multiple of the minibatch-"
                             f"stddev group size {self.mbstd_group_size}")
        if self.pl_weight and self.batch_size % self.pl_batch_shrink:
            raise ValueError(f"batch_size {self.batch_size} must be a multiple of pl_batch_shrink")


MAPPINGS = ("mapping", "content_mapping")


def _mapping_mask(params):
    return {k: jax.tree_util.tree_map(lambda _: k in MAPPINGS, v) for k, v in params.items()}


def g_optimizer(o: Objective):
    """Returns G's Adam; with mapping_lr_scale != 1 the mapping networks' updates are scaled by it."""
    # As StyleGAN2-ADA, the lazy correction depends on the interval alone (also with weight 0).
    tx = lazy_adam(o.g_lr, o.betas, o.eps, o.pl_interval or None)
    if o.mapping_lr_scale == 1:
        return tx
    return optax.chain(tx, optax.masked(optax.scale(o.mapping_lr_scale), _mapping_mask))


def box_downsample(images, resolution):
    """Returns NHWC images averaged over f x f boxes to `resolution` (f = H / resolution)."""
    b, h, w, c = images.shape
    f = h // resolution
    if f == 1:
        return images
    return images.reshape(b, resolution, f, resolution, f, c).mean(axis=(2, 4))


class Trainer:
    """Builds the train state and the jitted phases for a (G, D, objective, mesh[, resolution]).

    `resolution` (progressive growing) trains G's output and D's input at that resolution;
    None trains at the full resolution.
    """

    def __init__(self, G: Generator, D, objective: Objective, mesh, resolution: Optional[int] = None):
        self.G, self.D, self.obj, self.mesh = G, D, objective, mesh
        self.resolution = resolution
        o = objective
        self.g_tx = g_optimizer(o)
        self.d_tx = lazy_adam(o.d_lr, o.betas, o.eps, o.r1_interval or None)
        rep, data = replicated(mesh), data_sharding(mesh)
        self.traces = collections.Counter()  # phase name -> times traced (a retrace is a bug)

        def jit(fn, in_shardings=(rep, data, rep), out_shardings=(rep, rep)):
            def counted(*args):
                self.traces[fn.__name__.lstrip("_")] += 1  # runs only while tracing
                return fn(*args)
            return jax.jit(counted, in_shardings=in_shardings, out_shardings=out_shardings,
                           donate_argnums=0)

        self.g_main = jit(self._g_main)
        self.g_reg = jit(self._g_reg)
        self.d_main = jit(self._d_main)
        self.d_reg = jit(self._d_reg)
        self.ema = jit(self._ema, in_shardings=(rep, None), out_shardings=rep)
        # Only the progressive D takes a fade-in weight.
        self._d_kwargs = (lambda alpha: {"alpha": alpha}) if resolution is not None else (lambda alpha: {})

    # ---- state ----

    def init_state(self, key):
        """Returns a fresh TrainState, replicated over the mesh (on every host), from a PRNG key."""
        return jax.jit(self._init_state, out_shardings=replicated(self.mesh))(key)

    def _init_state(self, key):
        kg, kd, key = jax.random.split(key, 3)
        G, D = self.G, self.D
        args, kwargs = G.example_inputs()
        g = G.init({"params": kg}, *args, **kwargs)
        img = jnp.zeros((self.obj.mbstd_group_size or 1, G.img_resolution, G.img_resolution, G.img_channels))
        dc = jnp.zeros((img.shape[0], D.c_dim)) if D.c_dim else None
        d = D.init(kd, img, dc)
        return TrainState(step=jnp.zeros((), jnp.int32), g=g, d=d, g_ema=jax.tree_util.tree_map(jnp.copy, g),
                          g_opt=self.g_tx.init(g["params"]), d_opt=self.d_tx.init(d["params"]),
                          w_avg=jnp.zeros((G.w_dim,)), pl_mean=jnp.zeros(()), key=key)

    # ---- pieces ----

    def _keys(self, state, phase, n):
        return jax.random.split(jax.random.fold_in(jax.random.fold_in(state.key, state.step), phase), n)

    def _latents(self, key, n):
        z = jax.random.normal(key, (n, self.G.z_dim))
        return jax.lax.with_sharding_constraint(z, data_sharding(self.mesh))

    def _styles(self, g_vars, z, c, key, w_avg):
        """Returns (ws, new w_avg): mapping, w_avg tracking and style mixing."""
        k_cut, k_prob, k_z2 = jax.random.split(key, 3)
        G = self.G
        ws = G.apply(g_vars, z, c, method=Generator.map)
        w_avg = update_w_avg(w_avg, jax.lax.stop_gradient(ws), self.obj.w_avg_beta)
        if self.obj.style_mixing_prob > 0:
            # One cutoff for the whole batch, uniform in [1, num_ws), as the official code.
            cutoff = jax.random.randint(k_cut, (), 1, G.num_ws)
            mix = jax.random.uniform(k_prob, ()) < self.obj.style_mixing_prob
            cutoff = jnp.where(mix, cutoff, G.num_ws)
            z2 = jax.lax.with_sharding_constraint(jax.random.normal(k_z2, z.shape), data_sharding(self.mesh))
            ws = mix_styles(ws, G.apply(g_vars, z2, c, method=Generator.map), cutoff)
        return ws, w_avg

    def _contents(self, g_vars, key, n):
        """Returns content codes for n fresh content latents, or None without DAT."""
        if not self.G.has_content:
            return None
        return self.G.apply(g_vars, self._latents(key, n), method=Generator.map_content)

    def _synthesize(self, g_vars, ws, key, contents=None, alpha=1.0):
        return self.G.apply(g_vars, ws, "random", contents, self.resolution, alpha, rngs={"noise": key},
                            method=Generator.synthesize)

    def _run_g(self, g_vars, z, c, key, w_avg, alpha=1.0, diversity=False):
        """Returns (images, new w_avg, second images or None) for latents z, as the official `run_G`.

        With `diversity`, the second images share the styles and noise but not the content codes.
        """
        k_styles, k_noise, k_c1, k_c2 = jax.random.split(key, 4)
        ws, w_avg = self._styles(g_vars, z, c, k_styles, w_avg)
        img = self._synthesize(g_vars, ws, k_noise, self._contents(g_vars, k_c1, z.shape[0]), alpha)
        img2 = None
        if diversity:
            img2 = self._synthesize(g_vars, ws, k_noise, self._contents(g_vars, k_c2, z.shape[0]), alpha)
        return img, w_avg, img2

    def _reals(self, batch):
        return box_downsample(batch["image"], self.resolution or self.G.img_resolution)

    def _d(self, d_params, img, c, alpha=1.0):
        # Contiguous mbstd groups of mbstd_group_size: never across devices, and the same
        # groups on any number of devices. Group size 0: the whole batch of each device.
        group = self.obj.mbstd_group_size
        shards = img.shape[0] // group if group else self.mesh.devices.size
        return self.D.apply({"params": d_params}, img, c, num_shards=shards, **self._d_kwargs(alpha))

    # ---- phases ----

    def _g_main(self, state, batch, alpha):
        k_z, k_g = self._keys(state, 0, 2)
        c = batch.get("label")
        z = self._latents(k_z, self.obj.batch_size)
        diversity = self.obj.ds_weight > 0
        orthogonal = self.obj.orth_weight > 0

        def loss_fn(params):
            img, w_avg, img2 = self._run_g({**state.g, "params": params}, z, c, k_g, state.w_avg, alpha, diversity)
            adv = losses.g_nonsaturating_loss(self._d(state.d["params"], img, c, alpha))
            ds = losses.diversity_sensitive_loss(img, img2, self.obj.ds_margin) if diversity else 0.0
            orth = losses.orthogonality_loss(subspace_bases(params)) if orthogonal else 0.0
            return adv + self.obj.ds_weight * ds + self.obj.orth_weight * orth, (w_avg, adv, ds, orth)

        (_, (w_avg, adv, ds, orth)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g["params"])
        updates, g_opt = self.g_tx.update(grads, state.g_opt, state.g["params"])
        g = {**state.g, "params": optax.apply_updates(state.g["params"], updates)}
        metrics = {"loss/G": adv, **({"loss/ds": ds} if diversity else {}),
                   **({"loss/orth": orth} if orthogonal else {})}
        return state.replace(g=g, g_opt=g_opt, w_avg=w_avg), metrics

    def _g_reg(self, state, batch, alpha):
        k_z, k_g, k_pl = self._keys(state, 1, 3)
        n = self.obj.batch_size // self.obj.pl_batch_shrink
        c = batch.get("label")
        c = c[:n] if c is not None else None
        z = self._latents(k_z, n)

        def loss_fn(params):
            g_vars = {**state.g, "params": params}
            k_styles, k_noise, k_c = jax.random.split(k_g, 3)
            ws, w_avg = self._styles(g_vars, z, c, k_styles, state.w_avg)
            contents = self._contents(g_vars, k_c, n)
            synth = lambda w: self._synthesize(g_vars, w, k_noise, contents, alpha)
            res = self.resolution or self.G.img_resolution
            shape = (n, res, res, self.G.img_channels)
            noise = jax.lax.with_sharding_constraint(losses.pl_noise(k_pl, shape), data_sharding(self.mesh))
            lengths, _ = losses.path_lengths(synth, ws, noise)
            penalty, pl_mean = losses.path_length_penalty(lengths, state.pl_mean, self.obj.pl_decay)
            loss = jnp.mean(penalty) * self.obj.pl_weight * self.obj.pl_interval
            return loss, (w_avg, pl_mean, jnp.mean(penalty))

        (_, (w_avg, pl_mean, penalty)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g["params"])
        updates, g_opt = self.g_tx.update(grads, state.g_opt, state.g["params"])
        g = {**state.g, "params": optax.apply_updates(state.g["params"], updates)}
        return (state.replace(g=g, g_opt=g_opt, w_avg=w_avg, pl_mean=pl_mean),
                {"loss/pl_penalty": penalty, "pl_mean": pl_mean})

    def _d_main(self, state, batch, alpha):
        k_z, k_g = self._keys(state, 2, 2)
        c = batch.get("label")
        z = self._latents(k_z, self.obj.batch_size)
        fake, w_avg, _ = self._run_g(state.g, z, c, k_g, state.w_avg, alpha)
        fake = jax.lax.stop_gradient(fake)
        reals = self._reals(batch)
        r1_every_step = self.obj.r1_interval == 0 and self.obj.r1_gamma > 0

        def loss_fn(params):
            fake_logits = self._d(params, fake, c, alpha)
            if r1_every_step:
                r1, real_logits = losses.r1_penalty(lambda x: self._d(params, x, c, alpha), reals)
                reg = jnp.mean(r1) * (self.obj.r1_gamma / 2)
            else:
                real_logits, reg = self._d(params, reals, c, alpha), 0.0
            return losses.d_logistic_loss(real_logits, fake_logits) + reg, (real_logits, fake_logits)

        (loss, (real, fake_logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.d["params"])
        updates, d_opt = self.d_tx.update(grads, state.d_opt, state.d["params"])
        d = {**state.d, "params": optax.apply_updates(state.d["params"], updates)}
        metrics = {"loss/D": loss, "scores/real": jnp.mean(real), "scores/fake": jnp.mean(fake_logits)}
        return state.replace(d=d, d_opt=d_opt, w_avg=w_avg), metrics

    def _d_reg(self, state, batch, alpha):
        c = batch.get("label")
        reals = self._reals(batch)

        def loss_fn(params):
            r1, _ = losses.r1_penalty(lambda x: self._d(params, x, c, alpha), reals)
            return jnp.mean(r1) * (self.obj.r1_gamma / 2) * self.obj.r1_interval, jnp.mean(r1)

        (_, r1), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.d["params"])
        updates, d_opt = self.d_tx.update(grads, state.d_opt, state.d["params"])
        d = {**state.d, "params": optax.apply_updates(state.d["params"], updates)}
        return state.replace(d=d, d_opt=d_opt), {"loss/r1_penalty": r1}

    def _ema(self, state, cur_nimg):
        o = self.obj
        beta = o.ema_decay if o.ema_decay is not None else ema_beta(o.batch_size, o.ema_kimg, cur_nimg, o.ema_rampup)
        return state.replace(g_ema=ema_update(state.g_ema, state.g, beta), step=state.step + 1)

    # ---- one iteration ----

    def iteration(self, state, batch, step, alpha=1.0, cur_nimg=None):
        """Returns (state, metrics) after one iteration; `step` is the host's iteration count,
        alpha the fade-in weight (progressive growing), cur_nimg the images shown so far
        (default (step + 1) * batch_size)."""
        o, metrics = self.obj, {}
        alpha = jnp.float32(alpha)
        state, m = self.g_main(state, batch, alpha)
        metrics.update(m)
        if o.pl_weight > 0 and step % o.pl_interval == 0:
            state, m = self.g_reg(state, batch, alpha)
            metrics.update(m)
        state, m = self.d_main(state, batch, alpha)
        metrics.update(m)
        if o.r1_interval and o.r1_gamma > 0 and step % o.r1_interval == 0:
            state, m = self.d_reg(state, batch, alpha)
            metrics.update(m)
        cur_nimg = (step + 1) * o.batch_size if cur_nimg is None else cur_nimg
        state = self.ema(state, jnp.float32(cur_nimg))
        return state, metrics

"""Training phases as pure functions, jit-compiled once each over a data-parallel mesh.

An iteration runs, as StyleGAN2-ADA's loop does: G main; G path-length reg (every
`pl_interval` iterations, its own Adam step); D main (+ R1 when `r1_interval` is 0); D R1
reg (every `r1_interval` iterations, its own Adam step); then the G_ema update. Each phase
is a separate jitted function of (state, batch), so the four never retrace whatever the
schedule, and the schedule lives in Python where it costs nothing.
"""

import collections
import dataclasses
from typing import Optional

import jax
import jax.numpy as jnp
import optax

from jaxstyle import losses
from jaxstyle.models import Discriminator, Generator, mix_styles, update_w_avg
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
    mbstd_group_size: int = 4

    def __post_init__(self):
        if self.batch_size % self.mbstd_group_size:
            raise ValueError(f"batch_size {self.batch_size} must be a multiple of the minibatch-"
                             f"stddev group size {self.mbstd_group_size}")
        if self.pl_weight and self.batch_size % self.pl_batch_shrink:
            raise ValueError(f"batch_size {self.batch_size} must be a multiple of pl_batch_shrink")


class Trainer:
    """Builds the train state and the jitted phases for a (G, D, objective, mesh)."""

    def __init__(self, G: Generator, D: Discriminator, objective: Objective, mesh):
        self.G, self.D, self.obj, self.mesh = G, D, objective, mesh
        o = objective
        # As StyleGAN2-ADA, the lazy correction depends on the interval alone (also with weight 0).
        self.g_tx = lazy_adam(o.g_lr, o.betas, o.eps, o.pl_interval or None)
        self.d_tx = lazy_adam(o.d_lr, o.betas, o.eps, o.r1_interval or None)
        rep, data = replicated(mesh), data_sharding(mesh)
        self.traces = collections.Counter()  # phase name -> times traced (a retrace is a bug)

        def jit(fn, in_shardings=(rep, data), out_shardings=(rep, rep)):
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

    # ---- state ----

    def init_state(self, key):
        """Returns a fresh TrainState, replicated over the mesh (on every host), from a PRNG key."""
        return jax.jit(self._init_state, out_shardings=replicated(self.mesh))(key)

    def _init_state(self, key):
        kg, kd, key = jax.random.split(key, 3)
        G, D = self.G, self.D
        c = jnp.zeros((1, G.c_dim)) if G.c_dim else None
        g = G.init({"params": kg}, jnp.zeros((1, G.z_dim)), c, noise_mode="const")
        img = jnp.zeros((self.obj.mbstd_group_size, G.img_resolution, G.img_resolution, G.img_channels))
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

    def _synthesize(self, g_vars, ws, key):
        return self.G.apply(g_vars, ws, "random", rngs={"noise": key}, method=Generator.synthesize)

    def _run_g(self, g_vars, z, c, key, w_avg):
        """Returns (images, new w_avg) for latents z, as the official `run_G`."""
        k_styles, k_noise = jax.random.split(key)
        ws, w_avg = self._styles(g_vars, z, c, k_styles, w_avg)
        return self._synthesize(g_vars, ws, k_noise), w_avg

    def _d(self, d_params, img, c):
        # Contiguous mbstd groups of mbstd_group_size: never across devices, and the same
        # groups on any number of devices.
        shards = img.shape[0] // self.obj.mbstd_group_size
        return self.D.apply({"params": d_params}, img, c, num_shards=shards)

    # ---- phases ----

    def _g_main(self, state, batch):
        k_z, k_g = self._keys(state, 0, 2)
        c = batch.get("label")
        z = self._latents(k_z, self.obj.batch_size)

        def loss_fn(params):
            img, w_avg = self._run_g({**state.g, "params": params}, z, c, k_g, state.w_avg)
            return losses.g_nonsaturating_loss(self._d(state.d["params"], img, c)), w_avg

        (loss, w_avg), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g["params"])
        updates, g_opt = self.g_tx.update(grads, state.g_opt, state.g["params"])
        g = {**state.g, "params": optax.apply_updates(state.g["params"], updates)}
        return state.replace(g=g, g_opt=g_opt, w_avg=w_avg), {"loss/G": loss}

    def _g_reg(self, state, batch):
        k_z, k_g, k_pl = self._keys(state, 1, 3)
        n = self.obj.batch_size // self.obj.pl_batch_shrink
        c = batch.get("label")
        c = c[:n] if c is not None else None
        z = self._latents(k_z, n)

        def loss_fn(params):
            g_vars = {**state.g, "params": params}
            k_styles, k_noise = jax.random.split(k_g)
            ws, w_avg = self._styles(g_vars, z, c, k_styles, state.w_avg)
            synth = lambda w: self._synthesize(g_vars, w, k_noise)
            shape = (n, self.G.img_resolution, self.G.img_resolution, self.G.img_channels)
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

    def _d_main(self, state, batch):
        k_z, k_g = self._keys(state, 2, 2)
        c = batch.get("label")
        z = self._latents(k_z, self.obj.batch_size)
        fake, w_avg = self._run_g(state.g, z, c, k_g, state.w_avg)
        fake = jax.lax.stop_gradient(fake)
        r1_every_step = self.obj.r1_interval == 0 and self.obj.r1_gamma > 0

        def loss_fn(params):
            fake_logits = self._d(params, fake, c)
            if r1_every_step:
                r1, real_logits = losses.r1_penalty(lambda x: self._d(params, x, c), batch["image"])
                reg = jnp.mean(r1) * (self.obj.r1_gamma / 2)
            else:
                real_logits, reg = self._d(params, batch["image"], c), 0.0
            return losses.d_logistic_loss(real_logits, fake_logits) + reg, (real_logits, fake_logits)

        (loss, (real, fake_logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.d["params"])
        updates, d_opt = self.d_tx.update(grads, state.d_opt, state.d["params"])
        d = {**state.d, "params": optax.apply_updates(state.d["params"], updates)}
        metrics = {"loss/D": loss, "scores/real": jnp.mean(real), "scores/fake": jnp.mean(fake_logits)}
        return state.replace(d=d, d_opt=d_opt, w_avg=w_avg), metrics

    def _d_reg(self, state, batch):
        c = batch.get("label")

        def loss_fn(params):
            r1, _ = losses.r1_penalty(lambda x: self._d(params, x, c), batch["image"])
            return jnp.mean(r1) * (self.obj.r1_gamma / 2) * self.obj.r1_interval, jnp.mean(r1)

        (_, r1), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.d["params"])
        updates, d_opt = self.d_tx.update(grads, state.d_opt, state.d["params"])
        d = {**state.d, "params": optax.apply_updates(state.d["params"], updates)}
        return state.replace(d=d, d_opt=d_opt), {"loss/r1_penalty": r1}

    def _ema(self, state, cur_nimg):
        beta = ema_beta(self.obj.batch_size, self.obj.ema_kimg, cur_nimg, self.obj.ema_rampup)
        return state.replace(g_ema=ema_update(state.g_ema, state.g, beta), step=state.step + 1)

    # ---- one iteration ----

    def iteration(self, state, batch, step):
        """Returns (state, metrics) after one iteration; `step` is the host's iteration count."""
        o, metrics = self.obj, {}
        state, m = self.g_main(state, batch)
        metrics.update(m)
        if o.pl_weight > 0 and step % o.pl_interval == 0:
            state, m = self.g_reg(state, batch)
            metrics.update(m)
        state, m = self.d_main(state, batch)
        metrics.update(m)
        if o.r1_interval and o.r1_gamma > 0 and step % o.r1_interval == 0:
            state, m = self.d_reg(state, batch)
            metrics.update(m)
        state = self.ema(state, jnp.float32((step + 1) * o.batch_size))
        return state, metrics

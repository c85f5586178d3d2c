"""Projection (image -> latent codes) as StyleGAN2-ADA's projector.py, and in W+ as Image2StyleGAN.

The official procedure (NVlabs/stylegan2-ada-pytorch `projector.py`), number for number:

- start from w_avg, the mean of w over 10,000 mapped z (NumPy RandomState(123)), with the scalar
  spread w_std = sqrt(sum over samples of ||w - w_avg||^2 / N);
- Adam, betas (0.9, 0.999), for num_steps (1000) steps; at t = step / num_steps the learning rate
  is 0.1 * (0.5 - 0.5 cos(pi * min(1, (1 - t) / 0.25))) * min(1, t / 0.05), so step 0 moves nothing;
- before each synthesis w is perturbed by N(0, 1) * w_std * 0.05 * max(0, 1 - t / 0.75)^2;
- the noise maps (every `noise_const` buffer) start as fresh N(0, 1) draws and are optimised too,
  with the regulariser sum over maps, and over each map's 2x2 average-pooled pyramid down to 8x8,
  of mean(n * roll(n, 1, x))^2 + mean(n * roll(n, 1, y))^2 at weight 1e5, and renormalised to
  zero mean and unit variance after every step;
- the distance is LPIPS (VGG16, lin v0.1) between target and synthesis; images above 256 px are
  area-downsampled to 256 first, smaller ones compared at their own size, as official (toyfaces at
  32 px: VGG's last stage, relu5_3, sees 2x2). Distances live in `projection_distance`.

Spaces: "w" optimises one w broadcast to every slot (official); "w+" one w per slot, the
extended space of Image2StyleGAN (Abdal et al. 2019, which started from the mean w and used a VGG
perceptual + pixel MSE loss); here the official schedule and distance serve both spaces, so the
two differ only in the space. A DiagonalGAN is projected into its style and content codes, each
started at its own mapping network's mean (z from RandomState(123) for style, 124 for content)
and perturbed with its own spread; it has no noise maps.
Distances: "lpips" (default), "pixel" (mean squared error on [-1, 1] images) and "pixel+oracle"
(pixel + oracle_weight * mean squared difference of the toyfaces oracle's 256 features).

Several images project at once: the per-image loss is vmapped and summed, and Adam acts
element-wise, so no image's gradient or update depends on another's (only which random draws
it gets depends on its place in the batch). One jit-compiled `lax.scan` runs all the steps.

    model = for_stylegan2(G, variables)                 # or for_diagonalgan(net)
    result = project(model, targets, ProjectionConfig(num_steps=500, space="w+"))
"""

import dataclasses
import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxstyle.editing.projection_distance import (DISTANCES, Distance, lpips_features,  # noqa: F401
                                                   lpips_from_features, make_distance)
from jaxstyle.models.generator import Generator

SPACES = ("w", "w+")
NOISE_LEAF = "noise_const"


@dataclasses.dataclass(frozen=True)
class ProjectionConfig:
    """The official projector's hyperparameters (projector.py defaults), plus space and noise."""

    num_steps: int = 1000
    space: str = "w"                       # "w" (official) | "w+" (Image2StyleGAN)
    optimize_noise: bool = True            # official: always; False keeps the model's constant noise
    initial_learning_rate: float = 0.1
    lr_rampdown_length: float = 0.25
    lr_rampup_length: float = 0.05
    initial_noise_factor: float = 0.05
    noise_ramp_length: float = 0.75
    regularize_noise_weight: float = 1e5
    w_avg_samples: int = 10000

    def __post_init__(self):
        if self.space not in SPACES:
            raise ValueError(f"unknown space {self.space!r}: use 'w' or 'w+'")
        if not isinstance(self.num_steps, int) or self.num_steps < 1:
            raise ValueError(f"num_steps must be a positive integer, got {self.num_steps!r}")


# ------------------------------------------------------------------------------------------------
# The official schedules and the noise regulariser, as pure functions.

def learning_rate(step, num_steps, initial_learning_rate=0.1, rampdown_length=0.25, rampup_length=0.05):
    """Returns the official learning rate at `step`: cosine ramp-down over the last 25%, linear
    ramp-up over the first 5% (zero at step 0)."""
    t = jnp.asarray(step, jnp.float32) / num_steps
    ramp = jnp.minimum(1.0, (1.0 - t) / rampdown_length)
    # 0.5 - 0.5 cos(pi r) written as sin(pi r / 2)^2: equal, without float32 cancellation near r = 0.
    ramp = jnp.square(jnp.sin(0.5 * jnp.pi * ramp))
    return initial_learning_rate * ramp * jnp.minimum(1.0, t / rampup_length)


def latent_noise_scale(step, num_steps, w_std, initial_noise_factor=0.05, noise_ramp_length=0.75):
    """Returns the standard deviation of the noise added to w at `step`: w_std * factor *
    max(0, 1 - t / ramp)^2."""
    t = jnp.asarray(step, jnp.float32) / num_steps
    return w_std * initial_noise_factor * jnp.maximum(0.0, 1.0 - t / noise_ramp_length) ** 2


def noise_regularization(maps):
    """Returns the official noise regulariser of a list of (H, W) noise maps: squared mean
    autocorrelation at shift 1 along x and y, summed over a 2x2 average-pooled pyramid down to 8x8."""
    total = 0.0
    for n in maps:
        while True:
            total += jnp.mean(n * jnp.roll(n, 1, axis=1)) ** 2 + jnp.mean(n * jnp.roll(n, 1, axis=0)) ** 2
            if n.shape[0] <= 8:
                break
            h, w = n.shape
            n = n.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    return total


def normalize_noise(n):
    """Returns the map n shifted to zero mean and scaled to unit mean square (official, per map)."""
    n = n - jnp.mean(n)
    return n * jax.lax.rsqrt(jnp.mean(jnp.square(n)))


def latent_stats(mapping, z_dim, num_samples=10000, seed=123, chunk=2500):
    """Returns (code_avg (dim,), code_std scalar) of `mapping` ((N, z_dim) -> (N, dim)) over
    num_samples z from NumPy RandomState(seed), as official: std = sqrt(sum ||w - avg||^2 / N)."""
    z = np.random.RandomState(seed).randn(num_samples, z_dim).astype(np.float32)
    w = np.concatenate([np.asarray(mapping(jnp.asarray(z[i:i + chunk]))) for i in range(0, num_samples, chunk)])
    w = w.astype(np.float64)
    avg = w.mean(axis=0)
    return jnp.asarray(avg, jnp.float32), float(np.sqrt(np.sum((w - avg) ** 2) / num_samples))


# ------------------------------------------------------------------------------------------------
# A generator seen as synthesis(codes, noise maps).

@dataclasses.dataclass(frozen=True)
class ProjectionModel:
    """A generator prepared for projection: its codes' means and spreads, and its noise maps."""

    G: Generator
    variables: Any                         # 'params' and, with noise, 'buffers'
    code_avg: dict                         # code name ("w"; or "style", "content") -> (dim,)
    code_std: dict                         # code name -> float
    resolution: int                        # output size (a growing DiagonalGAN renders below G's)

    @property
    def code_names(self):
        return tuple(self.code_avg)

    @property
    def num_ws(self):
        return self.G.num_ws

    @property
    def has_noise(self):
        """True when the synthesis network has noise maps to optimise."""
        return bool(noise_maps(self.variables.get("buffers", {})))


def noise_maps(buffers):
    """Returns the (H, W) noise_const arrays in `buffers`, in a fixed (path) order."""
    flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(buffers))
    return [flat[k] for k in sorted(flat) if k[-1] == NOISE_LEAF]


def for_stylegan2(G, variables, num_samples=10000):
    """Returns the ProjectionModel of a StyleGAN2 (G, variables with 'params' and 'buffers')."""
    if G.has_content:
        raise ValueError("this generator has content codes: use for_diagonalgan")
    if G.c_dim:
        raise ValueError("projection of conditional generators (c_dim > 0) is not supported")
    mapping = jax.jit(lambda z: G.apply(variables, z, method=Generator.map)[:, 0])
    avg, std = latent_stats(mapping, G.z_dim, num_samples)
    return ProjectionModel(G, variables, {"w": avg}, {"w": std}, G.img_resolution)


def for_diagonalgan(net, num_samples=10000):
    """Returns the ProjectionModel of a DiagonalGAN handle: style and content codes."""
    style = latent_stats(net.style_mapping, net.G.z_dim, num_samples)
    content = latent_stats(net.content_mapping, net.G.z_dim, num_samples, seed=124)
    return ProjectionModel(net.G, net.variables, {"style": style[0], "content": content[0]},
                           {"style": style[1], "content": content[1]}, net.resolution)


def synthesize(G, resolution, variables, codes, buffers=None):
    """Returns images (B, r, r, 3) of codes {name: (B, S, dim)} (S = 1 broadcasts to every slot),
    with noise from `buffers` (default: the model's)."""
    full = {k: jnp.broadcast_to(v, (v.shape[0], G.num_ws, v.shape[-1])) for k, v in codes.items()}
    if buffers is not None:
        variables = {**variables, "buffers": buffers}
    if G.has_content:
        return G.apply(variables, full["style"], "const", full["content"], resolution,
                       method=Generator.synthesize)
    return G.apply(variables, full["w"], "const", method=Generator.synthesize)


# ------------------------------------------------------------------------------------------------
# The optimisation.

@dataclasses.dataclass(frozen=True)
class Projection:
    """What project returns; every array has the images on its first axis (after steps)."""

    codes: dict                            # name -> (B, num_ws, dim): the final codes per slot
    buffers: Any                           # optimised noise maps, each (B, H, W), or None
    images: Any                            # (B, r, r, 3) synthesis of the final codes and noise
    distances: Any                         # (num_steps, B): distance at each step (before its update)
    final_distances: Any                   # (B,): distance of `images` from the targets
    history: dict                          # name -> (num_steps, B, S, dim): codes after each step


def initial_codes(model, batch, space):
    """Returns {name: (batch, S, dim)} filled with each code's mean; S = 1 for "w", num_ws for "w+"."""
    slots = 1 if space == "w" else model.num_ws
    return {k: jnp.broadcast_to(v, (batch, slots, v.shape[-1])) for k, v in model.code_avg.items()}


def initial_noise(model, batch, key):
    """Returns the model's buffers with every noise map replaced by (batch, H, W) N(0, 1) draws."""
    flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(model.variables["buffers"]))
    keys = dict(zip(sorted(flat), jax.random.split(key, len(flat))))
    return flax.traverse_util.unflatten_dict(
        {k: jax.random.normal(keys[k], (batch,) + v.shape) if k[-1] == NOISE_LEAF else v
         for k, v in flat.items()})


def reconstruction_distance(model, distance, dist_params, target, codes, buffers=None):
    """Returns the (B,) distance of the synthesis of codes {name: (B, S, dim)} (per-image noise
    buffers (B, H, W) or the model's) from target features; differentiable in codes and buffers."""
    if buffers is None:
        images = synthesize(model.G, model.resolution, model.variables, codes)
        return distance(dist_params, target, images)

    def one(codes_i, buffers_i, target_i):
        img = synthesize(model.G, model.resolution, model.variables,
                         jax.tree.map(lambda c: c[None], codes_i), buffers_i)
        return distance(dist_params, jax.tree.map(lambda t: t[None], target_i), img)[0]
    return jax.vmap(one)(codes, buffers, target)


def project(model, targets, config=ProjectionConfig(), distance="lpips", key=None, dist=None):
    """Returns the Projection of targets (B, r, r, 3) float in [-1, 1] (r = model.resolution).

    distance: a name from DISTANCES, or pass dist=(Distance, params) to reuse loaded weights.
    key: PRNG key for the initial noise maps and the per-step latent noise (default key(0)).
    """
    targets = jnp.asarray(targets, jnp.float32)
    r = model.resolution
    if targets.ndim != 4 or targets.shape[1:] != (r, r, 3):
        raise ValueError(f"targets must be (B, {r}, {r}, 3) images for this {r}x{r} model, got {targets.shape}")
    fn, dist_params = dist if dist is not None else make_distance(distance, resolution=r)
    key = jax.random.key(0) if key is None else key
    optimize_noise = config.optimize_noise and model.has_noise
    stds = {k: jnp.float32(v) for k, v in model.code_std.items()}
    codes, buffers, images, dists, final, history = _project(
        model.G, r, config, fn, optimize_noise, model.variables, dist_params, targets,
        model.code_avg, stds, key)
    return Projection(codes, buffers, images, dists, final, history)


@functools.partial(jax.jit, static_argnames=("G", "resolution", "config", "fn", "optimize_noise"))
def _project(G, resolution, config, fn, optimize_noise, variables, dist_params, targets, code_avg, code_std, key):
    model = ProjectionModel(G, variables, code_avg, code_std, resolution)
    batch, steps = targets.shape[0], config.num_steps
    target = fn.features(dist_params, targets)
    key_noise, key_steps = jax.random.split(key)
    params = {"codes": initial_codes(model, batch, config.space)}
    if optimize_noise:
        params["buffers"] = initial_noise(model, batch, key_noise)

    def loss(params, step, key):
        scale = latent_noise_scale(step, steps, 1.0, config.initial_noise_factor, config.noise_ramp_length)
        keys = dict(zip(model.code_names, jax.random.split(key, len(model.code_names))))
        noisy = {k: c + jax.random.normal(keys[k], c.shape) * scale * code_std[k]
                 for k, c in params["codes"].items()}
        dists = reconstruction_distance(model, fn, dist_params, target, noisy, params.get("buffers"))
        reg = 0.0
        if optimize_noise:
            reg = jax.vmap(lambda b: noise_regularization(noise_maps(b)))(params["buffers"])
        # A sum of independent per-image losses: with element-wise Adam each image moves as alone.
        return jnp.sum(dists + config.regularize_noise_weight * reg), dists

    schedule = functools.partial(learning_rate, num_steps=steps,
                                 initial_learning_rate=config.initial_learning_rate,
                                 rampdown_length=config.lr_rampdown_length,
                                 rampup_length=config.lr_rampup_length)
    optimizer = optax.adam(schedule, b1=0.9, b2=0.999, eps=1e-8)

    def step_fn(carry, step):
        params, opt_state = carry
        grads, dists = jax.grad(loss, has_aux=True)(params, step, jax.random.fold_in(key_steps, step))
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        if optimize_noise:
            params["buffers"] = _normalize_buffers(params["buffers"])
        return (params, opt_state), (dists, params["codes"])

    (params, _), (dists, history) = jax.lax.scan(step_fn, (params, optimizer.init(params)), jnp.arange(steps))
    codes = {k: jnp.broadcast_to(v, (batch, G.num_ws, v.shape[-1])) for k, v in params["codes"].items()}
    buffers = params.get("buffers")
    images = _render(model, codes, buffers)
    return codes, buffers, images, dists, fn(dist_params, target, images), history


def _normalize_buffers(buffers):
    flat = flax.traverse_util.flatten_dict(buffers)
    per_image = jax.vmap(normalize_noise)
    return flax.traverse_util.unflatten_dict(
        {k: per_image(v) if k[-1] == NOISE_LEAF else v for k, v in flat.items()})


def _render(model, codes, buffers):
    if buffers is None:
        return synthesize(model.G, model.resolution, model.variables, codes)
    one = lambda c, b: synthesize(model.G, model.resolution, model.variables,
                                  jax.tree.map(lambda x: x[None], c), b)[0]
    return jax.vmap(one)(codes, buffers)


def render(model, codes, buffers=None):
    """Returns images (B, r, r, 3) of codes {name: (B, S, dim)} with per-image noise buffers
    (each map (B, H, W), as Projection.buffers) or the model's own constant noise."""
    return _render_jit(model.G, model.resolution, model.variables, codes, buffers)


@functools.partial(jax.jit, static_argnames=("G", "resolution"))
def _render_jit(G, resolution, variables, codes, buffers):
    return _render(ProjectionModel(G, variables, {}, {}, resolution), codes, buffers)


if __name__ == "__main__":  # python -m jaxstyle.editing.projection: the command line
    import sys

    from jaxstyle.editing.projection_cli import main
    sys.exit(main())

"""The train state: every array a run needs to continue exactly, as one pytree."""

import flax.struct
import jax
import jax.numpy as jnp
import optax


class TrainState(flax.struct.PyTreeNode):
    """G and D weights, G_ema, both Adam states, w_avg, pl_mean, step and the run's PRNG key."""

    step: jax.Array            # completed training iterations (one G step and one D step each)
    g: dict                    # G variables: 'params' (trained) and 'buffers' (constant noise)
    d: dict                    # D variables: 'params'
    g_ema: dict                # exponential moving average of g (what samples and metrics use)
    g_opt: optax.OptState
    d_opt: optax.OptState
    w_avg: jax.Array           # tracked mean of w, for truncation
    pl_mean: jax.Array         # EMA of path lengths, the path-length regulariser's target
    key: jax.Array             # typed PRNG key; steps fold in the step number


def lazy_adam(lr, betas=(0.0, 0.99), eps=1e-8, reg_interval=None):
    """Returns Adam with the lazy-regularisation correction: lr * c and betas ** c, c = N / (N + 1).

    A regulariser applied every N steps with its own optimizer step makes N + 1 updates per
    N iterations; scaling keeps the effective step size and momentum horizon unchanged
    (StyleGAN2, appendix B). reg_interval None or 0 means no lazy regularisation.
    """
    c = reg_interval / (reg_interval + 1) if reg_interval else 1.0
    return optax.adam(lr * c, b1=betas[0] ** c, b2=betas[1] ** c, eps=eps)


def ema_beta(batch_size, ema_kimg, cur_nimg=None, rampup=None):
    """Returns the G_ema decay 0.5 ** (batch / ema_nimg), ema_nimg optionally ramped up with nimg."""
    ema_nimg = ema_kimg * 1000.0
    if rampup is not None:
        ema_nimg = jnp.minimum(ema_nimg, cur_nimg * rampup)
    return 0.5 ** (batch_size / jnp.maximum(ema_nimg, 1e-8))


def ema_update(ema, new, beta):
    """Returns beta * ema + (1 - beta) * new for params; buffers are copied from new."""
    params = jax.tree_util.tree_map(lambda e, p: p + beta * (e - p), ema["params"], new["params"])
    return {**new, "params": params}

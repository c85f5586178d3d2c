"""The StyleGAN2 objective as pure functions (StyleGAN2-ADA `training/loss.py`), with
DiagonalGAN's diversity-sensitive loss and EigenGAN's orthogonality regulariser.

Each returns a scalar (or per-sample values) from logits, gradients or images; the training
steps compose them. Gains for lazy regularisation (x interval) are applied by the caller.
"""

import math

import jax
import jax.numpy as jnp


def d_logistic_loss(real_logits, fake_logits):
    """Returns mean softplus(D(fake)) + mean softplus(-D(real)) (non-saturating D loss)."""
    return jnp.mean(jax.nn.softplus(fake_logits)) + jnp.mean(jax.nn.softplus(-real_logits))


def g_nonsaturating_loss(fake_logits):
    """Returns mean softplus(-D(G(z))) (non-saturating G loss)."""
    return jnp.mean(jax.nn.softplus(-fake_logits))


def r1_penalty(d_fn, reals):
    """Returns (per-sample ||dD(x)/dx||^2 summed over H, W, C, logits D(reals))."""
    logits, vjp = jax.vjp(d_fn, reals)
    (grads,) = vjp(jnp.ones_like(logits))  # gradient of sum(D(x)): samples are independent
    return jnp.sum(jnp.square(grads), axis=(1, 2, 3)), logits


def pl_noise(key, image_shape):
    """Returns y ~ N(0, I) / sqrt(H * W) of an NHWC image batch's shape (path-length probe)."""
    return jax.random.normal(key, image_shape) / math.sqrt(image_shape[1] * image_shape[2])


def path_lengths(synthesis_fn, ws, noise):
    """Returns (per-sample path lengths, images): |J_w^T y| for the probe images y = `noise`.

    Length = sqrt(mean over w slots of sum over w_dim of g^2), g = d sum(G(w) * y) / dw.
    """
    images, vjp = jax.vjp(synthesis_fn, ws)
    (grads,) = vjp(noise.astype(images.dtype))
    return jnp.sqrt(jnp.mean(jnp.sum(jnp.square(grads), axis=2), axis=1)), images


def path_length_penalty(lengths, pl_mean, decay=0.01):
    """Returns (per-sample (length - new pl_mean)^2, new pl_mean); pl_mean is an EMA, not differentiated."""
    new_mean = pl_mean + decay * (jnp.mean(jax.lax.stop_gradient(lengths)) - pl_mean)
    return jnp.square(lengths - new_mean), new_mean


def diversity_sensitive_loss(images1, images2, margin=0.3):
    """Returns max(0, margin - mean |G(s, c1) - G(s, c2)|) (DiagonalGAN's diversity-sensitive loss).

    Both images stay in the graph: the loss pushes two content codes under one style apart
    until their mean absolute difference reaches `margin`, then stops.
    """
    return jnp.maximum(0.0, margin - jnp.mean(jnp.abs(images1 - images2)))


def orthogonality_loss(bases):
    """Returns sum over U in `bases` of 0.5 ||U_f^T U_f - I||_F^2, U_f = U reshaped to (-1, q)
    (EigenGAN's regulariser: it pushes each layer's q basis vectors to be orthonormal).

    q is U's last axis; an empty list gives 0 (SEGAN mode 3 has no bases).
    """
    total = jnp.zeros((), jnp.float32)
    for U in bases:
        flat = jnp.reshape(U, (-1, U.shape[-1])).astype(jnp.float32)
        gram = flat.T @ flat
        total = total + 0.5 * jnp.sum(jnp.square(gram - jnp.eye(gram.shape[0], dtype=gram.dtype)))
    return total

"""Generator(remat=True) recomputes synthesis blocks in the backward pass: same parameters, same
images and the same gradients as without it (it trades memory for compute, nothing else)."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.models import Generator


def test_remat_changes_nothing_but_memory():
    kwargs = dict(z_dim=8, w_dim=8, img_resolution=8, mapping_layers=1, channel_base=32, channel_max=8)
    plain, remat = Generator(**kwargs), Generator(remat=True, **kwargs)
    z = jax.random.normal(jax.random.key(0), (2, 8))
    variables = jax.jit(lambda z: plain.init({"params": jax.random.key(1)}, z, noise_mode="const"))(z)
    assert jax.tree.structure(variables) == jax.tree.structure(
        jax.eval_shape(lambda: remat.init({"params": jax.random.key(1)}, z, noise_mode="const")))

    def loss(G):
        return lambda params: jnp.sum(jnp.sin(G.apply({**variables, "params": params}, z, noise_mode="random",
                                                      rngs={"noise": jax.random.key(2)})))
    for a, b in zip(jax.tree.leaves(jax.jit(jax.grad(loss(plain)))(variables["params"])),
                    jax.tree.leaves(jax.jit(jax.grad(loss(remat)))(variables["params"]))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * float(np.abs(b).max()))   # float re-association
    jaxpr = str(jax.make_jaxpr(jax.grad(loss(remat)))(variables["params"]))
    assert "remat" in jaxpr or "checkpoint" in jaxpr     # the blocks really are rematerialised

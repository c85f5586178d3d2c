"""Compiled temporary memory of G's parameter gradient at 256x256 (paper256 widths), without and
with Generator(remat=True), from XLA's memory analysis:

    python benchmarks/remat_memory.py [batch]        # default batch 16
"""

import sys
import time

import jax
import jax.numpy as jnp

from jaxstyle.models import Generator


def main(batch):
    for remat in (False, True):
        G = Generator(z_dim=512, w_dim=512, img_resolution=256, channel_base=16384, channel_max=512, remat=remat)
        z = jnp.zeros((batch, 512))
        variables = jax.eval_shape(lambda: G.init({"params": jax.random.key(0)}, z, noise_mode="const"))

        def loss(params, buffers, z):
            return jnp.sum(G.apply({"params": params, "buffers": buffers}, z, noise_mode="const") ** 2)
        t0 = time.perf_counter()
        compiled = jax.jit(jax.grad(loss)).lower(variables["params"], variables["buffers"], z).compile()
        temp = compiled.memory_analysis().temp_size_in_bytes
        print(f"{jax.default_backend()} batch {batch} remat {remat}: temp {temp / 2**20:.0f} MiB, "
              f"compile {time.perf_counter() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 16)

"""Sample a grid of images from a randomly initialised StyleGAN2 generator or pretrained weights
(an official .pkl, a rosinality .pt or a fixture-format .npz), through the jit-compiled G_ema path.

    python -m jaxstyle.sample --resolution 32 --seed 0 --out runs/sample/grid.png
    python -m jaxstyle.sample --weights tests/fixtures/stylegan2_ada_visible.npz --out grid.png

For a train.py run, the editing tools (python -m jaxstyle.editing.figures ...) take --workdir.
"""

import argparse
import sys
import time

import jax
import jax.numpy as jnp

from jaxstyle.images import make_grid, save_png, to_uint8
from jaxstyle.models import Generator
from jaxstyle.models.synthesis import check_resolution


def random_generator(resolution, seed, channel_base=2048, channel_max=64, z_dim=64):
    """Returns (Generator, variables, w_avg) with freshly initialised weights."""
    G = Generator(z_dim=z_dim, w_dim=z_dim, img_resolution=resolution, mapping_layers=2,
                  channel_base=channel_base, channel_max=channel_max)
    variables = G.init({"params": jax.random.key(seed)}, jnp.zeros((1, z_dim)), noise_mode="const")
    return G, variables, jnp.zeros((z_dim,))


def sample_grid(G, variables, w_avg, seed, rows, cols, psi=1.0, noise_mode="const"):
    """Returns a uint8 grid image of rows*cols samples from latents drawn with `seed`."""
    z = jax.random.normal(jax.random.key(seed), (rows * cols, G.z_dim))

    @jax.jit
    def generate(z, key):
        return G.apply(variables, z, None, w_avg, psi, None, noise_mode, rngs={"noise": key})

    images = generate(z, jax.random.key(seed + 1))
    return make_grid(to_uint8(images), rows, cols)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/sample/grid.png", help="PNG file to write")
    p.add_argument("--weights", help="an official .pkl, a rosinality .pt or a fixture-format .npz")
    p.add_argument("--resolution", type=int, default=32, help="random init: image size, 4..1024")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rows", type=int, default=4)
    p.add_argument("--cols", type=int, default=4)
    p.add_argument("--psi", type=float, default=1.0, help="truncation psi (weights only)")
    p.add_argument("--noise-mode", choices=("const", "random", "none"), default="const")
    args = p.parse_args(argv)
    if args.rows < 1 or args.cols < 1:
        p.error("--rows and --cols must be positive")
    start = time.time()
    try:
        if args.weights:
            from jaxstyle.interop import load_stylegan2_ada
            net = load_stylegan2_ada(args.weights)
            G, variables, w_avg = net.G, net.g_vars, net.w_avg
        else:
            check_resolution(args.resolution)
            G, variables, w_avg = random_generator(args.resolution, args.seed)
            if args.psi != 1.0:
                p.error("--psi needs --weights (a random generator has no tracked w_avg)")
        grid = sample_grid(G, variables, w_avg, args.seed, args.rows, args.cols, args.psi,
                           args.noise_mode)
        save_png(grid, args.out)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {args.rows}x{args.cols} samples at {G.img_resolution}x"
          f"{G.img_resolution} in {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

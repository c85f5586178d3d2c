"""Convolution layouts on this backend: NHWC/HWIO (what jaxstyle uses) against NCHW/OIHW (the
official code's), a 3x3 SAME convolution's forward pass and both gradients, in one run.

    python benchmarks/layout.py [--shapes 32x32x32x64 16x32x32x256 8x64x64x512] [--reps 7]

Prints and writes (benchmarks/results/layout-<backend>.json) the median milliseconds per layout
and pass. XLA picks its own physical layouts inside a jitted program, so this measures what the
logical layout at the program boundary costs, including any transposes XLA inserts.
"""

import argparse

import jax
import jax.numpy as jnp

from timing import median_time, write_rows

LAYOUTS = {"NHWC": ("NHWC", "HWIO", "NHWC"), "NCHW": ("NCHW", "OIHW", "NCHW")}


def milliseconds(fn, args, reps):
    fn = jax.jit(fn)
    return 1000 * median_time(lambda: jax.block_until_ready(fn(*args)), reps)[0]


def measure(shape, layout, reps):
    b, h, w, c = shape
    kx, kw = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (b, h, w, c) if layout == "NHWC" else (b, c, h, w))
    k = jax.random.normal(kw, (3, 3, c, c) if layout == "NHWC" else (c, c, 3, 3)) / (9 * c) ** 0.5
    conv = lambda x, k: jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=LAYOUTS[layout])
    loss = lambda x, k: jnp.sum(conv(x, k) ** 2)
    return dict(forward_ms=milliseconds(conv, (x, k), reps),
                input_grad_ms=milliseconds(jax.grad(loss, 0), (x, k), reps),
                weight_grad_ms=milliseconds(jax.grad(loss, 1), (x, k), reps))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shapes", nargs="+", default=["32x32x32x64", "16x32x32x256", "8x64x64x512"])
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    rows = []
    print(f"{'shape (NHWC)':>14} {'layout':>6} {'forward ms':>11} {'dX ms':>9} {'dW ms':>9}")
    for shape in args.shapes:
        dims = tuple(int(n) for n in shape.split("x"))
        for layout in LAYOUTS:
            r = dict(shape=shape, layout=layout, **measure(dims, layout, args.reps))
            rows.append(r)
            print(f"{shape:>14} {layout:>6} {r['forward_ms']:>11.2f} {r['input_grad_ms']:>9.2f} "
                  f"{r['weight_grad_ms']:>9.2f}", flush=True)
    write_rows("layout", rows, args.out)


if __name__ == "__main__":
    main()

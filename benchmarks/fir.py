"""FIR resampling (upfirdn2d) on this backend: the separable and depthwise-convolution
formulations, forward and input gradient, at the shapes the networks use, in one run.

    python benchmarks/fir.py [--shapes 32x32x32x64 32x16x16x64 16x32x32x256] [--reps 7]

For each NHWC shape and op (filter2d, upsample2d, downsample2d with [1, 3, 3, 1]) it prints and
writes (benchmarks/results/fir-<backend>.json) the median milliseconds of both formulations and
the speed-up; jaxstyle.nn.upfirdn2d picks the formulation per backend from these figures.
"""

import argparse

import jax
import jax.numpy as jnp

from jaxstyle.nn.upfirdn2d import setup_filter, upfirdn2d
from timing import median_time, write_rows

F = setup_filter([1, 3, 3, 1])
OPS = {   # name -> upfirdn2d keyword arguments, as filter2d / upsample2d / downsample2d call it
    "filter": dict(padding=(2, 1, 2, 1)),
    "up2": dict(up=2, padding=(2, 1, 2, 1), gain=4.0),
    "down2": dict(down=2, padding=(1, 1, 1, 1)),
}


def milliseconds(fn, x, reps):
    fn = jax.jit(fn)
    return 1000 * median_time(lambda: jax.block_until_ready(fn(x)), reps)[0]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shapes", nargs="+", default=["32x32x32x64", "32x16x16x64", "16x32x32x256", "8x64x64x512"])
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    rows = []
    print(f"{'shape':>14} {'op':>6} {'pass':>8} {'separable ms':>13} {'conv ms':>9} {'speed-up':>9}")
    for shape in args.shapes:
        x = jax.random.normal(jax.random.key(0), tuple(int(n) for n in shape.split("x")))
        for op, kw in OPS.items():
            for kind in ("forward", "grad"):
                ms = {}
                for impl in ("separable", "conv"):
                    fwd = lambda x, impl=impl: upfirdn2d(x, F, impl=impl, **kw)
                    fn = fwd if kind == "forward" else jax.grad(lambda x, fwd=fwd: jnp.sum(fwd(x) ** 2))
                    ms[impl] = milliseconds(fn, x, args.reps)
                rows.append(dict(shape=shape, op=op, kind=kind, separable_ms=ms["separable"], conv_ms=ms["conv"],
                                 speedup=ms["conv"] / ms["separable"]))
                print(f"{shape:>14} {op:>6} {kind:>8} {ms['separable']:>13.2f} {ms['conv']:>9.2f} "
                      f"{rows[-1]['speedup']:>8.1f}x", flush=True)
    write_rows("fir", rows, args.out)


if __name__ == "__main__":
    main()

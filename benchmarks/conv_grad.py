"""A 3x3 convolution's gradients on this backend: XLA's weight gradient against one matmul per
kernel tap (jaxstyle.nn.conv), across channel widths, in one run.

    python benchmarks/conv_grad.py [--batch 32] [--res 32] [--channels 64 128 256 512] [--reps 7]

Prints and writes (benchmarks/results/conv_grad-<backend>.json) the median seconds of the
forward pass, XLA's input gradient, XLA's weight gradient and the matmul weight gradient, and
the matmul speed-up; jaxstyle.nn.conv uses the matmul form where it measured faster.
"""

import argparse
import json
import os

import jax

from jaxstyle.nn.conv import matmul_weight_grad, xla_conv
from timing import median_time

SAME = ((1, 1), (1, 1))


def median_seconds(fn, *args, reps):
    fn = jax.jit(fn)
    return median_time(lambda: jax.block_until_ready(fn(*args)), reps)[0]


def measure(batch, res, channels, reps):
    kx, kw, kg = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, (batch, res, res, channels))
    w = jax.random.normal(kw, (3, 3, channels, channels)) / (9 * channels) ** 0.5
    g = jax.random.normal(kg, (batch, res, res, channels))
    xla_w = lambda x, g: jax.vjp(lambda w: xla_conv(x, w, 1, SAME), w)[1](g)[0]
    xla_x = lambda w, g: jax.vjp(lambda x: xla_conv(x, w, 1, SAME), x)[1](g)[0]
    out = dict(batch=batch, res=res, channels=channels,
               forward_s=median_seconds(lambda x, w: xla_conv(x, w, 1, SAME), x, w, reps=reps),
               input_grad_s=median_seconds(xla_x, w, g, reps=reps),
               weight_grad_xla_s=median_seconds(xla_w, x, g, reps=reps),
               weight_grad_matmul_s=median_seconds(lambda x, g: matmul_weight_grad(x, g, (3, 3), 1, SAME, 1),
                                                   x, g, reps=reps))
    out["matmul_speedup"] = out["weight_grad_xla_s"] / out["weight_grad_matmul_s"]
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--res", type=int, default=32)
    p.add_argument("--channels", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    rows = []
    print(f"{'channels':>8} {'forward s':>10} {'dX xla s':>10} {'dW xla s':>10} {'dW matmul s':>12} {'speed-up':>9}")
    for c in args.channels:
        r = measure(args.batch, args.res, c, args.reps)
        rows.append(r)
        print(f"{c:>8} {r['forward_s']:>10.4f} {r['input_grad_s']:>10.4f} {r['weight_grad_xla_s']:>10.4f} "
              f"{r['weight_grad_matmul_s']:>12.4f} {r['matmul_speedup']:>8.2f}x", flush=True)
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   f"conv_grad-{jax.default_backend()}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(dict(backend=jax.default_backend(), device=str(jax.devices()[0]), jax=jax.__version__,
                       rows=rows), f, indent=1)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

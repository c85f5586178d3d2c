"""Convolution gradients on this backend: XLA's weight gradient against one matmul per kernel
tap (jaxstyle.nn.conv), for each conv form the networks use and across widths, in one run.

    python benchmarks/conv_grad.py [--batch 32] [--res 32] [--channels 64 128 256 512]
                                   [--forms same3 down3 up3 1x1] [--reps 7]

Forms: same3 (3x3, stride 1), down3 (3x3 stride 2 after the FIR filter), up3 (3x3 transposed:
input-dilated by 2, from res / 2), 1x1. Prints and writes (benchmarks/results/conv_grad-<backend>.json)
the median seconds of the forward pass, XLA's input gradient, XLA's weight gradient and the
matmul weight gradient, and the matmul speed-up; jaxstyle.nn.conv uses the matmul form where
it measured faster.
"""

import argparse

import jax

from jaxstyle.nn.conv import matmul_weight_grad, xla_conv
from timing import median_time, write_rows

# form -> (kernel, stride, padding, input dilation, input size for output size res)
FORMS = {
    "same3": (3, 1, ((1, 1), (1, 1)), 1, lambda res: res),
    "down3": (3, 2, ((0, 0), (0, 0)), 1, lambda res: 2 * res + 1),
    "up3": (3, 1, ((2, 1), (2, 1)), 2, lambda res: res // 2),
    "1x1": (1, 1, ((0, 0), (0, 0)), 1, lambda res: res),
}


def median_seconds(fn, *args, reps):
    fn = jax.jit(fn)
    return median_time(lambda: jax.block_until_ready(fn(*args)), reps)[0]


def measure(form, batch, res, channels, reps):
    k, stride, pad, dilate, in_size = FORMS[form]
    kx, kw, kg = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, (batch, in_size(res), in_size(res), channels))
    w = jax.random.normal(kw, (k, k, channels, channels)) / (k * k * channels) ** 0.5
    fwd = lambda x, w: xla_conv(x, w, stride, pad, dilate)
    g = jax.random.normal(kg, jax.eval_shape(fwd, x, w).shape)
    xla_w = lambda x, g: jax.vjp(lambda w: fwd(x, w), w)[1](g)[0]
    xla_x = lambda w, g: jax.vjp(lambda x: fwd(x, w), x)[1](g)[0]
    out = dict(form=form, batch=batch, res=res, channels=channels,
               forward_s=median_seconds(fwd, x, w, reps=reps),
               input_grad_s=median_seconds(xla_x, w, g, reps=reps),
               weight_grad_xla_s=median_seconds(xla_w, x, g, reps=reps),
               weight_grad_matmul_s=median_seconds(
                   lambda x, g: matmul_weight_grad(x, g, (k, k), stride, pad, dilate), x, g, reps=reps))
    out["matmul_speedup"] = out["weight_grad_xla_s"] / out["weight_grad_matmul_s"]
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--res", type=int, default=32)
    p.add_argument("--channels", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    p.add_argument("--forms", nargs="+", default=list(FORMS), choices=list(FORMS))
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    rows = []
    print(f"{'form':>6} {'channels':>8} {'forward s':>10} {'dX xla s':>10} {'dW xla s':>10} {'dW matmul s':>12} "
          f"{'speed-up':>9}")
    for form, c in ((f, c) for f in args.forms for c in args.channels):
        r = measure(form, args.batch, args.res, c, args.reps)
        rows.append(r)
        print(f"{form:>6} {c:>8} {r['forward_s']:>10.4f} {r['input_grad_s']:>10.4f} {r['weight_grad_xla_s']:>10.4f} "
              f"{r['weight_grad_matmul_s']:>12.4f} {r['matmul_speedup']:>8.2f}x", flush=True)
    write_rows("conv_grad", rows, args.out)


if __name__ == "__main__":
    main()

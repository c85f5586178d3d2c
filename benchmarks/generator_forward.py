"""G forward time per image and compile time, both modulated-conv formulations, in one run.

    python benchmarks/generator_forward.py [--resolutions 16 64 256] [--batch 8] [--reps 5]

Mapping + synthesis (noise "const"), jit-compiled, channel_base 16384, channel_max 512,
8 mapping layers, z/w 512. Each timing is the median of --reps runs after one warm-up;
compile time is lower() + compile(). Writes benchmarks/results/generator_forward.json.
"""

import argparse
import json
import os
import platform
import time

import jax

from jaxstyle.models import Generator
from timing import median_time


def bench(res, modconv, batch, reps, channel_base, channel_max):
    G = Generator(z_dim=512, w_dim=512, img_resolution=res, mapping_layers=8,
                  channel_base=channel_base, channel_max=channel_max, modconv=modconv)
    z = jax.random.normal(jax.random.key(0), (batch, 512))
    variables = jax.jit(lambda z: G.init({"params": jax.random.key(1)}, z, noise_mode="const"))(z)
    forward = jax.jit(lambda v, z: G.apply(v, z, noise_mode="const"))
    t0 = time.perf_counter()
    compiled = forward.lower(variables, z).compile()
    compile_s = time.perf_counter() - t0
    median, times = median_time(lambda: compiled(variables, z).block_until_ready(), reps)
    return dict(resolution=res, modconv=modconv, batch=batch, compile_s=round(compile_s, 3),
                forward_median_s=round(median, 4), per_image_ms=round(1000 * median / batch, 2),
                images_per_s=round(batch / median, 2), reps=reps, times_s=[round(t, 4) for t in times])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--resolutions", type=int, nargs="+", default=[16, 64, 256])
    p.add_argument("--modconv", nargs="+", default=["activation", "weights"])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--channel-base", type=int, default=16384)
    p.add_argument("--channel-max", type=int, default=512)
    p.add_argument("--out", default="benchmarks/results/generator_forward.json")
    args = p.parse_args()
    results = []
    print(f"{'res':>5} {'modconv':>10} {'compile s':>10} {'ms/image':>10} {'images/s':>10}")
    for res in args.resolutions:
        for modconv in args.modconv:
            r = bench(res, modconv, args.batch, args.reps, args.channel_base, args.channel_max)
            results.append(r)
            print(f"{res:>5} {modconv:>10} {r['compile_s']:>10.2f} {r['per_image_ms']:>10.1f} "
                  f"{r['images_per_s']:>10.2f}", flush=True)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    report = dict(device=str(jax.devices()[0]), backend=jax.default_backend(),
                  platform=platform.platform(), cpu_count=os.cpu_count(), jax=jax.__version__,
                  results=results)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""toyfaces render speed, images/s, batched (get_batch) and one at a time (ds[i]), on the CPU.

    python benchmarks/toyfaces_render.py [--resolutions 32 64 128] [--batch 256] [--reps 7]
    python benchmarks/toyfaces_render.py --preview docs/toyfaces_preview.png

Each figure is the median of --reps runs after one warm-up; the single-example figure times
--singles consecutive ds[i] calls. Writes benchmarks/results/toyfaces_render.json. With
--preview it also writes the 8x8 grid of 64x64 faces (seed 0) shown in the docs.
"""

import argparse
import json
import os
import platform

import numpy as np

from jaxstyle.data.toyfaces import ToyFaces
from jaxstyle.images import make_grid, save_png
from timing import median_time


def bench(resolution, batch, singles, reps):
    """Returns one result row: images/s for get_batch and for ds[i] at one resolution."""
    ds = ToyFaces(resolution=resolution, size=1_000_000, seed=0)
    batch_median, batch_times = median_time(lambda: ds.get_batch(np.arange(batch)), reps)
    single_median, single_times = median_time(lambda: [ds[i] for i in range(singles)], reps)
    return {"resolution": resolution, "batch": batch, "singles": singles, "reps": reps,
            "batch_images_per_s": round(batch / batch_median, 1),
            "single_images_per_s": round(singles / single_median, 1),
            "batch_times_s": [round(t, 5) for t in batch_times],
            "single_times_s": [round(t, 5) for t in single_times]}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--resolutions", type=int, nargs="+", default=[32, 64, 128])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--singles", type=int, default=100)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--out", default="benchmarks/results/toyfaces_render.json")
    p.add_argument("--preview", help="also write the 8x8 grid of 64x64 faces (seed 0) here")
    args = p.parse_args()
    if args.preview:
        images = ToyFaces(resolution=64, size=64, seed=0).get_batch(np.arange(64))["image"]
        print("wrote", save_png(make_grid(images, 8, 8), args.preview))
    results = []
    print(f"{'res':>5} {'batch img/s':>12} {'single img/s':>13}")
    for res in args.resolutions:
        r = bench(res, args.batch, args.singles, args.reps)
        results.append(r)
        print(f"{res:>5} {r['batch_images_per_s']:>12.0f} {r['single_images_per_s']:>13.0f}")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                   "numpy": np.__version__, "results": results}, f, indent=1)
    print("wrote", args.out)


if __name__ == "__main__":
    main()

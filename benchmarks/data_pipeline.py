"""Loader throughput (toyfaces through GlobalBatches) and oracle evaluation speed, in one run.

    python benchmarks/data_pipeline.py [--resolutions 32 64 128] [--batch 32] [--batches 40]

Loader: images/s delivered as sharded float32 device arrays (render + transfer + convert) with
the default 2 decoding threads and prefetch 2, median of 3 runs of --batches batches. Oracle:
images/s of the jitted predict at 32 and 64 on batches of 256, median of 5 runs. Writes
benchmarks/results/data_pipeline.json.
"""

import argparse
import json
import os
import statistics
import time

import jax
import numpy as np

from jaxstyle.data.loader import GlobalBatches
from jaxstyle.data.toyfaces import ToyFaces
from jaxstyle.metrics.oracle import load_oracle


def loader_rate(resolution, batch, n_batches):
    """Returns images/s delivered by GlobalBatches (first batch excluded: it pays for start-up)."""
    with GlobalBatches(ToyFaces(resolution=resolution, size=100_000), batch, seed=0) as batches:
        jax.block_until_ready(next(batches))
        t0 = time.perf_counter()
        for _ in range(n_batches):
            jax.block_until_ready(next(batches)["image"])
        return n_batches * batch / (time.perf_counter() - t0)


def oracle_rate(resolution, batch=256, reps=5):
    """Returns images/s of the oracle's predict on one batch (after compilation)."""
    oracle = load_oracle(resolution)
    images = ToyFaces(resolution=resolution, size=batch, seed=2).get_batch(np.arange(batch))["image"]
    x = jax.device_put(images.astype(np.float32) / 127.5 - 1)
    jax.block_until_ready(oracle.predict(x))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(oracle.predict(x))
        times.append(time.perf_counter() - t0)
    return batch / statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--resolutions", type=int, nargs="+", default=[32, 64, 128])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--batches", type=int, default=40)
    p.add_argument("--out", default="benchmarks/results/data_pipeline.json")
    args = p.parse_args()
    report = {"device": str(jax.devices()[0]), "cpu_count": os.cpu_count(), "loader": [], "oracle": []}
    for r in args.resolutions:
        rate = statistics.median(loader_rate(r, args.batch, args.batches) for _ in range(3))
        report["loader"].append({"resolution": r, "batch": args.batch, "images_per_s": round(rate, 1)})
        print(f"loader  {r:4d}x{r:<4d} {rate:8.0f} images/s", flush=True)
    for r in (32, 64):
        rate = oracle_rate(r)
        report["oracle"].append({"resolution": r, "images_per_s": round(rate, 1)})
        print(f"oracle  {r:4d}x{r:<4d} {rate:8.0f} images/s", flush=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

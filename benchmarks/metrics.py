"""Seconds per 1,000 samples of every evaluate.py metric, at 32x32 and 64x64, in one run.

    python benchmarks/metrics.py [--resolutions 32 64] [--num 256] [--reps 2]

Generators are freshly initialised (default preset widths at 32, toy64 widths at 64): a metric's
cost does not depend on what the weights learnt. FID/KID use the FID Inception-v3 with random
weights (the real ones are a user-supplied file; the cost is the same). Each metric runs once to
compile, then --reps times with --num samples; the figure is the median, scaled to 1,000
samples (fd_oracle and fid/kid: 1,000 generated plus 1,000 real images; disentanglement:
1,000 images as 62.5 styles x 16 contents; ls: z and w together, one set of samples). Writes
benchmarks/results/metrics.json.
"""

import argparse
import json
import os
import platform
import sys
import tempfile

import jax
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from jaxstyle.data.registry import open_source  # noqa: E402
from jaxstyle.metrics import evaluate as ev  # noqa: E402
from jaxstyle.parallel import make_mesh  # noqa: E402
from timing import median_time  # noqa: E402
from jaxstyle.training.loop import build, trainer_for  # noqa: E402
from jaxstyle.training.restore import Run  # noqa: E402


def make_run(resolution):
    """Returns a Run of a freshly initialised generator at `resolution` (no checkpoint needed)."""
    from configs import default, toy64
    config = (default if resolution == 32 else toy64).get_config()
    source = open_source("toyfaces", resolution)
    G, D, objective = build(config, source)
    state = trainer_for(G, D, objective, make_mesh()).init_state(jax.random.key(0))
    return Run(config, source, G, D, objective, state, state)


def random_inception():
    from jaxstyle.metrics.inception import Inception, InceptionV3, weights_digest
    variables = InceptionV3().init(jax.random.key(0), jax.numpy.zeros((1, 299, 299, 3)))
    return Inception(variables, weights_digest(variables))


def bench(resolution, num, reps, batch):
    run = make_run(resolution)
    options = ev.Options(num=num, batch_size=batch, progress=False, cache_dir=tempfile.mkdtemp())
    metrics = {
        "fd_oracle": "fd_oracle", "disentanglement": "disentanglement", "ls_z+ls_w": "ls_z",
        "ppl_wend (lpips)": "ppl2_wend", "ppl_zfull (lpips)": "ppl2_zfull",
        "ppl_wend (oracle features)": "ppl2_wend",
    }
    rows = []
    for label, name in metrics.items():
        spec = ev.parse_metric(name)
        options.ppl_distance = "oracle_features" if "oracle" in label else "lpips"

        def once():
            options.cache.clear()
            ev.METRICS[spec.family].compute(run, spec, options)
            if label == "ls_z+ls_w":
                ev.METRICS["ls"].compute(run, ev.parse_metric("ls_w"), options)
        median, times = median_time(once, reps)
        rows.append(dict(metric=label, resolution=resolution, num=num, s_per_1k=round(1000 * median / num, 2),
                         times_s=[round(t, 2) for t in times]))
        print(json.dumps(rows[-1]), flush=True)
    # FID/KID = Inception features of generated and real images (per sample) + a fixed cost
    # (sqrtm of a 2048x2048 matrix, KID subsets), timed apart so per-1k figures mean something.
    from jaxstyle.metrics.fid import frechet_distance, kernel_inception_distance
    inception, generate = random_inception(), ev.sharded_sampler(run.G, run.state.g_ema)
    reals = run.source.get_batch(list(range(num)))["image"]

    def features_once():
        for i in range(0, num, batch):
            n = min(batch, num - i)
            inception.features(generate(jax.random.key(i), n))
            inception.features(reals[i:i + n])
    median, times = median_time(features_once, reps)
    rows.append(dict(metric="fid/kid Inception features", resolution=resolution, num=num,
                     s_per_1k=round(1000 * median / num, 2), times_s=[round(t, 2) for t in times]))
    print(json.dumps(rows[-1]), flush=True)
    feats = np.random.default_rng(0).standard_normal((2, 2000, 2048)).astype(np.float32)

    def fixed_once():
        mu, cov = feats.mean(1), [np.cov(f, rowvar=False) for f in feats]
        frechet_distance(mu[0], cov[0], mu[1], cov[1])
        kernel_inception_distance(feats[0], feats[1])
    median, times = median_time(fixed_once, 1)
    rows.append(dict(metric="fid+kid from features (fixed)", resolution=resolution, num=2000,
                     seconds=round(median, 2), s_per_1k=None))
    print(json.dumps(rows[-1]), flush=True)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--resolutions", type=int, nargs="+", default=[32, 64])
    p.add_argument("--num", type=int, default=256)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args()
    rows = [r for res in args.resolutions for r in bench(res, args.num, args.reps, args.batch)]
    out = os.path.join(ROOT, "benchmarks", "results", "metrics.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                   "jax": jax.__version__, "devices": [str(d) for d in jax.devices()], "rows": rows}, f, indent=1)
    print(f"{'metric':28s} {'res':>4s} {'s / 1k samples':>15s}")
    for r in rows:
        figure = f"{r['s_per_1k']:15.2f}" if r["s_per_1k"] is not None else f"{r['seconds']:11.2f} (s)"
        print(f"{r['metric']:28s} {r['resolution']:4d} {figure}")


if __name__ == "__main__":
    main()

"""FD_oracle: the Fréchet distance between oracle features of generated and real toyfaces.

The fast, offline stand-in for FID on toyfaces (the oracle was trained on toyfaces, so its
features see exactly the factors the data varies in). Lower is better; 0 for identical
distributions. Every output names the metric as FD_oracle: it is not comparable with FID.

    python -m jaxstyle.metrics.fd_oracle --workdir runs/default [--num 5000]

evaluates a training run's G_ema at initialisation and at its newest checkpoint.
"""

import argparse
import json
import sys

import jax
import numpy as np

from jaxstyle.metrics.frechet import feature_statistics, frechet_distance
from jaxstyle.metrics.oracle import load_oracle


def real_statistics(source, num, oracle, batch=250, seed=123):
    """Returns (mu, sigma) of oracle features of `num` real images drawn from `source`."""
    idx = np.random.default_rng(seed).choice(len(source), size=min(num, len(source)), replace=False)
    feats = []
    for i in range(0, len(idx), batch):
        chunk = idx[i:i + batch]
        images = (source.get_batch(chunk)["image"] if hasattr(source, "get_batch")
                  else np.stack([source[j]["image"] for j in chunk]))
        feats.append(np.asarray(oracle.features(images.astype(np.float32) / 127.5 - 1)))
    return feature_statistics(np.concatenate(feats))


def generated_statistics(generate, num, oracle, batch=250, seed=0):
    """Returns (mu, sigma) of oracle features of `num` images from generate(key, n) -> images in [-1, 1]."""
    feats = []
    for i in range(0, num, batch):
        images = generate(jax.random.fold_in(jax.random.key(seed), i), min(batch, num - i))
        feats.append(np.asarray(oracle.features(images)))
    return feature_statistics(np.concatenate(feats))


def fd_oracle(generate, source, num=5000, real_stats=None):
    """Returns FD_oracle between generate(key, n)'s images and `source` (num samples each)."""
    oracle = load_oracle(source.resolution)
    real = real_stats or real_statistics(source, num, oracle)
    return frechet_distance(*generated_statistics(generate, num, oracle), *real)


def main(argv=None):
    from jaxstyle.metrics.evaluate import sharded_sampler
    from jaxstyle.training.restore import load_run

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workdir", required=True)
    p.add_argument("--num", type=int, default=5000)
    args = p.parse_args(argv)
    try:
        run = load_run(args.workdir)
    except (FileNotFoundError, ValueError) as e:   # no run, or checkpoints of another config
        print(f"error: {e}", file=sys.stderr)
        return 2
    oracle = load_oracle(run.source.resolution)
    real = real_statistics(run.source, args.num, oracle)
    results = {}
    for name, state in (("init", run.init), ("final", run.state)):
        gen = sharded_sampler(run.G, state.g_ema)
        results[name] = {"iteration": int(state.step),
                         "FD_oracle": round(fd_oracle(gen, run.source, args.num, real), 3)}
        print(f"{name:6s} iteration {results[name]['iteration']:6d}  FD_oracle {results[name]['FD_oracle']:.3f}")
    with open(f"{args.workdir}/fd_oracle.json", "w") as f:
        json.dump({"num": args.num, **results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

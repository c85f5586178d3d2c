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


def generated_statistics(generate, z_dim, num, oracle, batch=250, seed=0):
    """Returns (mu, sigma) of oracle features of `num` images from generate(z) -> images in [-1, 1]."""
    feats = []
    for i in range(0, num, batch):
        z = jax.random.normal(jax.random.fold_in(jax.random.key(seed), i), (min(batch, num - i), z_dim))
        feats.append(np.asarray(oracle.features(generate(z))))
    return feature_statistics(np.concatenate(feats))


def fd_oracle(generate, z_dim, source, num=5000, real_stats=None):
    """Returns FD_oracle between generate's images and `source` (num samples each)."""
    oracle = load_oracle(source.resolution)
    real = real_stats or real_statistics(source, num, oracle)
    return frechet_distance(*generated_statistics(generate, z_dim, num, oracle), *real)


def main(argv=None):
    from jaxstyle.checkpoint import Checkpointer
    from jaxstyle.data.registry import open_source
    from jaxstyle.parallel import make_mesh
    from jaxstyle.training.loop import build, identity, trainer_for
    from ml_collections import ConfigDict

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workdir", required=True)
    p.add_argument("--num", type=int, default=5000)
    args = p.parse_args(argv)
    config = ConfigDict(json.load(open(f"{args.workdir}/config.json")))
    config.sample_grid = tuple(config.sample_grid)
    source = open_source(config.data.source, config.data.resolution, seed=config.data.seed)
    G, D, objective = build(config, source)
    trainer = trainer_for(G, D, objective, make_mesh())
    init = trainer.init_state(jax.random.key(config.seed))
    restored = Checkpointer(f"{args.workdir}/checkpoints").restore(init, identity(config))
    if restored is None:
        print(f"error: no checkpoint in {args.workdir}/checkpoints", file=sys.stderr)
        return 2
    oracle = load_oracle(source.resolution)
    real = real_statistics(source, args.num, oracle)
    results = {}
    for name, state in (("init", init), ("final", restored[0])):
        gen = jax.jit(lambda z, v=state.g_ema: G.apply(v, z, noise_mode="const"))
        results[name] = {"iteration": int(state.step), "kimg": int(state.step) * objective.batch_size / 1000,
                         "FD_oracle": round(fd_oracle(gen, G.z_dim, source, args.num, real), 3)}
        print(f"{name:6s} iteration {results[name]['iteration']:6d}  FD_oracle {results[name]['FD_oracle']:.3f}")
    with open(f"{args.workdir}/fd_oracle.json", "w") as f:
        json.dump({"num": args.num, **results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

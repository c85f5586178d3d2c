"""Train the toyfaces factor oracle and write its weights (what ships in oracle_weights/).

    python -m jaxstyle.metrics.train_oracle --resolution 32 [--steps 6000] [--workers 8]

Training data is rendered on the fly (toyfaces seed 1, an endless stream, so the oracle never
sees an image twice); held-out R^2 is measured on toyfaces seed 2. MSE on the factors, Adam
with a cosine schedule. Prints and stores the held-out R^2 of every factor.
"""

import argparse
import multiprocessing
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxstyle.data.toyfaces import FACTOR_NAMES, ToyFaces
from jaxstyle.metrics.oracle import FactorOracle, Oracle, save_weights, weights_path

TRAIN_SEED, HELDOUT_SEED = 1, 2


def r_squared(pred, true):
    """Returns per-factor R^2 = 1 - SSE / SST over the rows of (N, F) arrays."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    sse = np.sum((pred - true) ** 2, axis=0)
    sst = np.sum((true - true.mean(axis=0)) ** 2, axis=0)
    return 1.0 - sse / sst


def _render(args):
    resolution, start, n = args
    batch = ToyFaces(resolution=resolution, size=2**31 - 1, seed=TRAIN_SEED).get_batch(np.arange(start, start + n))
    return batch["image"], batch["factors"]


def heldout(resolution, n=10_000):
    """Returns (float images in [-1, 1], factors) of the held-out set."""
    batch = ToyFaces(resolution=resolution, size=n, seed=HELDOUT_SEED).get_batch(np.arange(n))
    return batch["image"].astype(np.float32) / 127.5 - 1, batch["factors"]


def evaluate(oracle, images, factors, batch=500):
    """Returns per-factor held-out R^2 of `oracle` on (images, factors)."""
    pred = np.concatenate([np.asarray(oracle.predict(images[i:i + batch])) for i in range(0, len(images), batch)])
    return r_squared(pred, factors)


def train(resolution, steps, batch_size, lr, workers, seed=0, log=print):
    """Returns (params, meta) of an oracle trained for `steps` steps."""
    model = FactorOracle(len(FACTOR_NAMES))
    params = model.init(jax.random.key(seed), jnp.zeros((1, resolution, resolution, 3)))["params"]
    warmup = min(200, steps // 10)
    schedule = optax.warmup_cosine_decay_schedule(0.0, lr, warmup, steps, lr * 0.01)
    tx = optax.adam(schedule)
    opt = tx.init(params)

    @jax.jit
    def step(params, opt, images, factors):
        x = images.astype(jnp.float32) / 127.5 - 1

        def loss_fn(p):
            pred, _ = model.apply({"params": p}, x)
            return jnp.mean(jnp.square(pred - factors))
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, updates), opt, loss

    jobs = ((resolution, i * batch_size, batch_size) for i in range(steps))
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        start = time.time()
        for i, (images, factors) in enumerate(pool.imap(_render, jobs, chunksize=4)):
            params, opt, loss = step(params, opt, images, factors)
            if (i + 1) % 500 == 0 or i + 1 == steps:
                log(f"step {i + 1}/{steps} loss {float(loss):.5f} ({time.time() - start:.0f} s)")
    meta = dict(resolution=resolution, factor_names=list(FACTOR_NAMES), widths=list(model.widths),
                steps=steps, batch_size=batch_size, lr=lr, train_seed=TRAIN_SEED, heldout_seed=HELDOUT_SEED,
                command="python -m jaxstyle.metrics.train_oracle " + " ".join(sys.argv[1:]))
    return params, meta


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--resolution", type=int, required=True)
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    p.add_argument("--out", help="weights file (default: the packaged location)")
    args = p.parse_args(argv)
    params, meta = train(args.resolution, args.steps, args.batch_size, args.lr, args.workers)
    images, factors = heldout(args.resolution)
    r2 = evaluate(Oracle(params, meta), images, factors)
    meta["heldout_r2"] = {name: round(float(v), 4) for name, v in zip(FACTOR_NAMES, r2)}
    out = args.out or str(weights_path(args.resolution))
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    save_weights(out, params, meta)
    for name, v in meta["heldout_r2"].items():
        print(f"{name:16s} R^2 {v:.4f}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

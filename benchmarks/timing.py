"""The one timing rule of the benchmark scripts (a warm-up call, then the median of timed calls),
and their one way of writing results."""

import statistics
import time


def median_time(fn, reps, warmup=True):
    """Returns (median seconds, every time) of `reps` calls of fn() after one untimed warm-up call
    (compilation, caches); fn must block until its result is ready."""
    if warmup:
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def write_rows(name, rows, out=None):
    """Writes rows with the backend, device and JAX version as JSON to `out` (default
    benchmarks/results/<name>-<backend>.json); returns the path."""
    import json
    import os

    import jax
    out = out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                              f"{name}-{jax.default_backend()}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(dict(backend=jax.default_backend(), device=str(jax.devices()[0]), jax=jax.__version__,
                       rows=rows), f, indent=1)
    print(f"wrote {out}")
    return out

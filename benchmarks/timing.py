"""The one timing rule of the benchmark scripts: a warm-up call, then the median of timed calls."""

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

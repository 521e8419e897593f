"""Wall-clock timing helpers of the benchmarks (GPU work is synchronised before a clock read)."""
from __future__ import annotations

import time
from typing import Any
from collections.abc import Callable

from lewm_ros.runtime.arrays import ArraySpace


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile [0, 100] of values (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def timed_ms(fn: Callable[[], Any], arrays: ArraySpace, repeats: int, warmup: int = 1) -> list[float]:
    """Wall times [ms] of ``repeats`` calls after ``warmup`` untimed ones; work queued on the GPU
    of ``arrays`` (a backend's) is waited for before each clock read."""
    for _ in range(warmup):
        fn()
    arrays.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        arrays.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def seconds(fn: Callable[[], object]) -> float:
    """Wall time [s] of one call (CPU work)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start

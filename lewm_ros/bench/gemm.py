"""The fp32 GEMM peak that benchmark rates are compared with."""
from __future__ import annotations

import time

import torch


def gemm_peak_gflops(rows: int = 1024, inner: int | None = None, cols: int | None = None,
                     repeats: int = 5) -> float:
    """Best fp32 ``torch.mm`` rate [GFLOP/s] of (rows x inner) @ (inner x cols) on the CPU, over
    ``repeats`` timed calls after one untimed call; inner and cols default to rows (square)."""
    inner = rows if inner is None else inner
    cols = rows if cols is None else cols
    a, b = torch.randn(rows, inner), torch.randn(inner, cols)
    torch.mm(a, b)
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * rows * inner * cols / best / 1e9

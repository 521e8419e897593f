"""``lewm-bench --mode``: cost per decision of each planner mode on a real model directory.

One row per (mode, budget, backend): the MPCPlanner a robot runs (``MPCConfig()`` for budget
'mpc', ``MPCConfig.paper()`` with one action held per block for 'paper'; mode 'policy' has no
CEM budget and gets one row) in its steady state: a full frame history, a goal, and before
each timed ``plan()`` one ``observe()`` of a new frame after the executed first block (untimed:
the frame encoding is counted apart, as ``encode_ms_p50``). Frames are random images.
"""
from __future__ import annotations

import dataclasses
import logging
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from lewm_ros.bench.timing import percentile
from lewm_ros.planning.config import MPCConfig
from lewm_ros.planning.mpc import MPCPlanner

_LOG = logging.getLogger(__name__)


def mode_config(mode: str, budget: str, samples: int | None = None, warm_iterations: int | None = None
                ) -> MPCConfig:
    """The planner of a row: the MPC default ('mpc', with ``samples`` / ``warm_iterations`` when
    given) or the paper's CEM with held actions ('paper')."""
    if budget == 'paper':
        base = MPCConfig.paper()
        return dataclasses.replace(base, mode=mode, cem=dataclasses.replace(base.cem, hold_actions=True))
    base = MPCConfig()
    cem = base.cem if samples is None else \
        dataclasses.replace(base.cem, num_samples=samples, num_elites=min(base.cem.num_elites, samples))
    return dataclasses.replace(base, mode=mode, cem=cem,
                               warm_iterations=warm_iterations or base.warm_iterations)


def bench_mode(model_dir: Path, mode: str, budget: str, backend: str, device: str, decisions: int, threads: int,
               samples: int | None = None, warm_iterations: int | None = None, seed: int = 0) -> dict[str, Any]:
    """One row: plan() latency [ms] over ``decisions`` steady-state decisions (after the
    history fills). samples / warm_iterations: override the 'mpc' budget."""
    config = mode_config(mode, budget, samples, warm_iterations)
    cem = config.cem
    row: dict[str, Any] = {'mode': mode, 'budget': budget if mode != 'policy' else '-', 'backend': backend,
                           'samples': cem.num_samples, 'iterations': cem.iterations,
                           'warm_iterations': config.warm_iterations if config.warm_start else cem.iterations,
                           'horizon': cem.horizon, 'decisions': decisions}
    options = {'num_threads': threads} if backend == 'onnxruntime' else {}
    try:
        planner = MPCPlanner.from_model_dir(model_dir, backend=backend, device=device, config=config, **options)
    except (ImportError, ValueError) as exc:
        _LOG.warning('%s / %s skipped: %s', mode, backend, exc)
        row['skipped'] = str(exc)
        return row
    row['mode'] = planner.config.mode  # 'auto' resolved for this model directory
    rng = np.random.default_rng(seed)
    size, meta = planner.metadata.image_size, planner.metadata
    frame = lambda: rng.integers(0, 256, (size, size, 3), dtype=np.uint8)  # noqa: E731
    planner.set_goal(frame())
    planner.observe(frame(), None)
    encode_ms, plan_ms = [], []
    for i in range(decisions + meta.history):
        plan = planner.plan()
        if i >= meta.history:  # steady state: the history is full
            plan_ms.append(plan.latency_s * 1e3)
        encode_ms.append(_timed_observe(planner, frame(), plan.raw_actions[0]))
    row.update(encode_ms_p50=statistics.median(encode_ms), plan_ms_p50=statistics.median(plan_ms),
               plan_ms_p99=percentile(plan_ms, 99), plan_ms_max=max(plan_ms),
               decisions_per_s=1e3 / statistics.median(plan_ms))
    return row


def _timed_observe(planner: MPCPlanner, frame: np.ndarray, executed: np.ndarray) -> float:
    """observe() wall time [ms]: the frame's encoding (and the warm start's shift)."""
    start = time.perf_counter()
    planner.observe(frame, executed)
    return (time.perf_counter() - start) * 1e3


def mode_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of the mode rows."""
    lines = ['| mode | budget (N x iters, warm iters) | backend | decisions | plan p50 [ms] | plan p99 [ms] | '
             'plan max [ms] | decisions/s | encode p50 [ms] |', '|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        budget = '-' if r['mode'] == 'policy' else \
            f"{r['budget']} ({r['samples']} x {r['iterations']}, {r['warm_iterations']})"
        if 'skipped' in r:
            lines.append(f"| {r['mode']} | {budget} | {r['backend']} | skipped: {r['skipped'][:60]} | | | | | |")
            continue
        lines.append(f"| {r['mode']} | {budget} | {r['backend']} | {r['decisions']} | {r['plan_ms_p50']:.2f} | "
                     f"{r['plan_ms_p99']:.2f} | {r['plan_ms_max']:.2f} | {r['decisions_per_s']:.0f} | "
                     f"{r['encode_ms_p50']:.2f} |")
    return '\n'.join(lines)

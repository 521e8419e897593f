"""``lewm-bench --surprise``: what the surprise monitor adds to the planner thread's work.

At every block boundary the planner thread runs ``observe(frame, executed block)`` then
``plan()``; with the monitor, ``observe`` also takes one predictor step and the monitor scores it
(:mod:`lewm_ros.control.surprise_monitor`). Two planners with the same config and seed (the MPC
default, ``MPCConfig()``) run the same frames, one without and one with the monitor, the two
alternating block by block so that load on the machine falls on both alike. A row reports per
variant the p50 of the whole cycle (observe + plan) [ms] and of observe alone [ms], and the
overhead: the difference of the cycle p50s relative to the plain cycle [%], and the predictor
step's own cost (difference of the observe p50s) relative to it [%].
"""
from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from lewm_ros.control.surprise_calibration import load_calibration
from lewm_ros.control.surprise_monitor import SurpriseMonitor, SurprisePolicy
from lewm_ros.planning.config import MPCConfig
from lewm_ros.planning.mpc import MPCPlanner

_LOG = logging.getLogger(__name__)


def bench_surprise(model_dir: Path, backend: str, device: str, decisions: int, threads: int,
                   seed: int = 0) -> dict[str, Any]:
    """One row (see the module docstring) over ``decisions`` steady-state block boundaries."""
    config = MPCConfig()
    row: dict[str, Any] = {'backend': backend, 'samples': config.cem.num_samples, 'iterations': config.cem.iterations,
                           'warm_iterations': config.warm_iterations, 'horizon': config.cem.horizon,
                           'decisions': decisions}
    options = {'num_threads': threads} if backend == 'onnxruntime' else {}
    try:
        planners = [MPCPlanner.from_model_dir(model_dir, backend=backend, device=device, config=config, **options)
                    for _ in range(2)]
        if planners[1].backend.predictor_missing():
            raise ValueError(planners[1].backend.predictor_missing())
    except (ImportError, ValueError) as exc:
        _LOG.warning('surprise / %s skipped: %s', backend, exc)
        row['skipped'] = str(exc)
        return row
    monitor = SurpriseMonitor(SurprisePolicy(action='warn'), load_calibration(model_dir))
    rng = np.random.default_rng(seed)
    size, history = planners[0].metadata.image_size, planners[0].metadata.history
    goal = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    first = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    blocks = []
    for planner in planners:
        planner.set_goal(goal)
        planner.observe(first, None)
        blocks.append(planner.plan().raw_actions[0])
    cycle: list[list[float]] = [[], []]
    observe: list[list[float]] = [[], []]
    for i in range(decisions + history):
        frame = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        for scored in ((0, 1) if i % 2 else (1, 0)):
            start = time.perf_counter()
            score = planners[scored].observe(frame, blocks[scored], score_surprise=bool(scored))
            if score is not None:
                monitor.update(score, i)
            observed = time.perf_counter()
            blocks[scored] = planners[scored].plan().raw_actions[0]
            if i >= history:  # steady state: the history is full
                cycle[scored].append((time.perf_counter() - start) * 1e3)
                observe[scored].append((observed - start) * 1e3)
    plain, monitored = (statistics.median(c) for c in cycle)
    step = statistics.median(observe[1]) - statistics.median(observe[0])
    row.update(cycle_ms_p50=plain, cycle_ms_p50_monitor=monitored, observe_ms_p50=statistics.median(observe[0]),
               observe_ms_p50_monitor=statistics.median(observe[1]),
               overhead_pct=100.0 * (monitored - plain) / plain, predictor_step_pct=100.0 * step / plain)
    return row


def surprise_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of the --surprise rows."""
    lines = ['| backend | budget (N x iters, warm iters x H) | decisions | cycle p50 [ms] | with monitor [ms] | '
             'overhead | observe p50 [ms] | with monitor [ms] | predictor step |',
             '|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        budget = f"{r['samples']} x {r['iterations']}, {r['warm_iterations']} x {r['horizon']}"
        if 'skipped' in r:
            lines.append(f"| {r['backend']} | {budget} | skipped: {r['skipped'][:60]} | | | | | | |")
            continue
        lines.append(f"| {r['backend']} | {budget} | {r['decisions']} | {r['cycle_ms_p50']:.2f} | "
                     f"{r['cycle_ms_p50_monitor']:.2f} | {r['overhead_pct']:+.1f}% | {r['observe_ms_p50']:.2f} | "
                     f"{r['observe_ms_p50_monitor']:.2f} | {r['predictor_step_pct']:+.1f}% |")
    return '\n'.join(lines)


def run_surprise(args) -> dict[str, Any]:
    """The ``--surprise`` rows of lewm-bench (``--model-dir``, ``--backend``, ``--decisions``,
    ``--device``, ``--threads``); returns the JSON report."""
    import platform

    from lewm_ros.validation import check_int
    if not args.model_dir:
        raise ValueError('--surprise needs --model-dir (a trained model, ideally with its surprise calibration)')
    check_int('--decisions', args.decisions, 1)
    rows = [bench_surprise(Path(args.model_dir), name, args.device, args.decisions, args.threads)
            for name in args.backend]
    return {'machine': {'platform': platform.platform(), 'processor': platform.processor(),
                        'threads': args.threads, 'device': args.device}, 'results': rows}

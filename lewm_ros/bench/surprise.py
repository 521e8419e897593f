"""``lewm-bench --surprise``: what the surprise monitor adds to the planner thread's work.

At every block boundary the planner thread runs ``observe(frame, executed block)`` then
``plan()``; with the monitor, ``observe`` also returns a surprise probe, which the thread runs
right after the plan (one predictor step) and the monitor scores
(:mod:`lewm_ros.control.surprise_monitor`). Two planners with the same config and seed (the MPC
default, ``MPCConfig()``) run the same frames, one without and one with the monitor, the two
alternating block by block so that load on the machine falls on both alike. A row reports per
variant the p50 of the plan latency (observe + plan: from the frame to the new plan) [ms], its
overhead (difference of the p50s relative to the plain one) [%], and the p50 of the predictor
step and scoring after the plan [ms], relative to the plain plan latency [%] (the thread's extra
busy time per block).
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
    row['mode'] = planners[0].config.mode  # planner_node's default, 'auto' resolved for this model directory
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
    latency: list[list[float]] = [[], []]
    step: list[float] = []
    for i in range(decisions + history):
        frame = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        for scored in ((0, 1) if i % 2 else (1, 0)):
            start = time.perf_counter()
            probe = planners[scored].observe(frame, blocks[scored], score_surprise=bool(scored))
            blocks[scored] = planners[scored].plan().raw_actions[0]
            planned = time.perf_counter()
            if probe is not None:
                monitor.update(probe(), i)
            if i >= history:  # steady state: the history is full
                latency[scored].append((planned - start) * 1e3)
                if scored:
                    step.append((time.perf_counter() - planned) * 1e3)
    plain, monitored = (statistics.median(c) for c in latency)
    row.update(plan_ms_p50=plain, plan_ms_p50_monitor=monitored, overhead_pct=100.0 * (monitored - plain) / plain,
               predictor_step_ms_p50=statistics.median(step),
               predictor_step_pct=100.0 * statistics.median(step) / plain)
    return row


def surprise_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of the --surprise rows."""
    lines = ['| backend | mode, budget (N x iters, warm iters x H) | decisions | plan latency p50 [ms] | with monitor '
             '[ms] | overhead | predictor step after the plan p50 [ms] | of the plan latency |',
             '|---|---|---|---|---|---|---|---|']
    for r in rows:
        budget = f"{r.get('mode', 'auto')}, {r['samples']} x {r['iterations']}, {r['warm_iterations']} x {r['horizon']}"
        if 'skipped' in r:
            lines.append(f"| {r['backend']} | {budget} | skipped: {r['skipped'][:60]} | | | | | |")
            continue
        lines.append(f"| {r['backend']} | {budget} | {r['decisions']} | {r['plan_ms_p50']:.2f} | "
                     f"{r['plan_ms_p50_monitor']:.2f} | {r['overhead_pct']:+.1f}% | {r['predictor_step_ms_p50']:.2f} | "
                     f"{r['predictor_step_pct']:.1f}% |")
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

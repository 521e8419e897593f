"""``lewm-bench``: encode and plan latency per model preset, planning budget and backend.

For each preset (a random-weight model built from the preset; ``--model-dir`` benchmarks a
real model instead), each budget and each backend available here it measures:

- encode latency (one frame, batch 1) p50 [ms];
- plan latency p50 / p99 [ms] and plans/s, where one plan is a solve of the planner's CEM
  (:class:`lewm_ros.planning.cem.CEM` on ``backend.costs``) at the full history (the steady
  state of a running robot);
- the achieved GFLOP/s of the rollout (FLOPs counted by ``torch.utils.flop_counter`` on one
  torch costs call of the same shapes) against an fp32 GEMM peak (``torch.mm``) measured right
  before the row, so that a host slowing down mid-run moves both numbers of a ratio together;
- in the same run, the reference rollout (whole window recomputed every step,
  ``NaiveRolloutCost``) per iteration, for the speed-up of the exact efficient rollout.

Budgets: ``paper`` = 300 samples x 30 iterations x H 5 (30 elites); ``mpc`` = a cold solve of
``lewm_ros.planning.config.MPCConfig()`` (its warm-started solves run ``warm_iterations``).
``--paper-iterations I`` times only I iterations of a paper plan and reports the per-plan time
as ``iter_ms x 30``, labelled *extrapolated*.
``--cost TERM=WEIGHT`` (repeatable) sets the critics every backend scores with (default: the
paper's terminal cost). Results go to stdout as a Markdown table and, with ``--json PATH``, to a
JSON file. The rollout benchmark (efficient vs reference rollout, one costs call) is
``python -m lewm_ros.bench.rollout``.

``--mode cem policy policy_cem`` (with ``--model-dir``; the policy modes need the model's
goal-conditioned policy) times the planner a robot runs instead, one row per mode, budget and
backend: ``plan()`` over ``--decisions`` steady-state decisions, the frame encoding apart
(:mod:`lewm_ros.bench.modes`).
"""
from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from lewm_ros.bench.budgets import QUICK_BUDGET, mpc_budget, paper_budget
from lewm_ros.bench.gemm import gemm_peak_gflops
from lewm_ros.bench.measure import bench_naive, bench_one, make_preset_model, rollout_gflop
from lewm_ros.bench.surprise import run_surprise, surprise_table
from lewm_ros.bench.modes import bench_mode, mode_table
from lewm_ros.planning.config import PLANNER_MODES
from lewm_ros.runtime.backend import BACKEND_NAMES
from lewm_ros.runtime.critics import add_cost_argument, parse_cost_terms
from lewm_ros.validation import check_int

_LOG = logging.getLogger(__name__)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The README table; each row's GEMM-peak percentage uses the peak measured before it."""
    lines = ['| preset | budget (N x iters x H) | backend | encode p50 [ms] | plan p50 [ms] | plan p99 [ms] | '
             'plans/s | GFLOP/s (% of GEMM peak) | speed-up vs naive torch rollout |',
             '|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        budget = f"{r['budget']} ({r['samples']} x {r['iterations']} x {r['horizon']})"
        if 'skipped' in r:
            lines.append(f"| {r['preset']} | {budget} | {r['backend']} | skipped: {r['skipped'][:60]} |"
                         ' | | | | |')
            continue
        star = '*' if r['extrapolated'] else ''
        ratio = f"{r['naive_speedup']:.2f}x" if 'naive_speedup' in r else ''
        lines.append(f"| {r['preset']} | {budget} | {r['backend']} | {r['encode_ms_p50']:.2f} | "
                     f"{r['plan_ms_p50']:.1f}{star} | {r['plan_ms_p99']:.1f}{star} | {r['plans_per_s']:.2f}{star} | "
                     f"{r['gflops']:.1f} ({100 * r['gflops'] / r['gemm_peak_gflops']:.0f}%) | {ratio} |")
    if any(r.get('extrapolated') for r in rows):
        lines.append('')
        lines.append('\\* extrapolated: per-iteration time of a shortened plan x the full iteration count.')
    return '\n'.join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='lewm-bench', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--preset', nargs='+', default=['paper', 'compact'], choices=('paper', 'compact'),
                        help='random-weight model presets to benchmark (default: paper compact)')
    parser.add_argument('--model-dir', default=None, help='benchmark this model directory instead of the presets')
    parser.add_argument('--backend', nargs='+', default=list(BACKEND_NAMES), choices=BACKEND_NAMES,
                        help='backends (those unavailable here are reported as skipped)')
    parser.add_argument('--budget', nargs='+', default=['paper', 'mpc'], choices=('paper', 'mpc'))
    parser.add_argument('--paper-iterations', type=int, default=30,
                        help='iterations timed per paper plan (< 30: plan time extrapolated, labelled)')
    parser.add_argument('--repeats', type=int, default=5, help='timed plans per row (default 5)')
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda' (default cpu)")
    parser.add_argument('--threads', type=int, default=2, help='CPU threads for torch and ONNX Runtime')
    parser.add_argument('--no-naive', action='store_true', help='skip the reference-rollout ratio')
    parser.add_argument('--json', default=None, help='write the results to this JSON file')
    parser.add_argument('--surprise', action='store_true',
                        help='plan cycle time with and without the surprise monitor on --model-dir, per backend '
                        '(MPC default planner, --decisions block boundaries; lewm_ros.bench.surprise)')
    parser.add_argument('--mode', nargs='+', default=None, choices=PLANNER_MODES,
                        help="time the planner in these modes on --model-dir (budgets: --budget; 'policy' has none)")
    parser.add_argument('--decisions', type=int, default=200,
                        help='timed decisions per --mode or --surprise row (paper budget: --repeats)')
    parser.add_argument('--samples', type=int, default=None, help='--mode rows: CEM samples of the mpc budget')
    parser.add_argument('--warm-iterations', type=int, default=None,
                        help='--mode rows: warm-started CEM iterations of the mpc budget')
    parser.add_argument('--quick', action='store_true',
                        help='smoke run: compact preset, 16 samples x 2 iterations x H 3, 2 repeats')
    add_cost_argument(parser)
    return parser


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Benchmark what ``args`` (from :func:`build_parser`) select; returns the JSON report."""
    check_int('--repeats', args.repeats, 1)
    check_int('--threads', args.threads, 1)
    cost = parse_cost_terms(args.cost)
    torch.set_num_threads(args.threads)
    if args.surprise:
        return run_surprise(args)
    if args.mode:
        return run_modes(args)
    if args.quick:
        presets, budgets, repeats = ['compact'], [QUICK_BUDGET], 2
    else:
        presets, repeats = args.preset, args.repeats
        budgets = [paper_budget(args.paper_iterations) if b == 'paper' else mpc_budget() for b in args.budget]
    gemm_size = 512 if args.quick else 1024
    peaks = [gemm_peak_gflops(gemm_size)]
    _LOG.info('fp32 GEMM peak (torch.mm, %d threads): %.1f GFLOP/s', args.threads, peaks[0])
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix='lewm-bench-') as tmp:
        sources = ([('model-dir', Path(args.model_dir))] if args.model_dir else
                   [(p, make_preset_model(p, Path(tmp) / p)) for p in presets])
        for preset, model_dir in sources:
            from lewm_ros.model import load_model
            model = load_model(model_dir)
            for budget in budgets:
                gflop_iter = rollout_gflop(model, budget, model.history, cost)
                naive_ms = None
                if not args.no_naive:
                    naive_ms = bench_naive(model_dir, budget, args.device, max(1, min(repeats, 3)), cost)
                for name in args.backend:
                    _LOG.info('%s / %s / %s ...', preset, budget.name, name)
                    peaks.append(gemm_peak_gflops(gemm_size))
                    row = bench_one(model_dir, preset, budget, name, args.device, repeats, args.threads,
                                    Path(tmp) / preset, gflop_iter, cost)
                    row['gemm_peak_gflops'] = peaks[-1]
                    if naive_ms is not None and 'skipped' not in row:
                        row['naive_iter_ms_p50'] = naive_ms
                        row['naive_speedup'] = naive_ms / row['iter_ms_p50']
                    rows.append(row)
    peaks.append(gemm_peak_gflops(gemm_size))
    return {'machine': {'platform': platform.platform(), 'processor': platform.processor(),
                        'torch': torch.__version__, 'threads': args.threads, 'device': args.device,
                        'gemm_peak_gflops': max(peaks), 'gemm_peak_gflops_min': min(peaks)},
            'budgets': [asdict(b) for b in budgets], 'cost': asdict(cost),
            'results': rows}


def run_modes(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--mode`` rows (see :mod:`lewm_ros.bench.modes`); returns the JSON report."""
    if not args.model_dir:
        raise ValueError('--mode needs --model-dir (a trained model; the policy modes need its policy)')
    check_int('--decisions', args.decisions, 1)
    rows = []
    for mode in args.mode:
        for budget in (['mpc'] if mode == 'policy' else args.budget):
            decisions = args.repeats if budget == 'paper' else args.decisions
            for name in args.backend:
                _LOG.info('%s / %s / %s ...', mode, budget, name)
                rows.append(bench_mode(Path(args.model_dir), mode, budget, name, args.device, decisions,
                                       args.threads, args.samples, args.warm_iterations))
    return {'machine': {'platform': platform.platform(), 'processor': platform.processor(),
                        'torch': torch.__version__, 'threads': args.threads, 'device': args.device},
            'results': rows}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        report = run(args)
    except KeyboardInterrupt:
        return 130
    except ValueError as exc:  # an option out of range (the message names it)
        parser.error(str(exc))
    report['command'] = ' '.join(['lewm-bench', *argv])
    print(surprise_table(report['results']) if args.surprise else mode_table(report['results']) if args.mode
          else markdown_table(report['results']))  # the product
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + '\n')
        _LOG.info('wrote %s', args.json)
    return 0



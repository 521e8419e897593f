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
``lewm_ros.planning.config.MPCConfig()`` (its warm-started solves run ``warm_iterations``). ``--paper-iterations I`` times only I iterations of a
paper plan and reports the per-plan time as ``iter_ms x 30``, labelled *extrapolated*.
Results go to stdout as a Markdown table and, with ``--json PATH``, to a JSON file.
"""
from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from lewm_ros.planning.cem import CEM
from lewm_ros.planning.config import CEMConfig, MPCConfig

_LOG = logging.getLogger('lewm-bench')

BACKENDS = ('torch', 'onnxruntime', 'tensorrt')


@dataclass(frozen=True)
class Budget:
    """A planning budget: the CEM solver's config and the iterations actually timed per plan
    (timed_iterations < cem.iterations: the plan time is extrapolated, and labelled so)."""
    name: str
    cem: CEMConfig
    timed_iterations: int

    @property
    def samples(self) -> int:
        return self.cem.num_samples

    @property
    def iterations(self) -> int:
        return self.cem.iterations

    @property
    def horizon(self) -> int:
        return self.cem.horizon

    @property
    def extrapolated(self) -> bool:
        return self.timed_iterations < self.iterations


def paper_budget(timed_iterations: int = 30) -> Budget:
    """300 samples x 30 iterations x H 5, 30 elites (CEMConfig defaults = the paper / reference)."""
    cem = CEMConfig()
    if not 1 <= timed_iterations <= cem.iterations:
        raise ValueError(f'--paper-iterations must be in [1, {cem.iterations}], got {timed_iterations}')
    return Budget('paper', cem, timed_iterations)


def mpc_budget() -> Budget:
    """A cold solve of the MPC planner's default (MPCConfig().cem; warm solves run fewer iterations)."""
    cem = MPCConfig().cem
    return Budget('mpc', cem, cem.iterations)


QUICK_BUDGET = Budget('quick', CEMConfig(num_samples=16, num_elites=4, iterations=2, horizon=3), 2)

#: z-scored action bounds used when a budget clamps to bounds (a random-weight model has no metadata).
BENCH_BOUNDS_Z = 3.0


def gemm_peak_gflops(size: int = 1024, repeats: int = 5) -> float:
    """Best fp32 ``torch.mm`` throughput [GFLOP/s] of size x size matrices on the CPU."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int = 1) -> list[float]:
    """Wall times [ms] of ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def _context(backend, gen: torch.Generator):
    from lewm_ros.runtime.backend import PlanningContext
    k, dev = backend.history, backend.device
    return PlanningContext(torch.randn(k, backend.latent_dim, generator=gen).to(dev),
                           torch.randn(k - 1, backend.block_dim, generator=gen).to(dev),
                           torch.randn(backend.latent_dim, generator=gen).to(dev))


def rollout_gflop(model, budget: Budget, history: int) -> float:
    """FLOPs of one efficient-rollout costs call at the budget's shapes [GFLOP] (flop_counter)."""
    from torch.utils.flop_counter import FlopCounterMode
    from lewm_ros.runtime.rollout import RolloutCost
    cost = RolloutCost(model)
    cfg = model.config
    args = (torch.zeros(budget.samples, budget.horizon, cfg.action_encoder.input_dim),
            torch.zeros(history, cfg.latent_dim), torch.zeros(history - 1, cfg.action_encoder.input_dim),
            torch.zeros(cfg.latent_dim))
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        cost(*args)
    return counter.get_total_flops() / 1e9


def _backend_options(name: str, budget: Budget, threads: int, work: Path) -> dict[str, Any]:
    if name == 'onnxruntime':
        return dict(num_samples=budget.samples, horizon=budget.horizon, num_threads=threads,
                    onnx_dir=work / f'onnx_n{budget.samples}_h{budget.horizon}')
    if name == 'tensorrt':
        return dict(num_samples=budget.samples, horizon=budget.horizon,
                    onnx_dir=work / f'onnx_n{budget.samples}_h{budget.horizon}')
    return {}


def bench_one(model_dir: Path, preset: str, budget: Budget, backend_name: str, device: str, repeats: int,
              threads: int, work: Path, gflop_per_iter: float) -> dict[str, Any]:
    """One row: encode/plan latency of one backend at one budget."""
    from lewm_ros.runtime.backend import make_backend
    row: dict[str, Any] = {'preset': preset, 'budget': budget.name, 'backend': backend_name,
                           'samples': budget.samples, 'iterations': budget.iterations, 'horizon': budget.horizon,
                           'elites': budget.cem.num_elites, 'timed_iterations': budget.timed_iterations,
                           'extrapolated': budget.extrapolated}
    try:
        backend = make_backend(backend_name, model_dir, device=device,
                               **_backend_options(backend_name, budget, threads, work))
    except (ImportError, ValueError) as exc:
        _LOG.warning('%s skipped: %s', backend_name, exc)
        row['skipped'] = str(exc)
        return row
    dev = backend.device
    gen = torch.Generator().manual_seed(0)
    size = backend.image_size
    pixels = torch.randn(1, 3, size, size, generator=gen).to(dev)
    row['encode_ms_p50'] = statistics.median(_timed(lambda: backend.encode(pixels), dev, repeats))
    context = _context(backend, gen)
    bounds = (torch.full((backend.block_dim,), -BENCH_BOUNDS_Z), torch.full((backend.block_dim,), BENCH_BOUNDS_Z))
    solver = CEM(budget.cem, backend.block_dim, dev, bounds if budget.cem.clamp_to_bounds else None,
                 action_dim=_action_dim(model_dir))
    plan_ms = _timed(lambda: solver.solve(backend.costs, context, iterations=budget.timed_iterations), dev, repeats)
    iter_ms = [t / budget.timed_iterations for t in plan_ms]
    scale = budget.iterations  # per-plan = per-iteration x iterations (exact when not extrapolated)
    row['iter_ms_p50'] = statistics.median(iter_ms)
    row['plan_ms_p50'] = statistics.median(iter_ms) * scale
    row['plan_ms_p99'] = _percentile(iter_ms, 99) * scale
    row['plans_per_s'] = 1e3 / row['plan_ms_p50']
    row['gflop_per_plan'] = gflop_per_iter * budget.iterations
    row['gflops'] = gflop_per_iter / (row['iter_ms_p50'] / 1e3)
    return row


def _action_dim(model_dir: Path) -> int:
    """Raw action dim (for hold_actions): the model's metadata, else the presets' 2-D actions."""
    from lewm_ros.model.metadata import ModelMetadata
    try:
        return ModelMetadata.load(model_dir).action_dim
    except ValueError:
        return 2


def bench_naive(model_dir: Path, budget: Budget, device: str, repeats: int) -> float:
    """p50 time [ms] of one reference-rollout costs call (one CEM iteration's rollout)."""
    from lewm_ros.runtime.backend import make_backend
    backend = make_backend('torch', model_dir, device=device, rollout='naive', cuda_graphs=False)
    gen = torch.Generator().manual_seed(0)
    context = _context(backend, gen)
    candidates = torch.randn(budget.samples, budget.horizon, backend.block_dim, generator=gen).to(backend.device)
    return statistics.median(_timed(lambda: backend.costs(candidates, context), backend.device, repeats))


def make_preset_model(preset: str, directory: Path, seed: int = 0) -> Path:
    """A random-weight model directory of a preset (2-D actions, frameskip 5)."""
    from lewm_ros.model import LeWM, preset as preset_config, save_model_dir
    torch.manual_seed(seed)
    return save_model_dir(LeWM(preset_config(preset)), directory)


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
    parser.add_argument('--backend', nargs='+', default=list(BACKENDS), choices=BACKENDS,
                        help='backends (those unavailable here are reported as skipped)')
    parser.add_argument('--budget', nargs='+', default=['paper', 'mpc'], choices=('paper', 'mpc'))
    parser.add_argument('--paper-iterations', type=int, default=30,
                        help='iterations timed per paper plan (< 30: plan time extrapolated, labelled)')
    parser.add_argument('--repeats', type=int, default=5, help='timed plans per row (default 5)')
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda' (default cpu)")
    parser.add_argument('--threads', type=int, default=2, help='CPU threads for torch and ONNX Runtime')
    parser.add_argument('--no-naive', action='store_true', help='skip the reference-rollout ratio')
    parser.add_argument('--json', default=None, help='write the results to this JSON file')
    parser.add_argument('--quick', action='store_true',
                        help='smoke run: compact preset, 16 samples x 2 iterations x H 3, 2 repeats')
    return parser


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.repeats < 1 or args.threads < 1:
        raise ValueError(f'--repeats and --threads must be >= 1, got {args.repeats}, {args.threads}')
    torch.set_num_threads(args.threads)
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
                gflop_iter = rollout_gflop(model, budget, model.history)
                naive_ms = None
                if not args.no_naive:
                    naive_ms = bench_naive(model_dir, budget, args.device, max(1, min(repeats, 3)))
                for name in args.backend:
                    _LOG.info('%s / %s / %s ...', preset, budget.name, name)
                    peaks.append(gemm_peak_gflops(gemm_size))
                    row = bench_one(model_dir, preset, budget, name, args.device, repeats, args.threads,
                                    Path(tmp) / preset, gflop_iter)
                    row['gemm_peak_gflops'] = peaks[-1]
                    if naive_ms is not None and 'skipped' not in row:
                        row['naive_iter_ms_p50'] = naive_ms
                        row['naive_speedup'] = naive_ms / row['iter_ms_p50']
                    rows.append(row)
    peaks.append(gemm_peak_gflops(gemm_size))
    return {'machine': {'platform': platform.platform(), 'processor': platform.processor(),
                        'torch': torch.__version__, 'threads': args.threads, 'device': args.device,
                        'gemm_peak_gflops': max(peaks), 'gemm_peak_gflops_min': min(peaks)},
            'budgets': [asdict(b) for b in budgets],
            'results': rows}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        report = run(args)
    except KeyboardInterrupt:
        return 130
    report['command'] = ' '.join(['lewm-bench', *argv])
    print(markdown_table(report['results']))  # the product of this tool
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + '\n')
        _LOG.info('wrote %s', args.json)
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""One row of ``lewm-bench``: encode and plan latency of one backend at one budget, the FLOPs of a
rollout and the reference-rollout time."""
from __future__ import annotations

import logging
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lewm_ros.bench.budgets import Budget
from lewm_ros.bench.timing import percentile, timed_ms
from lewm_ros.planning.cem import CEM
from lewm_ros.runtime.backend import InferenceBackend, PlanningContext, make_backend
from lewm_ros.runtime.critics import LatentCostConfig

_LOG = logging.getLogger(__name__)

#: z-scored action bounds used when a budget clamps to bounds (a random-weight model has no metadata).
BENCH_BOUNDS_Z = 3.0


def random_context(backend: InferenceBackend, rng: np.random.Generator) -> PlanningContext:
    """A full-history context (k = history) of random latents and blocks in the backend's arrays."""
    k, arrays = backend.history, backend.arrays
    return PlanningContext(arrays.from_host(rng.standard_normal((k, backend.latent_dim))),
                           arrays.from_host(rng.standard_normal((k - 1, backend.block_dim))),
                           arrays.from_host(rng.standard_normal(backend.latent_dim)))


def rollout_gflop(model, budget: Budget, history: int, cost: LatentCostConfig | None = None) -> float:
    """FLOPs of one efficient-rollout costs call at the budget's shapes [GFLOP] (flop_counter)."""
    from torch.utils.flop_counter import FlopCounterMode
    from lewm_ros.runtime.rollout import RolloutCost
    rollout = RolloutCost(model, cost)
    cfg = model.config
    args = (torch.zeros(budget.cem.num_samples, budget.cem.horizon, cfg.action_encoder.input_dim),
            torch.zeros(history, cfg.latent_dim), torch.zeros(history - 1, cfg.action_encoder.input_dim),
            torch.zeros(cfg.latent_dim))
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        rollout(*args)
    return counter.get_total_flops() / 1e9


def _backend_options(name: str, budget: Budget, threads: int, work: Path) -> dict[str, Any]:
    if name == 'onnxruntime':
        return dict(num_samples=budget.cem.num_samples, horizon=budget.cem.horizon, num_threads=threads,
                    onnx_dir=work / f'onnx_n{budget.cem.num_samples}_h{budget.cem.horizon}')
    if name == 'tensorrt':
        return dict(num_samples=budget.cem.num_samples, horizon=budget.cem.horizon,
                    onnx_dir=work / f'onnx_n{budget.cem.num_samples}_h{budget.cem.horizon}')
    return {}


def _action_dim(model_dir: Path) -> int:
    """Raw action dim (for hold_actions): the model's metadata, else the presets' 2-D actions."""
    from lewm_ros.model.metadata import ModelMetadata
    try:
        return ModelMetadata.load(model_dir).action_dim
    except ValueError:
        return 2


def bench_one(model_dir: Path, preset: str, budget: Budget, backend_name: str, device: str, repeats: int,
              threads: int, work: Path, gflop_per_iter: float, cost: LatentCostConfig | None = None
              ) -> dict[str, Any]:
    """One row: encode/plan latency of one backend at one budget (cost: the critics scored)."""
    row: dict[str, Any] = {'preset': preset, 'budget': budget.name, 'backend': backend_name,
                           'samples': budget.cem.num_samples, 'iterations': budget.cem.iterations,
                           'horizon': budget.cem.horizon,
                           'elites': budget.cem.num_elites, 'timed_iterations': budget.timed_iterations,
                           'extrapolated': budget.extrapolated}
    try:
        backend = make_backend(backend_name, model_dir, device=device, cost=cost,
                               **_backend_options(backend_name, budget, threads, work))
    except (ImportError, ValueError) as exc:
        _LOG.warning('%s skipped: %s', backend_name, exc)
        row['skipped'] = str(exc)
        return row
    arrays = backend.arrays
    rng = np.random.default_rng(0)
    size = backend.image_size
    pixels = arrays.from_host(rng.standard_normal((1, 3, size, size)))
    row['arrays'] = arrays.library
    row['encode_ms_p50'] = statistics.median(timed_ms(lambda: backend.encode(pixels), arrays, repeats))
    context = random_context(backend, rng)
    bounds = (np.full(backend.block_dim, -BENCH_BOUNDS_Z), np.full(backend.block_dim, BENCH_BOUNDS_Z))
    solver = CEM(budget.cem, backend.block_dim, arrays, bounds if budget.cem.clamp_to_bounds else None,
                 action_dim=_action_dim(model_dir))
    plan_ms = timed_ms(lambda: solver.solve(backend.costs, context, iterations=budget.timed_iterations), arrays,
                       repeats)
    iter_ms = [t / budget.timed_iterations for t in plan_ms]
    scale = budget.cem.iterations  # per-plan = per-iteration x iterations (exact when not extrapolated)
    row['iter_ms_p50'] = statistics.median(iter_ms)
    row['plan_ms_p50'] = statistics.median(iter_ms) * scale
    row['plan_ms_p99'] = percentile(iter_ms, 99) * scale
    row['plans_per_s'] = 1e3 / row['plan_ms_p50']
    row['gflop_per_plan'] = gflop_per_iter * budget.cem.iterations
    row['gflops'] = gflop_per_iter / (row['iter_ms_p50'] / 1e3)
    return row


def bench_naive(model_dir: Path, budget: Budget, device: str, repeats: int,
                cost: LatentCostConfig | None = None) -> float:
    """p50 time [ms] of one reference-rollout costs call (one CEM iteration's rollout)."""
    backend = make_backend('torch', model_dir, device=device, rollout='naive', cuda_graphs=False, cost=cost)
    rng = np.random.default_rng(0)
    context = random_context(backend, rng)
    shape = (budget.cem.num_samples, budget.cem.horizon, backend.block_dim)
    candidates = backend.arrays.from_host(rng.standard_normal(shape))
    return statistics.median(timed_ms(lambda: backend.costs(candidates, context), backend.arrays, repeats))


def make_preset_model(preset: str, directory: Path, seed: int = 0) -> Path:
    """A random-weight model directory of a preset (2-D actions, frameskip 5)."""
    from lewm_ros.model import LeWM, preset as preset_config, save_model_dir
    torch.manual_seed(seed)
    return save_model_dir(LeWM(preset_config(preset)), directory)

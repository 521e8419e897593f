"""Efficient vs reference rollout: time per costs call, FLOPs, achieved GFLOP/s vs a GEMM peak.

``python -m lewm_ros.bench.rollout --preset paper --samples 300 --horizon 5 --frames 3
--threads 2 [--json PATH]`` (random weights: the cost of a rollout does not depend on them).
Calls alternate between the two rollouts so that a change in machine load hits both alike;
the minimum over repeats is reported, and the per-pair ratios show the spread.
"""
from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict, dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from lewm_ros.bench.gemm import gemm_peak_gflops
from lewm_ros.bench.timing import seconds
from lewm_ros.model.config import preset
from lewm_ros.model.lewm import LeWM
from lewm_ros.runtime.host_memory import reuse_freed_memory
from lewm_ros.runtime.kernels import select_kernels
from lewm_ros.runtime.rollout import NaiveRolloutCost, RolloutCost

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class RolloutBenchResult:
    """Times [s] are minima over repeats; gflop: FLOPs of one costs call [1e9];
    gemm_peak_gflops: best fp32 torch.mm rate of a predictor-sized GEMM [GFLOP/s]."""
    preset: str
    samples: int
    horizon: int
    frames: int
    threads: int
    naive_s: float
    efficient_s: float
    speedup: float
    pair_ratios: list[float]
    naive_gflop: float
    efficient_gflop: float
    naive_gflops: float
    efficient_gflops: float
    gemm_peak_gflops: float
    max_rel_diff: float


def run(preset_name: str = 'paper', samples: int = 300, horizon: int = 5, frames: int = 3, threads: int = 2,
        repeats: int = 4, seed: int = 0) -> RolloutBenchResult:
    """Benchmark one configuration with ``threads`` intra-op threads (restored afterwards), with
    the process memory setting of the torch backend on CPU."""
    reuse_freed_memory()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run(preset_name, samples, horizon, frames, threads, repeats, seed)
    finally:
        torch.set_num_threads(previous)


def _run(preset_name: str, samples: int, horizon: int, frames: int, threads: int, repeats: int,
         seed: int) -> RolloutBenchResult:
    torch.manual_seed(seed)
    model = LeWM(preset(preset_name)).eval()
    with torch.no_grad():  # live AdaLN gates, as in a trained model
        for block in model.predictor.transformer.layers:
            block.adaLN_modulation[1].weight.normal_(0.0, 0.02)
    d, block_dim = model.config.latent_dim, model.config.action_encoder.input_dim
    args = (torch.randn(samples, horizon, block_dim), torch.randn(frames, d), torch.randn(frames - 1, block_dim),
            torch.randn(d))
    # The torch backend's CPU rollout; FLOPs are counted on the portable kernels (same math: the
    # flop counter does not see oneDNN ops).
    kernels = select_kernels('auto', 'cpu', model.config.predictor.hidden_dim)
    efficient, naive = RolloutCost(model, kernels=kernels), NaiveRolloutCost(model)
    with torch.inference_mode():
        flops = []
        for fn in (naive, RolloutCost(model)):
            with FlopCounterMode(display=False) as counter:
                fn(*args)
            flops.append(counter.get_total_flops() / 1e9)
        ref = naive(*args)
        max_rel = float(((efficient(*args) - ref).abs() / ref.abs()).max())
        times = [(seconds(lambda: naive(*args)), seconds(lambda: efficient(*args))) for _ in range(repeats)]
    hidden = model.config.predictor.hidden_dim
    peak = gemm_peak_gflops(samples * frames, hidden, model.config.predictor.mlp_dim, repeats=10)
    naive_s, eff_s = min(t[0] for t in times), min(t[1] for t in times)
    return RolloutBenchResult(preset=preset_name, samples=samples, horizon=horizon, frames=frames, threads=threads,
                              naive_s=naive_s, efficient_s=eff_s, speedup=naive_s / eff_s,
                              pair_ratios=[round(a / b, 3) for a, b in times], naive_gflop=flops[0],
                              efficient_gflop=flops[1], naive_gflops=flops[0] / naive_s,
                              efficient_gflops=flops[1] / eff_s, gemm_peak_gflops=peak, max_rel_diff=max_rel)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--preset', default='paper', choices=['paper', 'compact'])
    parser.add_argument('--samples', type=int, default=300)
    parser.add_argument('--horizon', type=int, default=5)
    parser.add_argument('--frames', type=int, default=3)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=4)
    parser.add_argument('--json', help='write the result to this JSON file')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    result = run(args.preset, args.samples, args.horizon, args.frames, args.threads, args.repeats)
    _LOG.info('naive %.0f ms (%.1f GFLOP, %.1f GFLOP/s) | efficient %.0f ms (%.1f GFLOP, %.1f GFLOP/s) | '
             'speed-up %.2fx (pairs %s) | GEMM peak %.1f GFLOP/s | max rel diff %.1e',
             result.naive_s * 1e3, result.naive_gflop, result.naive_gflops, result.efficient_s * 1e3,
             result.efficient_gflop, result.efficient_gflops, result.speedup, result.pair_ratios,
             result.gemm_peak_gflops, result.max_rel_diff)
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump(asdict(result), handle, indent=2)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

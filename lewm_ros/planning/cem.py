"""Paper-exact cross-entropy method over z-scored action blocks.

Each iteration: sample N candidates from N(mean, std) with the planner's own seeded generator,
replace candidate 0 by the current mean, optionally clamp to the action bounds (z-space),
score them with the backend's rollout cost, refit mean and std to the ``num_elites`` lowest
costs. The result is the final mean. Everything stays on the backend's device; the only host
transfer is the cost history at the end of a solve.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from collections.abc import Callable

import torch

from lewm_ros.planning.config import CEMConfig
from lewm_ros.runtime.backend import PlanningContext

CostFn = Callable[[torch.Tensor, PlanningContext], torch.Tensor]


@dataclass(frozen=True)
class CEMResult:
    """mean: (H, block) [z-scored] the plan; cost: lowest sampled cost of the last iteration;
    iterations: iterations run; elapsed_s: wall time of the solve [s]; cost_history: lowest
    sampled cost of every iteration."""
    mean: torch.Tensor
    cost: float
    iterations: int
    elapsed_s: float
    cost_history: tuple[float, ...]


class CEM:
    """CEM solver. block_dim: width of one action block; device: where samples live (the
    backend's); bounds_z: optional ((block,), (block,)) low/high [z-scored], used when
    ``config.clamp_to_bounds``."""

    def __init__(self, config: CEMConfig, block_dim: int, device: str | torch.device = 'cpu',
                 bounds_z: tuple[torch.Tensor, torch.Tensor] | None = None, action_dim: int | None = None) -> None:
        if config.clamp_to_bounds and bounds_z is None:
            raise ValueError('cem.clamp_to_bounds is set but no action bounds were given')
        if config.hold_actions and (action_dim is None or block_dim % action_dim):
            raise ValueError(f'cem.hold_actions needs the raw action_dim dividing block_dim={block_dim}, '
                             f'got {action_dim}')
        self.action_dim = action_dim
        self.config = config
        self.block_dim = block_dim
        self.device = torch.device(device)
        self.bounds_z = None if bounds_z is None else tuple(b.to(self.device, torch.float32) for b in bounds_z)
        self.generator = torch.Generator(device=self.device)
        self.reset()

    def reset(self) -> None:
        """Reseed the generator: a reset planner repeats its plans exactly."""
        self.generator.manual_seed(self.config.seed)

    def solve(self, costs_fn: CostFn, context: PlanningContext, init_mean: torch.Tensor | None = None,
              init_std: torch.Tensor | float | None = None, iterations: int | None = None) -> CEMResult:
        """Minimise costs_fn over (H, block) plans.

        init_mean: (H, block) [z-scored] warm start (default zeros); init_std: scalar or (H, block)
        (default config.init_std); iterations: override config.iterations (MPC warm solves).
        """
        cfg = self.config
        shape = (cfg.horizon, self.block_dim)
        iterations = cfg.iterations if iterations is None else iterations
        if iterations < 1:
            raise ValueError(f'iterations must be >= 1, got {iterations}')
        start = time.perf_counter()
        with torch.inference_mode():
            mean = torch.zeros(shape, device=self.device) if init_mean is None \
                else init_mean.to(self.device, torch.float32).clone()
            if tuple(mean.shape) != shape:
                raise ValueError(f'init_mean must be {shape}, got {tuple(mean.shape)}')
            std = torch.as_tensor(cfg.init_std if init_std is None else init_std, dtype=torch.float32,
                                  device=self.device).expand(shape).clone()
            history = torch.empty(iterations, device=self.device)
            for it in range(iterations):
                noise = self._noise(shape)
                samples = torch.cat([mean.unsqueeze(0), mean + std * noise], dim=0)      # (N, H, block)
                if cfg.clamp_to_bounds:
                    samples = samples.clamp(self.bounds_z[0], self.bounds_z[1])
                costs = costs_fn(samples, context)                                       # (N,)
                elite_costs, idx = torch.topk(costs, cfg.num_elites, largest=False, sorted=True)
                elites = samples[idx]                                                    # (E, H, block)
                mean, std = elites.mean(dim=0), elites.std(dim=0)
                history[it] = elite_costs[0]
            cost_history = tuple(history.cpu().tolist())
        return CEMResult(mean=mean, cost=cost_history[-1], iterations=iterations,
                         elapsed_s=time.perf_counter() - start, cost_history=cost_history)

    def _noise(self, shape: tuple[int, int]) -> torch.Tensor:
        """(N-1, H, block) standard normal; with ``hold_actions`` one draw per raw action dim and
        block, repeated over the block's frameskip steps (piecewise-constant candidates)."""
        n = self.config.num_samples - 1
        if not self.config.hold_actions:
            return torch.randn((n, *shape), generator=self.generator, device=self.device)
        held = torch.randn((n, shape[0], 1, self.action_dim), generator=self.generator, device=self.device)
        return held.expand(n, shape[0], shape[1] // self.action_dim, self.action_dim).reshape(n, *shape)

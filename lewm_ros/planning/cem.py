"""Paper-exact cross-entropy method over z-scored action blocks, on any array namespace.

Each iteration: sample N candidates from N(mean, std), replace candidate 0 by the current mean,
optionally clamp to the action bounds (z-space), score them with the backend's rollout cost,
refit mean and std to the ``num_elites`` lowest costs. The result is the final mean.

Written once over the array API standard (:mod:`lewm_ros.runtime.arrays`): numpy on the host
(ONNX Runtime, TensorRT through pycuda) or torch on the backend's device. The noise of a whole
solve comes from the planner's own seeded ``numpy.random.Generator`` on the host and is moved to
the backend's device in one copy, so a seed gives the same samples in every namespace and plans
agree across backends up to cost rounding. Apart from that copy, the only host transfer of a
solve is the cost history at its end.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

import numpy as np

from lewm_ros.planning.config import CEMConfig
from lewm_ros.runtime.arrays import ArraySpace, array_space
from lewm_ros.runtime.backend import PlanningContext

#: costs_fn(candidates (N, H, block), context) -> costs (N,), arrays of the solver's space.
CostFn = Callable[[Any, PlanningContext], Any]


@dataclass(frozen=True)
class CEMResult:
    """mean: (H, block) [z-scored] the plan, an array of the solver's space; cost: lowest sampled
    cost of the last iteration; iterations: iterations run; elapsed_s: wall time of the solve [s];
    cost_history: lowest sampled cost of every iteration; proposal_costs: cost of each injected
    proposal in the first iteration (empty without proposals); best: (H, block) the candidate
    with the lowest cost of the last iteration (the plan the cost chose, whereas ``mean`` was
    never scored)."""
    mean: Any
    cost: float
    iterations: int
    elapsed_s: float
    cost_history: tuple[float, ...]
    proposal_costs: tuple[float, ...] = ()
    best: Any = None


class CEM:
    """CEM solver. block_dim: width of one action block; arrays: where samples live (the
    backend's ``arrays``; default numpy on the host); bounds_z: optional ((block,), (block,))
    low/high [z-scored] host arrays, used when ``config.clamp_to_bounds``; action_dim: raw action
    width (needed by ``config.hold_actions``)."""

    def __init__(self, config: CEMConfig, block_dim: int, arrays: ArraySpace | None = None,
                 bounds_z: tuple[Any, Any] | None = None, action_dim: int | None = None) -> None:
        if config.clamp_to_bounds and bounds_z is None:
            raise ValueError('cem.clamp_to_bounds is set but no action bounds were given')
        if config.hold_actions and (action_dim is None or block_dim % action_dim):
            raise ValueError(f'cem.hold_actions needs the raw action_dim dividing block_dim={block_dim}, '
                             f'got {action_dim}')
        self.action_dim = action_dim
        self.config = config
        self.block_dim = block_dim
        self.arrays = arrays or array_space('numpy')
        self.bounds_z = None if bounds_z is None else tuple(self.arrays.from_host(b) for b in bounds_z)
        self.reset()

    def reset(self) -> None:
        """Reseed the generator: a reset planner repeats its plans exactly."""
        self.generator = np.random.default_rng(self.config.seed)

    def solve(self, costs_fn: CostFn, context: PlanningContext, init_mean: Any = None,
              init_std: Any = None, iterations: int | None = None, proposals: Any = None) -> CEMResult:
        """Minimise costs_fn over (H, block) plans.

        init_mean: (H, block) [z-scored] warm start, an array of the solver's space or a host array
        (default zeros); init_std: scalar or (H, block) host array (default config.init_std);
        iterations: override config.iterations (MPC warm solves); proposals: (P, H, block) [z-scored] plans
        from elsewhere (a policy, the previous plan), P < num_samples, scored among the
        candidates of every iteration in place of samples 1..P: they become elites only when
        the cost ranks them there.
        """
        cfg, space = self.config, self.arrays
        xp = space.xp
        shape = (cfg.horizon, self.block_dim)
        iterations = cfg.iterations if iterations is None else iterations
        if iterations < 1:
            raise ValueError(f'iterations must be >= 1, got {iterations}')
        start = time.perf_counter()
        mean = space.zeros(shape) if init_mean is None else space.asarray(init_mean)
        if tuple(mean.shape) != shape:
            raise ValueError(f'init_mean must be {shape}, got {tuple(mean.shape)}')
        std = space.from_host(np.broadcast_to(np.float32(cfg.init_std if init_std is None else init_std), shape))
        noise = space.from_host(self._noise(iterations, shape))                      # (I, N-1, H, block)
        injected = self._proposals(proposals, shape)                                 # (P, H, block)
        p = injected.shape[0]
        best = []
        for it in range(iterations):
            samples = xp.concat([mean[None, ...], injected, (mean + std * noise[it, ...])[p:, ...]],
                                axis=0)                                              # (N, H, block)
            if cfg.clamp_to_bounds:
                samples = xp.clip(samples, min=self.bounds_z[0], max=self.bounds_z[1])
            costs = costs_fn(samples, context)                                       # (N,)
            if it == 0:
                proposal_costs = costs[1:1 + p]                                      # (P,)
            order = xp.argsort(costs, stable=True)[:cfg.num_elites]                  # (E,) lowest first
            elites = xp.take(samples, order, axis=0)                                 # (E, H, block)
            mean, std = xp.mean(elites, axis=0), xp.std(elites, axis=0, correction=1)
            best.append(xp.take(costs, order[:1], axis=0))
        cost_history = tuple(float(c) for c in space.to_host(xp.concat(best, axis=0)))
        return CEMResult(mean=mean, cost=cost_history[-1], iterations=iterations,
                         elapsed_s=time.perf_counter() - start, cost_history=cost_history,
                         proposal_costs=tuple(float(c) for c in space.to_host(proposal_costs)) if p else (),
                         best=xp.take(samples, order[:1], axis=0)[0, ...])

    def _proposals(self, proposals: Any, shape: tuple[int, int]) -> Any:
        """proposals (P, H, block) as an array of the solver's space; (0, H, block) for None."""
        if proposals is None:
            return self.arrays.zeros((0, *shape))
        if len(proposals.shape) != 3 or tuple(proposals.shape[1:]) != shape \
                or not proposals.shape[0] < self.config.num_samples:
            raise ValueError(f'proposals must be (P, {shape[0]}, {shape[1]}) with P < num_samples='
                             f'{self.config.num_samples}, got {tuple(proposals.shape)}')
        return self.arrays.asarray(proposals)

    def _noise(self, iterations: int, shape: tuple[int, int]) -> np.ndarray:
        """(iterations, N-1, H, block) float32 standard normal from the host generator; with
        ``hold_actions`` one draw per raw action dim and block, repeated over the block's
        frameskip steps (piecewise-constant candidates)."""
        n = self.config.num_samples - 1
        if not self.config.hold_actions:
            return self.generator.standard_normal((iterations, n, *shape), dtype=np.float32)
        held = self.generator.standard_normal((iterations, n, shape[0], 1, self.action_dim), dtype=np.float32)
        steps = shape[1] // self.action_dim
        return np.broadcast_to(held, (iterations, n, shape[0], steps, self.action_dim)).reshape(iterations, n, *shape)

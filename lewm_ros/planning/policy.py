"""The planner modes that use the goal-conditioned policy (no ROS imports).

- ``policy``: one policy forward per plan: (z_t, z_goal, goal_blocks) -> its first action block,
  held over the H blocks of the plan (the robot keeps its last decision until the next plan); no
  rollout, so the plan has no world-model cost (NaN).
- ``policy_cem``: the policy's proposal, unrolled through the world model (block j is the
  policy's first block at the latent the predictor expects after blocks 0..j-1), seeds the CEM
  mean and is scored among the candidates of every iteration, beside the previous plan (the warm
  start); CEM refines with the warm budget.
  The plan is the lowest-cost candidate of the last iteration (not the elite mean, which mixes
  candidates and is never scored), so a proposal the world model scores badly never beats the
  previous plan or a better sampled one. When it scores above ``disagreement_ratio`` times the
  best sampled plan the plan is marked as a disagreement (counted in /diagnostics). A proposal
  with a non-finite value is dropped: CEM then starts from the previous plan (or zeros).
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from lewm_ros.planning.cem import CEM, CEMResult, CostFn
from lewm_ros.planning.config import MPCConfig
from lewm_ros.runtime.arrays import ArraySpace
from lewm_ros.runtime.backend import PlanningContext
from lewm_ros.runtime.policy_runner import PolicyRunner

#: predict_next(context, block (block,)) -> the next latent (D,): the backend's predictor step.
PredictFn = Callable[[PlanningContext, Any], Any]


class PolicyProposer:
    """runner: the policy; arrays: the backend's array space (proposals are made there);
    block_dim, latent_dim: the backend's; config: the planner's MPCConfig (mode, horizon, warm
    budget, policy settings); predict_next: the backend's predictor step, which unrolls the
    policy_cem proposal (None: the first block is held over the horizon, as in mode policy);
    history: frames of context the unroll keeps (the planner's)."""

    def __init__(self, runner: PolicyRunner, arrays: ArraySpace, block_dim: int, latent_dim: int,
                 config: MPCConfig, predict_next: PredictFn | None = None, history: int = 1) -> None:
        policy = runner.config
        if (policy.latent_dim, policy.block_dim) != (latent_dim, block_dim):
            raise ValueError(f'{runner.source}: the policy takes latents of {policy.latent_dim} and blocks of '
                             f'{policy.block_dim}, the world model {latent_dim} and {block_dim}: run lewm-train '
                             'fit-policy again')
        if config.policy.goal_blocks > policy.max_goal_blocks:
            raise ValueError(f'planner.policy_goal_blocks {config.policy.goal_blocks:g} is beyond the goals the policy '
                             f'was trained on ({runner.source}: max_goal_blocks {policy.max_goal_blocks:g})')
        self.runner = runner
        self.arrays = arrays
        self.config = config
        self.horizon = config.cem.horizon
        self.goal_blocks = float(config.policy.goal_blocks)
        self.predict_next = predict_next
        self.history = history

    def first_block(self, latent: Any, goal: Any) -> np.ndarray:
        """The policy's next block (block,) [z-scored] on the host, from latent and goal (D,)."""
        to_host = self.arrays.to_host
        return self.runner.propose(to_host(latent), to_host(goal), self.goal_blocks)[0]

    def propose(self, context: PlanningContext) -> Any:
        """The policy's plan from the context's current frame to its goal: (H, block) [z-scored]
        in the backend's array space: unrolled through the world model in mode policy_cem with
        a predictor step, else the first block held over the horizon."""
        xp = self.arrays.xp
        latents, blocks, goal = context.history_latents, context.history_blocks, context.goal_latent
        plan = [self.first_block(latents[-1, ...], goal)]
        for _ in range(1, self.horizon):
            if self.config.mode == 'policy' or self.predict_next is None:
                plan.append(plan[0])
                continue
            block = self.arrays.from_host(plan[-1])
            latent = self.predict_next(PlanningContext(latents, blocks, goal), block)       # (D,)
            latents = xp.concat([latents, latent[None, ...]], axis=0)[-self.history:, ...]
            blocks = xp.concat([blocks, block[None, ...]], axis=0)
            blocks = blocks[blocks.shape[0] - (latents.shape[0] - 1):, ...]               # (k-1, block)
            plan.append(self.first_block(latent, goal))
        return self.arrays.from_host(np.stack(plan))

    def solve(self, cem: CEM, costs_fn: CostFn, context: PlanningContext, previous: Any) -> CEMResult:
        """The mode's plan. previous: (H, block) [z-scored] the warm start (the last plan shifted)
        or None. In mode 'policy' the result has cost NaN, no iterations and no cost history."""
        start = time.perf_counter()
        proposal = self.propose(context)
        if self.config.mode == 'policy':
            return CEMResult(mean=proposal, cost=math.nan, iterations=0, elapsed_s=time.perf_counter() - start,
                             cost_history=())
        xp = self.arrays.xp
        if not np.all(np.isfinite(self.arrays.to_host(proposal))):
            seed = self.arrays.zeros(proposal.shape) if previous is None else previous
            result = cem.solve(costs_fn, context, init_mean=seed, init_std=self.config.warm_std,
                               iterations=self.config.warm_iterations,
                               proposals=None if previous is None else previous[None, ...])
            return dataclasses.replace(result, mean=result.best, proposal_costs=(math.inf,))
        candidates = proposal[None, ...] if previous is None else xp.stack([proposal, previous])
        result = cem.solve(costs_fn, context, init_mean=proposal, init_std=self.config.warm_std,
                           iterations=self.config.warm_iterations, proposals=candidates)
        return dataclasses.replace(result, mean=result.best)

    def disagrees(self, result: CEMResult) -> bool:
        """Whether the world model scored the proposal (first injected candidate) above
        disagreement_ratio times the best sampled plan of the solve (False in mode 'policy')."""
        if not result.proposal_costs:
            return False
        return result.proposal_costs[0] > self.config.policy.disagreement_ratio * result.cost

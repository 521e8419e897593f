"""The planner modes that use the goal-conditioned policy (no ROS imports).

- ``policy``: one policy forward per plan: (z_t, z_goal, goal_blocks) -> the next H action blocks;
  no rollout, so the plan has no world-model cost (NaN).
- ``policy_cem``: the policy's proposal seeds the CEM mean and is scored among the candidates of
  every iteration, beside the previous plan (the warm start); CEM refines with the warm budget.
  The rollout cost decides which plans become elites, so a proposal the world model scores badly
  never outranks a better sampled plan. When it scores above ``disagreement_ratio`` times the
  best sampled plan the plan is marked as a disagreement (counted in /diagnostics).
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from lewm_ros.planning.cem import CEM, CEMResult, CostFn
from lewm_ros.planning.config import MPCConfig
from lewm_ros.runtime.arrays import ArraySpace
from lewm_ros.runtime.backend import PlanningContext
from lewm_ros.runtime.policy_runner import PolicyRunner


class PolicyProposer:
    """runner: the policy; arrays: the backend's array space (proposals are made there);
    block_dim, latent_dim: the backend's; config: the planner's MPCConfig (mode, horizon, warm
    budget, policy settings)."""

    def __init__(self, runner: PolicyRunner, arrays: ArraySpace, block_dim: int, latent_dim: int,
                 config: MPCConfig) -> None:
        policy = runner.config
        if (policy.latent_dim, policy.block_dim) != (latent_dim, block_dim):
            raise ValueError(f'the policy takes latents of {policy.latent_dim} and blocks of {policy.block_dim}, the '
                             f'world model {latent_dim} and {block_dim}')
        self.runner = runner
        self.arrays = arrays
        self.config = config
        self.horizon = config.cem.horizon
        goal_blocks = config.policy.goal_blocks
        self.goal_blocks = float(self.horizon if goal_blocks is None else goal_blocks)

    def propose(self, context: PlanningContext) -> Any:
        """The policy's plan from the context's current frame to its goal: (H, block) [z-scored]
        in the backend's array space; blocks past the policy's P are zero (the action mean), as
        a shifted warm start's tail."""
        to_host = self.arrays.to_host
        blocks = self.runner.propose(to_host(context.history_latents[-1, ...]), to_host(context.goal_latent),
                                     self.goal_blocks)                                  # (P, block)
        plan = np.zeros((self.horizon, blocks.shape[1]), np.float32)
        plan[:min(self.horizon, len(blocks))] = blocks[:self.horizon]
        return self.arrays.from_host(plan)

    def solve(self, cem: CEM, costs_fn: CostFn, context: PlanningContext, previous: Any) -> CEMResult:
        """The mode's plan. previous: (H, block) [z-scored] the warm start (the last plan shifted)
        or None. In mode 'policy' the result has cost NaN, no iterations and no cost history."""
        start = time.perf_counter()
        proposal = self.propose(context)
        if self.config.mode == 'policy':
            return CEMResult(mean=proposal, cost=math.nan, iterations=0, elapsed_s=time.perf_counter() - start,
                             cost_history=())
        xp = self.arrays.xp
        candidates = proposal[None, ...] if previous is None else xp.stack([proposal, previous])
        return cem.solve(costs_fn, context, init_mean=proposal, init_std=self.config.warm_std,
                         iterations=self.config.warm_iterations, proposals=candidates)

    def disagrees(self, result: CEMResult) -> bool:
        """Whether the world model scored the proposal (first injected candidate) above
        disagreement_ratio times the best sampled plan of the solve (False in mode 'policy')."""
        if not result.proposal_costs:
            return False
        return result.proposal_costs[0] > self.config.policy.disagreement_ratio * result.cost

"""Planning budgets of ``lewm-bench``: the CEM configs that are timed."""
from __future__ import annotations

from dataclasses import dataclass

from lewm_ros.planning.config import CEMConfig, MPCConfig
from lewm_ros.validation import check_int


@dataclass(frozen=True)
class Budget:
    """A planning budget: the CEM solver's config and the iterations actually timed per plan
    (timed_iterations < cem.iterations: the plan time is extrapolated, and labelled so)."""
    name: str
    cem: CEMConfig
    timed_iterations: int

    @property
    def extrapolated(self) -> bool:
        return self.timed_iterations < self.cem.iterations


def paper_budget(timed_iterations: int = 30) -> Budget:
    """300 samples x 30 iterations x H 5, 30 elites (CEMConfig defaults = the paper / reference)."""
    cem = CEMConfig()
    check_int('--paper-iterations', timed_iterations, 1, cem.iterations)
    return Budget('paper', cem, timed_iterations)


def mpc_budget() -> Budget:
    """A cold solve of the MPC planner's default (MPCConfig().cem; warm solves run fewer iterations)."""
    cem = MPCConfig().cem
    return Budget('mpc', cem, cem.iterations)


QUICK_BUDGET = Budget('quick', CEMConfig(num_samples=16, num_elites=4, iterations=2, horizon=3), 2)

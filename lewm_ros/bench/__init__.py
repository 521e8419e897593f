"""``lewm-bench`` and the rollout benchmark: planning budgets, timing, one GEMM peak.

Modules: :mod:`~lewm_ros.bench.cli` (``lewm-bench``), :mod:`~lewm_ros.bench.budgets`,
:mod:`~lewm_ros.bench.measure` (one table row), :mod:`~lewm_ros.bench.rollout` (efficient vs
reference rollout), :mod:`~lewm_ros.bench.gemm`, :mod:`~lewm_ros.bench.timing`.
"""
from lewm_ros.bench.budgets import QUICK_BUDGET, Budget, mpc_budget, paper_budget
from lewm_ros.bench.cli import build_parser, main, markdown_table, run
from lewm_ros.bench.gemm import gemm_peak_gflops

__all__ = ['QUICK_BUDGET', 'Budget', 'build_parser', 'gemm_peak_gflops', 'main', 'markdown_table', 'mpc_budget',
           'paper_budget', 'run']

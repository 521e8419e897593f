"""Critics of the planning cost, in latent space (Nav2's critics, applied to predicted latents).

A cost is a sum of weighted terms (:class:`LatentCostConfig`); a zero weight switches a term
off and it is then not computed. The default is the paper's terminal cost only,
``sum_D (z_pred_H - z_goal)^2``. :func:`latent_cost` scores the H latents of a predictor
rollout and the candidates against the goal; both rollouts (:mod:`lewm_ros.runtime.rollout`)
call it, so the terms are defined once. :func:`parse_cost_terms` / :func:`add_cost_argument`
let a command line set the terms (``--cost stage=0.5 --cost action=0.01``). The terms use
array methods only (no torch import): the configuration is read by torch-free planners too.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import operator
from dataclasses import dataclass
from collections.abc import Iterable
from typing import Any

from lewm_ros.validation import check_number, require

#: Command-line / parameter name of each term -> its LatentCostConfig field.
COST_TERMS: dict[str, str] = {'terminal': 'terminal_weight', 'stage': 'stage_weight', 'action': 'action_weight',
                              'smoothness': 'smoothness_weight'}


@dataclass(frozen=True)
class LatentCostConfig:
    """Weighted cost terms; a zero weight switches the term off (it is then not computed).

    terminal_weight: weight of ``sum_D (z_H - z_goal)^2`` for the last predicted latent (paper: 1).
    stage_weight: weight of ``sum_{t<H} sum_D (z_t - z_goal)^2`` over the intermediate predicted
        latents (a running goal-distance critic; 0 = paper).
    action_weight: weight of ``sum_{t,j} a_{t,j}^2`` over the candidate's z-scored blocks
        (effort critic; 0 = paper).
    smoothness_weight: weight of ``sum_t sum_j (a_{t,j} - a_{t-1,j})^2`` between consecutive
        candidate blocks (smoothness critic; 0 = paper).
    """
    terminal_weight: float = 1.0
    stage_weight: float = 0.0
    action_weight: float = 0.0
    smoothness_weight: float = 0.0

    def __post_init__(self) -> None:
        for name in COST_TERMS.values():
            check_number(f'cost.{name}', getattr(self, name), minimum=0.0)
        require(self.terminal_weight > 0 or self.stage_weight > 0, 'cost.terminal_weight', self.terminal_weight,
                '> 0 when cost.stage_weight is 0 (with both at 0 the cost would ignore the goal)')


def _goal_distance(z: Any, goal: Any) -> Any:
    """z (N, D), goal (D,) -> squared L2 distance (N,)."""
    return (z - goal).square().sum(dim=-1)


def _action_terms(candidates: Any, cost: LatentCostConfig) -> Any:
    """Latent-free critics of candidates (N, H, block) [z-scored] -> (N,) or None if all off."""
    total = None
    if cost.action_weight > 0:
        total = cost.action_weight * candidates.square().sum(dim=(1, 2))
    if cost.smoothness_weight > 0 and candidates.shape[1] > 1:
        term = cost.smoothness_weight * (candidates[:, 1:] - candidates[:, :-1]).square().sum(dim=(1, 2))
        total = term if total is None else total + term
    return total


def latent_cost(preds: list[Any], candidates: Any, goal: Any, cost: LatentCostConfig) -> Any:
    """Weighted cost (N,) of a rollout.

    preds: the H predicted latents, each (N, D), in rollout order; candidates: (N, H, block)
    [z-scored]; goal: (D,).
    """
    total = None
    if cost.terminal_weight > 0:
        total = cost.terminal_weight * _goal_distance(preds[-1], goal)
    if cost.stage_weight > 0 and len(preds) > 1:
        stage = cost.stage_weight * functools.reduce(operator.add, [_goal_distance(z, goal) for z in preds[:-1]])
        total = stage if total is None else total + stage
    extra = _action_terms(candidates, cost)
    if extra is not None:
        total = extra if total is None else total + extra
    if total is None:  # stage-only cost with H == 1: the last latent is the only one
        total = cost.stage_weight * _goal_distance(preds[-1], goal)
    return total


def _parse_term(item: str) -> tuple[str, float]:
    """'TERM=WEIGHT' -> (LatentCostConfig field, weight); ValueError naming the item."""
    term, sep, weight = item.partition('=')
    term = term.strip()
    if not sep or term not in COST_TERMS:
        raise ValueError(f'cost term {item!r} must be TERM=WEIGHT with TERM one of {list(COST_TERMS)}')
    try:
        value = float(weight)
    except ValueError:
        raise ValueError(f'cost term {item!r}: weight {weight.strip()!r} is not a number') from None
    return COST_TERMS[term], value


def parse_cost_terms(items: Iterable[str], base: LatentCostConfig | None = None) -> LatentCostConfig:
    """Cost terms from ``TERM=WEIGHT`` strings (TERM in terminal|stage|action|smoothness; a
    weight of 0 switches the term off) over ``base`` (default: the paper's terminal cost).

    ``parse_cost_terms(['stage=0.5', 'action=0.01'])`` -> LatentCostConfig(terminal_weight=1.0,
    stage_weight=0.5, action_weight=0.01). Raises ValueError naming the item for a malformed
    or repeated term, and the LatentCostConfig error for a negative weight or a cost that
    ignores the goal.
    """
    changes: dict[str, float] = {}
    for item in items:
        name, value = _parse_term(item)
        if name in changes:
            raise ValueError(f'cost term {item!r} is given twice')
        changes[name] = value
    return dataclasses.replace(base or LatentCostConfig(), **changes)


def _cost_item(text: str) -> str:
    """argparse type of one --cost value: checks the syntax, keeps the string."""
    try:
        _parse_term(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_cost_argument(parser: argparse.ArgumentParser, dest: str = 'cost') -> None:
    """Add the repeatable ``--cost TERM=WEIGHT`` option (collected as a list of strings in
    ``dest``; turn it into a LatentCostConfig with :func:`parse_cost_terms`)."""
    parser.add_argument('--cost', dest=dest, action='append', default=[], type=_cost_item, metavar='TERM=WEIGHT',
                        help=f'latent cost term weight, repeatable; TERM one of {"|".join(COST_TERMS)}; '
                             'weight 0 switches the term off (default: terminal=1, the paper\'s cost)')

"""The planner of ``lewm-train eval`` / ``eval-snapshots``, from the command line: a base (the
MPC default, the paper's CEM, or planner_node's section of a ROS 2 params file) and a flag for
every setting on top of it.

    --paper                         MPCConfig.paper() (300 x 30, 30 elites, std 1, no warm
                                    start, no clamping, all env-step actions sampled), executed
                                    whole (receding blocks = H), as the reference evaluation does
    --params config/sim.yaml        the planner planner_node runs with that file (samples are
                                    clamped to the action bounds, as on the robot)
    (neither)                       MPCConfig(): the node's default (64 x 5, 2 warm, clamped)

Flags given on top override one field each; ``--cost TERM=WEIGHT`` sets a critic over the
base's cost (``MPCConfig.cost``, never a backend option); ``--mode policy|policy_cem`` plans with
the model directory's goal-conditioned policy (``lewm-train fit-policy``).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

from lewm_ros.planning.config import PLANNER_MODES, MPCConfig, PolicyModeConfig
from lewm_ros.runtime.critics import add_cost_argument, parse_cost_terms
from lewm_ros.validation import check_int


@dataclass(frozen=True)
class PlannerChoice:
    """config: the planner; receding_blocks: blocks executed per plan [blocks] (<= horizon);
    label: how the base was chosen ('paper', 'mpc default', 'params <file>')."""
    config: MPCConfig
    receding_blocks: int
    label: str

    def __post_init__(self) -> None:
        check_int('receding_blocks', self.receding_blocks, 1, self.config.cem.horizon)


def planner_settings(params_file: str | Path) -> tuple[MPCConfig, int]:
    """(MPCConfig, receding_blocks) of planner_node in a ROS 2 params file: its ``/**`` section
    under its ``planner_node`` section, over the parameter defaults (model_dir need not be set)."""
    from lewm_ros.control.node_params import from_yaml_section
    from lewm_ros.ros.runner import read_params_file
    sections = read_params_file(params_file)
    merged: dict = {}
    for wanted in ('**', 'planner_node'):
        for name, section in sections.items():
            if name.split('/')[-1] == wanted:
                merged = _deep_merge(merged, section)
    planner = from_yaml_section({**merged, 'model_dir': merged.get('model_dir') or 'set-at-run-time'}).planner
    return planner.mpc_config(), planner.receding_blocks


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def add_planner_arguments(parser: argparse.ArgumentParser) -> None:
    """Base (--paper | --params) and one flag per planner setting (None = the base's value)."""
    group = parser.add_argument_group('planner (base, then one flag per setting)')
    base = group.add_mutually_exclusive_group()
    base.add_argument('--paper', action='store_true', help="the paper's CEM: 300 x 30, 30 elites, std 1, no warm "
                      'start, no clamping, every env-step action sampled, whole plan executed')
    base.add_argument('--params', type=Path, default=None, help="planner_node's planner in a ROS 2 params YAML "
                      '(e.g. config/sim.yaml)')
    arg = group.add_argument
    arg('--samples', type=int, default=None, help='CEM samples per iteration')
    arg('--elites', type=int, default=None, help='CEM elites (default: the base, at most --samples)')
    arg('--iterations', type=int, default=None,
        help='CEM iterations of a cold solve (and of a warm one unless --warm-iterations)')
    arg('--warm-iterations', type=int, default=None, help='CEM iterations of a warm-started solve')
    arg('--horizon', type=int, default=None, help='planning horizon H [action blocks]')
    arg('--init-std', type=float, default=None, help='sampling std of a cold solve [z-scored]')
    arg('--warm-std', type=float, default=None, help='sampling std of a warm-started solve [z-scored]')
    arg('--warm-start', action=argparse.BooleanOptionalAction, default=None,
        help='start each solve from the previous plan shifted by the executed blocks')
    arg('--clamp', action=argparse.BooleanOptionalAction, default=None,
        help='clamp samples to the action bounds')
    arg('--hold-actions', action=argparse.BooleanOptionalAction, default=None,
        help='one action per block, held for its frameskip steps')
    arg('--receding-blocks', type=int, default=None,
        help='blocks executed per plan (default: H with --paper, the file with --params, else 1)')
    arg('--planner-seed', type=int, default=None, help="seed of the planner's random generator")
    arg('--history', type=int, default=None, help="frames of context (default: the model's history)")
    arg('--mode', choices=PLANNER_MODES, default=None,
        help="planner mode (default auto: policy_cem when the model directory ships a policy, else cem; --paper: "
             "cem): policy = the model's goal-conditioned policy alone, policy_cem = CEM (warm budget) seeded by it")
    arg('--policy-goal-blocks', type=float, default=None,
        help='blocks the policy is told remain to the goal (default 1: the most direct block)')
    add_cost_argument(group)


def planner_from_args(args: argparse.Namespace) -> PlannerChoice:
    """The base chosen by --paper / --params with every given flag applied. ValueError names the
    setting that is out of range."""
    if args.paper:
        config, receding, label = MPCConfig.paper(), None, 'paper'
    elif args.params is not None:
        config, receding = planner_settings(args.params)
        label = f'params {args.params}'
    else:
        config, receding, label = MPCConfig(), 1, 'mpc default'
    cem = config.cem
    cem_changes = {name: value for name, value in (
        ('num_samples', args.samples), ('num_elites', args.elites), ('iterations', args.iterations),
        ('horizon', args.horizon), ('init_std', args.init_std), ('clamp_to_bounds', args.clamp),
        ('hold_actions', args.hold_actions), ('seed', args.planner_seed)) if value is not None}
    if args.samples is not None and args.elites is None:
        cem_changes['num_elites'] = max(2, min(cem.num_elites, args.samples))
    cem = replace(cem, **cem_changes)
    changes = {name: value for name, value in (
        ('warm_start', args.warm_start), ('warm_std', args.warm_std), ('history', args.history),
        ('mode', args.mode)) if value is not None}
    if args.policy_goal_blocks is not None:
        changes['policy'] = PolicyModeConfig(goal_blocks=args.policy_goal_blocks,
                                             disagreement_ratio=config.policy.disagreement_ratio)
    warm_iterations = args.warm_iterations if args.warm_iterations is not None else args.iterations
    if warm_iterations is not None:
        changes['warm_iterations'] = warm_iterations
    config = replace(config, cem=cem, cost=parse_cost_terms(args.cost, base=config.cost), **changes)
    if args.receding_blocks is not None:
        receding = args.receding_blocks
    return PlannerChoice(config, receding if receding is not None else cem.horizon, label)


def describe(choice: PlannerChoice) -> str:
    """One line naming every setting of the planner (for logs and report tables)."""
    c, cem = choice.config, choice.config.cem
    warm = f'warm start {c.warm_iterations} it. at std {c.warm_std:g}' if c.warm_start else 'no warm start'
    cost = ', '.join(f'{name.removesuffix("_weight")}={getattr(c.cost, name):g}'
                     for name in ('terminal_weight', 'stage_weight', 'action_weight', 'smoothness_weight')
                     if getattr(c.cost, name) > 0)
    goal = f'goal {c.policy.goal_blocks:g} blocks ahead'
    if c.mode == 'policy':
        return (f'{choice.label}: goal-conditioned policy alone ({goal}), H {cem.horizon}, replan every '
                f'{choice.receding_blocks} block(s)')
    mode = '' if c.mode == 'cem' else f'CEM seeded by the policy ({goal}), '
    return (f'{choice.label}: {mode}CEM {cem.num_samples} x {cem.iterations}, {cem.num_elites} elites, std '
            f'{cem.init_std:g}, H {cem.horizon}, {warm}, {"clamped" if cem.clamp_to_bounds else "not clamped"}, '
            f'{"one action held per block" if cem.hold_actions else "every env-step action sampled"}, replan '
            f'every {choice.receding_blocks} block(s), history {c.history or "model"}, seed {cem.seed}, cost {cost}')

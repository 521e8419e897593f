"""Every planner_node parameter, declared once: name, type, default, unit, static/dynamic,
allowed range and meaning (no ROS imports).

The node declares them from here (lewm_ros.ros.parameter_declarations: the range becomes the
descriptor's FloatingPointRange / IntegerRange, so ``ros2 param describe`` and rqt show it),
lewm_ros.control.node_params validates values against them, config/planner.yaml mirrors the
defaults, and ``python -m lewm_ros.control.param_specs --markdown`` prints the parameter table.
Every number that can move the robot or switch a watchdog off has a finite range.
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from typing import Any

from lewm_ros.control.command_mapping import COMMAND_TYPES
from lewm_ros.control.surprise_monitor import SURPRISE_ACTIONS, SurprisePolicy
from lewm_ros.planning.config import PLANNER_MODES, MPCConfig
from lewm_ros.runtime.backend import BACKEND_NAMES
from lewm_ros.runtime.critics import COST_TERMS
from lewm_ros.validation import require

TYPES = ('bool', 'integer', 'double', 'string', 'integer_array', 'double_array', 'string_array')
_MPC = MPCConfig()  # planner defaults come from the planner's own config: one source of truth
_SURPRISE = SurprisePolicy()
#: critic -> (enabled by default, meaning); the default is the paper's terminal cost only.
_CRITICS = {
    'terminal': (True, 'squared latent distance of the last predicted state to the goal (the paper cost).'),
    'stage': (False, 'squared latent distances of the intermediate predicted states to the goal.'),
    'action': (False, 'squared z-scored actions (effort).'),
    'smoothness': (False, 'squared change of z-scored actions between blocks.'),
}
#: What an unset camera / command parameter means (a model trained on a robot's recording).
FROM_MODEL = "the model's recording (lewm_meta.json deployment)"
#: Largest magnitude of an action or command limit [action / command units].
LIMIT_MAX = 1000.0


@dataclass(frozen=True)
class ParamSpec:
    """One ROS parameter: type one of TYPES; unit '' when dimensionless; dynamic: may change
    while the node is configured; limits: inclusive (low, high) of the value, or of every
    element of an array, None for non-numeric parameters."""
    name: str
    type: str
    default: Any
    unit: str
    dynamic: bool
    description: str
    limits: tuple[float, float] | None = None


def _critic_specs() -> tuple[ParamSpec, ...]:
    specs = []
    for term in COST_TERMS:
        enabled, meaning = _CRITICS[term]
        specs += [ParamSpec(f'cost.{term}.enabled', 'bool', enabled, '', False, f'Critic {term}: {meaning}'),
                  ParamSpec(f'cost.{term}.weight', 'double', 1.0, '', False,
                            f'Weight of the {term} critic when enabled.', (1e-6, 1e6))]
    return tuple(specs)


SPECS: tuple[ParamSpec, ...] = (
    # model and inference backend
    ParamSpec('model_dir', 'string', '', '', False,
              'Model directory (config.json + weights.pt + lewm_meta.json [+ *.onnx]). Required.'),
    ParamSpec('backend', 'string', 'torch', '', False, f'Inference backend: one of {", ".join(BACKEND_NAMES)}.'),
    ParamSpec('device', 'string', 'cpu', '', False, "Device for the backend: 'cpu', 'cuda', 'cuda:N'."),
    ParamSpec('cpu_threads', 'integer', 0, '', False,
              'CPU threads for inference (torch / ONNX Runtime intra-op); 0 = library default. On a busy CPU '
              'use fewer threads than cores: oversubscribed threads stall at every barrier.', (0, 1024)),
    # planner (CEM / MPC)
    ParamSpec('planner.num_samples', 'integer', _MPC.cem.num_samples, '', False,
              'CEM samples per iteration (paper: 300).', (2, 100_000)),
    ParamSpec('planner.num_elites', 'integer', _MPC.cem.num_elites, '', False,
              'CEM elites refitted per iteration, <= planner.num_samples (paper: 30).', (2, 100_000)),
    ParamSpec('planner.iterations', 'integer', _MPC.cem.iterations, '', False,
              'CEM iterations of a cold solve (paper: 30).', (1, 1000)),
    ParamSpec('planner.warm_start', 'bool', _MPC.warm_start, '', False,
              'Start each solve from the previous plan shifted by the executed blocks.'),
    ParamSpec('planner.warm_iterations', 'integer', _MPC.warm_iterations, '', False,
              'CEM iterations of a warm-started solve.', (1, 1000)),
    ParamSpec('planner.warm_std', 'double', _MPC.warm_std, 'z-scored', False,
              'Sampling std of a warm-started solve.', (0.001, 10.0)),
    ParamSpec('planner.horizon', 'integer', _MPC.cem.horizon, 'blocks', False,
              'Planning horizon H in action blocks.', (1, 100)),
    ParamSpec('planner.seed', 'integer', _MPC.cem.seed, '', False, "Seed of the planner's random generator.",
              (0, 2**31 - 1)),
    ParamSpec('planner.hold_actions', 'bool', _MPC.cem.hold_actions, '', False,
              'Plan one action per block, held for its frameskip ticks (smooth commands, smaller search).'),
    ParamSpec('planner.mode', 'string', _MPC.mode, '', False,
              f'Planner mode: one of {", ".join(PLANNER_MODES)}. cem: CEM alone; policy: the model\'s '
              'goal-conditioned policy alone (lewm-train fit-policy; one forward per plan, no rollout); '
              'policy_cem: CEM (warm budget) seeded by the policy\'s proposal, the rollout cost decides; '
              'auto: policy_cem when the model directory ships a policy, else cem (the mode chosen is logged '
              'at configure and reported in /diagnostics).'),
    ParamSpec('planner.policy_goal_blocks', 'double', _MPC.policy.goal_blocks, 'blocks', False,
              'Blocks the policy is told remain to reach the goal (1: the most direct block toward it).',
              (0.01, 1000.0)),
    ParamSpec('planner.disagreement_ratio', 'double', _MPC.policy.disagreement_ratio, '', False,
              'policy_cem: count a policy/world-model disagreement (diagnostics policy_disagreements) when '
              'the rollout cost of the policy\'s proposal exceeds this many times the best sampled plan\'s.',
              (1.0, 1e6)),
    # critics of the planning cost (static: the ONNX / TensorRT graphs are built with them)
    *_critic_specs(),
    ParamSpec('receding_blocks', 'integer', 1, 'blocks', True,
              'Replan after executing this many action blocks of a plan (<= planner.horizon).', (1, 100)),
    # camera
    ParamSpec('image_type', 'string', '', '', False,
              "Camera message: 'raw' (sensor_msgs/Image) or 'compressed' (sensor_msgs/CompressedImage); "
              f"'' = {FROM_MODEL}, else 'raw'."),
    ParamSpec('crop_box', 'integer_array', [], 'px', False,
              '[x, y, w, h] = explicit crop region before resizing to the model size; [] = a centred square '
              '(crop_scale).', (0, 100_000)),
    ParamSpec('crop_scale', 'double', 0.0, '', False,
              "Centred crop side as a fraction of the frame's shorter side (0.01..1); 0 with crop_box [] = "
              f'{FROM_MODEL}, else 1.', (0.0, 1.0)),
    # goal
    ParamSpec('goal_image_path', 'string', '', '', True,
              'Image file (png/jpg) loaded as the goal; empty = set the goal by service or topic.'),
    # control loop
    ParamSpec('control_rate', 'double', 0.0, 'Hz', False,
              'Control timer rate (0.1..1000): one env step (one raw action) per tick; a block = frameskip ticks; '
              f'0 = {FROM_MODEL}, else 10.', (0.0, 1000.0)),
    ParamSpec('boundary_frame_wait', 'integer', 1, 'control periods', False,
              'Longest wait for the camera frame captured at a block boundary (header stamp plus the '
              "camera's typical stamp-to-receipt delay at or after the tick less half a control period), without "
              'blocking the timer; after it the newest frame is planned from, not scored for surprise, and '
              'counted in /diagnostics boundary_frames_late. 0 = no alignment: the newest frame at the tick.',
              (0, 10)),
    ParamSpec('diagnostics_rate', 'double', 1.0, 'Hz', False, 'Rate of /diagnostics messages.', (0.01, 100.0)),
    ParamSpec('start_enabled', 'bool', True, '', False,
              'Commanding enabled at activation (else wait for True on ~/enable).'),
    # command output
    ParamSpec('command_type', 'string', '', '', False,
              f'Command message: one of {", ".join(COMMAND_TYPES)}; \'\' = {FROM_MODEL}, else twist_stamped '
              "(what Jazzy's diff_drive_controller and Nav2 expect)."),
    ParamSpec('command_fields', 'string_array', [], '', False,
              'Per action dim: a Twist field (twist types) or a joint name (joint_trajectory); unused for '
              f"float64_multi_array; [] = {FROM_MODEL}, else ['linear.x', 'angular.z']."),
    ParamSpec('command_scales', 'double_array', [], 'cmd unit / action unit', True,
              f'Per action dim factor from raw action to command; [] = {FROM_MODEL}, else all 1.', (-100.0, 100.0)),
    ParamSpec('command_frame_id', 'string', 'base_link', '', False,
              'header.frame_id of TwistStamped / JointTrajectory commands.'),
    ParamSpec('trajectory_time_from_start', 'double', 0.1, 's', False,
              'time_from_start of the JointTrajectory point.', (0.001, 10.0)),
    # safety
    ParamSpec('action_low', 'double_array', [], 'action unit', True,
              "Per action dim lower limit of the planned action; [] = the model's action_low.",
              (-LIMIT_MAX, LIMIT_MAX)),
    ParamSpec('action_high', 'double_array', [], 'action unit', True,
              "Per action dim upper limit of the planned action; [] = the model's action_high.",
              (-LIMIT_MAX, LIMIT_MAX)),
    ParamSpec('command_low', 'double_array', [], 'cmd unit', True,
              'Per action dim lower limit of the published command (after command_scales); '
              '[] = the action limits times command_scales. Must allow 0 (the stop command).',
              (-LIMIT_MAX, LIMIT_MAX)),
    ParamSpec('command_high', 'double_array', [], 'cmd unit', True,
              'Per action dim upper limit of the published command (after command_scales); '
              '[] = the action limits times command_scales. Must allow 0 (the stop command).',
              (-LIMIT_MAX, LIMIT_MAX)),
    ParamSpec('rate_limit', 'double_array', [], 'action unit/s', True,
              'Per action dim largest change of the command per second; [] = unlimited.', (1e-6, 1e6)),
    ParamSpec('image_timeout', 'double', 0.5, 's', True, 'Stop when the newest camera image is older than this.',
              (0.01, 5.0)),
    ParamSpec('plan_timeout', 'double', 2.0, 's', True, 'Stop when the newest plan is older than this.',
              (0.01, 30.0)),
    # surprise monitor (the world model's prediction error at every block boundary)
    ParamSpec('surprise.action', 'string', _SURPRISE.action, '', False,
              f'What a surprise alarm does: one of {", ".join(SURPRISE_ACTIONS)} (none: no score is computed; '
              'warn: /diagnostics WARN; stop: zero commands, latched like the e-stop until ~/reset_estop, '
              '/diagnostics ERROR). Needs a predictor step: torch, or an ONNX export with predict_k graphs.'),
    ParamSpec('surprise.threshold', 'double', _SURPRISE.threshold, 'calibrated units', True,
              "Alarm level of the surprise score; 1 = the 0.99 quantile of normal transitions (the model's "
              'surprise_calibration.json, else a running estimate).', (0.1, 1e6)),
    ParamSpec('surprise.consecutive', 'integer', _SURPRISE.consecutive, 'blocks', True,
              'Blocks in a row at or above surprise.threshold that raise an alarm.', (1, 100)),
    ParamSpec('surprise.instant_threshold', 'double', _SURPRISE.instant_threshold, 'calibrated units', True,
              'A single block at or above this level raises an alarm at once (a teleport, a push, black '
              'frames); >= surprise.threshold.', (0.1, 1e6)),
    ParamSpec('surprise.warmup_blocks', 'integer', _SURPRISE.warmup_blocks, 'blocks', False,
              'Without a calibration file: scores the running estimate needs before it reports.', (2, 100_000)),
)
SPEC_BY_NAME = {spec.name: spec for spec in SPECS}
STATIC = frozenset(spec.name for spec in SPECS if not spec.dynamic)
DYNAMIC = frozenset(spec.name for spec in SPECS if spec.dynamic)

_SCALAR_TYPES = {'bool': (bool,), 'integer': (int,), 'double': (int, float), 'string': (str,)}


def defaults() -> dict[str, Any]:
    """name -> default value of every parameter."""
    return {spec.name: spec.default for spec in SPECS}


def _in_limits(spec: ParamSpec, value: Any) -> bool:
    low, high = spec.limits
    return math.isfinite(value) and low <= value <= high


def check_value(spec: ParamSpec, value: Any) -> Any:
    """The value of the spec's type within its limits (doubles as float, arrays as lists).
    Raises ValueError naming the parameter, the value and what is allowed."""
    if spec.type in _SCALAR_TYPES:
        ok = isinstance(value, _SCALAR_TYPES[spec.type]) and not (spec.type != 'bool' and isinstance(value, bool))
        require(ok, spec.name, value, f'a {spec.type}')
        value = float(value) if spec.type == 'double' else value
        items = [value]
    else:
        item = _SCALAR_TYPES[spec.type.removesuffix('_array')]
        ok = isinstance(value, (list, tuple)) and all(isinstance(x, item) and not isinstance(x, bool) for x in value)
        require(ok, spec.name, value, f'a {spec.type.replace("_", " ")}')
        value = [float(x) for x in value] if spec.type == 'double_array' else list(value)
        items = value
    if spec.limits is not None:
        low, high = spec.limits
        each = ' (each element)' if spec.type.endswith('_array') else ''
        require(all(_in_limits(spec, x) for x in items), spec.name, value, f'[{low:g}, {high:g}]{each}')
    return value


def markdown_table() -> str:
    """The parameter table (Parameter | Type | Default | Unit | Meaning), generated from SPECS."""
    rows = ['| Parameter | Type | Default | Unit | Meaning |', '|---|---|---|---|---|']
    for spec in SPECS:
        default = repr(spec.default) if spec.type == 'string' else str(spec.default).lower() \
            if spec.type == 'bool' else str(spec.default)
        kind = 'dynamic' if spec.dynamic else 'static'
        allowed = f' Range [{spec.limits[0]:g}, {spec.limits[1]:g}].' if spec.limits else ''
        rows.append(f'| `{spec.name}` | {spec.type} ({kind}) | `{default}` | {spec.unit or "-"} | '
                    f'{spec.description}{allowed} |')
    return '\n'.join(rows) + '\n'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m lewm_ros.control.param_specs',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--markdown', action='store_true', help='print the parameter table as Markdown')
    args = parser.parse_args(argv)
    if not args.markdown:
        parser.print_help()
        return 2
    sys.stdout.write(markdown_table())
    return 0


if __name__ == '__main__':
    sys.exit(main())

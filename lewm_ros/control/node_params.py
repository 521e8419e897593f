"""Every planner_node parameter, declared once, mapped onto dataclasses (no ROS imports).

SPECS is the single declaration: name, type, default, unit, static/dynamic and meaning. The
node declares them from here (lewm_ros.ros.parameter_declarations), config/planner.yaml mirrors the
defaults, and ``python -m lewm_ros.control.node_params --markdown`` prints the parameter table.
Static parameters are read at configure; a change while configured is rejected with the reason.
Dynamic parameters are validated and applied between plans (safety: at the next control tick).
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lewm_ros.camera.crop import CropConfig
from lewm_ros.control.command_mapping import COMMAND_TYPES, CommandMapping
from lewm_ros.control.safety import SafetyConfig
from lewm_ros.model.metadata import ModelMetadata
from lewm_ros.planning.config import CEMConfig, MPCConfig
from lewm_ros.runtime.backend import BACKEND_NAMES
from lewm_ros.validation import check_choice, check_int, check_number, check_positive, require

IMAGE_TYPES = ('raw', 'compressed')
TYPES = ('bool', 'integer', 'double', 'string', 'integer_array', 'double_array', 'string_array')
_MPC = MPCConfig()  # planner defaults come from the planner's own config: one source of truth


@dataclass(frozen=True)
class ParamSpec:
    """One ROS parameter: type one of TYPES; unit '' when dimensionless; dynamic: may change
    while the node is configured."""
    name: str
    type: str
    default: Any
    unit: str
    dynamic: bool
    description: str


SPECS: tuple[ParamSpec, ...] = (
    # model and inference backend
    ParamSpec('model_dir', 'string', '', '', False,
              'Model directory (config.json + weights.pt + lewm_meta.json [+ *.onnx]). Required.'),
    ParamSpec('backend', 'string', 'torch', '', False, f'Inference backend: one of {", ".join(BACKEND_NAMES)}.'),
    ParamSpec('device', 'string', 'cpu', '', False, "Device for the backend: 'cpu', 'cuda', 'cuda:N'."),
    ParamSpec('cpu_threads', 'integer', 0, '', False,
              'CPU threads for inference (torch / ONNX Runtime intra-op); 0 = library default. On a busy CPU '
              'use fewer threads than cores: oversubscribed threads stall at every barrier.'),
    # planner (CEM / MPC)
    ParamSpec('planner.num_samples', 'integer', _MPC.cem.num_samples, '', False, 'CEM samples per iteration (paper: 300).'),
    ParamSpec('planner.num_elites', 'integer', _MPC.cem.num_elites, '', False, 'CEM elites refitted per iteration (paper: 30).'),
    ParamSpec('planner.iterations', 'integer', _MPC.cem.iterations, '', False, 'CEM iterations of a cold solve (paper: 30).'),
    ParamSpec('planner.warm_start', 'bool', _MPC.warm_start, '', False,
              'Start each solve from the previous plan shifted by the executed blocks.'),
    ParamSpec('planner.warm_iterations', 'integer', _MPC.warm_iterations, '', False, 'CEM iterations of a warm-started solve.'),
    ParamSpec('planner.warm_std', 'double', _MPC.warm_std, 'z-scored', False, 'Sampling std of a warm-started solve.'),
    ParamSpec('planner.horizon', 'integer', _MPC.cem.horizon, 'blocks', False, 'Planning horizon H in action blocks.'),
    ParamSpec('planner.seed', 'integer', _MPC.cem.seed, '', False, "Seed of the planner's random generator."),
    ParamSpec('planner.hold_actions', 'bool', _MPC.cem.hold_actions, '', False,
              'Plan one action per block, held for its frameskip ticks (smooth commands, smaller search).'),
    ParamSpec('receding_blocks', 'integer', 1, 'blocks', True,
              'Replan after executing this many action blocks of a plan (1..planner.horizon).'),
    # camera
    ParamSpec('image_type', 'string', 'raw', '', False,
              "Camera message: 'raw' (sensor_msgs/Image) or 'compressed' (sensor_msgs/CompressedImage)."),
    ParamSpec('crop_box', 'integer_array', [], 'px', False,
              '[] = centred square crop; [x, y, w, h] = explicit crop region before resizing to the model size.'),
    ParamSpec('crop_scale', 'double', 1.0, '', False,
              "Centred crop side as a fraction of the frame's shorter side, in (0, 1]."),
    # goal
    ParamSpec('goal_image_path', 'string', '', '', True,
              'Image file (png/jpg) loaded as the goal; empty = set the goal by service or topic.'),
    # control loop
    ParamSpec('control_rate', 'double', 10.0, 'Hz', False,
              'Control timer rate: one env step (one raw action) per tick; a block = frameskip ticks.'),
    ParamSpec('diagnostics_rate', 'double', 1.0, 'Hz', False, 'Rate of /diagnostics messages.'),
    ParamSpec('start_enabled', 'bool', True, '', False,
              'Commanding enabled at activation (else wait for True on ~/enable).'),
    # command output
    ParamSpec('command_type', 'string', 'twist', '', False, f'Command message: one of {", ".join(COMMAND_TYPES)}.'),
    ParamSpec('command_fields', 'string_array', ['linear.x', 'angular.z'], '', False,
              'Per action dim: a Twist field (twist types) or a joint name (joint_trajectory); '
              'unused for float64_multi_array.'),
    ParamSpec('command_scales', 'double_array', [], 'cmd unit / action unit', True,
              'Per action dim factor from raw action to command; [] = all 1.'),
    ParamSpec('command_frame_id', 'string', 'base_link', '', False,
              'header.frame_id of TwistStamped / JointTrajectory commands.'),
    ParamSpec('trajectory_time_from_start', 'double', 0.1, 's', False,
              'time_from_start of the JointTrajectory point.'),
    # safety
    ParamSpec('action_low', 'double_array', [], 'action unit', True,
              "Per action dim lower command limit; [] = the model's action_low."),
    ParamSpec('action_high', 'double_array', [], 'action unit', True,
              "Per action dim upper command limit; [] = the model's action_high."),
    ParamSpec('rate_limit', 'double_array', [], 'action unit/s', True,
              'Per action dim largest change of the command per second; [] = unlimited.'),
    ParamSpec('image_timeout', 'double', 0.5, 's', True, 'Stop when the newest camera image is older than this.'),
    ParamSpec('plan_timeout', 'double', 2.0, 's', True, 'Stop when the newest plan is older than this.'),
)
SPEC_BY_NAME = {spec.name: spec for spec in SPECS}
STATIC = frozenset(spec.name for spec in SPECS if not spec.dynamic)
DYNAMIC = frozenset(spec.name for spec in SPECS if spec.dynamic)


@dataclass(frozen=True)
class ModelParams:
    """model_dir: path; backend: one of BACKEND_NAMES; device: torch/TensorRT device string;
    cpu_threads: inference threads (0 = library default)."""
    model_dir: str
    backend: str
    device: str
    cpu_threads: int = 0


@dataclass(frozen=True)
class PlannerParams:
    """CEM budget: num_samples, num_elites, iterations (cold solve); warm_start, warm_iterations,
    warm_std [z-scored] (warm-started solve); horizon [blocks]; seed; hold_actions: one action
    per block; receding_blocks: blocks executed before a replan [blocks]."""
    num_samples: int
    num_elites: int
    iterations: int
    warm_start: bool
    warm_iterations: int
    warm_std: float
    horizon: int
    seed: int
    hold_actions: bool
    receding_blocks: int

    def mpc_config(self) -> MPCConfig:
        """The planner's MPCConfig (samples are always clamped to the action bounds on a robot)."""
        cem = CEMConfig(num_samples=self.num_samples, num_elites=self.num_elites, iterations=self.iterations,
                        horizon=self.horizon, clamp_to_bounds=True, seed=self.seed, hold_actions=self.hold_actions)
        return MPCConfig(cem=cem, warm_start=self.warm_start, warm_iterations=self.warm_iterations,
                         warm_std=self.warm_std)


@dataclass(frozen=True)
class CameraParams:
    """image_type: 'raw' | 'compressed'; crop: what part of the frame the model sees."""
    image_type: str
    crop: CropConfig


@dataclass(frozen=True)
class ControlParams:
    """control_rate_hz, diagnostics_rate_hz [Hz]; start_enabled; goal_image_path ('' = none)."""
    control_rate_hz: float
    diagnostics_rate_hz: float
    start_enabled: bool
    goal_image_path: str

    @property
    def period_s(self) -> float:
        return 1.0 / self.control_rate_hz


@dataclass(frozen=True)
class NodeParams:
    """All parameters, validated; values: the raw name -> value map they came from."""
    model: ModelParams
    planner: PlannerParams
    camera: CameraParams
    control: ControlParams
    values: dict[str, Any]

    def command_mapping(self, metadata: ModelMetadata) -> CommandMapping:
        """The command mapping for the model's action dim (ValueError names the parameter)."""
        v = self.values
        scales = _per_dim(v, 'command_scales', metadata.action_dim, [1.0] * metadata.action_dim)
        return CommandMapping(command_type=v['command_type'], fields=tuple(v['command_fields']),
                              scales=tuple(scales), frame_id=v['command_frame_id'],
                              time_from_start_s=float(v['trajectory_time_from_start']))

    def safety_config(self, metadata: ModelMetadata) -> SafetyConfig:
        """Limits default to the model's action bounds; ValueError names the parameter."""
        v, dims = self.values, metadata.action_dim
        return SafetyConfig(action_low=tuple(_per_dim(v, 'action_low', dims, metadata.action_low)),
                            action_high=tuple(_per_dim(v, 'action_high', dims, metadata.action_high)),
                            rate_limit=tuple(_per_dim(v, 'rate_limit', dims, [math.inf] * dims)),
                            image_timeout=float(v['image_timeout']), plan_timeout=float(v['plan_timeout']))

    def resolve(self, metadata: ModelMetadata) -> tuple[CommandMapping, SafetyConfig]:
        """Validate the model-dependent parameters against the model's metadata."""
        if self.planner.receding_blocks > self.planner.horizon:
            raise ValueError(f'receding_blocks={self.planner.receding_blocks} must be <= planner.horizon='
                             f'{self.planner.horizon}')
        executing_s = self.planner.receding_blocks * metadata.frameskip / self.control.control_rate_hz
        if self.values['plan_timeout'] <= executing_s:
            raise ValueError(f"plan_timeout={self.values['plan_timeout']} s must exceed the time a plan is executed "
                             f'before the next one (receding_blocks * frameskip / control_rate = {executing_s:.3f} s)')
        return self.command_mapping(metadata), self.safety_config(metadata)


def _per_dim(values: dict[str, Any], name: str, dims: int, default: list[float]) -> list[float]:
    given = [float(x) for x in values[name]]
    if not given:
        return [float(x) for x in default]
    if len(given) != dims:
        raise ValueError(f'{name} must have {dims} entries (the model action_dim) or be [], got {given}')
    return given


def defaults() -> dict[str, Any]:
    """name -> default value of every parameter."""
    return {spec.name: spec.default for spec in SPECS}


def _check_type(spec: ParamSpec, value: Any) -> Any:
    scalar = {'bool': (bool,), 'integer': (int,), 'double': (int, float), 'string': (str,)}
    if spec.type in scalar:
        ok = isinstance(value, scalar[spec.type]) and not (spec.type != 'bool' and isinstance(value, bool))
        if not ok:
            raise ValueError(f'parameter {spec.name} must be a {spec.type}, got {value!r}')
        return float(value) if spec.type == 'double' else value
    item = scalar[spec.type.removesuffix('_array')]
    if not isinstance(value, (list, tuple)) or not all(isinstance(x, item) and not isinstance(x, bool)
                                                        for x in value):
        raise ValueError(f'parameter {spec.name} must be a {spec.type.replace("_", " ")}, got {value!r}')
    return list(value)


def from_yaml_section(section: dict[str, Any]) -> NodeParams:
    """NodeParams from a params-file ``ros__parameters`` mapping (nested keys joined with '.'),
    defaults for what it leaves out; keys that are not planner_node parameters are ignored."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f'{prefix}.{key}' if prefix else str(key), sub)
        elif prefix in SPEC_BY_NAME:
            flat[prefix] = value
    walk('', section)
    return from_values({**defaults(), **flat})


def from_values(values: dict[str, Any]) -> NodeParams:
    """name -> value (missing names take their default) -> NodeParams. Raises ValueError naming
    the parameter, its value and the allowed range; unknown names are rejected."""
    unknown = sorted(set(values) - set(SPEC_BY_NAME))
    if unknown:
        raise ValueError(f'unknown parameter(s) {unknown}')
    v = {**defaults(), **values}
    v = {name: _check_type(SPEC_BY_NAME[name], value) for name, value in v.items()}
    require(bool(v['model_dir']), 'model_dir', v['model_dir'], 'a model directory path (required)')
    check_choice('backend', v['backend'], BACKEND_NAMES)
    require(v['device'] == 'cpu' or v['device'].startswith('cuda'), 'device', v['device'], "'cpu', 'cuda[:N]'")
    check_int('cpu_threads', v['cpu_threads'], 0)
    for name in ('planner.num_samples', 'planner.iterations', 'planner.warm_iterations', 'planner.horizon',
                 'receding_blocks'):
        check_int(name, v[name], 1)
    check_int('planner.num_elites', v['planner.num_elites'], 2, v['planner.num_samples'])
    check_int('receding_blocks', v['receding_blocks'], 1, v['planner.horizon'])
    check_positive('planner.warm_std', v['planner.warm_std'])
    check_choice('image_type', v['image_type'], IMAGE_TYPES)
    for name in ('control_rate', 'diagnostics_rate'):
        check_number(name, v[name], 0.0, 1000.0, exclusive_minimum=True)
    check_choice('command_type', v['command_type'], COMMAND_TYPES)
    for name in ('image_timeout', 'plan_timeout', 'trajectory_time_from_start'):
        check_positive(name, v[name])
    if v['goal_image_path']:
        require(Path(v['goal_image_path']).is_file(), 'goal_image_path', v['goal_image_path'], 'an existing image file')
    try:
        crop = CropConfig(box=tuple(v['crop_box']), scale=v['crop_scale'])
    except ValueError as exc:
        raise ValueError(f'parameter crop_box/crop_scale: {exc}') from None
    return NodeParams(
        model=ModelParams(model_dir=v['model_dir'], backend=v['backend'], device=v['device'],
                          cpu_threads=v['cpu_threads']),
        planner=PlannerParams(num_samples=v['planner.num_samples'], num_elites=v['planner.num_elites'],
                              iterations=v['planner.iterations'], warm_start=v['planner.warm_start'],
                              warm_iterations=v['planner.warm_iterations'], warm_std=v['planner.warm_std'],
                              horizon=v['planner.horizon'],
                              seed=v['planner.seed'], hold_actions=v['planner.hold_actions'],
                              receding_blocks=v['receding_blocks']),
        camera=CameraParams(image_type=v['image_type'], crop=crop),
        control=ControlParams(control_rate_hz=v['control_rate'], diagnostics_rate_hz=v['diagnostics_rate'],
                              start_enabled=v['start_enabled'], goal_image_path=v['goal_image_path']),
        values=v)


def check_change(current: NodeParams, changes: dict[str, Any], metadata: ModelMetadata) -> NodeParams:
    """A parameter change while configured -> the new NodeParams. Raises ValueError with the
    reason: a static parameter, or a dynamic value that fails validation."""
    static = sorted(name for name, value in changes.items()
                    if name in STATIC and value != current.values.get(name))
    if static:
        raise ValueError(f'parameter(s) {static} are static: read at configure; deactivate, clean up and '
                         'configure the node again to change them')
    updated = from_values({**current.values, **changes})
    updated.resolve(metadata)
    return updated


def markdown_table() -> str:
    """The parameter table (Parameter | Type | Default | Unit | Meaning), generated from SPECS."""
    rows = ['| Parameter | Type | Default | Unit | Meaning |', '|---|---|---|---|---|']
    for spec in SPECS:
        default = repr(spec.default) if spec.type == 'string' else str(spec.default).lower() \
            if spec.type == 'bool' else str(spec.default)
        kind = 'dynamic' if spec.dynamic else 'static'
        rows.append(f'| `{spec.name}` | {spec.type} ({kind}) | `{default}` | {spec.unit or "-"} | '
                    f'{spec.description} |')
    return '\n'.join(rows) + '\n'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m lewm_ros.control.node_params', description=__doc__.splitlines()[0])
    parser.add_argument('--markdown', action='store_true', help='print the parameter table as Markdown')
    args = parser.parse_args(argv)
    if not args.markdown:
        parser.print_help()
        return 2
    sys.stdout.write(markdown_table())
    return 0


if __name__ == '__main__':
    sys.exit(main())

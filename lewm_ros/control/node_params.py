"""planner_node parameter values -> validated dataclasses (no ROS imports).

The declarations (name, type, default, unit, range, static/dynamic) are
lewm_ros.control.param_specs.SPECS. Camera and command parameters left unset ('' / [] / 0) take
the values of the model's recording (:class:`~lewm_ros.control.deployment.Deployment`) once the
model is loaded (:meth:`NodeParams.with_model_defaults`), else the built-in defaults
(:data:`BUILTIN`). Static parameters are read at configure; a change while
configured is rejected with the reason. Dynamic parameters are validated and applied between
plans (safety: at the next control tick). The safety limits bound the action the planner may
command (action_low/high) and, after command_scales, the published command (command_low/high).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from lewm_ros.camera.crop import CropConfig
from lewm_ros.control.command_mapping import COMMAND_TYPES, CommandMapping
from lewm_ros.control.deployment import IMAGE_TYPES, Deployment
from lewm_ros.control.param_specs import SPEC_BY_NAME, STATIC, check_value, defaults
from lewm_ros.control.safety import SafetyConfig
from lewm_ros.control.surprise_monitor import SurprisePolicy
from lewm_ros.model.metadata import ModelMetadata
from lewm_ros.planning.config import PLANNER_MODES, CEMConfig, MPCConfig, PolicyModeConfig
from lewm_ros.runtime.backend import BACKEND_NAMES
from lewm_ros.runtime.critics import COST_TERMS, LatentCostConfig
from lewm_ros.validation import check_choice, check_int, require

#: Values of the parameters left unset when the model carries no recording.
BUILTIN: dict[str, Any] = {'image_type': 'raw', 'crop_scale': 1.0, 'control_rate': 10.0,
                           'command_type': 'twist_stamped', 'command_fields': ['linear.x', 'angular.z']}


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
    per block; receding_blocks: blocks executed before a replan [blocks]; cost: the critics;
    mode: auto | cem | policy | policy_cem (see MPCConfig); policy_goal_blocks: blocks to the goal told to the policy
    [blocks]; disagreement_ratio: see PolicyModeConfig."""
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
    cost: LatentCostConfig
    mode: str = MPCConfig.mode
    policy_goal_blocks: float = PolicyModeConfig.goal_blocks
    disagreement_ratio: float = PolicyModeConfig.disagreement_ratio

    def mpc_config(self) -> MPCConfig:
        """The planner's MPCConfig (samples are always clamped to the action bounds on a robot)."""
        cem = CEMConfig(num_samples=self.num_samples, num_elites=self.num_elites, iterations=self.iterations,
                        horizon=self.horizon, clamp_to_bounds=True, seed=self.seed, hold_actions=self.hold_actions)
        policy = PolicyModeConfig(goal_blocks=self.policy_goal_blocks,
                                  disagreement_ratio=self.disagreement_ratio)
        return MPCConfig(cem=cem, cost=self.cost, warm_start=self.warm_start, warm_iterations=self.warm_iterations,
                         warm_std=self.warm_std, mode=self.mode, policy=policy)


@dataclass(frozen=True)
class CameraParams:
    """image_type: 'raw' | 'compressed'; crop: what part of the frame the model sees."""
    image_type: str
    crop: CropConfig


@dataclass(frozen=True)
class ControlParams:
    """control_rate_hz, diagnostics_rate_hz [Hz]; start_enabled; goal_image_path ('' = none);
    boundary_frame_wait: longest wait for a block boundary's camera frame [control periods]
    (0 = the newest frame at the tick; lewm_ros.control.frame_alignment)."""
    control_rate_hz: float
    diagnostics_rate_hz: float
    start_enabled: bool
    goal_image_path: str
    boundary_frame_wait: int = 1

    @property
    def period_s(self) -> float:
        return 1.0 / self.control_rate_hz


@dataclass(frozen=True)
class NodeParams:
    """All parameters, validated; declared: the name -> value map they came from (unset values
    as given); values: the same with unset values replaced by BUILTIN."""
    model: ModelParams
    planner: PlannerParams
    camera: CameraParams
    control: ControlParams
    surprise: SurprisePolicy
    values: dict[str, Any]
    declared: dict[str, Any]

    def command_mapping(self, metadata: ModelMetadata) -> CommandMapping:
        """The command mapping for the model's action dim: scales and the limits of the published
        command [command units], by default the action limits times the scales (ValueError names
        the parameter)."""
        v, dims = self.values, metadata.action_dim
        scales = np.asarray(_per_dim(v, 'command_scales', dims, [1.0] * dims))
        safety = self.safety_config(metadata)
        ends = np.stack([np.asarray(safety.action_low) * scales, np.asarray(safety.action_high) * scales])
        low = _per_dim(v, 'command_low', dims, list(ends.min(axis=0)))
        high = _per_dim(v, 'command_high', dims, list(ends.max(axis=0)))
        return CommandMapping(command_type=v['command_type'], fields=tuple(v['command_fields']),
                              scales=tuple(scales.tolist()), low=tuple(low), high=tuple(high),
                              frame_id=v['command_frame_id'], time_from_start_s=float(v['trajectory_time_from_start']))

    def safety_config(self, metadata: ModelMetadata) -> SafetyConfig:
        """Limits default to the model's action bounds; ValueError names the parameter."""
        v, dims = self.values, metadata.action_dim
        return SafetyConfig(action_low=tuple(_per_dim(v, 'action_low', dims, metadata.action_low)),
                            action_high=tuple(_per_dim(v, 'action_high', dims, metadata.action_high)),
                            rate_limit=tuple(_per_dim(v, 'rate_limit', dims, [math.inf] * dims)),
                            image_timeout=float(v['image_timeout']), plan_timeout=float(v['plan_timeout']))

    def with_model_defaults(self, metadata: ModelMetadata) -> NodeParams:
        """The parameters with every unset camera / command value taken from the model's recording,
        when it has one (explicit values win). ValueError names the file for a bad record."""
        deployment = Deployment.of_model(metadata)
        if deployment is None:
            return self
        recorded = {'image_type': deployment.image_type, 'control_rate': deployment.control_rate,
                    'command_type': deployment.command_type, 'command_fields': list(deployment.command_fields),
                    'command_scales': list(deployment.command_scales)}
        given = {name: value for name, value in self.declared.items() if not _unset(name, value)}
        values = {**self.declared, **recorded, **given}
        if _unset('crop_box', self.declared['crop_box']) and _unset('crop_scale', self.declared['crop_scale']):
            values['crop_box'], values['crop_scale'] = list(deployment.crop_box), deployment.crop_scale
        return replace(from_values(values), declared=self.declared)  # declared: as the user set them

    def resolve(self, metadata: ModelMetadata) -> tuple[CommandMapping, SafetyConfig]:
        """Validate the model-dependent parameters against the model's metadata."""
        executing_s = self.planner.receding_blocks * metadata.frameskip / self.control.control_rate_hz
        if self.values['plan_timeout'] <= executing_s:
            raise ValueError(f"plan_timeout={self.values['plan_timeout']} s must exceed the time a plan is executed "
                             f'before the next one (receding_blocks * frameskip / control_rate = {executing_s:.3f} s)')
        return self.command_mapping(metadata), self.safety_config(metadata)


def _unset(name: str, value: Any) -> bool:
    """Whether a camera / command parameter was left to the model (or BUILTIN)."""
    return name in (*BUILTIN, 'command_scales', 'crop_box') and value in ('', [], 0.0)


def _per_dim(values: dict[str, Any], name: str, dims: int, default: list[float]) -> list[float]:
    given = [float(x) for x in values[name]]
    if not given:
        return [float(x) for x in default]
    if len(given) != dims:
        raise ValueError(f'{name} must have {dims} entries (the model action_dim) or be [], got {given}')
    return given


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
    try:
        v = {name: check_value(SPEC_BY_NAME[name], value) for name, value in v.items()}
        require(bool(v['model_dir']), 'model_dir', v['model_dir'], 'a model directory path (required)')
        check_choice('backend', v['backend'], BACKEND_NAMES)
        require(v['device'] == 'cpu' or v['device'].startswith('cuda'), 'device', v['device'], "'cpu', 'cuda[:N]'")
        check_int('planner.num_elites', v['planner.num_elites'], 2, v['planner.num_samples'])
        check_int('receding_blocks', v['receding_blocks'], 1, v['planner.horizon'])
        check_choice('planner.mode', v['planner.mode'], PLANNER_MODES)
        require(v['control_rate'] == 0.0 or v['control_rate'] >= 0.1, 'control_rate', v['control_rate'],
                "0 (the model's recording, else 10) or [0.1, 1000]")
        declared = dict(v)
        v.update({name: value for name, value in BUILTIN.items() if _unset(name, v[name])})
        check_choice('image_type', v['image_type'], IMAGE_TYPES)
        check_choice('command_type', v['command_type'], COMMAND_TYPES)
        if v['goal_image_path']:
            require(Path(v['goal_image_path']).is_file(), 'goal_image_path', v['goal_image_path'],
                    'an existing image file')
    except ValueError as exc:  # name the ROS parameter as such
        raise ValueError(f'parameter {exc}') from None
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
                              receding_blocks=v['receding_blocks'], cost=_cost_config(v), mode=v['planner.mode'],
                              policy_goal_blocks=v['planner.policy_goal_blocks'],
                              disagreement_ratio=v['planner.disagreement_ratio']),
        camera=CameraParams(image_type=v['image_type'], crop=crop),
        control=ControlParams(control_rate_hz=v['control_rate'], diagnostics_rate_hz=v['diagnostics_rate'],
                              start_enabled=v['start_enabled'], goal_image_path=v['goal_image_path'],
                              boundary_frame_wait=v['boundary_frame_wait']),
        surprise=_surprise_policy(v), values=v, declared=declared)


def _surprise_policy(v: dict[str, Any]) -> SurprisePolicy:
    """surprise.* -> SurprisePolicy; an unknown action is an error naming the parameter."""
    try:
        return SurprisePolicy(action=v['surprise.action'], threshold=v['surprise.threshold'],
                              consecutive=v['surprise.consecutive'], instant_threshold=v['surprise.instant_threshold'],
                              warmup_blocks=v['surprise.warmup_blocks'])
    except ValueError as exc:
        raise ValueError(f'parameter {exc}') from None


def _cost_config(v: dict[str, Any]) -> LatentCostConfig:
    """cost.<term>.enabled / .weight -> LatentCostConfig (a disabled critic has weight 0)."""
    weights = {field: v[f'cost.{term}.weight'] if v[f'cost.{term}.enabled'] else 0.0
               for term, field in COST_TERMS.items()}
    require(weights['terminal_weight'] > 0 or weights['stage_weight'] > 0, 'cost.terminal.enabled',
            v['cost.terminal.enabled'], 'true, or cost.stage.enabled true (a cost must measure the goal)')
    return LatentCostConfig(**weights)


def check_change(current: NodeParams, changes: dict[str, Any], metadata: ModelMetadata) -> NodeParams:
    """A parameter change while configured -> the new NodeParams. Raises ValueError with the
    reason: a static parameter, or a dynamic value that fails validation."""
    static = sorted(name for name, value in changes.items()
                    if name in STATIC and value != current.declared.get(name))
    if static:
        raise ValueError(f'parameter(s) {static} are static: read at configure; deactivate, clean up and '
                         'configure the node again to change them')
    updated = from_values({**current.declared, **changes}).with_model_defaults(metadata)  # [] = the recording again
    updated.resolve(metadata)
    return updated

"""Parameter specs: validation, static/dynamic changes, YAML defaults, the Markdown table."""
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lewm_ros.model import ModelMetadata
from lewm_ros.control import node_params as P
from lewm_ros.control import param_specs
from lewm_ros.runtime.critics import LatentCostConfig

ROOT = Path(__file__).resolve().parents[2]
META = ModelMetadata(action_dim=2, frameskip=5, history=3, image_size=64, action_mean=[0, 0], action_std=[1, 1],
                     action_low=[-1, -1], action_high=[1, 1])


def good(**kw):
    return P.from_values({'model_dir': '/models/m', **kw})


def test_defaults_resolve_against_the_model():
    node = good()
    mapping, safety = node.resolve(META)
    assert mapping.scales == (1.0, 1.0) and mapping.fields == ('linear.x', 'angular.z')
    assert safety.action_low == (-1.0, -1.0) and safety.rate_limit == (math.inf, math.inf)
    assert node.control.period_s == pytest.approx(0.1)


@pytest.mark.parametrize('values, name', [
    ({'model_dir': ''}, 'model_dir'),
    ({'backend': 'tflite'}, 'backend'),
    ({'control_rate': 0.05}, 'control_rate'),
    ({'control_rate': 'fast'}, 'control_rate'),
    ({'planner.num_elites': 400}, 'planner.num_elites'),
    ({'planner.warm_std': 0.0}, 'planner.warm_std'),
    ({'receding_blocks': 6}, 'receding_blocks'),
    ({'image_type': 'h264'}, 'image_type'),
    ({'command_type': 'cmd_vel'}, 'command_type'),
    ({'image_timeout': -1.0}, 'image_timeout'),
    ({'crop_box': [0, 0, 10]}, 'crop_box'),
    ({'goal_image_path': '/nonexistent/goal.png'}, 'goal_image_path'),
    ({'unknown_thing': 1}, 'unknown_thing'),
    ({'planner.mode': 'dream'}, 'planner.mode'),
    ({'planner.disagreement_ratio': 0.5}, 'planner.disagreement_ratio'),
    ({'boundary_frame_wait': -1}, 'boundary_frame_wait'),
    ({'boundary_frame_wait': 11}, 'boundary_frame_wait'),
    ({'boundary_frame_wait': 1.5}, 'boundary_frame_wait'),
])
def test_bad_values_name_the_parameter(values, name):
    with pytest.raises(ValueError, match=name.replace('.', r'\.')):
        P.from_values({'model_dir': '/models/m', **values})


def test_boundary_frame_wait_is_static_in_control_periods_and_zero_switches_alignment_off():
    assert good().control.boundary_frame_wait == 1 and good(boundary_frame_wait=0).control.boundary_frame_wait == 0
    with pytest.raises(ValueError, match='static'):
        P.check_change(good(), {'boundary_frame_wait': 2}, META)


def test_planner_mode_reaches_the_mpc_config():
    config = good(**{'planner.mode': 'policy_cem', 'planner.disagreement_ratio': 3.0}).planner.mpc_config()
    assert config.mode == 'policy_cem' and config.policy.goal_blocks == 1.0
    assert config.policy.disagreement_ratio == 3.0
    assert good(**{'planner.policy_goal_blocks': 8.0}).planner.mpc_config().policy.goal_blocks == 8.0


@pytest.mark.parametrize('values, name', [
    ({'command_scales': [1.0]}, 'command_scales'),
    ({'action_low': [0.5, -1.0]}, 'action_low'),
    ({'rate_limit': [1.0, 1.0, 1.0]}, 'rate_limit'),
    ({'command_fields': ['linear.x']}, 'command_fields'),
    ({'plan_timeout': 0.4}, 'plan_timeout'),  # a block takes 5 / 10 Hz = 0.5 s
])
def test_model_dependent_errors_name_the_parameter(values, name):
    with pytest.raises(ValueError, match=name):
        good(**values).resolve(META)


def test_static_change_rejected_dynamic_applied():
    current = good()
    with pytest.raises(ValueError, match=r"\['backend'\] are static"):
        P.check_change(current, {'backend': 'onnxruntime'}, META)
    updated = P.check_change(current, {'rate_limit': [1.0, 2.0], 'receding_blocks': 2}, META)
    assert updated.safety_config(META).rate_limit == (1.0, 2.0) and updated.planner.receding_blocks == 2
    with pytest.raises(ValueError, match='rate_limit'):
        P.check_change(current, {'rate_limit': [1.0]}, META)
    assert P.check_change(current, {'backend': 'torch'}, META).model.backend == 'torch'  # unchanged value


def _flatten(tree, prefix=''):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _flatten(value, f'{prefix}{key}.')
        else:
            yield f'{prefix}{key}', value


def test_planner_yaml_lists_every_parameter_with_its_default_and_a_comment():
    text = (ROOT / 'config' / 'planner.yaml').read_text()
    values = dict(_flatten(yaml.safe_load(text)['/**']['ros__parameters']))
    assert set(values) == {spec.name for spec in param_specs.SPECS}
    for spec in param_specs.SPECS:
        assert values[spec.name] == spec.default, spec.name
        line = next(row for row in text.splitlines() if row.strip().startswith(spec.name.split('.')[-1] + ':'))
        assert '#' in line, f'{spec.name} has no comment in planner.yaml'


def test_markdown_table_cli():
    out = subprocess.run([sys.executable, '-m', 'lewm_ros.control.param_specs', '--markdown'], capture_output=True,
                         text=True, check=True).stdout
    lines = out.strip().splitlines()
    assert lines[0] == '| Parameter | Type | Default | Unit | Meaning |'
    assert len(lines) == 2 + len(param_specs.SPECS)
    assert '| `control_rate` | double (static) | `0.0` | Hz |' in out
    assert '| `rate_limit` | double_array (dynamic) |' in out
    assert all(spec.description for spec in param_specs.SPECS)


def test_critics_are_parameters_with_the_paper_cost_by_default():
    assert good().planner.mpc_config().cost == LatentCostConfig()
    cost = good(**{'cost.stage.enabled': True, 'cost.stage.weight': 0.5, 'cost.terminal.weight': 2.0,
                   'cost.action.weight': 3.0}).planner.mpc_config().cost
    assert cost == LatentCostConfig(terminal_weight=2.0, stage_weight=0.5, action_weight=0.0, smoothness_weight=0.0)
    with pytest.raises(ValueError, match=r'cost\.terminal\.enabled'):
        good(**{'cost.terminal.enabled': False})
    with pytest.raises(ValueError, match=r'cost\.smoothness\.weight'):
        good(**{'cost.smoothness.weight': -1.0})
    with pytest.raises(ValueError, match=r"\['cost.stage.enabled'\] are static"):
        P.check_change(good(), {'cost.stage.enabled': True}, META)


RECORDED = {'camera_topic': 'front/image_raw/compressed', 'image_type': 'compressed', 'command_topic': 'arm/command',
            'command_type': 'float64_multi_array', 'command_fields': [], 'command_scales': [2.0, 0.5],
            'control_rate': 15.0, 'image_size': 64, 'crop_box': [4, 0, 40, 40], 'crop_scale': 1.0}


def recorded_model(**deployment):
    return ModelMetadata(**{**META.__dict__, 'extra': {'deployment': {**RECORDED, **deployment}}})


def test_unset_camera_and_command_parameters_come_from_the_recording_explicit_ones_win():
    plain = good()
    assert (plain.control.control_rate_hz, plain.camera.image_type, plain.camera.crop.scale) == (10.0, 'raw', 1.0)
    assert plain.with_model_defaults(META) is plain  # a simulator model carries no recording
    mapping, _ = plain.resolve(META)
    assert (mapping.command_type, mapping.fields, mapping.scales) == ('twist_stamped', ('linear.x', 'angular.z'),
                                                                       (1.0, 1.0))
    model = recorded_model()
    node = good().with_model_defaults(model)
    mapping, _ = node.resolve(model)
    assert (mapping.command_type, mapping.scales) == ('float64_multi_array', (2.0, 0.5))
    assert node.control.control_rate_hz == 15.0 and node.camera.image_type == 'compressed'
    assert node.camera.crop.box == (4, 0, 40, 40)
    explicit = good(control_rate=20.0, command_type='twist', command_fields=['linear.x', 'linear.y'],
                    crop_scale=0.5).with_model_defaults(model)
    mapping, _ = explicit.resolve(model)
    assert (explicit.control.control_rate_hz, mapping.command_type, mapping.fields) == (
        20.0, 'twist', ('linear.x', 'linear.y'))
    assert mapping.scales == (2.0, 0.5) and explicit.camera.crop == P.CropConfig(box=(), scale=0.5)


def test_a_bad_recording_names_the_file_and_the_key():
    with pytest.raises(ValueError, match=r'lewm_meta\.json: extra\.deployment\.command_type'):
        good().with_model_defaults(recorded_model(command_type='cmd_vel'))
    with pytest.raises(ValueError, match=r'lewm_meta\.json: extra\.deployment.*missing'):
        good().with_model_defaults(ModelMetadata(**{**META.__dict__, 'extra': {'deployment': {'image_type': 'raw'}}}))


def test_a_running_change_back_to_unset_takes_the_recording_again_and_resending_declared_values_is_no_change():
    model = recorded_model()
    node = good().with_model_defaults(model)
    scaled = P.check_change(node, {'command_scales': [1.0, 1.0]}, model)
    assert scaled.command_mapping(model).scales == (1.0, 1.0)
    back = P.check_change(scaled, {'command_scales': []}, model)
    assert back.command_mapping(model).scales == (2.0, 0.5)  # the recording's, not all 1
    assert P.check_change(node, {'image_type': '', 'command_type': ''}, model).camera.image_type == 'compressed'

"""launch/sim.launch.py (ast here; built when launch_ros is importable) and config/sim.yaml."""
import ast
import importlib.util
from pathlib import Path

import pytest

from lewm_ros.control import node_params as planner_params
from lewm_ros.ros.runner import read_params_file
from lewm_training.sim_robot import SIM_PARAMS, SimConfig

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ROOT / 'launch' / 'sim.launch.py'
CONFIG = ROOT / 'config' / 'sim.yaml'
ARGUMENTS = {'params_file', 'model_dir', 'backend', 'device', 'task', 'mode', 'use_sim_time', 'camera_topic',
             'cmd_topic'}


def test_launch_file_declares_the_arguments_and_both_nodes():
    tree = ast.parse(LAUNCH.read_text(), filename=str(LAUNCH))
    assert 'generate_launch_description' in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    declared = {n.args[0].value for n in ast.walk(tree)
                if isinstance(n, ast.Call) and getattr(n.func, 'id', '') == 'DeclareLaunchArgument'}
    assert declared == ARGUMENTS
    calls = {getattr(n.func, 'id', '') for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert {'Node', 'IncludeLaunchDescription'} <= calls  # the planner: the robot's own launch file
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert {'sim_node', 'planner.launch.py', 'sim_node/goal_image', 'goal_topic', 'camera/image_raw', 'cmd_vel',
            'command'} <= strings


def test_launch_description_builds_with_launch_ros():
    if importlib.util.find_spec('launch_ros') is None:
        pytest.skip('launch_ros is not installable from PyPI (ROS 2 apt/source install only)')
    spec = importlib.util.spec_from_file_location('sim_launch', LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert {a.name for a in module.generate_launch_description().get_launch_arguments()} == ARGUMENTS


def test_sim_yaml_holds_every_sim_parameter_with_its_default_and_a_comment():
    sections = read_params_file(CONFIG)
    sim = dict(sections['sim_node'])
    assert sim.pop('use_sim_time') is False
    assert set(sim) == {p.name for p in SIM_PARAMS}
    for spec in SIM_PARAMS:
        assert sim[spec.name] == spec.default, spec.name
    SimConfig.from_values(sim)
    planner = dict(sections['planner_node'])
    assert planner.pop('use_sim_time') is True
    flat = {f'{key}.{sub}' if isinstance(value, dict) else key
            for key, value in planner.items() for sub in (value if isinstance(value, dict) else [None])}
    assert flat <= set(planner_params.SPEC_BY_NAME)
    planner_params.from_yaml_section({**planner, 'model_dir': 'models/tworoom_compact'})  # valid values
    assert planner['command_fields'] == sim['twist_fields'] and planner['command_type'] == sim['command_type']
    for line in CONFIG.read_text().splitlines():
        if ':' in line and not line.lstrip().startswith('#') and 'ros__parameters' not in line \
                and line.startswith('    '):
            assert '#' in line, f'uncommented parameter line in {CONFIG.name}: {line!r}'

"""launch/planner.launch.py: parsed with ast here; built for real when launch_ros is importable."""
import ast
import importlib.util
from pathlib import Path

import pytest

LAUNCH = Path(__file__).resolve().parents[2] / 'launch' / 'planner.launch.py'
ARGUMENTS = {'namespace', 'node_name', 'params_file', 'use_sim_time', 'model_dir', 'backend', 'device',
             'image_type', 'camera_topic', 'cmd_topic', 'autostart'}


def declared_arguments(tree: ast.AST) -> set[str]:
    return {node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, 'id', '') == 'DeclareLaunchArgument'}


def test_launch_file_parses_and_declares_the_arguments():
    tree = ast.parse(LAUNCH.read_text(), filename=str(LAUNCH))
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert 'generate_launch_description' in functions
    assert declared_arguments(tree) == ARGUMENTS
    calls = {getattr(n.func, 'id', '') for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert {'LifecycleNode', 'ChangeState', 'OnStateTransition', 'RegisterEventHandler', 'EmitEvent'} <= calls


def test_launch_description_builds_with_launch_ros():
    if importlib.util.find_spec('launch_ros') is None:
        pytest.skip('launch_ros not installed')
    spec = importlib.util.spec_from_file_location('planner_launch', LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    names = {a.name for a in description.get_launch_arguments()}
    assert names == ARGUMENTS

"""launch/planner.launch.py: parsed with ast here; built for real when launch_ros is importable."""
import ast
import json
import importlib.util
from pathlib import Path

import pytest

LAUNCH = Path(__file__).resolve().parents[2] / 'launch' / 'planner.launch.py'
ARGUMENTS = {'namespace', 'node_name', 'params_file', 'use_sim_time', 'model_dir', 'backend', 'device',
             'image_type', 'camera_topic', 'cmd_topic', 'goal_topic', 'autostart'}


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


@pytest.mark.parametrize('name', ['planner.launch.py', 'sim.launch.py'])
def test_every_launch_argument_has_a_default(name):
    """`ros2 launch lewm_ros <file>` with no arguments must come up (the shipped model by default)."""
    path = LAUNCH.parent / name
    declarations = [node for node in ast.walk(ast.parse(path.read_text(), filename=str(path)))
                    if isinstance(node, ast.Call) and getattr(node.func, 'id', '') == 'DeclareLaunchArgument']
    assert declarations
    missing = [node.args[0].value for node in declarations
               if 'default_value' not in {keyword.arg for keyword in node.keywords}]
    assert not missing, f'{name}: launch arguments without a default: {missing}'


def test_topics_are_relative_compressed_follows_image_transport_and_a_recording_names_them(tmp_path):
    source = LAUNCH.read_text()
    defaults = "DEFAULT_TOPICS = {'camera_topic': 'camera/image_raw', 'cmd_topic': 'cmd_vel', 'image_type': 'raw'}"
    assert defaults in source
    assert "('image/compressed', camera + '/compressed')" in source
    assert "os.path.join(get_package_share_directory('lewm_ros'), 'models', SHIPPED_MODEL)" in source
    # the topic resolution is plain Python: run it on a model with a recording and on one without
    tree = ast.parse(source)
    helper = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == 'recorded_topics')
    namespace = {'os': __import__('os'), 'json': __import__('json')}
    exec(compile(ast.Module(body=[helper], type_ignores=[]), str(LAUNCH), 'exec'), namespace)
    (tmp_path / 'lewm_meta.json').write_text(json.dumps({'extra': {'deployment': {
        'camera_topic': '/front/image_raw/compressed', 'image_type': 'compressed', 'command_topic': '/base/cmd'}}}))
    assert namespace['recorded_topics'](str(tmp_path)) == {
        'camera_topic': '/front/image_raw', 'cmd_topic': '/base/cmd', 'image_type': 'compressed'}
    assert namespace['recorded_topics'](str(tmp_path / 'missing')) == {}

"""The rules of the house (README "Architecture"), checked on the source tree."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / 'lewm_ros'
ROS_FREE = ('camera', 'control', 'planning', 'runtime', 'model', 'bench')
MAX_LINES = 400


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module imported anywhere in the file (lazy imports included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split('.')[0])
    return names


def is_ros(module: str) -> bool:
    return module.startswith('rclpy') or module.endswith('_msgs') or module.endswith('_srvs') \
        or module in ('builtin_interfaces', 'rcl_interfaces', 'lifecycle_msgs')


def python_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob('*.py') if p.name != '__init__.py' or p.stat().st_size)


def test_every_ros_module_imports_rclpy():
    files = [p for p in (PACKAGE / 'ros').glob('*.py') if p.name != '__init__.py']
    assert files
    glue_free = [p.name for p in files if 'rclpy' not in imported_modules(p)]
    assert not glue_free, f'not rclpy glue, move out of lewm_ros/ros: {glue_free}'


@pytest.mark.parametrize('room', ROS_FREE)
def test_core_rooms_import_no_ros(room):
    offenders = {str(p.relative_to(ROOT)): sorted(filter(is_ros, imported_modules(p)))
                 for p in python_files(PACKAGE / room)}
    assert not {k: v for k, v in offenders.items() if v}


def test_robot_package_never_names_the_training_package():
    named = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob('*.py') if 'lewm_training' in p.read_text()]
    assert not named


def test_no_module_over_the_line_limit():
    long = {str(p.relative_to(ROOT)): n for p in [*PACKAGE.rglob('*.py'), *(ROOT / 'training').rglob('*.py')]
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f'split these modules (> {MAX_LINES} lines): {long}'

"""package.xml declares every run-time import of the robot package with a rosdep key."""
import ast
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Python module -> rosdep key (keys of ros/rosdistro rosdep/python.yaml; ROS packages by name).
PYTHON_KEYS = {'numpy': 'python3-numpy', 'yaml': 'python3-yaml', 'cv2': 'python3-opencv', 'torch': 'python3-torch',
               'onnxruntime': 'python3-onnxruntime-pip'}
#: Imported, but no rosdep key exists: installed with pip as the README says.
PIP_ONLY = {'safetensors', 'onnx', 'rosbags', 'tensorrt', 'pycuda', 'array_api_compat'}


def third_party_imports() -> set[str]:
    names = set()
    for path in [*(ROOT / 'lewm_ros').rglob('*.py'), *(ROOT / 'launch').glob('*.py')]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split('.')[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split('.')[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != 'lewm_ros'}


def test_every_runtime_import_has_an_exec_depend():
    declared = {e.text for e in ET.parse(ROOT / 'package.xml').getroot().iter('exec_depend')}
    missing = {name for name in third_party_imports() - PIP_ONLY if PYTHON_KEYS.get(name, name) not in declared}
    assert not missing, f'add <exec_depend> for: {sorted(missing)}'
    assert 'ros2launch' in declared  # `ros2 launch` itself

"""ament_python package definition for lewm_ros (also pip-installable without ROS)."""
from glob import glob
import os

from setuptools import find_packages, setup

package_name = 'lewm_ros'


def _model_files():
    """(install_dir, [files]) pairs for every shipped model directory."""
    pairs = []
    for root, _dirs, files in os.walk('models'):
        if files:
            pairs.append((os.path.join('share', package_name, root),
                          [os.path.join(root, f) for f in files]))
    return pairs


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*', 'training', 'training.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        (os.path.join('share', package_name, 'launch'), glob('launch/*.launch.py')),
        (os.path.join('share', package_name, 'config'), glob('config/*.yaml')),
        *_model_files(),
    ],
    install_requires=['setuptools', 'numpy', 'array-api-compat', 'pyyaml', 'safetensors'],
    extras_require={
        'test': ['pytest', 'pytest-timeout'],
        'onnx': ['onnx', 'onnxruntime'],
        # A robot without torch (README "Install on a robot"): ONNX Runtime on any CPU ...
        'robot-cpu': ['onnxruntime', 'opencv-python-headless', 'rosbags-image'],
        # ... or TensorRT on an NVIDIA GPU through pycuda (JetPack ships TensorRT on a Jetson).
        'robot-trt': ['pycuda', 'onnx', 'onnxruntime', 'opencv-python-headless', 'rosbags-image',
                      'tensorrt>=10,<12; platform_machine == "x86_64"'],
    },
    zip_safe=True,
    maintainer='lewm_ros maintainers',
    maintainer_email='maintainers@lewm-ros.dev',
    description='Real-robot latent planning with LeWorldModel (LeWM) on ROS 2.',
    license='MIT',
    entry_points={
        'console_scripts': [
            'planner_node = lewm_ros.ros.planner_node:main',
            'lewm-bench = lewm_ros.bench.cli:main',
            'lewm-engine = lewm_ros.runtime.engine_cli:main',
            'lewm-run = lewm_ros.ros.runner:main',
            'lewm-record = lewm_ros.ros.recorder:main',
        ],
    },
)

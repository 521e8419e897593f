"""The light robot install: planner_node in the torch-free environment ``.venv-robot``
(``pip install lewm_ros[robot-cpu]`` + the ROS wheels, made by scripts/setup_env.sh) runs the
shipped model on ONNX Runtime through its lifecycle, camera in, commands out, and plans what the
torch backend plans from the same inputs and seed.

scripts/test.sh sets LEWM_REQUIRE_ROBOT_VENV=1: there a missing robot environment fails the test
instead of skipping it."""
import os
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import rclpy
from geometry_msgs.msg import TwistStamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import Float32, Float64MultiArray

from lewm_ros.planning import MPCConfig, MPCPlanner

ROOT = Path(__file__).resolve().parents[2]
ROBOT_VENV = Path(os.environ.get('LEWM_ROBOT_VENV', ROOT / '.venv-robot'))
ROBOT_PYTHON = ROBOT_VENV / 'bin' / 'python'
MODEL = ROOT / 'models' / 'tworoom_compact'
NS = '/robot_profile'
DOMAIN_ID = 93


@pytest.fixture(scope='module')
def robot_python():
    if not ROBOT_PYTHON.is_file():
        message = f'the torch-free robot environment {ROBOT_VENV} is missing: scripts/setup_env.sh creates it'
        if os.environ.get('LEWM_REQUIRE_ROBOT_VENV') == '1':
            pytest.fail(message)
        pytest.skip(message)
    return str(ROBOT_PYTHON)


def _run(python: str, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([python, '-c', code], capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_the_robot_environment_has_no_torch(robot_python):
    result = _run(robot_python, 'import torch')
    assert result.returncode != 0 and "No module named 'torch'" in result.stderr
    result = _run(robot_python, 'import sys, lewm_ros.ros.planner_node, onnxruntime, rclpy; '
                                "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))")
    assert result.returncode == 0 and result.stdout.strip() == '[]', result.stderr


def test_a_missing_export_names_the_directory_and_the_command(robot_python):
    result = _run(robot_python, 'from lewm_ros.planning import MPCPlanner\n'
                                f"MPCPlanner.from_model_dir({str(MODEL)!r}, backend='onnxruntime', num_samples=17)")
    assert result.returncode != 0
    assert f'{MODEL}/onnx/n17_h5' in result.stderr and 'no torch' in result.stderr
    assert f'lewm-train export --model-dir {MODEL} --samples 17 --horizon 5' in result.stderr


class _Probe:
    """A node in its own context and executor, spun from the test."""

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=DOMAIN_ID)
        self.node = rclpy.create_node('robot_profile_probe', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin_until(self, cond, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end and not cond():
            self.executor.spin_once(timeout_sec=0.05)
        return cond()

    def transition(self, client, transition: int) -> None:
        future = client.call_async(ChangeState.Request(transition=Transition(id=transition)))
        assert self.spin_until(future.done, 60.0) and future.result().success, f'transition {transition}'

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def _frames() -> tuple[np.ndarray, np.ndarray]:
    """(goal, camera) 64 x 64 RGB frames at the model's size (the camera room passes them as they are)."""
    rng = np.random.default_rng(5)
    goal = np.zeros((64, 64, 3), np.uint8)
    goal[:, 40:] = 255
    return goal, rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)


def test_planner_node_without_torch_plans_like_the_torch_backend(robot_python, tmp_path):
    goal, camera_frame = _frames()
    goal_path = tmp_path / 'goal.png'
    cv2.imwrite(str(goal_path), cv2.cvtColor(goal, cv2.COLOR_RGB2BGR))
    env = {**os.environ, 'ROS_DOMAIN_ID': str(DOMAIN_ID), 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
           'PYTHONUNBUFFERED': '1', 'LEWM_ENGINE_CACHE': str(tmp_path / 'cache')}
    params = {'model_dir': MODEL, 'backend': 'onnxruntime', 'goal_image_path': goal_path, 'cpu_threads': 1}
    process = subprocess.Popen([robot_python, '-m', 'lewm_ros.ros.planner_node', '--ros-args', '-r', f'__ns:={NS}',
                                *[a for k, v in params.items() for a in ('-p', f'{k}:={v}')]],
                               env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    probe = _Probe()
    commands, plans, costs = [], [], []
    probe.node.create_subscription(TwistStamped, f'{NS}/cmd', lambda m: commands.append(
        np.array([m.twist.linear.x, m.twist.angular.z])), 50)
    probe.node.create_subscription(Float64MultiArray, f'{NS}/planner_node/planned_actions',
                                   lambda m: plans.append(np.array(m.data)), 10)
    probe.node.create_subscription(Float32, f'{NS}/planner_node/plan_cost', lambda m: costs.append(m.data), 10)
    camera = probe.node.create_publisher(Image, f'{NS}/image', qos_profile_sensor_data)
    probe.node.create_timer(1 / 30, lambda: camera.publish(Image(height=64, width=64, encoding='rgb8', step=192,
                                                                 data=camera_frame.tobytes())))
    lifecycle = probe.node.create_client(ChangeState, f'{NS}/planner_node/change_state')
    failure = None
    try:
        assert lifecycle.wait_for_service(timeout_sec=60.0), 'planner_node did not come up'
        probe.transition(lifecycle, Transition.TRANSITION_CONFIGURE)
        probe.transition(lifecycle, Transition.TRANSITION_ACTIVATE)
        assert probe.spin_until(lambda: plans and costs and any(np.abs(c).sum() > 0 for c in commands), 60.0), \
            f'{len(plans)} plans, {len(commands)} commands'
        probe.transition(lifecycle, Transition.TRANSITION_DEACTIVATE)
        probe.spin_until(lambda: False, 0.5)
    except AssertionError as exc:
        failure = exc
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=30)
        probe.close()
    assert failure is None, f'{failure}\nplanner_node output:\n{out}'
    assert 'configured: model' in out and '(onnxruntime on cpu)' in out, out
    np.testing.assert_array_equal(commands[-1], [0.0, 0.0])   # deactivate stops the robot

    # The first plan (one frame of history, a cold solve from the seed) with the torch backend.
    reference = MPCPlanner.from_model_dir(MODEL, backend='torch', config=MPCConfig())
    reference.set_goal(goal)
    reference.observe(camera_frame)
    want = reference.plan()
    assert abs(costs[0] - want.cost) <= 1e-5 * abs(want.cost), (costs[0], want.cost)
    np.testing.assert_allclose(plans[0].reshape(want.raw_actions.shape), want.raw_actions, atol=1e-4)

"""lewm-run: params-file checks, and the real console entry point in a subprocess over real topics."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from lewm_ros.ros.runner import RunConfig, load_node_class, read_params_file

import rclpy  # noqa: E402  (a dependency: installed by scripts/setup_env.sh)

from geometry_msgs.msg import TwistStamped  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402


def test_params_file_layout_errors_name_the_key(tmp_path):
    good = tmp_path / 'good.yaml'
    good.write_text('/**:\n  ros__parameters: {a: 1}\nns:\n  sim_node:\n    ros__parameters: {seed: 2}\n')
    assert read_params_file(good) == {'/**': {'a': 1}, 'ns/sim_node': {'seed': 2}}
    bad = tmp_path / 'bad.yaml'
    bad.write_text('sim_node:\n  ros__parameters: {seed: 2}\n  seed: 3\n')
    with pytest.raises(ValueError, match="'sim_node' must hold only a ros__parameters mapping"):
        read_params_file(bad)
    bad.write_text('sim_node: 3\n')
    with pytest.raises(ValueError, match="'sim_node' must be a mapping"):
        read_params_file(bad)
    with pytest.raises(ValueError, match='does not exist'):
        read_params_file(tmp_path / 'missing.yaml')


def test_run_config_validates_and_user_remaps_come_first(tmp_path):
    with pytest.raises(ValueError, match='nodes='):
        RunConfig(tmp_path, nodes=())
    with pytest.raises(RuntimeError, match=r"camera_node: no installed package offers this node.*'sim_node'"):
        load_node_class('camera_node')
    with pytest.raises(ValueError, match="'from:=to'"):
        RunConfig(tmp_path, nodes=('sim_node',), remaps=('image/foo',))
    config = RunConfig(tmp_path / 'p.yaml', nodes=('planner_node', 'sim_node'), cmd_topic='/robot/cmd',
                       remaps=('planner_node:image:=/x',), params=('model_dir:=/m',))
    args = config.ros_args()
    rules = [args[i + 1] for i, a in enumerate(args) if a == '-r']
    assert rules[0] == 'planner_node:image:=/x'  # rcl applies the first matching rule
    assert {'planner_node:cmd:=/robot/cmd', 'sim_node:cmd_vel:=/robot/cmd', 'sim_node:command:=/robot/cmd',
            'planner_node:~/goal_image:=sim_node/goal_image'} <= set(rules)
    assert args[args.index('-p') + 1] == 'model_dir:=/m'


NS = f'/runner_test_{os.getpid()}'
"""Every run is pushed into this namespace (-r __ns:=...), topics given relative: a concurrent run of
the same tests on this machine and domain cannot cross-talk."""


def _env(domain_id):
    return {**os.environ, 'ROS_DOMAIN_ID': str(domain_id), 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
            'PYTHONUNBUFFERED': '1'}


class _Probe:
    """A node in its own context (domain_id) and executor, spun from the test."""

    def __init__(self, domain_id):
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node('runner_probe', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin_until(self, cond, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end and not cond():
            self.executor.spin_once(timeout_sec=0.05)
        return cond()

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def _stop(process, signum=signal.SIGINT):
    process.send_signal(signum)
    try:
        out, _ = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
        pytest.fail(f'{process.args[2]} did not stop on {signal.Signals(signum).name}:\n{out}')
    return process.returncode, out


def test_runner_starts_sim_node_from_yaml_with_remap_and_stops_on_sigint(tmp_path):
    params = tmp_path / 'sim.yaml'
    # '/**/' matches the node in any namespace (the run is pushed into NS).
    params.write_text('/**/sim_node:\n  ros__parameters:\n    image_size: 32\n    real_time_factor: 2.0\n')
    process = subprocess.Popen([sys.executable, '-m', 'lewm_ros.ros.runner', '--params', str(params), '--sim-only',
                                '--camera-topic', 'runner_cam', '-r', f'__ns:={NS}'], env=_env(70),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    probe = _Probe(70)
    images = []
    probe.node.create_subscription(Image, f'{NS}/runner_cam', lambda m: images.append((time.monotonic(), m)),
                              qos_profile_sensor_data)
    try:
        assert probe.spin_until(lambda: len(images) >= 3, 30.0), 'no image from lewm-run'
        first = len(images)
        probe.spin_until(lambda: False, 1.5)
        stamps = [t for t, _ in images[first - 1:]]
        rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
        assert 17.0 < rate < 23.0, rate  # real_time_factor 2 x (1 / 0.1 s) from the YAML
        assert (images[-1][1].width, images[-1][1].height) == (32, 32)  # image_size from the YAML
    finally:
        probe.close()
        rc, out = _stop(process)
    assert rc == 0, out
    assert 'stopped cleanly' in out, out


def test_runner_reports_a_bad_parameter_and_exits_nonzero(tmp_path):
    params = tmp_path / 'sim.yaml'
    params.write_text('sim_node:\n  ros__parameters:\n    mode: "fast"\n')
    result = subprocess.run([sys.executable, '-m', 'lewm_ros.ros.runner', '--params', str(params), '--sim-only'],
                            env=_env(71), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "parameter mode='fast' is out of range" in result.stdout + result.stderr


def test_runner_closes_the_loop_and_sends_a_zero_command_on_sigint(tmp_path, compact_model_writer):
    model_dir = compact_model_writer(tmp_path / 'model')
    params = tmp_path / 'sim.yaml'
    params.write_text(
        '/**/sim_node:\n  ros__parameters:\n    real_time_factor: 1.0\n'
        '/**/planner_node:\n  ros__parameters:\n    use_sim_time: true\n'
        '    command_fields: ["linear.x", "linear.y"]\n'
        '    planner:\n      num_samples: 16\n      num_elites: 4\n      iterations: 2\n')
    process = subprocess.Popen([sys.executable, '-m', 'lewm_ros.ros.runner', '--params', str(params), '--with-sim',
                                '-p', f'model_dir:={model_dir}', '--cmd-topic', 'cmd_vel', '-r', f'__ns:={NS}'],
                               env=_env(72), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    probe = _Probe(72)
    commands = []
    probe.node.create_subscription(TwistStamped, f'{NS}/cmd_vel',
                                   lambda m: commands.append(np.array([m.twist.linear.x, m.twist.linear.y])), 10)
    reset = probe.node.create_client(Trigger, f'{NS}/sim_node/reset')
    try:
        assert reset.wait_for_service(timeout_sec=45.0), 'sim_node did not come up'
        future = reset.call_async(Trigger.Request())  # a new episode: its goal reaches the running planner
        assert probe.spin_until(future.done, 10.0) and future.result().success
        assert probe.spin_until(lambda: any(np.abs(c).sum() > 0 for c in commands), 45.0), \
            f'no nonzero command from the planner: {len(commands)} commands'
    finally:
        rc, out = _stop(process)
        probe.spin_until(lambda: False, 0.5)
        probe.close()
    assert rc == 0, out
    np.testing.assert_array_equal(commands[-1], [0.0, 0.0])


def test_runner_stops_everything_when_the_planner_fails_to_configure(tmp_path):
    params = tmp_path / 'sim.yaml'
    params.write_text('planner_node:\n  ros__parameters:\n    backend: "torch"\n')
    result = subprocess.run([sys.executable, '-m', 'lewm_ros.ros.runner', '--params', str(params), '--with-sim',
                             '-p', f'model_dir:={tmp_path / "no_model"}'], env=_env(73), capture_output=True,
                            text=True, timeout=90)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert 'planner_node: trigger_configure failed' in out and 'stopped after a start failure' in out, out


@pytest.mark.parametrize('signum, domain_id', [(signal.SIGINT, 74), (signal.SIGTERM, 75)])
def test_planner_console_script_driven_through_lifecycle_stops_with_a_zero_command(tmp_path, signum, domain_id,
                                                                                   compact_model_writer):
    """The robot's entry point (`ros2 run lewm_ros planner_node`, what planner.launch.py starts):
    configure + activate through the lifecycle services as the launch file does, camera frames in,
    commands out; SIGINT or SIGTERM (what ros2 launch sends) ends it with a zero command."""
    model_dir = compact_model_writer(tmp_path / 'model')
    params = {'model_dir': model_dir, 'goal_image_path': model_dir / 'goal.png', 'planner.num_samples': 16,
              'planner.num_elites': 4, 'planner.iterations': 2, 'planner.horizon': 2, 'cpu_threads': 1}
    args = [a for k, v in params.items() for a in ('-p', f'{k}:={v}')]
    process = subprocess.Popen([sys.executable, '-m', 'lewm_ros.ros.planner_node', '--ros-args',
                                '-r', f'__ns:={NS}', *args], env=_env(domain_id), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    probe = _Probe(domain_id)
    commands = []
    probe.node.create_subscription(TwistStamped, f'{NS}/cmd', lambda m: commands.append(
        np.array([m.twist.linear.x, m.twist.angular.z])), 10)
    camera = probe.node.create_publisher(Image, f'{NS}/image', qos_profile_sensor_data)
    frame = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8).tobytes()
    probe.node.create_timer(1 / 30, lambda: camera.publish(Image(height=64, width=64, encoding='rgb8', step=192,
                                                                 data=frame)))
    lifecycle = probe.node.create_client(ChangeState, f'{NS}/planner_node/change_state')
    try:
        assert lifecycle.wait_for_service(timeout_sec=45.0), 'planner_node did not come up'
        for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            future = lifecycle.call_async(ChangeState.Request(transition=Transition(id=transition)))
            assert probe.spin_until(future.done, 30.0) and future.result().success, f'transition {transition}'
        assert probe.spin_until(lambda: any(np.abs(c).sum() > 0 for c in commands), 30.0), \
            f'no nonzero command: {len(commands)} commands'
    finally:
        rc, out = _stop(process, signum)
        probe.spin_until(lambda: False, 0.5)
        probe.close()
    assert rc == 0, out
    np.testing.assert_array_equal(commands[-1], [0.0, 0.0])

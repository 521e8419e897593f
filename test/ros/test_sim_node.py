"""sim_node through real rclpy topics (Fast DDS, localhost) driving real MuJoCo."""
import json
import os
import time

import numpy as np
import pytest

import rclpy  # noqa: E402  (a dependency: installed by scripts/setup_env.sh)

from geometry_msgs.msg import TwistStamped  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Float64MultiArray, String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from lewm_training.sim_node import SimNode  # noqa: E402

NS = f'/sim_test_{os.getpid()}'
"""Every topic of a test lives under this namespace (/clock remapped into it): a concurrent run of
the same tests on this machine and domain cannot cross-talk."""
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class Harness:
    """A SimNode and a probe node in one context and one executor; the probe records everything."""

    def __init__(self, domain_id: int, **params):
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        self.sim = SimNode(context=self.context, parameter_overrides=overrides, namespace=NS,
                           cli_args=['--ros-args', '-r', '/clock:=clock'])
        self.probe = rclpy.create_node('probe', context=self.context, namespace=NS)
        self.images, self.clocks, self.infos, self.goals, self.episodes, self.states = [], [], [], [], [], []
        sub = self.probe.create_subscription
        sub(Image, 'camera/image_raw', lambda m: self.images.append((time.monotonic(), m)), qos_profile_sensor_data)
        sub(CameraInfo, 'camera/camera_info', self.infos.append, 10)
        sub(Clock, 'clock', lambda m: self.clocks.append((time.monotonic(), m)), 10)
        sub(String, 'sim_node/episode', lambda m: self.episodes.append(json.loads(m.data)), 10)
        sub(Float64MultiArray, 'sim_node/state', lambda m: self.states.append(np.array(m.data)), 10)
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.sim)
        self.executor.add_node(self.probe)

    def subscribe_goal(self):
        self.probe.create_subscription(Image, 'sim_node/goal_image', self.goals.append, LATCHED)

    def spin_until(self, cond, timeout=5.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end and not cond():
            self.executor.spin_once(timeout_sec=0.02)
        return cond()

    def spin_for(self, seconds):
        self.spin_until(lambda: False, seconds)

    def close(self):
        self.executor.shutdown()
        self.sim.destroy_node()
        self.probe.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def harness_factory():
    made = []

    def make(domain_id, **params):
        made.append(Harness(domain_id, **params))
        return made[-1]
    yield make
    for h in made:
        h.close()


def test_realtime_publishes_images_and_clock_at_the_step_rate(harness_factory):
    h = harness_factory(60, mode='realtime')  # tworoom: dt = 0.1 s -> 10 Hz
    assert h.spin_until(lambda: len(h.images) >= 3)
    first = len(h.images)
    h.spin_for(2.0)
    stamps = [t for t, _ in h.images[first - 1:]]
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    assert 9.0 < rate < 11.0, rate
    clock_stamps = [t for t, _ in h.clocks[-15:]]
    assert 9.0 < (len(clock_stamps) - 1) / (clock_stamps[-1] - clock_stamps[0]) < 11.0
    # /clock advances by dt per step; an image carries the sim time of its step.
    sim_times = [m.clock.sec + m.clock.nanosec * 1e-9 for _, m in h.clocks[-5:]]
    np.testing.assert_allclose(np.diff(sim_times), 0.1, atol=1e-6)
    msg = h.images[-1][1]
    assert (msg.encoding, msg.height, msg.width, msg.step, len(msg.data)) == ('rgb8', 64, 64, 192, 64 * 64 * 3)
    # Image and /clock are two topics (no delivery order between them): the step's /clock may come
    # after its image, so wait a little, then the image's stamp must be a published sim time.
    h.spin_for(0.3)
    published = {round(m.clock.sec + m.clock.nanosec * 1e-9, 6) for _, m in h.clocks}
    assert round(msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9, 6) in published
    info = h.infos[-1]
    assert (info.width, info.height) == (64, 64) and info.k[0] > 0
    # No command: zero-order hold of nothing = zero action, the agent stays put.
    assert np.abs(h.states[-1][:2] - h.states[0][:2]).max() < 1e-3


def test_lockstep_steps_exactly_once_per_command(harness_factory):
    h = harness_factory(61, mode='lockstep', command_type='float64_multi_array')
    pub = h.probe.create_publisher(Float64MultiArray, 'command', 100)
    assert h.spin_until(lambda: len(h.images) == 1 and pub.get_subscription_count() == 1)
    h.spin_for(0.3)
    assert len(h.images) == 1 and h.sim.loop.steps == 0  # nothing moves without a command
    for _ in range(7):
        pub.publish(Float64MultiArray(data=[0.3, -0.2]))
    assert h.spin_until(lambda: len(h.images) == 8)
    h.spin_for(0.5)
    assert len(h.images) == 8 and h.sim.loop.steps == 7
    assert [e['step'] for e in h.episodes] == list(range(8))
    assert h.episodes[-1]['sim_time'] == pytest.approx(0.7)


def test_reset_publishes_a_new_latched_goal_image(harness_factory):
    h = harness_factory(62, mode='lockstep', seed=5)
    assert h.spin_until(lambda: len(h.images) == 1)
    h.subscribe_goal()  # joins after the goal went out: transient-local delivers it
    assert h.spin_until(lambda: len(h.goals) == 1)
    client = h.probe.create_client(Trigger, 'sim_node/reset')
    assert client.wait_for_service(timeout_sec=5.0)
    future = client.call_async(Trigger.Request())
    assert h.spin_until(future.done)
    assert future.result().success, future.result().message
    assert future.result().message.startswith('episode 1:')
    assert h.spin_until(lambda: len(h.goals) == 2)
    old, new = (np.frombuffer(g.data, np.uint8) for g in h.goals)
    assert h.goals[1].encoding == 'rgb8' and not np.array_equal(old, new)
    assert h.spin_until(lambda: h.episodes and h.episodes[-1]['episode'] == 1 and h.episodes[-1]['step'] == 0)


@pytest.mark.parametrize('field,axis,sign', [('linear.x', 0, 1.0), ('linear.y', 1, -1.0)])
def test_twist_moves_the_agent_in_the_commanded_direction(harness_factory, field, axis, sign):
    h = harness_factory(63 + axis, mode='lockstep')
    pub = h.probe.create_publisher(TwistStamped, 'cmd_vel', 100)  # sim_node's default: a Jazzy robot
    assert h.spin_until(lambda: len(h.states) == 1 and pub.get_subscription_count() == 1)
    start = h.states[0][:2]
    msg = TwistStamped()
    setattr(getattr(msg.twist, field.split('.')[0]), field.split('.')[1], sign * 0.8)
    for _ in range(8):
        pub.publish(msg)
    assert h.spin_until(lambda: len(h.states) == 9)
    moved = h.states[-1][:2] - start
    assert sign * moved[axis] > 0.15, moved  # 8 steps x 0.1 s x 0.32 m/s = 0.26 m less the 0.05 s lag
    assert abs(moved[1 - axis]) < 1e-3, moved


def test_console_script_stops_on_sigterm_and_sigint_with_nothing_to_wait_for():
    """With no command arriving the executor's wait set stays idle; SIGTERM / SIGINT must still end
    the process at once (the main thread handles them, not the waiting executor)."""
    import signal
    import subprocess
    import sys
    env = {**os.environ, 'ROS_DOMAIN_ID': '66', 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
    for signum in (signal.SIGTERM, signal.SIGINT):
        command = [sys.executable, '-m', 'lewm_training.sim_node', '--ros-args', '-p', 'image_size:=32',
                   '-r', f'__ns:={NS}_{signum}']
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        try:
            for line in process.stdout:
                if 'task tworoom' in line:
                    break
            time.sleep(0.5)
            process.send_signal(signum)
            assert process.wait(timeout=10) == 0, f'signal {signum}'
        finally:
            process.kill()

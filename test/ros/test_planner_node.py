"""planner_node over real rclpy topics: rate, bounds, watchdog, enable/e-stop, lifecycle stops,
encodings, malformed images, parameter checks. One tiny random compact model, short runs."""
import os
import sys

os.environ['ROS_DOMAIN_ID'] = '41'
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'

import threading  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rclpy  # noqa: E402  (a dependency: installed by scripts/setup_env.sh)

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import TwistStamped  # noqa: E402
from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from std_msgs.msg import Bool, Float32, Float64MultiArray  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from lewm_ros.ros.planner_node import PlannerNode  # noqa: E402
from lewm_ros.control.realtime import GIL_SWITCH_INTERVAL_S  # noqa: E402
from lewm_ros.ros.spinning import spin  # noqa: E402

RATE_HZ = 20.0
PERIOD = 1.0 / RATE_HZ
IMAGE_TIMEOUT = 0.2
HIGH = [0.3, 0.2]


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory, compact_model_writer):
    return compact_model_writer(tmp_path_factory.mktemp('model'))


def overrides(directory, **extra):
    values = {'model_dir': str(directory), 'planner.num_samples': 16, 'planner.num_elites': 4, 'planner.iterations': 2,
              'planner.horizon': 2, 'control_rate': RATE_HZ, 'image_timeout': IMAGE_TIMEOUT, 'plan_timeout': 1.5,
              'cpu_threads': 1,  # 2-core CI: inference threads must not starve the control timer and the harness
              'action_high': HIGH, 'goal_image_path': str(directory / 'goal.png'), **extra}
    return [Parameter(k, value=v) for k, v in values.items()]


class Harness(Node):
    """Camera publisher thread, command recorder, enable/e-stop publishers."""

    def __init__(self, node_name: str) -> None:
        super().__init__('harness')
        self.image_pub = self.create_publisher(Image, 'image', qos_profile_sensor_data)
        self.enable_pub = self.create_publisher(Bool, f'{node_name}/enable', 10)
        self.estop_pub = self.create_publisher(Bool, f'{node_name}/estop', 10)
        self.commands: list[tuple[float, np.ndarray]] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.planned: list[Float64MultiArray] = []
        self.create_subscription(TwistStamped, 'cmd', self._on_cmd, 50)
        self.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics.append, 10)
        self.create_subscription(Float64MultiArray, f'{node_name}/planned_actions', self.planned.append, 10)
        self.reset_estop = self.create_client(Trigger, f'{node_name}/reset_estop')
        self.camera_on = threading.Event()
        self.last_image_time = 0.0
        self._frame = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
        self._running = True
        self._thread = threading.Thread(target=self._camera, daemon=True)
        self._thread.start()

    def _on_cmd(self, msg: TwistStamped) -> None:
        self.commands.append((time.monotonic(), np.array([msg.twist.linear.x, msg.twist.angular.z])))

    def _camera(self) -> None:
        while self._running:
            if self.camera_on.is_set():
                self.image_pub.publish(Image(height=48, width=64, encoding='rgb8', step=64 * 3,
                                             data=self._frame.tobytes()))
                self.last_image_time = time.monotonic()
            time.sleep(1.0 / 30.0)

    def close(self) -> None:
        self._running = False
        self._thread.join()

    def since(self, t0: float) -> list[tuple[float, np.ndarray]]:
        return [c for c in list(self.commands) if c[0] >= t0]


def wait_for(predicate, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def moving(harness, within_s: float) -> bool:
    """Non-zero commands arrive within within_s."""
    t0 = time.monotonic()
    return wait_for(lambda: any(np.abs(c).max() > 1e-6 for _, c in harness.since(t0)), within_s)


@pytest.fixture(scope='module')
def running(model_dir):
    rclpy.init()
    node = PlannerNode(parameter_overrides=overrides(model_dir))
    harness = Harness(node.get_name())
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    # The harness stands in for other processes (camera, robot base): its own executor, so the
    # measurement does not queue behind the node's callbacks.
    harness_executor = SingleThreadedExecutor()
    harness_executor.add_node(harness)
    for spun in (executor, harness_executor):
        threading.Thread(target=spin, args=(spun,), daemon=True).start()
    harness.camera_on.set()
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert moving(harness, 20.0), 'no non-zero command after activation'
    yield node, harness, executor
    harness.close()
    executor.shutdown()
    harness_executor.shutdown()
    node.destroy_node()
    harness.destroy_node()
    rclpy.try_shutdown()


def test_commands_bounded_at_control_rate_with_plans_and_diagnostics(running):
    node, harness, _ = running
    t0 = time.monotonic()
    time.sleep(2.0)
    stamps = np.array([t for t, _ in harness.since(t0)])
    values = np.stack([c for _, c in harness.since(t0)])
    intervals = np.diff(stamps)
    rate, jitter = 1.0 / intervals.mean(), intervals.std()
    print(f'\ncontrol: {rate:.2f} Hz achieved (target {RATE_HZ}), jitter (std of period) {jitter * 1e3:.2f} ms, '
          f'max period {intervals.max() * 1e3:.1f} ms over {len(stamps)} commands')
    assert abs(rate - RATE_HZ) / RATE_HZ < 0.1
    assert intervals.max() < 4 * PERIOD
    assert sys.getswitchinterval() <= GIL_SWITCH_INTERVAL_S  # the planner thread cannot hold the GIL for long
    assert (values <= np.array(HIGH) + 1e-9).all() and (values >= -1.0 - 1e-9).all()
    assert harness.planned and [d.size for d in harness.planned[-1].layout.dim] == [2, 5, 2]
    assert wait_for(lambda: harness.diagnostics, 2.0)
    keys = {kv.key: kv.value for kv in harness.diagnostics[-1].status[0].values}
    print(f"diagnostics: plan latency p50 {keys['plan_latency_p50_ms']} ms, p99 {keys['plan_latency_p99_ms']} ms, "
          f"planning {keys['planning_rate_hz']} Hz, control {keys['control_rate_hz']} Hz")
    assert {'plan_latency_p50_ms', 'plan_latency_p99_ms', 'planning_rate_hz', 'control_rate_hz', 'image_age_s',
            'last_cost', 'backend', 'model', 'safety_state', 'boundary_frames_late',
            'boundary_frames_waited'} <= set(keys)


def test_watchdog_stops_when_camera_stops_and_resumes(running):
    node, harness, _ = running
    harness.camera_on.clear()
    time.sleep(IMAGE_TIMEOUT + 4 * PERIOD)
    last_image = harness.last_image_time
    after = harness.since(last_image + IMAGE_TIMEOUT + 2 * PERIOD)
    assert after and all(not c.any() for _, c in after)
    first_zero = next(t for t, c in harness.since(last_image) if not c.any())
    print(f'\nwatchdog: first zero command {(first_zero - last_image) * 1e3:.0f} ms after the last image '
          f'(image_timeout {IMAGE_TIMEOUT * 1e3:.0f} ms + control period {PERIOD * 1e3:.0f} ms)')
    assert first_zero - last_image <= IMAGE_TIMEOUT + 2 * PERIOD
    assert node._safety.state.value == 'stale_image'
    harness.camera_on.set()
    assert moving(harness, 10.0)


def test_enable_and_estop_latch(running):
    node, harness, _ = running
    harness.enable_pub.publish(Bool(data=False))
    time.sleep(3 * PERIOD)
    t0 = time.monotonic()
    time.sleep(4 * PERIOD)
    assert all(not c.any() for _, c in harness.since(t0)) and node._safety.state.value == 'disabled'
    harness.enable_pub.publish(Bool(data=True))
    assert moving(harness, 10.0)
    harness.estop_pub.publish(Bool(data=True))
    time.sleep(3 * PERIOD)
    harness.estop_pub.publish(Bool(data=False))  # does not release the latch
    t0 = time.monotonic()
    time.sleep(6 * PERIOD)
    assert all(not c.any() for _, c in harness.since(t0)) and node._safety.state.value == 'estop'
    assert harness.reset_estop.wait_for_service(5.0)
    future = harness.reset_estop.call_async(Trigger.Request())
    assert wait_for(future.done, 5.0) and future.result().success
    assert moving(harness, 10.0)


def test_parameter_changes_static_rejected_dynamic_applied(running):
    node, _, _ = running
    result = node.set_parameters([Parameter('backend', value='onnxruntime')])[0]
    assert not result.successful and 'static' in result.reason
    result = node.set_parameters([Parameter('rate_limit', value=[1.0])])[0]
    assert not result.successful and 'rate_limit' in result.reason
    assert node.set_parameters([Parameter('rate_limit', value=[5.0, 5.0])])[0].successful
    assert node._safety.config.rate_limit == (5.0, 5.0)


def raw_messages():
    rgb = np.random.default_rng(2).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    gray = rgb[..., 0]
    arrays = {'rgb8': rgb, 'bgr8': rgb, 'rgba8': np.dstack([rgb, gray]), 'bgra8': np.dstack([rgb, gray]),
              'mono8': gray, 'mono16': gray.astype('<u2'), '16UC1': gray.astype('<u2'),
              '32FC1': gray.astype('<f4'), 'bayer_rggb8': gray, 'bayer_bggr8': gray, 'bayer_gbrg8': gray,
              'bayer_grbg8': gray, 'yuv422': rgb[..., :2].copy(), 'yuv422_yuy2': rgb[..., :2].copy()}
    for encoding, array in arrays.items():
        data = np.ascontiguousarray(array)
        yield Image(height=48, width=64, encoding=encoding, step=data.strides[0], data=data.tobytes())


def test_every_encoding_accepted_and_malformed_dropped_with_reason(running, capfd):
    node, harness, _ = running
    harness.camera_on.clear()
    time.sleep(0.1)
    for msg in raw_messages():
        received, dropped = node.stats.images_received, node.stats.images_dropped
        harness.image_pub.publish(msg)
        assert wait_for(lambda before=received: node.stats.images_received > before, 2.0), msg.encoding
        assert node.stats.images_dropped == dropped, f'{msg.encoding}: {node.stats.last_drop_reason}'
    bad = Image(height=48, width=64, encoding='rgb8', step=100, data=bytes(100 * 48))
    dropped = node.stats.images_dropped
    harness.image_pub.publish(bad)
    assert wait_for(lambda: node.stats.images_dropped > dropped, 2.0)
    assert 'step 100' in node.stats.last_drop_reason
    harness.camera_on.set()
    assert wait_for(lambda: 'dropping camera image: step 100' in capfd.readouterr().err, 2.0)


def test_zero_command_on_deactivate_and_shutdown(running):
    node, harness, _ = running
    assert moving(harness, 10.0)
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    time.sleep(3 * PERIOD)
    assert not harness.commands[-1][1].any()
    count = len(harness.commands)
    time.sleep(3 * PERIOD)
    assert len(harness.commands) == count, 'commands published while inactive'
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert moving(harness, 10.0)
    assert node.trigger_shutdown() == TransitionCallbackReturn.SUCCESS
    time.sleep(3 * PERIOD)
    assert not harness.commands[-1][1].any()


def test_compressed_camera_goal_from_camera_and_outputs_silent_while_inactive(model_dir):
    """A second node on compressed images (read from image/compressed, image_transport's naming);
    the goal comes from ~/set_goal_from_camera; command and plan outputs are silent while the node
    is inactive (before activation and after deactivation, bar the zero command), diagnostics not."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = PlannerNode(node_name='compressed_planner', context=context,
                       parameter_overrides=overrides(model_dir, image_type='compressed', goal_image_path=''))
    client_node = Node('client', context=context)
    pub = client_node.create_publisher(CompressedImage, 'image/compressed', qos_profile_sensor_data)
    client = client_node.create_client(Trigger, 'compressed_planner/set_goal_from_camera')
    outputs: list[tuple[float, str]] = []
    for kind, topic in ((TwistStamped, 'cmd'), (Float32, 'compressed_planner/plan_cost'),
                        (Float64MultiArray, 'compressed_planner/planned_actions'), (DiagnosticArray, '/diagnostics')):
        client_node.create_subscription(kind, topic, lambda _m, t=topic: outputs.append((time.monotonic(), t)), 10)
    executor = MultiThreadedExecutor(num_threads=3, context=context)
    executor.add_node(node)
    executor.add_node(client_node)
    spinner = threading.Thread(target=spin, args=(executor,), daemon=True)
    spinner.start()
    ok, buf = cv2.imencode('.jpg', np.full((48, 64, 3), 90, np.uint8))
    frame = CompressedImage(format='jpeg', data=buf.tobytes())
    camera_on = threading.Event()

    def camera() -> None:
        while camera_on.wait(5.0) and context.ok():
            pub.publish(frame)
            time.sleep(1.0 / 30.0)
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert client.wait_for_service(5.0)
        future = client.call_async(Trigger.Request())
        assert wait_for(future.done, 5.0) and not future.result().success  # no image yet
        camera_on.set()
        threading.Thread(target=camera, daemon=True).start()
        assert wait_for(lambda: node.stats.images_received > 0, 3.0)
        assert node.stats.images_dropped == 0
        future = client.call_async(Trigger.Request())
        assert wait_for(future.done, 10.0) and future.result().success, future.result().message
        assert node._planner.has_goal
        silent = {'cmd', 'compressed_planner/plan_cost', 'compressed_planner/planned_actions'}
        time.sleep(1.5)
        assert not [t for _, t in outputs if t in silent], 'outputs published while inactive'
        assert any(t == '/diagnostics' for _, t in outputs), 'diagnostics report an inactive node too'
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert wait_for(lambda: {t for _, t in outputs} >= silent, 20.0), 'no plan or command while active'
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        time.sleep(1.0)  # in flight: the zero command of the deactivation (published before it returned)
        after = time.monotonic()
        time.sleep(1.5)
        assert not [t for stamp, t in outputs if stamp > after and t in silent], 'outputs after deactivation'
    finally:
        camera_on.clear()
        executor.shutdown()
        node.destroy_node()
        client_node.destroy_node()
        rclpy.try_shutdown(context=context)


@pytest.mark.parametrize('extra, message', [
    ({'control_rate': -1.0}, 'control_rate'),
    ({'command_fields': ['linear.x']}, 'command_fields'),
    ({'backend': 'tflite'}, 'backend'),
])
def test_bad_parameters_rejected_at_configure(model_dir, extra, message, capfd):
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = PlannerNode(node_name='bad_planner', context=context, parameter_overrides=overrides(model_dir, **extra))
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert node._state_machine.current_state[1] == 'unconfigured'
        assert message in capfd.readouterr().err
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_corrupt_model_fails_at_configure_with_its_path(model_dir, tmp_path, capfd):
    corrupt = tmp_path / 'corrupt'
    corrupt.mkdir()
    for name in ('config.json', 'lewm_meta.json'):
        (corrupt / name).write_bytes((model_dir / name).read_bytes())
    (corrupt / 'weights.pt').write_bytes(b'not a checkpoint')
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = PlannerNode(node_name='corrupt_planner', context=context,
                           parameter_overrides=overrides(model_dir, model_dir=str(corrupt)))
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert str(corrupt) in capfd.readouterr().err
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)

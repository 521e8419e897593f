"""The demo's observer: a plain rclpy node beside the runner's nodes that drives the episodes
(enable, reset, fault services) and records what the robot and the planner do
(:class:`~lewm_training.demo_report.EpisodeRecord`), and one demo episode (:func:`run_episode`)."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import numpy as np

from lewm_training.demo_faults import FAULT_RGB, STOP_RGB, STOP_WINDOW, mark
from lewm_training.demo_report import EpisodeRecord


def command_message(command_type: str) -> tuple[type, Callable[[object], list[float]]]:
    """(message class, message -> its numeric values) of the command sim_node reads for its
    ``command_type`` (twist / twist_stamped: the six Twist fields; float64_multi_array: data)."""
    from geometry_msgs.msg import Twist, TwistStamped
    from std_msgs.msg import Float64MultiArray

    def twist_values(twist) -> list[float]:
        return [float(getattr(getattr(twist, part), axis)) for part in ('linear', 'angular') for axis in 'xyz']
    kinds = {'twist': (Twist, twist_values), 'twist_stamped': (TwistStamped, lambda msg: twist_values(msg.twist)),
             'float64_multi_array': (Float64MultiArray, lambda msg: [float(v) for v in msg.data])}
    if command_type not in kinds:
        raise ValueError(f'command_type {command_type!r} is not one sim_node reads: {list(kinds)}')
    return kinds[command_type]


class DemoObserver:
    """A plain rclpy node beside the runner's nodes: episode control and recording. It hears the
    commands on ``cmd_vel`` as the message of sim_node's ``command_type`` (the runner remaps the
    planner's ``cmd`` and sim_node's ``cmd_vel`` / ``command`` there)."""

    def __init__(self, context, keep_frames: bool, command_type: str = 'twist_stamped') -> None:
        from rclpy.node import Node
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import Image
        from std_msgs.msg import Bool, Float32, String
        from std_srvs.srv import Trigger
        self.node = Node('lewm_demo', context=context)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.lock = threading.Lock()
        self.keep_frames = keep_frames
        self.status: dict | None = None
        self.goal: np.ndarray | None = None
        self.frame: np.ndarray | None = None
        self.recording: EpisodeRecord | None = None
        self.frames: list[np.ndarray] = []
        self.diagnostics: dict[str, str] = {}
        self.start_step = 0
        self.border: tuple[int, int, int] | None = None  # GIF mark: fault injected / stopped
        self._clients: dict = {}
        self.enable_pub = self.node.create_publisher(Bool, '/planner_node/enable', latched)
        self.reset_client = self.node.create_client(Trigger, '/sim_node/reset')
        self.node.create_subscription(String, '/sim_node/episode', self._on_status, 50)
        self.node.create_subscription(Image, '/camera/image_raw', self._on_image, 10)
        self.node.create_subscription(Image, '/sim_node/goal_image', self._on_goal, latched)
        self.node.create_subscription(Float32, '/planner_node/plan_cost', self._on_cost, 50)
        command_class, self._command_values = command_message(command_type)
        self.node.create_subscription(command_class, 'cmd_vel', self._on_cmd, 50)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.node.create_subscription(Float32, '/planner_node/surprise', self._on_surprise, 50)
        self._bool = Bool

    @staticmethod
    def _pixels(msg) -> np.ndarray:
        return np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3).copy()

    def _on_status(self, msg) -> None:
        with self.lock:
            self.status = json.loads(msg.data)
            if self.recording is not None:
                self.recording.distances.append((self.status['sim_time'], self.status['distance']))

    def _on_image(self, msg) -> None:
        with self.lock:
            self.frame = self._pixels(msg)
            if self.recording is not None and self.keep_frames and self.goal is not None:
                frame = np.concatenate([self.frame, self.goal], axis=1)
                self.frames.append(frame if self.border is None else mark(frame, self.border))

    def _on_goal(self, msg) -> None:
        with self.lock:
            self.goal = self._pixels(msg)

    def _on_cost(self, msg) -> None:
        with self.lock:
            if self.recording is not None and self.status is not None:
                self.recording.costs.append((self.status['sim_time'], float(msg.data)))

    def _on_cmd(self, msg) -> None:
        moving = any(value != 0.0 for value in self._command_values(msg))
        with self.lock:
            if self.recording is not None:
                self.recording.command_times.append(time.monotonic())
                if self.status is not None:
                    self.recording.commands.append((self.status['step'] - self.start_step, moving))
                if self.recording.fault_step is not None:
                    self.border = FAULT_RGB if moving else STOP_RGB

    def _on_surprise(self, msg) -> None:
        with self.lock:
            if self.recording is not None and self.status is not None:
                self.recording.surprise.append((self.status['step'] - self.start_step, float(msg.data)))

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if 'LeWM planner' in status.name:
                with self.lock:
                    self.diagnostics = {kv.key: kv.value for kv in status.values}

    def set_enabled(self, enabled: bool) -> None:
        self.enable_pub.publish(self._bool(data=enabled))

    def reset_episode(self, timeout_s: float = 10.0) -> str:
        return self.call('/sim_node/reset', timeout_s)

    def call(self, service: str, timeout_s: float = 10.0) -> str:
        """Call a std_srvs/Trigger service; RuntimeError when it is missing, slow or fails."""
        from std_srvs.srv import Trigger
        client = self.reset_client if service == '/sim_node/reset' else \
            self._clients.setdefault(service, self.node.create_client(Trigger, service))
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise RuntimeError(f'{service} is not available')
        future = client.call_async(Trigger.Request())
        deadline = time.monotonic() + timeout_s
        while not future.done():
            if time.monotonic() > deadline:
                raise RuntimeError(f'{service} timed out')
            time.sleep(0.01)
        result = future.result()
        if not result.success:
            raise RuntimeError(f'{service} failed: {result.message}')
        return result.message


def run_episode(observer: DemoObserver, index: int, budget: int, settle_s: float, timeout_s: float,
                fault: str = '', fault_after: int = 15) -> EpisodeRecord:
    """``index`` numbers the demo's episodes; the sim numbers its own (it starts one at launch).
    fault: a fault kind injected ``fault_after`` env steps after the robot first moves ('' = none)."""
    # Disable, reset, enable, then watch the sim's status until success or ``budget`` env steps.
    observer.set_enabled(False)
    time.sleep(settle_s)
    with observer.lock:
        observer.goal = None
        previous = observer.status['episode'] if observer.status else None
    observer.reset_episode()
    deadline = time.monotonic() + timeout_s
    while True:  # wait for the new episode's goal image and status
        with observer.lock:
            status = dict(observer.status) if observer.status else None
            ready = observer.goal is not None and status is not None and status['episode'] != previous
        if ready:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f'episode {index}: no goal image / status from sim_node')
        time.sleep(0.01)
    time.sleep(settle_s)  # the planner has the goal (latched topic) before it is enabled
    observer.call('/planner_node/reset_estop')  # release a surprise stop of the previous episode, after the reset
    record = EpisodeRecord(index=index, start_distance=status['distance'], fault=fault)
    with observer.lock:
        start_step = observer.start_step = observer.status['step']
        observer.border = None
        observer.recording = record
    started = time.monotonic()
    observer.set_enabled(True)
    while time.monotonic() - started < timeout_s:
        with observer.lock:
            status = dict(observer.status)
        record.steps = status['step'] - start_step
        record.final_distance = status['distance']
        moved = next((step for step, moving in record.commands if moving), None)  # the planner is running
        if fault and record.fault_step is None and moved is not None and record.steps >= moved + fault_after:
            observer.call(f'/sim_node/fault/{fault}')
            record.fault_step = record.steps
        if status['success'] and record.steps > 0:
            record.success = True
            if not fault:
                break
        if record.steps >= (budget if record.fault_step is None else record.fault_step + STOP_WINDOW):
            break
        time.sleep(0.005)
    observer.set_enabled(False)
    with observer.lock:
        observer.recording = None
    record.wall_s = time.monotonic() - started
    return record

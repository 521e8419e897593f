"""planner_node and a probe node in one process, over real rclpy topics: the rig of the ROS checks.

The probe plays the other processes of a robot: a 30 Hz camera (valid frames, on/off), a command
recorder (arrival time [s, monotonic], command vector) and a /diagnostics reader. The planner
node runs the shipped model (or any model directory) with twist commands whose limits are set
explicitly (``command_low``/``command_high`` = the model's action limits), so every recorded
command can be checked against them. Its topics are discovered from the node itself after
configure, whatever their names.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lewm_training.reliability.common import SHIPPED_MODEL, ros_environment, wait_for

ros_environment()

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import Twist  # noqa: E402
from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from lewm_ros.model.metadata import ModelMetadata  # noqa: E402
from lewm_ros.ros.planner_node import PlannerNode  # noqa: E402
from lewm_ros.ros.spinning import spin  # noqa: E402

TWIST_FIELDS = ('linear.x', 'linear.y', 'linear.z', 'angular.x', 'angular.y', 'angular.z')
CAMERA_HZ = 30.0
FRAME_SHAPE = (96, 128, 3)


@dataclass(frozen=True)
class RigConfig:
    """model_dir: the planner's model; control_rate [Hz], image_timeout [s], plan_timeout [s]:
    the node parameters of the same names; image_type: 'raw' | 'compressed'; domain_id: ROS
    domain (None: ROS_DOMAIN_ID); extra: further planner_node parameter overrides."""
    model_dir: Path = SHIPPED_MODEL
    control_rate: float = 10.0
    image_timeout: float = 0.5
    plan_timeout: float = 2.0
    image_type: str = 'raw'
    domain_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def camera_frame(seed: int = 1) -> np.ndarray:
    """A (96, 128, 3) uint8 RGB frame: smooth colour blobs (a plausible camera picture)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return cv2.resize(small, FRAME_SHAPE[1::-1], interpolation=cv2.INTER_CUBIC)


def image_message(rgb: np.ndarray, compressed: bool):
    if compressed:
        ok, buf = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        return CompressedImage(format='jpeg', data=buf.tobytes())
    return Image(height=rgb.shape[0], width=rgb.shape[1], encoding='rgb8', step=rgb.shape[1] * 3,
                 data=rgb.tobytes())


class Rig:
    """See the module docstring. start() -> configure + activate; close() tears everything down."""

    def __init__(self, config: RigConfig, workdir: Path) -> None:
        self.config = config
        self.metadata = ModelMetadata.load(config.model_dir)
        self.low = np.asarray(self.metadata.action_low, dtype=np.float64)
        self.high = np.asarray(self.metadata.action_high, dtype=np.float64)
        goal_path = Path(workdir) / 'goal.png'
        cv2.imwrite(str(goal_path), cv2.cvtColor(camera_frame(seed=7), cv2.COLOR_RGB2BGR))
        self.name = f'rel_planner_{os.getpid()}'
        self.fields = TWIST_FIELDS[:self.metadata.action_dim]
        self.parameters = {
            'model_dir': str(config.model_dir), 'cpu_threads': 1, 'control_rate': config.control_rate,
            'image_timeout': config.image_timeout, 'plan_timeout': config.plan_timeout,
            'image_type': config.image_type, 'goal_image_path': str(goal_path), 'diagnostics_rate': 10.0,
            'command_type': 'twist', 'command_fields': list(self.fields),
            'command_low': self.low.tolist(), 'command_high': self.high.tolist(),
            # The rig's camera is one still frame while the node commands motion: a frozen camera,
            # which the surprise monitor (tested on its own) would stop; these checks are of the rest.
            'surprise.action': 'none', **config.extra}
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=config.domain_id)
        # A namespace of its own: two rigs on one machine and domain never share topics.
        self.node = PlannerNode(node_name=self.name, namespace=f'/{self.name}', context=self.context,
                                parameter_overrides=[Parameter(k, value=v) for k, v in self.parameters.items()])
        self.probe = Node(f'rel_probe_{os.getpid()}', context=self.context)
        self.commands: list[tuple[float, np.ndarray]] = []
        self.diagnostics: dict[str, str] = {}
        self.diagnostics_stamp = 0.0
        self.crashes: list[str] = []
        self.camera_on = threading.Event()
        self.last_frame_s = 0.0
        self.frames_sent = 0
        self._frame = camera_frame()
        self._probe_entities: list = []
        self._camera_pub = None
        self._running = True
        self._executors = [MultiThreadedExecutor(num_threads=4, context=self.context),
                           SingleThreadedExecutor(context=self.context)]
        self._executors[0].add_node(self.node)
        self._executors[1].add_node(self.probe)
        self._threads = [threading.Thread(target=self._spin, args=(e,), daemon=True, name=f'spin{i}')
                         for i, e in enumerate(self._executors)]
        self._threads.append(threading.Thread(target=self._camera, daemon=True, name='camera'))
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------ lifecycle
    def start(self) -> bool:
        """Configure and activate the node, then wire the probe to its topics."""
        if self.node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return False
        self._wire()
        return self.node.trigger_activate() == TransitionCallbackReturn.SUCCESS

    def restart(self, **changes: Any) -> bool:
        """Deactivate, clean up, change (static) parameters, and start again."""
        self.node.trigger_deactivate()
        self.node.trigger_cleanup()
        for entity in self._probe_entities:
            (self.probe.destroy_publisher if hasattr(entity, 'publish') else self.probe.destroy_subscription)(entity)
        self._probe_entities, self._camera_pub = [], None
        results = self.node.set_parameters([Parameter(k, value=v) for k, v in changes.items()])
        if not all(r.successful for r in results):
            return False
        self.parameters.update(changes)
        self.diagnostics = {}
        return self.start()

    def close(self) -> None:
        self._running = False
        self.camera_on.clear()
        self.node.release()
        for executor in self._executors:
            executor.shutdown()
        self.node.destroy_node()
        self.probe.destroy_node()
        rclpy.try_shutdown(context=self.context)

    # ------------------------------------------------------------ topics
    @property
    def compressed(self) -> bool:
        return self.parameters['image_type'] == 'compressed'

    def _wire(self) -> None:
        msg_type = CompressedImage if self.compressed else Image
        camera = [s.topic_name for s in self.node.subscriptions
                  if s.msg_type is msg_type and not s.topic_name.endswith('goal_image')]
        cmd = [p.topic_name for p in self.node.publishers if p.msg_type is Twist]
        if len(camera) != 1 or len(cmd) != 1:
            raise RuntimeError(f'cannot tell the camera / command topics of {self.name}: {camera} / {cmd}')
        self.camera_topic, self.cmd_topic = camera[0], cmd[0]
        self._camera_pub = self.probe.create_publisher(msg_type, self.camera_topic, qos_profile_sensor_data)
        self._probe_entities = [
            self._camera_pub,
            self.probe.create_subscription(Twist, self.cmd_topic, self._on_cmd,
                                           QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)),
            self.probe.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)]

    def camera_publisher(self):
        """A second publisher on the camera topic (for messages other than the camera's)."""
        msg_type = CompressedImage if self.compressed else Image
        publisher = self.probe.create_publisher(msg_type, self.camera_topic, qos_profile_sensor_data)
        self._probe_entities.append(publisher)
        return publisher

    def drop_publisher(self, publisher) -> None:
        self._probe_entities.remove(publisher)
        self.probe.destroy_publisher(publisher)

    def _on_cmd(self, msg: Twist) -> None:
        values = [getattr(getattr(msg, part), axis) for part, axis in (f.split('.') for f in self.fields)]
        self.commands.append((time.monotonic(), np.array(values, dtype=np.float64)))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith(f'{self.name}:'):
                self.diagnostics = {kv.key: kv.value for kv in status.values}
                self.diagnostics_stamp = time.monotonic()

    def _camera(self) -> None:
        while self._running:
            publisher = self._camera_pub
            if self.camera_on.is_set() and publisher is not None:
                try:
                    publisher.publish(image_message(self._frame, self.compressed))
                    self.last_frame_s = time.monotonic()
                    self.frames_sent += 1
                except Exception:  # the publisher went away during a restart
                    pass
            time.sleep(1.0 / CAMERA_HZ)

    def _spin(self, executor) -> None:
        try:
            spin(executor)
        except BaseException as exc:  # a callback that raised ends the executor: that is a crash
            self.crashes.append(f'{type(exc).__name__}: {exc}')

    # ------------------------------------------------------------ observations
    def alive(self) -> bool:
        """Both executors still spin (no callback raised out of them)."""
        return not self.crashes and all(t.is_alive() for t in self._threads[:2])

    def since(self, t0: float) -> list[tuple[float, np.ndarray]]:
        return [c for c in list(self.commands) if c[0] >= t0]

    def moving(self, within_s: float) -> bool:
        """A non-zero command arrives within within_s [s]."""
        t0 = time.monotonic()
        return wait_for(lambda: any(np.abs(c).max() > 1e-9 for _, c in self.since(t0)), within_s)

    def out_of_limits(self, commands: list[tuple[float, np.ndarray]]) -> int:
        """How many commands are non-finite or outside [command_low, command_high]."""
        return sum(1 for _, c in commands if not (np.all(np.isfinite(c)) and np.all(c >= self.low - 1e-9)
                                                  and np.all(c <= self.high + 1e-9)))

    def fresh_diagnostics(self, timeout_s: float = 3.0) -> dict[str, str]:
        """The first /diagnostics status of this node published after now."""
        t0 = time.monotonic()
        wait_for(lambda: self.diagnostics_stamp > t0 + 0.15, timeout_s)
        return dict(self.diagnostics)

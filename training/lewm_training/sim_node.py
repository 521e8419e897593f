"""sim_node: a lewm_training MuJoCo task behind ROS topics, so the planner drives it like a robot.

Thin ROS shell over :mod:`lewm_training.sim_robot` (episodes, stepping and pacing live there).

Topics (relative names, remap them):
  pub ``camera/image_raw`` (sensor_msgs/Image rgb8, S x S, stamped with sim time),
      ``camera/camera_info`` (sensor_msgs/CameraInfo, same stamp),
      ``/clock`` (rosgraph_msgs/Clock, when publish_clock),
      ``~/goal_image`` (sensor_msgs/Image rgb8, transient-local: a late subscriber gets the current goal),
      ``~/state`` (std_msgs/Float64MultiArray: the task state, e.g. tworoom [x, y, vx, vy] [m, m/s]),
      ``~/episode`` (std_msgs/String JSON: episode, step, sim_time, distance, success, reached);
  sub ``cmd_vel`` (geometry_msgs/TwistStamped or Twist; command_type 'twist_stamped' / 'twist':
      action[i] = twist_fields[i]) or
      ``command`` (std_msgs/Float64MultiArray; command_type 'float64_multi_array': action = data),
      in raw action units (tworoom: fraction of max speed in [-1, 1]).
Services: ``~/reset`` (std_srvs/Trigger): next seeded start/goal episode, publishes its goal image;
``~/fault/<kind>`` (std_srvs/Trigger, one per kind of :data:`lewm_training.faults.FAULT_KINDS`:
teleport, push, hold, freeze, black, shift, rotate, recolor, floor): inject that fault at the next
env step (lasting ones hold until ``~/clear_faults`` or the next episode).
Every parameter (see SIM_PARAMS) is static: read once at construction.
"""
from __future__ import annotations

import functools
import logging

import numpy as np
from geometry_msgs.msg import Twist, TwistStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger

from lewm_ros.ros.spinning import run_node
from lewm_training.faults import FAULT_KINDS
from lewm_training.sim_loop import SimLoop
from lewm_training.sim_robot import SIM_PARAMS, Episode, Frame, SimConfig, SimRobot

LOG = logging.getLogger(__name__)

CAMERA_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
"""Reliable (matches reliable and sensor-data best-effort subscribers), volatile."""
GOAL_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
"""Latched: subscribers with transient-local durability get the current goal when they join."""


def _stamp(sim_time_s: float):
    return Time(nanoseconds=int(round(sim_time_s * 1e9))).to_msg()


def image_msg(pixels: np.ndarray, sim_time_s: float, frame_id: str) -> Image:
    """(S, S, 3) uint8 RGB -> sensor_msgs/Image rgb8 stamped with sim time [s]."""
    msg = Image()
    msg.header.stamp = _stamp(sim_time_s)
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.encoding = 'rgb8'
    msg.is_bigendian = 0
    msg.step = 3 * msg.width
    msg.data = np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()
    return msg


class SimNode(Node):
    """See the module docstring. ``loop`` is the stepping thread (``loop.steps``, ``loop.error``)."""

    def __init__(self, node_name: str = 'sim_node', **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        for spec in SIM_PARAMS:
            unit = f' [{spec.unit}]' if spec.unit else ''
            self.declare_parameter(spec.name, spec.default,
                                   ParameterDescriptor(description=spec.description + unit, read_only=True))
        self.config = SimConfig.from_values(
            {spec.name: self.get_parameter(spec.name).value for spec in SIM_PARAMS})
        self.robot = SimRobot(self.config)
        self._camera_info = self._make_camera_info()
        self._image_pub = self.create_publisher(Image, 'camera/image_raw', CAMERA_QOS)
        self._info_pub = self.create_publisher(CameraInfo, 'camera/camera_info', CAMERA_QOS)
        self._clock_pub = self.create_publisher(Clock, '/clock', 10) if self.config.publish_clock else None
        self._goal_pub = self.create_publisher(Image, '~/goal_image', GOAL_QOS)
        self._state_pub = self.create_publisher(Float64MultiArray, '~/state', 10)
        self._episode_pub = self.create_publisher(String, '~/episode', 10)
        lockstep = self.config.mode == 'lockstep'
        command_qos = QoSProfile(depth=100 if lockstep else 1, reliability=ReliabilityPolicy.RELIABLE)
        if self.config.command_type in ('twist', 'twist_stamped'):
            if len(self.config.twist_fields) != self.robot.action_dim:
                raise ValueError(f'parameter twist_fields={list(self.config.twist_fields)} needs one field per '
                                 f'action dim of task {self.config.task} ({self.robot.action_dim})')
            if self.config.command_type == 'twist':
                self.create_subscription(Twist, 'cmd_vel', self._on_twist, command_qos)
            else:
                self.create_subscription(TwistStamped, 'cmd_vel', lambda msg: self._on_twist(msg.twist), command_qos)
        else:
            self.create_subscription(Float64MultiArray, 'command', self._on_array, command_qos)
        self.create_service(Trigger, '~/reset', self._on_reset)
        for kind in FAULT_KINDS:
            self.create_service(Trigger, f'~/fault/{kind}', functools.partial(self._on_fault, kind))
        self.create_service(Trigger, '~/clear_faults', self._on_clear_faults)
        self.loop = SimLoop(self.robot, self._publish_frame, self._publish_episode)
        self.loop.start()
        self.get_logger().info(
            f'task {self.config.task} ({self.config.image_size} px, dt {self.robot.dt} s), mode {self.config.mode}'
            + ('' if lockstep else f' at {1.0 / self.loop.period_s:.1f} Hz')
            + f', command {self.config.command_type}, clock {"on" if self._clock_pub else "off"}')

    def _make_camera_info(self) -> CameraInfo:
        fx, fy, cx, cy, _orthographic = self.robot.camera_intrinsics()
        info = CameraInfo()
        info.header.frame_id = self.config.frame_id
        info.height = info.width = self.config.image_size
        info.distortion_model = 'plumb_bob'
        info.d = [0.0] * 5
        info.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
        return info

    # ------------------------------------------------------------------ commands
    def _on_twist(self, msg: Twist) -> None:
        action = [getattr(getattr(msg, part), axis)
                  for part, axis in (field.split('.') for field in self.config.twist_fields)]
        self._submit(action)

    def _on_array(self, msg: Float64MultiArray) -> None:
        self._submit(list(msg.data))

    def _submit(self, action: list[float]) -> None:
        try:
            self.loop.submit_command(np.asarray(action, dtype=np.float64))
        except ValueError as exc:
            self.get_logger().warning(f'command ignored: {exc}', throttle_duration_sec=2.0)

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        try:
            episode = self.loop.request_reset()
        except RuntimeError as exc:
            response.success, response.message = False, str(exc)
            return response
        response.success = True
        response.message = (f'episode {episode.index}: start {np.round(episode.start_state, 3).tolist()}, '
                            f'goal {np.round(episode.goal_state, 3).tolist()}')
        self.get_logger().info(response.message)
        return response

    def _on_fault(self, kind: str, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.robot.faults.inject(kind)
        response.success, response.message = True, f'fault {kind}: injected at the next env step'
        self.get_logger().warning(response.message)
        return response

    def _on_clear_faults(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.robot.faults.clear()
        response.success, response.message = True, 'faults cleared (colours stay until the next episode)'
        return response

    # ------------------------------------------------------------------ publishing (sim loop thread)
    def _publish_episode(self, episode: Episode) -> None:
        self._goal_pub.publish(image_msg(episode.goal_pixels, self.robot.sim_time_s, self.config.frame_id))

    def _publish_frame(self, frame: Frame) -> None:
        if not self.context.ok():
            return
        stamp = _stamp(frame.sim_time_s)
        if self._clock_pub is not None:
            self._clock_pub.publish(Clock(clock=stamp))
        self._image_pub.publish(image_msg(frame.pixels, frame.sim_time_s, self.config.frame_id))
        self._camera_info.header.stamp = stamp
        self._info_pub.publish(self._camera_info)
        self._state_pub.publish(Float64MultiArray(data=frame.state.astype(np.float64).tolist()))
        self._episode_pub.publish(String(data=frame.status_json()))

    def destroy_node(self) -> None:
        """Stop the stepping thread (it closes the task) before the publishers go."""
        if getattr(self, 'loop', None) is not None:  # None when construction failed before it started
            self.loop.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Console script ``sim_node`` (``sim_node --ros-args -p mode:=lockstep``).

    SIGINT/SIGTERM stop the stepping thread before the ROS context goes down.
    """
    run_node(SimNode, args, num_threads=1)


if __name__ == '__main__':
    main()

"""Command messages from mapped values, stamped with the node clock: one adapter per command_type (ROS glue)."""
from __future__ import annotations

from typing import Any
from collections.abc import Callable

import numpy as np
from builtin_interfaces.msg import Duration
from builtin_interfaces.msg import Time as TimeMsg
from geometry_msgs.msg import Twist, TwistStamped
from std_msgs.msg import Float64MultiArray, MultiArrayDimension
from rclpy.time import Time
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from lewm_ros.control.command_mapping import CommandMapping


class CommandAdapter:
    """msg_type: the message class to publish; build(raw action (A,), stamp) -> msg."""

    def __init__(self, mapping: CommandMapping) -> None:
        self.mapping = mapping
        builders: dict[str, tuple[type, Callable[[np.ndarray, TimeMsg], Any]]] = {
            'twist': (Twist, self._twist),
            'twist_stamped': (TwistStamped, self._twist_stamped),
            'float64_multi_array': (Float64MultiArray, self._array),
            'joint_trajectory': (JointTrajectory, self._trajectory),
        }
        self.msg_type, self._build = builders[mapping.command_type]

    def build(self, raw_action: np.ndarray, stamp: Time) -> Any:
        """raw_action (A,) [raw units], stamp: the node clock's now() -> a message of msg_type."""
        return self._build(self.mapping.values(raw_action), stamp.to_msg())

    def _twist(self, values: np.ndarray, _stamp: TimeMsg) -> Twist:
        msg = Twist()
        for field, value in zip(self.mapping.fields, values):
            part, axis = field.split('.')
            setattr(getattr(msg, part), axis, float(value))
        return msg

    def _twist_stamped(self, values: np.ndarray, stamp: TimeMsg) -> TwistStamped:
        msg = TwistStamped()
        msg.header.stamp = stamp
        msg.header.frame_id = self.mapping.frame_id
        msg.twist = self._twist(values, stamp)
        return msg

    def _array(self, values: np.ndarray, _stamp: TimeMsg) -> Float64MultiArray:
        msg = Float64MultiArray()
        msg.layout.dim = [MultiArrayDimension(label='action', size=len(values), stride=len(values))]
        msg.data = [float(v) for v in values]
        return msg

    def _trajectory(self, values: np.ndarray, _stamp: TimeMsg) -> JointTrajectory:
        """A zero header stamp means "start now" to joint_trajectory_controller, so a clock skew
        between this computer and the controller's cannot get the command rejected as stale."""
        msg = JointTrajectory()
        msg.header.stamp = TimeMsg()
        msg.header.frame_id = self.mapping.frame_id
        msg.joint_names = list(self.mapping.fields)
        seconds = self.mapping.time_from_start_s
        point = JointTrajectoryPoint(positions=[float(v) for v in values],
                                     time_from_start=Duration(sec=int(seconds),
                                                              nanosec=int(round((seconds % 1.0) * 1e9))))
        msg.points = [point]
        return msg

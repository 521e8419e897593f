"""Recorded command message -> raw action: the inverse of planner_node's command mapping (no ROS).

planner_node publishes ``command = raw_action x command_scales`` into the fields that
``command_type`` / ``command_fields`` name (:mod:`lewm_ros.control.command_mapping`); a recorded
command becomes ``raw_action = command / command_scales`` read from the same fields, so a model
trained on the result plans in the action space the node publishes. Messages are read by
attribute (rosbags messages, rclpy messages).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lewm_ros.control.command_mapping import TWIST_FIELDS

#: Recorded message type (rosbag2 name) -> planner_node's ``command_type``.
COMMAND_MSGTYPES = {
    'geometry_msgs/msg/Twist': 'twist',
    'geometry_msgs/msg/TwistStamped': 'twist_stamped',
    'std_msgs/msg/Float64MultiArray': 'float64_multi_array',
    'trajectory_msgs/msg/JointTrajectory': 'joint_trajectory',
}
DEFAULT_TWIST_FIELDS = ('linear.x', 'angular.z')
"""planner_node's default ``command_fields``."""


class CommandError(ValueError):
    """A command message that cannot become a raw action; str() says why."""


@dataclass(frozen=True)
class CommandInverse:
    """command_type: planner_node's name of the message (COMMAND_MSGTYPES values); fields: per
    action dim a Twist field (twist types) or a joint name (joint_trajectory), () for
    float64_multi_array; scales: (A,) [command unit / raw unit], nonzero."""
    command_type: str
    fields: tuple[str, ...]
    scales: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.command_type not in COMMAND_MSGTYPES.values():
            raise ValueError(f'command_type {self.command_type!r} is not one of {list(COMMAND_MSGTYPES.values())}')
        if not self.scales or not all(np.isfinite(self.scales)) or any(s == 0.0 for s in self.scales):
            raise ValueError(f'command_scales={list(self.scales)} is out of range; allowed: finite nonzero numbers '
                             '(a zero scale cannot be inverted)')
        if self.command_type in ('twist', 'twist_stamped'):
            bad = [f for f in self.fields if f not in TWIST_FIELDS]
            if bad or not self.fields or len(set(self.fields)) != len(self.fields):
                raise ValueError(f'command_fields={list(self.fields)} is out of range; allowed: distinct Twist '
                                 f'fields of {list(TWIST_FIELDS)}')
        if self.command_type == 'joint_trajectory' and (not self.fields or not all(self.fields)):
            raise ValueError(f'command_fields={list(self.fields)}: joint_trajectory needs joint names')
        if self.command_type != 'float64_multi_array' and len(self.fields) != len(self.scales):
            raise ValueError(f'command_scales={list(self.scales)} needs one value per command field '
                             f'{list(self.fields)}')

    @property
    def action_dim(self) -> int:
        return len(self.scales)

    def raw_action(self, msg) -> np.ndarray:
        """(A,) float64 [raw units] of a command message; CommandError for a message that has not
        the mapped fields or holds a non-finite value."""
        values = np.asarray(self._values(msg), dtype=np.float64)
        if values.shape != (self.action_dim,):
            raise CommandError(f'command has {values.size} values, the mapping expects {self.action_dim}')
        if not np.all(np.isfinite(values)):
            raise CommandError(f'command holds a non-finite value {values.tolist()}')
        return values / np.asarray(self.scales, np.float64)

    def _values(self, msg) -> list[float]:
        if self.command_type in ('twist', 'twist_stamped'):
            twist = msg.twist if self.command_type == 'twist_stamped' else msg
            return [float(getattr(getattr(twist, part), axis)) for part, axis in (f.split('.') for f in self.fields)]
        if self.command_type == 'float64_multi_array':
            return [float(v) for v in msg.data]
        if not msg.points:
            raise CommandError('JointTrajectory without points')
        names = list(msg.joint_names)
        positions = msg.points[0].positions
        missing = [f for f in self.fields if f not in names]
        if missing:
            raise CommandError(f'JointTrajectory joint_names {names} lack {missing}')
        if len(positions) != len(names):
            raise CommandError(f'JointTrajectory point has {len(positions)} positions for {len(names)} joints')
        return [float(positions[names.index(f)]) for f in self.fields]


def default_fields(command_type: str, first_msg) -> tuple[str, ...]:
    """command_fields when none are given: planner_node's default Twist fields, every joint of
    the first JointTrajectory, () for float64_multi_array."""
    if command_type in ('twist', 'twist_stamped'):
        return DEFAULT_TWIST_FIELDS
    if command_type == 'joint_trajectory':
        return tuple(str(n) for n in first_msg.joint_names)
    return ()


def action_width(command_type: str, fields: tuple[str, ...], first_msg) -> int:
    """A: len(fields), or the first Float64MultiArray's data length."""
    return len(first_msg.data) if command_type == 'float64_multi_array' else len(fields)

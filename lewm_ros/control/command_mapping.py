"""Raw action (A,) -> command values and where they go (no ROS imports).

command_type picks the message: 'twist' / 'twist_stamped' (geometry_msgs; command_fields name a
field per action dim, e.g. ['linear.x', 'angular.z']), 'float64_multi_array' (std_msgs, for
ros2_control forward command controllers: data[i] = command of action dim i; command_fields
unused) or 'joint_trajectory' (trajectory_msgs; command_fields are joint names, one point of
positions). Each dim is multiplied by command_scales[i] [command unit / raw action unit], then
clipped to [low[i], high[i]] [command units]: whatever reaches the mapping, the values it returns
are finite and within those limits (a non-finite value becomes 0, the stop command).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

COMMAND_TYPES = ('twist', 'twist_stamped', 'float64_multi_array', 'joint_trajectory')
TWIST_FIELDS = tuple(f'{part}.{axis}' for part in ('linear', 'angular') for axis in 'xyz')


@dataclass(frozen=True)
class CommandMapping:
    """command_type: one of COMMAND_TYPES; fields: per action dim, a Twist field or a joint name
    (empty for float64_multi_array); scales: (A,) [command unit / raw unit]; low, high: (A,)
    limits of the command [command units], low <= 0 <= high; frame_id: header frame of stamped
    messages; time_from_start_s: JointTrajectory point time [s]."""
    command_type: str
    fields: tuple[str, ...]
    scales: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    frame_id: str = ''
    time_from_start_s: float = 0.1

    def __post_init__(self) -> None:
        if self.command_type not in COMMAND_TYPES:
            raise ValueError(f'command_type {self.command_type!r} is not one of {list(COMMAND_TYPES)}')
        dims = len(self.scales)
        if not all(np.isfinite(self.scales)):
            raise ValueError(f'command_scales must be finite, got {list(self.scales)}')
        for name in ('low', 'high'):
            if len(getattr(self, name)) != dims:
                raise ValueError(f'command_{name} must have {dims} entries (one per action dim), '
                                 f'got {list(getattr(self, name))}')
        for i, (lo, hi) in enumerate(zip(self.low, self.high)):
            if not (math.isfinite(lo) and math.isfinite(hi) and lo <= 0.0 <= hi):
                raise ValueError(f'command_low[{i}]={lo} / command_high[{i}]={hi}: need finite low <= 0 <= high '
                                 '(0 is the stop command)')
        if self.command_type in ('twist', 'twist_stamped'):
            if len(self.fields) != dims:
                raise ValueError(f'command_fields needs one Twist field per action dim ({dims}), '
                                 f'got {list(self.fields)}')
            bad = [f for f in self.fields if f not in TWIST_FIELDS]
            if bad:
                raise ValueError(f'command_fields {bad} are not Twist fields; allowed: {list(TWIST_FIELDS)}')
            if len(set(self.fields)) != len(self.fields):
                raise ValueError(f'command_fields {list(self.fields)} name a field twice')
        elif self.command_type == 'joint_trajectory':
            if len(self.fields) != dims or not all(self.fields):
                raise ValueError(f'command_fields needs one joint name per action dim ({dims}) for '
                                 f'joint_trajectory, got {list(self.fields)}')
        if self.command_type == 'joint_trajectory' and not self.time_from_start_s > 0.0:
            raise ValueError(f'trajectory_time_from_start must be > 0 [s], got {self.time_from_start_s}')

    def values(self, raw_action: np.ndarray) -> np.ndarray:
        """raw_action (A,) [raw units] -> (A,) float64 [command units], finite, within [low, high]."""
        raw = np.asarray(raw_action, dtype=np.float64)
        if raw.shape != (len(self.scales),):
            raise ValueError(f'action has shape {raw.shape}, mapping expects ({len(self.scales)},)')
        values = raw * np.asarray(self.scales, dtype=np.float64)
        values = np.where(np.isfinite(values), values, 0.0)
        return np.clip(values, self.low, self.high)

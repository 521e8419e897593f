"""ROS messages of planner_node's outputs other than the command (ROS glue)."""
from __future__ import annotations

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.time import Time
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

from lewm_ros.control.diagnostics import DiagnosticsReport

_LEVELS = {'ok': DiagnosticStatus.OK, 'warn': DiagnosticStatus.WARN, 'error': DiagnosticStatus.ERROR}


def planned_actions_message(raw_actions: np.ndarray) -> Float64MultiArray:
    """raw_actions (H, frameskip, A) [raw units] -> Float64MultiArray with dims block, step, action."""
    blocks, steps, dims = raw_actions.shape
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label='block', size=blocks, stride=blocks * steps * dims),
                      MultiArrayDimension(label='step', size=steps, stride=steps * dims),
                      MultiArrayDimension(label='action', size=dims, stride=dims)]
    msg.data = np.asarray(raw_actions, dtype=np.float64).reshape(-1).tolist()
    return msg


def diagnostics_message(report: DiagnosticsReport, name: str, hardware_id: str, stamp: Time) -> DiagnosticArray:
    """One DiagnosticStatus (level, message, key/values of the report) in a DiagnosticArray
    stamped with ``stamp`` (the node clock's now())."""
    status = DiagnosticStatus(level=_LEVELS[report.level], name=name, hardware_id=hardware_id,
                              message=report.message,
                              values=[KeyValue(key=k, value=v) for k, v in report.values.items()])
    msg = DiagnosticArray(status=[status])
    msg.header.stamp = stamp.to_msg()
    return msg

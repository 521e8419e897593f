"""Python ``logging`` of lewm_ros (runtime, planning, control) into a node's ROS logger (ROS glue).

The library code logs with ``logging.getLogger(__name__)``: engine builds, exports, planner-thread
errors. A robot integrator reads the node's console and /rosout, so planner_node forwards every
record of the ``lewm_ros`` logger tree to its rclpy logger (and with it to /rosout) while it lives.
"""
from __future__ import annotations

import logging

from rclpy.impl.rcutils_logger import RcutilsLogger

#: The logger tree forwarded: every module of the robot package logs below it.
ROOT_LOGGER = 'lewm_ros'


class RosLogHandler(logging.Handler):
    """Emits records through an rclpy logger at the matching severity, prefixed with the module."""

    def __init__(self, ros_logger: RcutilsLogger) -> None:
        super().__init__(level=logging.DEBUG)
        self._ros_logger = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = f'[{record.name}] {self.format(record)}'
            if record.levelno >= logging.ERROR:
                self._ros_logger.error(text)
            elif record.levelno >= logging.WARNING:
                self._ros_logger.warning(text)
            elif record.levelno >= logging.INFO:
                self._ros_logger.info(text)
            else:
                self._ros_logger.debug(text)
        except Exception:  # a logging failure must never reach the control loop
            self.handleError(record)


def forward_python_logging(ros_logger: RcutilsLogger) -> RosLogHandler:
    """Attach a RosLogHandler to the lewm_ros logger tree (INFO and above unless the tree was set
    lower); records stop propagating to the root logger so they are not printed twice. Returns
    the handler for stop_forwarding()."""
    handler = RosLogHandler(ros_logger)
    handler.setFormatter(logging.Formatter('%(message)s'))
    tree = logging.getLogger(ROOT_LOGGER)
    if tree.level == logging.NOTSET:
        tree.setLevel(logging.INFO)
    tree.addHandler(handler)
    tree.propagate = False
    return handler


def stop_forwarding(handler: RosLogHandler) -> None:
    """Detach the handler; when none is left the tree propagates to the root logger again."""
    tree = logging.getLogger(ROOT_LOGGER)
    tree.removeHandler(handler)
    if not any(isinstance(h, RosLogHandler) for h in tree.handlers):
        tree.propagate = True

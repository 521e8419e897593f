"""Spin an rclpy executor until it or its context shuts down.

rclpy (seen with 9.1) has a race: when a lifecycle transition running in one executor thread
destroys a publisher or subscription, another executor thread may be adding that entity's QoS
event handler to its wait set, and ``executor.spin()`` raises ``InvalidHandle`` ("cannot use
Destroyable because destruction was requested"). The entity is gone by design (cleanup,
shutdown), so spinning simply resumes with the entities that remain.
"""
from __future__ import annotations

import logging

from rclpy.executors import Executor, ExternalShutdownException

from rclpy._rclpy_pybind11 import InvalidHandle  # rclpy's own exception type (Humble .. Kilted)

LOG = logging.getLogger(__name__)


def spin(executor: Executor) -> None:
    """executor.spin() until the executor or its context shuts down (then return quietly);
    resumes after an entity destroyed mid-wait (see the module docstring). KeyboardInterrupt
    propagates."""
    while executor.context.ok():
        try:
            executor.spin()
            return
        except ExternalShutdownException:
            return
        except InvalidHandle as exc:
            LOG.debug('entity destroyed while spinning (%s); spinning on', exc)

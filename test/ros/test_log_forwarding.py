"""Python logging of the robot package reaches the node's ROS logger and /rosout (real rclpy)."""
import logging
import os
import threading
import time

os.environ['ROS_DOMAIN_ID'] = '74'

import rclpy  # noqa: E402
from rcl_interfaces.msg import Log  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402

from lewm_ros.ros.log_forwarding import ROOT_LOGGER, forward_python_logging, stop_forwarding  # noqa: E402
from lewm_ros.ros.spinning import spin  # noqa: E402


def test_runtime_log_records_reach_rosout_once_then_stop():
    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node('forwarding_node', context=context)
    listener = Node('rosout_listener', context=context)
    received: list[Log] = []
    listener.create_subscription(Log, '/rosout', received.append, 50)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(listener)
    threading.Thread(target=spin, args=(executor,), daemon=True).start()
    handler = forward_python_logging(node.get_logger())
    try:
        assert logging.getLogger(ROOT_LOGGER).propagate is False  # printed once, by ROS
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and not any('engine build 42%' in m.msg for m in received):
            logging.getLogger('lewm_ros.runtime.tensorrt_backend').warning('engine build 42%')
            time.sleep(0.2)
        hits = [m for m in received if 'engine build 42%' in m.msg]
        assert hits and hits[0].name == 'forwarding_node' and hits[0].level == Log.WARN
        assert '[lewm_ros.runtime.tensorrt_backend]' in hits[0].msg
    finally:
        stop_forwarding(handler)
        executor.shutdown()
        node.destroy_node()
        listener.destroy_node()
        rclpy.try_shutdown(context=context)
    assert logging.getLogger(ROOT_LOGGER).propagate is True

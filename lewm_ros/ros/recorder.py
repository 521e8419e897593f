"""lewm-record: record the camera and command topics (+ extra topics) to rosbag2 MCAP without ``ros2 bag``.

    lewm-record --camera-topic /front/image_raw/compressed --command-topic /cmd_vel -o rec --max-bag-size 512
    lewm-run --params config/sim.yaml --sim-only --record -p output:=rec     (beside other nodes)

Thin rclpy shell over :class:`lewm_ros.recording.SplitBagWriter`. Each topic is subscribed once
its type is seen in the ROS graph (checked every 0.5 s, as ``ros2 bag record`` does), with
``raw=True``: the CDR bytes are written as received, stamped with the node clock at reception
(sim time under ``use_sim_time``). Reliable QoS unless a publisher offers only best effort.
SIGINT/SIGTERM stop spinning between two callbacks, then the open bag part is closed: no
truncated file. Read the result with ``lewm-train import-bag OUTPUT ...``.

Parameters (static): camera_topic ('camera/image_raw'), command_topic ('cmd_vel'),
extra_topics ([]), output ('' = lewm_bag_<YYYYmmdd_HHMMSS>), max_bag_size_mb (0 = no split),
distro ('' = $ROS_DISTRO, else kilted: the message definitions written).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
import time
from functools import partial
from pathlib import Path

import rclpy
from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.exceptions import ParameterException, ParameterUninitializedException
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from lewm_ros.recording import BagWriterConfig, SplitBagWriter, running_distro

LOG = logging.getLogger(__name__)
DISCOVERY_PERIOD_S = 0.5


def message_class(msgtype: str) -> type:
    """'sensor_msgs/msg/Image' -> sensor_msgs.msg.Image (ImportError when not installed)."""
    package, kind, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.{kind}'), name)


class RecorderNode(Node):
    """Records its topics until destroyed (destroy_node closes the bag)."""

    def __init__(self, node_name: str = 'lewm_record', **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        string = ParameterDescriptor(type=ParameterType.PARAMETER_STRING, read_only=True)
        self.declare_parameter('camera_topic', 'camera/image_raw', string)
        self.declare_parameter('command_topic', 'cmd_vel', string)
        self.declare_parameter('extra_topics', Parameter.Type.STRING_ARRAY,
                               ParameterDescriptor(type=ParameterType.PARAMETER_STRING_ARRAY, read_only=True))
        self.declare_parameter('output', '', string)
        self.declare_parameter('max_bag_size_mb', 0.0, ParameterDescriptor(
            type=ParameterType.PARAMETER_DOUBLE, read_only=True, description='[MB] per bag part, 0 = no split'))
        self.declare_parameter('distro', '', string)
        value = lambda name: self.get_parameter(name).value  # noqa: E731
        try:
            extra = list(value('extra_topics') or [])
        except ParameterUninitializedException:  # declared by type only: an empty list has no type
            extra = []
        names = [value('camera_topic'), value('command_topic'), *extra]
        self.topics = list(dict.fromkeys(self.resolve_topic_name(name) for name in names if name))
        output = value('output') or time.strftime('lewm_bag_%Y%m%d_%H%M%S')
        size_mb = float(value('max_bag_size_mb'))
        if not 0.0 <= size_mb <= 1e6:
            raise ValueError(f'max_bag_size_mb={size_mb!r} is out of range; allowed: [0, 1e6] MB (0 = no split)')
        self.writer = SplitBagWriter(BagWriterConfig(Path(output).expanduser().resolve(),
                                                     int(size_mb * 1e6), value('distro') or running_distro()))
        self._recorded: dict[str, object] = {}
        self._refused: set[str] = set()
        self._timer = self.create_timer(DISCOVERY_PERIOD_S, self._discover)
        self.get_logger().info(f'recording {self.topics} to {self.writer.config.output}')
        self._discover()

    def _discover(self) -> None:
        if self.writer.closed:
            return
        known = dict(self.get_topic_names_and_types())
        for topic in self.topics:
            if topic in self._recorded or topic in self._refused or topic not in known:
                continue
            msgtype = known[topic][0]
            try:
                cls = message_class(msgtype)
                self.writer.add_topic(topic, msgtype)
            except (ImportError, AttributeError, ValueError) as exc:
                self._refused.add(topic)
                self.get_logger().error(f'{topic}: cannot record {msgtype} ({exc})')
                continue
            best_effort = any(info.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
                              for info in self.get_publishers_info_by_topic(topic))
            qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT if best_effort
                             else ReliabilityPolicy.RELIABLE)
            self._recorded[topic] = self.create_subscription(cls, topic, partial(self._on_message, topic), qos,
                                                                  raw=True)
            self.get_logger().info(f'{topic}: recording {msgtype} ({qos.reliability.name.lower()})')

    def _on_message(self, topic: str, data: bytes) -> None:
        self.writer.write(topic, self.get_clock().now().nanoseconds, data)

    def close(self) -> list[Path]:
        """Close the bag (idempotent) and log what was recorded; the bag parts."""
        if self.writer.closed:
            return list(self.writer.parts)
        parts = self.writer.close()
        self.get_logger().info(f'recorded {self.writer.counts} into {[str(p) for p in parts]}')
        return parts

    def destroy_node(self) -> None:
        self.close()
        super().destroy_node()


def parse_args(argv: list[str]) -> tuple[list[Parameter], list[str]]:
    """Command line -> (parameter overrides, the ROS arguments after --ros-args)."""
    split = argv.index('--ros-args') if '--ros-args' in argv else len(argv)
    parser = argparse.ArgumentParser(prog='lewm-record', description=__doc__.splitlines()[0])
    parser.add_argument('--camera-topic', help='camera topic (Image, or CompressedImage: .../compressed)')
    parser.add_argument('--command-topic', help='command topic (Twist, TwistStamped, Float64MultiArray, ...)')
    parser.add_argument('--topic', action='append', default=[], help='an extra topic to record (repeatable)')
    parser.add_argument('-o', '--output', help='directory of the bag parts (default: lewm_bag_<date>_<time>)')
    parser.add_argument('--max-bag-size', type=float, help='[MB] per bag part (default: no split)')
    parser.add_argument('--distro', help='message definitions of this ROS distro (default: $ROS_DISTRO or kilted)')
    args = parser.parse_args(argv[:split])
    overrides = [Parameter(name, value=value) for name, value in (
        ('camera_topic', args.camera_topic), ('command_topic', args.command_topic), ('output', args.output),
        ('max_bag_size_mb', args.max_bag_size), ('distro', args.distro)) if value is not None]
    if args.topic:
        overrides.append(Parameter('extra_topics', Parameter.Type.STRING_ARRAY, args.topic))
    return overrides, argv[split:]


def main(argv: list[str] | None = None) -> int:
    """Console script ``lewm-record``: records until SIGINT/SIGTERM, then closes the bag; 0 on a clean stop."""
    logging.basicConfig(level=logging.INFO, format='[%(levelname)s] [%(name)s]: %(message)s')
    overrides, ros_args = parse_args(sys.argv[1:] if argv is None else argv)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())  # no exception inside a write: stop between callbacks
    rclpy.init(args=['lewm-record', *ros_args], signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        node = RecorderNode(parameter_overrides=overrides)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    except (ValueError, ParameterException) as exc:  # a bad value or a wrongly typed -p override
        LOG.error('%s', exc)
        return 2
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())

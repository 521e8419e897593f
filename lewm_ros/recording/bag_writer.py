"""Serialized messages -> rosbag2 MCAP bags, split by size, written with ``rosbags`` (no ROS imports).

The recorder node (:mod:`lewm_ros.ros.recorder`) hands over CDR bytes exactly as they came off
the wire; message definitions come from rosbags' type store of the running distro, so
``ros2 bag info`` / ``ros2 bag play`` and ``lewm-train import-bag`` read the result.

Layout: ``output/`` holds one complete bag directory per part, ``output/<name>_0000/``,
``output/<name>_0001/``, ... (each with its ``metadata.yaml`` and ``.mcap``). A new part starts
when the current one holds ``max_bag_size`` bytes of messages, and when the clock goes back
(e.g. a simulator restarted on sim time): a bag's messages stay in time order. A part is
complete once closed; :meth:`SplitBagWriter.close` closes the open one (the recorder calls it on
SIGINT/SIGTERM).
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

LOG = logging.getLogger(__name__)

#: ROS distro name -> (rosbags type store name, rosbag2 metadata version it writes).
DISTROS = {'humble': ('ROS2_HUMBLE', 8), 'jazzy': ('ROS2_JAZZY', 8), 'kilted': ('ROS2_KILTED', 9)}
DEFAULT_DISTRO = 'kilted'
"""The distro of the PyPI ROS wheels; used where ROS_DISTRO is unset."""


def running_distro() -> str:
    """$ROS_DISTRO when it names a distro of DISTROS, else DEFAULT_DISTRO."""
    distro = os.environ.get('ROS_DISTRO', '').lower()
    return distro if distro in DISTROS else DEFAULT_DISTRO


@dataclass(frozen=True)
class BagWriterConfig:
    """output: directory of the bag parts (must not exist, or be empty); max_bag_size: bytes of
    messages per part (0 = one part); distro: a key of DISTROS (message definitions)."""
    output: Path
    max_bag_size: int = 0
    distro: str = DEFAULT_DISTRO

    def __post_init__(self) -> None:
        if isinstance(self.max_bag_size, bool) or not isinstance(self.max_bag_size, int) or self.max_bag_size < 0:
            raise ValueError(f'max_bag_size={self.max_bag_size!r} is out of range; allowed: bytes >= 0 (0 = no split)')
        if self.distro not in DISTROS:
            raise ValueError(f'distro={self.distro!r} is out of range; allowed: one of {sorted(DISTROS)}')
        if self.output.exists() and (not self.output.is_dir() or any(self.output.iterdir())):
            raise ValueError(f'output={str(self.output)!r} exists and is not an empty directory; choose a new one')


class SplitBagWriter:
    """Thread-safe writer of one recording (see the module docstring)."""

    def __init__(self, config: BagWriterConfig) -> None:
        from rosbags.typesys import Stores, get_typestore
        store_name, self._version = DISTROS[config.distro]
        self.config = config
        self._store = get_typestore(getattr(Stores, store_name))
        self._lock = threading.Lock()
        self._topics: dict[str, str] = {}  # topic -> msgtype, in registration order
        self._writer = None
        self._connections: dict[str, object] = {}
        self._part_bytes = 0
        self._last_ns = -1
        self.parts: list[Path] = []
        self.counts: dict[str, int] = {}
        self.closed = False
        config.output.mkdir(parents=True, exist_ok=True)

    def add_topic(self, topic: str, msgtype: str) -> None:
        """Record ``topic`` of ``msgtype`` ('sensor_msgs/msg/Image'); ValueError when the distro's
        type store has no definition of it."""
        if msgtype not in self._store.types:
            raise ValueError(f'{topic}: message type {msgtype} is not in the {self.config.distro} type store of '
                             'rosbags; it cannot be recorded with a message definition')
        with self._lock:
            if topic in self._topics:
                return
            self._topics[topic] = msgtype
            self.counts[topic] = 0
            if self._writer is not None:
                self._connect(topic)

    def write(self, topic: str, timestamp_ns: int, data: bytes) -> bool:
        """Append a CDR message of a registered topic at ``timestamp_ns`` (receive time); False
        (nothing written) after close."""
        with self._lock:
            if self.closed:
                return False
            if self._writer is None:
                self._open_part()
            elif timestamp_ns < self._last_ns:
                LOG.warning('clock went back %.3f s (%s): starting a new bag part',
                            (self._last_ns - timestamp_ns) / 1e9, topic)
                self._next_part()
            elif self.config.max_bag_size and self._part_bytes >= self.config.max_bag_size:
                self._next_part()
            self._writer.write(self._connections[topic], timestamp_ns, data)
            self._part_bytes += len(data)
            self._last_ns = timestamp_ns
            self.counts[topic] += 1
            return True

    def close(self) -> list[Path]:
        """Close the open part (idempotent); the complete parts."""
        with self._lock:
            if not self.closed:
                self.closed = True
                self._close_part()
            return list(self.parts)

    def _open_part(self) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer
        path = self.config.output / f'{self.config.output.name}_{len(self.parts):04d}'
        self._writer = Writer(path, version=self._version, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._connections = {}
        for topic in self._topics:
            self._connect(topic)
        self._part_bytes = 0
        self.parts.append(path)

    def _connect(self, topic: str) -> None:
        self._connections[topic] = self._writer.add_connection(topic, self._topics[topic], typestore=self._store)

    def _close_part(self) -> None:
        if self._writer is not None:
            self._writer.close()
            LOG.info('closed bag %s', self.parts[-1])
            self._writer = None

    def _next_part(self) -> None:
        self._close_part()
        self._open_part()

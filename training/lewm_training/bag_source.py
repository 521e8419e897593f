"""Reading rosbag2 recordings (MCAP or sqlite3) with ``rosbags``: no ROS install needed.

:func:`expand_bag_paths` finds the bags, :class:`Bag` opens one and checks its topics and
message types, :meth:`Bag.scan` reads everything but the pixels (one pass over the whole bag,
so a truncated or unreadable bag fails before anything is written), :meth:`Bag.camera_messages`
reads camera messages of a time range. Every failure is a :class:`BagError` naming the bag and
what is wrong; a missing topic lists the topics the bag has, with their types.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Iterator

import numpy as np

from lewm_training.bag_commands import COMMAND_MSGTYPES, CommandError, CommandInverse

CAMERA_MSGTYPES = {'sensor_msgs/msg/Image': 'raw', 'sensor_msgs/msg/CompressedImage': 'compressed'}
"""Camera message type -> planner_node's ``image_type``."""
METADATA = 'metadata.yaml'


class BagError(ValueError):
    """A bag that cannot be imported as asked; str() names the bag and the reason."""


def expand_bag_paths(paths: list[str | Path]) -> list[Path]:
    """Bag directories (holding metadata.yaml) in the order given; a directory without
    metadata.yaml whose subdirectories are bags (a split ``lewm-record`` output) stands for
    them, sorted by name; a storage file (.mcap / .db3) stands for its bag directory."""
    bags: list[Path] = []
    for given in map(Path, paths):
        if given.is_file() and given.suffix in ('.mcap', '.db3'):
            given = given.parent
        if not given.exists():
            raise BagError(f'{given}: no such file or directory')
        if (given / METADATA).is_file():
            bags.append(given)
            continue
        parts = sorted(p for p in given.iterdir() if (p / METADATA).is_file()) if given.is_dir() else []
        if not parts:
            storage = sorted(given.glob('*.mcap')) + sorted(given.glob('*.db3')) if given.is_dir() else []
            hint = (f' but holds {[p.name for p in storage]}: a recording that was not closed (recorder killed?)'
                    if storage else '')
            raise BagError(f'{given}: not a rosbag2 bag (no {METADATA}){hint}')
        bags.extend(parts)
    return bags


def _header_stamp_ns(raw: bytes | memoryview) -> int:
    """header.stamp [ns] of a CDR message whose first field is a std_msgs/Header."""
    little = raw[1] == 1  # encapsulation kind: 0x0000 CDR_BE, 0x0001 CDR_LE
    sec, nanosec = struct.unpack_from('<iI' if little else '>iI', raw, 4)
    return sec * 1_000_000_000 + nanosec


@dataclass
class BagScan:
    """Everything of one bag but the pixels.

    frame_times: (F,) int64 log times of camera messages [ns]; command_times: (C,) int64 [ns];
    command_actions: (C, A) float64 [raw units]; breaks: (K,) int64 [ns] episode starts forced by
    marker messages and clock jumps; bad_commands: command messages that gave no action (reason
    -> count); clock_jumps: messages whose header stamp went back (topic -> count), with the
    first one described in first_jump."""
    frame_times: np.ndarray
    command_times: np.ndarray
    command_actions: np.ndarray
    breaks: np.ndarray
    bad_commands: dict[str, int] = field(default_factory=dict)
    clock_jumps: dict[str, int] = field(default_factory=dict)
    first_jump: str = ''


class Bag:
    """One opened bag (context manager). camera_topic / command_topic / marker_topic: the
    topics to import ('' = no marker topic)."""

    def __init__(self, path: Path, camera_topic: str, command_topic: str, marker_topic: str = '') -> None:
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore
        self.path = path
        # Bags that carry no message definitions (sqlite3 from Humble) use this store; the types
        # read here did not change between Humble, Jazzy and Kilted.
        self._reader = AnyReader([path], default_typestore=get_typestore(Stores.ROS2_HUMBLE))
        try:
            self._reader.open()
        except Exception as exc:  # noqa: BLE001 - rosbags raises several kinds for a bad file
            raise BagError(f'{path}: cannot open the bag ({type(exc).__name__}: {exc})') from None
        try:
            self.camera = self._connections(camera_topic, CAMERA_MSGTYPES, 'camera')
            self.command = self._connections(command_topic, COMMAND_MSGTYPES, 'command')
            self.marker = self._connections(marker_topic, None, 'marker') if marker_topic else []
        except BagError:
            self.close()
            raise

    def __enter__(self) -> Bag:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._reader.stack is not None:  # open
            self._reader.close()

    @property
    def camera_msgtype(self) -> str:
        return self.camera[0].msgtype

    @property
    def command_msgtype(self) -> str:
        return self.command[0].msgtype

    def topics(self) -> str:
        """The bag's topics, one per line: name (type, message count)."""
        counts: dict[tuple[str, str], int] = {}
        for c in self._reader.connections:
            counts[(c.topic, c.msgtype)] = counts.get((c.topic, c.msgtype), 0) + c.msgcount
        return '\n'.join(f'  {topic} ({msgtype}, {n} messages)' for (topic, msgtype), n in sorted(counts.items())) \
            or '  (none)'

    def _connections(self, topic: str, allowed: dict[str, str] | None, role: str) -> list:
        found = [c for c in self._reader.connections if c.topic == topic]
        if not found:
            raise BagError(f'{self.path}: {role} topic {topic!r} is not in the bag; it has:\n{self.topics()}')
        types = sorted({c.msgtype for c in found})
        if len(types) > 1:
            raise BagError(f'{self.path}: {role} topic {topic!r} carries several types {types}')
        if allowed is not None and types[0] not in allowed:
            raise BagError(f'{self.path}: {role} topic {topic!r} has type {types[0]}; expected one of '
                           f'{sorted(allowed)}')
        if sum(c.msgcount for c in found) == 0:
            raise BagError(f'{self.path}: {role} topic {topic!r} has no messages')
        return found

    def first_command(self):
        """The first command message, deserialized (default fields, action width)."""
        for connection, _t, raw in self._messages(self.command):
            return self._reader.deserialize(raw, connection.msgtype)
        raise BagError(f'{self.path}: command topic {self.command[0].topic!r} has no messages')

    def _messages(self, connections: list, start: int | None = None, stop: int | None = None) -> Iterator:
        try:
            yield from self._reader.messages(connections=connections, start=start, stop=stop)
        except Exception as exc:  # noqa: BLE001 - a truncated or corrupt bag fails here, with its reason
            raise BagError(f'{self.path}: unreadable bag ({type(exc).__name__}: {exc})') from None

    def scan(self, inverse: CommandInverse, progress: Callable[[int], None] | None = None) -> BagScan:
        """Read every camera, command and marker message once (no image decoding)."""
        camera_ids = {c.id for c in self.camera}
        command_ids = {c.id for c in self.command}
        frame_times, command_times, actions, breaks = [], [], [], []
        bad: dict[str, int] = {}
        jumps: dict[str, int] = {}
        first_jump = ''
        last_log = -1
        last_stamp: dict[str, int] = {}
        stamped = self.command_msgtype in ('geometry_msgs/msg/TwistStamped', 'trajectory_msgs/msg/JointTrajectory')
        for connection, t, raw in self._messages([*self.camera, *self.command, *self.marker]):
            if t < last_log:
                raise BagError(f'{self.path}: time goes backwards in the bag ({connection.topic} at {t} ns after '
                               f'a message at {last_log} ns)')
            last_log = t
            if connection.id in camera_ids or (connection.id in command_ids and stamped):
                stamp = _header_stamp_ns(raw)
                previous = last_stamp.get(connection.topic)
                if stamp and previous and stamp < previous:  # a zero stamp means "now" (e.g. JointTrajectory)
                    jumps[connection.topic] = jumps.get(connection.topic, 0) + 1
                    first_jump = first_jump or (f'{connection.topic} header stamp {stamp / 1e9:.3f} s after '
                                                f'{previous / 1e9:.3f} s (bag time {t / 1e9:.3f} s)')
                    breaks.append(t)
                last_stamp[connection.topic] = stamp or last_stamp.get(connection.topic, 0)
            if connection.id in camera_ids:
                frame_times.append(t)
                if progress is not None:
                    progress(1)
            elif connection.id in command_ids:
                try:
                    action = inverse.raw_action(self._reader.deserialize(raw, connection.msgtype))
                except (CommandError, AttributeError, TypeError) as exc:
                    reason = str(exc) if isinstance(exc, CommandError) else 'message lacks the mapped fields'
                    bad[reason] = bad.get(reason, 0) + 1
                    continue
                command_times.append(t)
                actions.append(action)
            else:
                breaks.append(t)
        return BagScan(frame_times=np.asarray(frame_times, np.int64), command_times=np.asarray(command_times, np.int64),
                       command_actions=np.asarray(actions, np.float64).reshape(len(actions), inverse.action_dim),
                       breaks=np.asarray(breaks, np.int64), bad_commands=bad, clock_jumps=jumps, first_jump=first_jump)

    def camera_stream(self, start: int) -> Iterator[tuple[int, bytes]]:
        """(log time [ns], CDR bytes) of the camera messages from ``start`` to the end, in time order."""
        for _connection, t, raw in self._messages(self.camera, start=start):
            yield t, raw

    def camera_message(self, raw: bytes):
        """The camera message of ``raw``, or None when the bytes are not one."""
        try:
            return self._reader.deserialize(raw, self.camera_msgtype)
        except Exception:  # noqa: BLE001 - malformed CDR: the caller counts an undecodable frame
            return None

    def identity(self) -> dict:
        """What identifies this bag for a resumed import: name, storage, counts, time range."""
        reader = self._reader
        return {'bag': self.path.name, 'messages': int(reader.message_count), 'start_ns': int(reader.start_time),
                'end_ns': int(reader.end_time)}

"""A robot recording made without a robot: a rosbag2 bag written with ``rosbags`` (no ROS).

A unicycle (a bright disc with a heading mark on a dark floor with a fixed landmark) is driven by
smoothed random ``TwistStamped`` commands (linear.x [m/s], angular.z [rad/s]) at its own command
rate while a camera publishes what it sees at another rate, as JPEG ``CompressedImage`` (or raw
rgb8 ``Image``). Drives are separated by silences (no camera, no command); unrelated topics
(``/rosout``-like strings, an IMU-like Float64MultiArray) run throughout. The tests and the
import benchmark use it as "a bag recorded by other tools".

    python -m lewm_training.synthetic_bag OUT --drives 500 --storage mcap
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True)
class SyntheticBagConfig:
    """drives: separate drives; drive_s / silence_s: duration of a drive and of the silence after
    it [s]; camera_hz / command_hz: publishing rates [Hz]; width / height: camera frame [px];
    compressed: CompressedImage (jpeg) or Image (rgb8); storage: 'mcap' or 'sqlite3'; seed;
    camera_topic / command_topic: topic names; start_s: bag clock at the first message [s]."""
    drives: int = 3
    drive_s: float = 3.0
    silence_s: float = 2.0
    camera_hz: float = 15.0
    command_hz: float = 10.0
    width: int = 80
    height: int = 60
    compressed: bool = True
    storage: str = 'mcap'
    seed: int = 0
    camera_topic: str = '/front_cam/image_raw/compressed'
    command_topic: str = '/base/cmd_vel'
    start_s: float = 1_700_000_000.0


def _render(x: float, y: float, heading: float, width: int, height: int) -> np.ndarray:
    """RGB uint8 (height, width, 3) of the robot at (x, y) in [-1, 1]^2 with ``heading`` [rad]."""
    image = np.full((height, width, 3), 30, np.uint8)
    cv2.rectangle(image, (2, 2), (width // 6, height // 6), (40, 160, 40), -1)  # landmark
    cx, cy = int((x + 1) / 2 * (width - 1)), int((1 - (y + 1) / 2) * (height - 1))
    cv2.circle(image, (cx, cy), max(2, width // 14), (230, 200, 60), -1)
    tip = (int(cx + np.cos(heading) * width / 10), int(cy - np.sin(heading) * width / 10))
    cv2.line(image, (cx, cy), tip, (200, 40, 40), 2)
    return image


def write_synthetic_bag(path: str | Path, config: SyntheticBagConfig = SyntheticBagConfig()) -> Path:
    """Write the bag directory ``path`` (must not exist); returns it."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore
    store = get_typestore(Stores.ROS2_JAZZY)
    types = store.types
    header_t, time_t = types['std_msgs/msg/Header'], types['builtin_interfaces/msg/Time']
    twist_t, vec_t = types['geometry_msgs/msg/Twist'], types['geometry_msgs/msg/Vector3']
    cam_type = 'sensor_msgs/msg/CompressedImage' if config.compressed else 'sensor_msgs/msg/Image'
    rng = np.random.default_rng(config.seed)
    plugin = StoragePlugin.MCAP if config.storage == 'mcap' else StoragePlugin.SQLITE3
    messages: list[tuple[int, str, bytes]] = []

    def header(t_ns: int, frame: str):
        return header_t(stamp=time_t(sec=t_ns // 1_000_000_000, nanosec=t_ns % 1_000_000_000), frame_id=frame)

    def add(topic: str, msgtype: str, t_ns: int, msg) -> None:
        messages.append((t_ns, topic, bytes(store.serialize_cdr(msg, msgtype))))

    t0 = int(config.start_s * 1e9)
    drive_ns, silence_ns = int(config.drive_s * 1e9), int(config.silence_s * 1e9)
    cam_ns, cmd_ns = int(1e9 / config.camera_hz), int(1e9 / config.command_hz)
    x, y, heading = 0.0, 0.0, 0.0
    for drive in range(config.drives):
        start = t0 + drive * (drive_ns + silence_ns)
        # the command sequence of this drive (held between messages), smoothed random
        n_cmd = drive_ns // cmd_ns
        v, w = np.zeros(n_cmd), np.zeros(n_cmd)
        for i in range(1, n_cmd):
            v[i] = np.clip(0.8 * v[i - 1] + 0.2 * rng.uniform(-0.5, 0.5), -0.5, 0.5)
            w[i] = np.clip(0.8 * w[i - 1] + 0.2 * rng.uniform(-2.0, 2.0), -2.0, 2.0)
        cmd_times = start + cmd_ns * np.arange(n_cmd)
        for i, t in enumerate(cmd_times.tolist()):
            twist = twist_t(linear=vec_t(x=float(v[i]), y=0.0, z=0.0), angular=vec_t(x=0.0, y=0.0, z=float(w[i])))
            add(config.command_topic, 'geometry_msgs/msg/TwistStamped', t,
                types['geometry_msgs/msg/TwistStamped'](header=header(t, 'base_link'), twist=twist))
        # integrate the unicycle at 1 kHz-ish steps between camera frames
        t_prev = start
        for t in range(start + cam_ns // 3, start + drive_ns, cam_ns):  # the camera has its own phase
            for s in np.linspace(t_prev, t, 5)[1:]:
                i = max(0, int(np.searchsorted(cmd_times, s, side='right')) - 1)
                dt = (t - t_prev) / 4 / 1e9
                heading += w[i] * dt
                x = float(np.clip(x + v[i] * np.cos(heading) * dt, -1, 1))
                y = float(np.clip(y + v[i] * np.sin(heading) * dt, -1, 1))
            t_prev = t
            add(config.camera_topic, cam_type, t, _camera_msg(types, header(t, 'camera'), config,
                                                             _render(x, y, heading, config.width, config.height)))
    end = t0 + config.drives * (drive_ns + silence_ns)
    for t in range(t0, end, 500_000_000):  # unrelated topics, during drives and silences
        add('/rosout_text', 'std_msgs/msg/String', t, types['std_msgs/msg/String'](data=f'status {t}'))
        add('/imu/data_raw', 'std_msgs/msg/Float64MultiArray', t + 1000, types['std_msgs/msg/Float64MultiArray'](
            layout=types['std_msgs/msg/MultiArrayLayout'](dim=[], data_offset=0),
            data=np.asarray(rng.normal(size=6), np.float64)))
    path = Path(path)
    with Writer(path, version=8, storage_plugin=plugin) as writer:
        connections = {}
        for topic, msgtype in ((config.camera_topic, cam_type),
                               (config.command_topic, 'geometry_msgs/msg/TwistStamped'),
                               ('/rosout_text', 'std_msgs/msg/String'),
                               ('/imu/data_raw', 'std_msgs/msg/Float64MultiArray')):
            connections[topic] = writer.add_connection(topic, msgtype, typestore=store)
        for t, topic, data in sorted(messages, key=lambda m: m[0]):
            writer.write(connections[topic], t, data)
    return path


def _camera_msg(types, header, config: SyntheticBagConfig, rgb: np.ndarray):
    if config.compressed:
        ok, jpeg = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        return types['sensor_msgs/msg/CompressedImage'](header=header, format='jpeg', data=jpeg.ravel())
    return types['sensor_msgs/msg/Image'](header=header, height=rgb.shape[0], width=rgb.shape[1], encoding='rgb8',
                                           is_bigendian=0, step=rgb.shape[1] * 3, data=rgb.ravel())


def main(argv: list[str] | None = None) -> int:
    d = SyntheticBagConfig()
    parser = argparse.ArgumentParser(prog='python -m lewm_training.synthetic_bag', description=__doc__.splitlines()[0])
    parser.add_argument('out', type=Path, help='bag directory to create')
    parser.add_argument('--drives', type=int, default=d.drives)
    parser.add_argument('--drive-s', type=float, default=d.drive_s)
    parser.add_argument('--silence-s', type=float, default=d.silence_s)
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default=d.storage)
    parser.add_argument('--raw', action='store_true', help='sensor_msgs/Image rgb8 instead of jpeg CompressedImage')
    parser.add_argument('--seed', type=int, default=d.seed)
    args = parser.parse_args(argv)
    write_synthetic_bag(args.out, SyntheticBagConfig(drives=args.drives, drive_s=args.drive_s, silence_s=args.silence_s,
                                                     storage=args.storage, compressed=not args.raw, seed=args.seed))
    print(args.out)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

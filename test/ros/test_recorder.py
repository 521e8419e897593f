"""lewm-record over real topics: publish with rclpy -> the console entry point records in a
subprocess -> SIGTERM/SIGINT -> every bag part opens with rosbags -> lewm-train import-bag."""
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

import rclpy
from geometry_msgs.msg import TwistStamped
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import String

from lewm_ros.recording import BagWriterConfig, SplitBagWriter
from lewm_ros.ros.runner import RunConfig

NS = f'/recorder_test_{os.getpid()}'


def jpeg(i: int) -> np.ndarray:
    image = np.zeros((48, 64, 3), np.uint8)
    cv2.circle(image, (5 + i % 50, 24), 5, (255, 200, 50), -1)
    return cv2.imencode('.jpg', image)[1].ravel()


def publish_drives(node, executor, drives=2, drive_s=1.3, silence_s=0.8):
    """Camera (CompressedImage) at 15 Hz and TwistStamped at 10 Hz during each drive, a String with
    every camera frame. Returns the published (linear.x, angular.z) values and the number of
    Strings published (a loaded machine publishes fewer in the same time)."""
    cam = node.create_publisher(CompressedImage, f'{NS}/cam/compressed', 10)
    cmd = node.create_publisher(TwistStamped, f'{NS}/cmd_vel', 10)
    chatter = node.create_publisher(String, f'{NS}/chatter', 10)
    deadline = time.monotonic() + 30
    while min(p.get_subscription_count() for p in (cam, cmd, chatter)) < 1:  # the recorder has subscribed
        assert time.monotonic() < deadline, 'the recorder never subscribed'
        executor.spin_once(timeout_sec=0.05)
    time.sleep(0.3)
    sent, start, i = [], time.monotonic(), 0
    next_cam = next_cmd = start
    for drive in range(drives):
        end = start + drive * (drive_s + silence_s) + drive_s
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= next_cam:
                msg = CompressedImage(format='jpeg', data=jpeg(i).tobytes())
                msg.header.stamp = node.get_clock().now().to_msg()
                cam.publish(msg)
                chatter.publish(String(data=f'frame {i}'))
                next_cam, i = max(next_cam + 1 / 15, now + 0.06), i + 1   # late: no burst
            if now >= next_cmd:
                msg = TwistStamped()
                msg.header.stamp = node.get_clock().now().to_msg()
                msg.twist.linear.x, msg.twist.angular.z = 0.01 * len(sent), -0.5
                cmd.publish(msg)
                sent.append((msg.twist.linear.x, msg.twist.angular.z))
                next_cmd = max(next_cmd + 0.1, now + 0.09)
            time.sleep(0.005)
        time.sleep(silence_s)
        next_cam = next_cmd = time.monotonic()
    time.sleep(0.5)  # the last messages reach the recorder before it is stopped
    return sent, i


def check_mcap_for_rosbag2(part, files):
    """What rosbag2's MCAP storage plugin (``ros2 bag info`` / ``play``) reads, checked with the
    MCAP project's own reader (not rosbags): a ros2-profile file with a summary (statistics, chunk
    indexes), ros2msg schemas, CDR channels, messages that decode; and a version 9 metadata.yaml
    (Jazzy, Kilted) listing the file."""
    import yaml
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    assert files == 1
    info = yaml.safe_load((part / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    assert info['version'] == 9 and info['storage_identifier'] == 'mcap'
    [path] = info['relative_file_paths']
    with open(part / path, 'rb') as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        assert reader.get_header().profile == 'ros2' and summary.chunk_indexes
        assert {s.encoding for s in summary.schemas.values()} == {'ros2msg'}
        assert {c.message_encoding for c in summary.channels.values()} == {'cdr'}
        assert summary.statistics.message_count == info['message_count']
        decoded = {channel.topic: msg for _, channel, _, msg in reader.iter_decoded_messages()}
    assert {c.topic for c in summary.channels.values()} == set(decoded)       # every topic decodes


@pytest.mark.parametrize('signum, split', [(signal.SIGTERM, True), (signal.SIGINT, False)])
def test_recorded_bag_closes_on_signal_and_imports(tmp_path, signum, split):
    from rosbags.highlevel import AnyReader

    from lewm_training.bag_import import ImportConfig, import_bags
    from lewm_training.dataset import open_dataset
    out = tmp_path / 'rec'
    cmd = [sys.executable, '-m', 'lewm_ros.ros.recorder', '--camera-topic', f'{NS}/cam/compressed',
           '--command-topic', f'{NS}/cmd_vel', '--topic', f'{NS}/chatter', '-o', str(out),
           *(['--max-bag-size', '0.03'] if split else [])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node('recorder_test_publisher', context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        sent, chatters = publish_drives(node, executor)
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
        proc.send_signal(signum)
        log, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, log
    parts = sorted(p for p in out.iterdir())
    assert (len(parts) > 1) == split, log
    counts = {}
    for part in parts:  # every part is complete: index, summary and metadata.yaml
        with AnyReader([part]) as reader:
            for c in reader.connections:
                counts[c.topic] = counts.get(c.topic, 0) + sum(1 for _ in reader.messages([c]))
        check_mcap_for_rosbag2(part, sum(1 for _ in part.glob('*.mcap')))
    # every message sent was recorded (on a loaded machine the last one may still be in flight)
    assert len(sent) - 1 <= counts[f'{NS}/cmd_vel'] <= len(sent), log
    assert chatters - 1 <= counts[f'{NS}/chatter'] <= chatters and chatters >= 20, log
    report = import_bags(ImportConfig(bags=(out,), camera_topic=f'{NS}/cam/compressed', command_topic=f'{NS}/cmd_vel',
                                      image_size=16, min_steps=5), tmp_path / 'data', progress=False)
    data = open_dataset(tmp_path / 'data')
    assert report.episodes == data.num_episodes >= (1 if split else 2)  # the silence (and part boundaries) split
    recorded = data.actions[~np.isnan(data.actions).any(axis=1)]
    assert len(recorded) >= 10
    assert set(map(tuple, recorded.tolist())) <= set(map(tuple, np.float32(sent).tolist()))
    assert data.metadata.deployment.command_type == 'twist_stamped'
    assert data.metadata.deployment.control_rate == pytest.approx(10.0, rel=0.2)


def test_writer_refuses_unknown_types_and_used_directories(tmp_path):
    (tmp_path / 'used').mkdir()
    (tmp_path / 'used' / 'x').write_text('')
    with pytest.raises(ValueError, match='exists and is not an empty directory'):
        BagWriterConfig(tmp_path / 'used')
    writer = SplitBagWriter(BagWriterConfig(tmp_path / 'new', distro='jazzy'))
    with pytest.raises(ValueError, match='my_msgs/msg/Thing is not in the jazzy type store'):
        writer.add_topic('/thing', 'my_msgs/msg/Thing')
    writer.add_topic('/s', 'std_msgs/msg/String')
    assert writer.write('/s', 5, bytes([0, 1, 0, 0, 2, 0, 0, 0, 104, 0]))
    assert writer.write('/s', 3, bytes([0, 1, 0, 0, 2, 0, 0, 0, 104, 0]))  # clock went back: a new part
    assert len(writer.close()) == 2 and not writer.write('/s', 9, b'')


def test_runner_offers_the_recorder_and_wires_its_topics(tmp_path):
    from lewm_ros.ros.runner import load_node_class, parse_args
    from lewm_ros.ros.recorder import RecorderNode
    assert load_node_class('lewm_record') is RecorderNode
    params = tmp_path / 'p.yaml'
    params.write_text('/**:\n  ros__parameters: {}\n')
    config = parse_args(['--params', str(params), '--sim-only', '--record', '--camera-topic', '/front/image',
                         '--cmd-topic', '/robot/cmd'])
    assert config.nodes == ('sim_node', 'lewm_record')
    context = rclpy.Context()
    rclpy.init(args=RunConfig(params, nodes=config.nodes, camera_topic='/front/image', cmd_topic='/robot/cmd',
                              params=(f'output:={tmp_path / "rec"}',)).ros_args(), context=context)
    try:
        node = RecorderNode(context=context)
        assert node.topics == ['/front/image', '/robot/cmd']
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)

"""``lewm-train import-bag`` on bags this project writes itself (rosbags Writer, MCAP and sqlite3):
round trip, identical pixels to planner_node's camera room, the inverse command mapping, every
bad-input case with its message and no dataset, resume after an interrupt, fit carrying the
deployment record into lewm_meta.json."""
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from lewm_ros.camera import CameraPipeline
from lewm_training.bag_import import ImportConfig, import_bags
from lewm_training.bag_source import BagError
from lewm_training.cli import main as cli_main
from lewm_training.dataset import open_dataset
from lewm_training.synthetic_bag import SyntheticBagConfig, write_synthetic_bag

CAM, CMD = '/front_cam/image_raw/compressed', '/base/cmd_vel'


@pytest.fixture(scope='module')
def bags(tmp_path_factory):
    """storage -> a 3-drive synthetic recording (15 Hz jpeg camera, 10 Hz TwistStamped, silences)."""
    root = tmp_path_factory.mktemp('bags')
    return {storage: write_synthetic_bag(root / storage, SyntheticBagConfig(drives=3, storage=storage))
            for storage in ('mcap', 'sqlite3')}


def read_messages(bag: Path, topic: str):
    from rosbags.highlevel import AnyReader
    with AnyReader([bag]) as reader:
        connections = [c for c in reader.connections if c.topic == topic]
        return [(t, reader.deserialize(raw, c.msgtype)) for c, t, raw in reader.messages(connections)]


def config(bag, **changes) -> ImportConfig:
    return ImportConfig(**{**dict(bags=(bag,), camera_topic=CAM, command_topic=CMD, image_size=32,
                                  episodes_per_shard=2), **changes})


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_round_trip_pixels_and_actions_are_what_the_node_sees_and_publishes(bags, storage, tmp_path):
    report = import_bags(config(bags[storage], command_scales=(0.5, 2.0)), tmp_path / 'data', progress=False)
    data = open_dataset(tmp_path / 'data')
    assert data.num_episodes == report.episodes == 3  # the silences split the drives
    assert data.metadata.dt == pytest.approx(0.1) and data.metadata.state_dim == 0
    deployment = data.metadata.deployment
    assert (deployment.image_type, deployment.command_type, deployment.control_rate) == ('compressed', 'twist_stamped',
                                                                                          pytest.approx(10.0))
    assert deployment.command_fields == ('linear.x', 'angular.z') and deployment.camera_topic == CAM
    frames = read_messages(bags[storage], CAM)
    commands = read_messages(bags[storage], CMD)
    camera = CameraPipeline(32)
    frame_t = np.array([t for t, _ in frames])
    command_t = np.array([t for t, _ in commands])
    first_command = command_t[command_t >= frame_t[0]][0]  # the grid starts on the first command with a frame
    for k in (0, 7, 20):
        tick = first_command + k * 100_000_000
        frame = frames[int(np.searchsorted(frame_t, tick, side='right')) - 1][1]
        np.testing.assert_array_equal(data.pixels(0, [k])[0], camera.from_message(frame))
        twist = commands[int(np.searchsorted(command_t, tick, side='right')) - 1][1].twist
        np.testing.assert_allclose(data.episode_actions(0)[k], [twist.linear.x / 0.5, twist.angular.z / 2.0],
                                   rtol=1e-6)
    assert np.isnan(data.episode_actions(0)[-1]).all()
    assert report.camera_messages == len(frames) and 0 < report.frames_used < len(frames)
    assert report.action_min[1] < 0 < report.action_max[1]


def test_mcap_and_sqlite3_give_the_same_dataset(bags, tmp_path):
    for storage in bags:
        import_bags(config(bags[storage]), tmp_path / storage, progress=False)
    a, b = open_dataset(tmp_path / 'mcap'), open_dataset(tmp_path / 'sqlite3')
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.pixels(1), b.pixels(1))


def test_interrupted_import_resumes_to_the_same_dataset(bags, tmp_path):
    full, cut = tmp_path / 'full', tmp_path / 'cut'
    import_bags(config(bags['mcap'], episodes_per_shard=1), full, progress=False)

    def stop(name):
        (cut / f'.{name}.999.tmp').write_bytes(b'half a shard')  # as a kill -9 mid-shard leaves it
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        import_bags(config(bags['mcap'], episodes_per_shard=1), cut, progress=False, on_shard=stop)
    assert sorted(p.name for p in cut.glob('shard_*')) == ['shard_000000.h5']
    report = import_bags(config(bags['mcap'], episodes_per_shard=1), cut, progress=False)
    assert report.episodes == 3 and not list(cut.glob('.*.tmp'))
    a, b = open_dataset(full), open_dataset(cut)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.pixels(2), b.pixels(2))
    with pytest.raises(BagError, match='made with source.min_steps=20; this import has source.min_steps=5'):
        import_bags(config(bags['mcap'], episodes_per_shard=1, min_steps=5), cut, progress=False)


def _bag(path: Path, storage: str, messages, store_name='ROS2_KILTED') -> Path:
    """A bag of (topic, msgtype, t_ns, msg) written with rosbags."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore
    store = get_typestore(getattr(Stores, store_name))
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        connections = {}
        for topic, msgtype, t, msg in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=store)
            if msg is not None:
                data = msg if isinstance(msg, bytes) else store.serialize_cdr(msg, msgtype)
                writer.write(connections[topic], t, data)
    return path


def _drive(n=40, t0=10**9, stamp_offsets=None, bad_frames=(), float_commands=False):
    """n ticks of 10 Hz raw rgb8 camera + commands (TwistStamped, or Float64MultiArray)."""
    from rosbags.typesys import Stores, get_typestore
    types = get_typestore(Stores.ROS2_KILTED).types
    stamp = types['builtin_interfaces/msg/Time']
    header = types['std_msgs/msg/Header']
    out = []
    for i in range(n):
        t = t0 + i * 100_000_000
        s = t + (stamp_offsets[i] if stamp_offsets is not None else 0)
        h = header(stamp=stamp(sec=s // 10**9, nanosec=s % 10**9), frame_id='cam')
        pixels = np.full((24, 32, 3), i * 5 % 255, np.uint8).ravel()
        data = pixels[:100] if i in bad_frames else pixels  # too few bytes: undecodable
        out.append(('/cam', 'sensor_msgs/msg/Image', t, types['sensor_msgs/msg/Image'](
            header=h, height=24, width=32, encoding='rgb8', is_bigendian=0, step=96, data=data)))
        if float_commands:
            out.append(('/cmd', 'std_msgs/msg/Float64MultiArray', t + 1000, types['std_msgs/msg/Float64MultiArray'](
                layout=types['std_msgs/msg/MultiArrayLayout'](dim=[], data_offset=0),
                data=np.array([i, -i, 2 * i], np.float64))))
        else:
            vec = types['geometry_msgs/msg/Vector3']
            twist = types['geometry_msgs/msg/Twist'](linear=vec(x=0.1 * i, y=0.0, z=0.0),
                                                     angular=vec(x=0.0, y=0.0, z=1.0))
            out.append(('/cmd', 'geometry_msgs/msg/TwistStamped', t + 1000, types['geometry_msgs/msg/TwistStamped'](
                header=h, twist=twist)))
    return out


def _raw_config(path, **changes):
    return ImportConfig(**{**dict(bags=(path,), camera_topic='/cam', command_topic='/cmd', image_size=16,
                                  min_steps=5), **changes})


@pytest.mark.parametrize('case, match', [
    ('missing_topic', r"command topic '/cmd' is not in the bag; it has:\n  /cam \(sensor_msgs/msg/Image, 40 messa"),
    ('wrong_type', r"camera topic '/cmd' has type geometry_msgs/msg/TwistStamped; expected one of"),
    ('no_messages', r"camera topic '/cam' has no messages"),
    ('empty_dir', 'not a rosbag2 bag'),
    ('not_closed', 'a recording that was not closed'),
    ('truncated', 'cannot open the bag'),
    ('unreadable', 'cannot open the bag'),
    ('too_short', 'no episode of >= 5 steps'),
    ('gap_below_period', 'is shorter than the control period'),
])
def test_bad_input_gives_its_message_and_no_dataset(tmp_path, case, match):
    bag = tmp_path / 'bag'
    changes = {}
    if case == 'missing_topic':
        _bag(bag, 'mcap', [m for m in _drive() if m[0] == '/cam'])
    elif case == 'wrong_type':
        _bag(bag, 'mcap', _drive())
        changes = {'camera_topic': '/cmd', 'command_topic': '/cam'}
    elif case == 'no_messages':
        _bag(bag, 'sqlite3', [('/cam', 'sensor_msgs/msg/Image', 0, None), *[m for m in _drive() if m[0] == '/cmd']])
    elif case == 'empty_dir':
        bag.mkdir()
    elif case in ('not_closed', 'truncated'):
        _bag(bag, 'mcap', _drive())
        storage = next(bag.glob('*.mcap'))
        if case == 'not_closed':
            (bag / 'metadata.yaml').unlink()
        else:
            storage.write_bytes(storage.read_bytes()[:storage.stat().st_size // 2])
    elif case == 'unreadable':
        _bag(bag, 'sqlite3', _drive())
        next(bag.glob('*.db3')).write_bytes(b'not a database' * 100)
    elif case == 'too_short':
        _bag(bag, 'mcap', _drive(n=4))
    elif case == 'gap_below_period':
        _bag(bag, 'mcap', _drive())
        changes = {'max_gap': 0.05}
    out = tmp_path / 'out'
    with pytest.raises(BagError, match=match):
        import_bags(_raw_config(bag, **changes), out, progress=False)
    assert not (out / 'manifest.json').exists() and not list(out.glob('shard_*'))


def test_undecodable_frames_are_counted_and_replaced_by_the_previous_frame(tmp_path):
    bag = _bag(tmp_path / 'bag', 'mcap', _drive(bad_frames=(10, 11)))
    report = import_bags(_raw_config(bag, max_gap=0.25), tmp_path / 'out', progress=False)
    assert sum(report.undecodable.values()) == 2 and report.truncated == 0 and report.episodes == 1
    data = open_dataset(tmp_path / 'out')
    np.testing.assert_array_equal(data.pixels(0, [10, 11]), data.pixels(0, [9, 9]))  # the node keeps its last image
    bag2 = _bag(tmp_path / 'bag2', 'mcap', _drive(bad_frames=(20, 21, 22, 23)))
    report = import_bags(_raw_config(bag2, max_gap=0.25), tmp_path / 'out2', progress=False)
    assert report.truncated == 1 and open_dataset(tmp_path / 'out2').lengths.tolist() == [22]


def test_time_going_backwards_splits_the_episode_and_is_reported(tmp_path):
    offsets = [0] * 20 + [-5 * 10**9] * 20  # the camera clock jumps back 5 s at tick 20 (e.g. a sim reset)
    bag = _bag(tmp_path / 'bag', 'mcap', _drive(stamp_offsets=offsets))
    report = import_bags(_raw_config(bag), tmp_path / 'out', progress=False)
    assert report.clock_jumps == {'/cam': 1, '/cmd': 1} and report.episodes == 2
    assert any('header stamps going back' in line for line in report.lines())


def test_float64_multi_array_commands_with_scales(tmp_path):
    bag = _bag(tmp_path / 'bag', 'sqlite3', _drive(float_commands=True), store_name='ROS2_HUMBLE')
    import_bags(_raw_config(bag, command_scales=(1.0, 2.0, 4.0)), tmp_path / 'out', progress=False)
    data = open_dataset(tmp_path / 'out')
    np.testing.assert_allclose(data.episode_actions(0)[3], [3, -1.5, 1.5])
    assert data.metadata.deployment.command_type == 'float64_multi_array'
    assert data.metadata.deployment.command_fields == ()


def test_cli_reports_a_missing_topic_with_the_bag_topics(bags, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    code = cli_main(['import-bag', str(bags['mcap']), '--camera-topic', '/camera', '--command-topic', CMD,
                     '--out', str(tmp_path / 'out'), '--no-progress'])
    assert code == 2
    assert "camera topic '/camera' is not in the bag" in caplog.text
    assert '/imu/data_raw (std_msgs/msg/Float64MultiArray' in caplog.text
    code = cli_main(['import-bag', str(bags['mcap']), '--camera-topic', CAM, '--command-topic', CMD,
                     '--out', str(tmp_path / 'ok'), '--no-progress', '--crop-scale', '0.8', '--image-size', '16'])
    assert code == 0 and 'action ranges per dimension' in caplog.text
    assert json.loads((tmp_path / 'ok' / 'manifest.json').read_text())['deployment']['crop_scale'] == 0.8


def test_fit_copies_the_deployment_record_into_the_model(bags, tmp_path):
    from lewm_training.fit import fit
    from lewm_training.synthetic import tiny_model_config
    from lewm_training.train_config import TrainConfig
    import_bags(config(bags['mcap'], min_steps=20), tmp_path / 'data', progress=False)
    model_json = tmp_path / 'tiny.json'
    model_json.write_text(json.dumps(tiny_model_config().to_reference_dict()))
    result = fit(TrainConfig(data=str(tmp_path / 'data'), out=str(tmp_path / 'run'), model_config=str(model_json),
                             steps=2, batch_size=4, log_every=1, val_every=100, checkpoint_every=100, val_frac=0.0,
                             sigreg_proj=16, bn_recal_windows=4, threads=1, tensorboard=False, progress=False))
    meta = json.loads((result.model_dir / 'lewm_meta.json').read_text())
    assert meta['extra']['deployment']['command_type'] == 'twist_stamped'
    assert meta['extra']['deployment']['control_rate'] == pytest.approx(10.0)
    assert meta['task'] == 'recorded' and meta['image_size'] == 32
    shutil.rmtree(tmp_path / 'run')


def test_joint_trajectory_and_twist_inverse_mapping():
    from rosbags.typesys import Stores, get_typestore

    from lewm_training.bag_commands import CommandError, CommandInverse, default_fields
    types = get_typestore(Stores.ROS2_JAZZY).types
    duration = types['builtin_interfaces/msg/Duration'](sec=0, nanosec=100_000_000)
    point = types['trajectory_msgs/msg/JointTrajectoryPoint'](
        positions=np.array([0.2, -0.4]), velocities=np.zeros(0), accelerations=np.zeros(0), effort=np.zeros(0),
        time_from_start=duration)
    header = types['std_msgs/msg/Header'](stamp=types['builtin_interfaces/msg/Time'](sec=0, nanosec=0), frame_id='')
    msg = types['trajectory_msgs/msg/JointTrajectory'](header=header, joint_names=['elbow', 'shoulder'], points=[point])
    assert default_fields('joint_trajectory', msg) == ('elbow', 'shoulder')
    inverse = CommandInverse('joint_trajectory', ('shoulder', 'elbow'), (2.0, 0.5))
    np.testing.assert_allclose(inverse.raw_action(msg), [-0.2, 0.4])  # by joint name, divided by the scales
    with pytest.raises(CommandError, match=r"lack \['wrist'\]"):
        CommandInverse('joint_trajectory', ('wrist',), (1.0,)).raw_action(msg)
    vec = types['geometry_msgs/msg/Vector3']
    twist = types['geometry_msgs/msg/Twist'](linear=vec(x=0.3, y=0.1, z=0.0), angular=vec(x=0.0, y=0.0, z=-1.0))
    np.testing.assert_allclose(CommandInverse('twist', ('angular.z', 'linear.y'), (-2.0, 1.0)).raw_action(twist),
                               [0.5, 0.1])
    with pytest.raises(ValueError, match='a zero scale cannot be inverted'):
        CommandInverse('twist', ('linear.x',), (0.0,))

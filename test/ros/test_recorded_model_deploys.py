"""The real-robot round trip in small: a recording (MCAP and sqlite3) -> import-bag -> a few
training steps -> planner_node, given only model_dir, reads the recorded compressed camera and
publishes the recorded command type at the recorded rate (real rclpy topics)."""
import json
import os
import threading
import time

import cv2
import numpy as np
import pytest

import rclpy  # noqa: E402
from geometry_msgs.msg import TwistStamped  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CompressedImage  # noqa: E402

from lewm_ros.ros.planner_node import PlannerNode  # noqa: E402
from lewm_ros.ros.spinning import spin  # noqa: E402
from lewm_training.bag_import import ImportConfig, import_bags  # noqa: E402
from lewm_training.fit import fit  # noqa: E402
from lewm_training.synthetic import tiny_model_config  # noqa: E402
from lewm_training.synthetic_bag import SyntheticBagConfig, write_synthetic_bag  # noqa: E402
from lewm_training.train_config import TrainConfig  # noqa: E402

CAM, CMD = '/front_cam/image_raw/compressed', '/base/cmd_vel'


def trained_from_recording(root, storage: str):
    bag = write_synthetic_bag(root / 'bag', SyntheticBagConfig(drives=3, storage=storage))
    import_bags(ImportConfig(bags=(bag,), camera_topic=CAM, command_topic=CMD, image_size=32, min_steps=20),
                root / 'data', progress=False)
    model_json = root / 'tiny.json'
    model_json.write_text(json.dumps(tiny_model_config().to_reference_dict()))
    return fit(TrainConfig(data=str(root / 'data'), out=str(root / 'run'), model_config=str(model_json), steps=2,
                           batch_size=4, log_every=1, val_every=100, checkpoint_every=100, val_frac=0.0,
                           sigreg_proj=16, bn_recal_windows=4, threads=1, tensorboard=False,
                           progress=False)).model_dir


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_planner_publishes_what_was_recorded_with_no_command_parameters(tmp_path, storage):
    model_dir = trained_from_recording(tmp_path, storage)
    goal = np.full((60, 80, 3), 200, np.uint8)
    cv2.imwrite(str(tmp_path / 'goal.png'), goal)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=68)
    params = {'model_dir': str(model_dir), 'goal_image_path': str(tmp_path / 'goal.png'), 'cpu_threads': 1,
              'planner.num_samples': 8, 'planner.num_elites': 2, 'planner.iterations': 1, 'planner.horizon': 2}
    node = PlannerNode(context=context, namespace=f'/deploy_{os.getpid()}',
                       parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    probe = rclpy.create_node('probe', context=context, namespace=f'/deploy_{os.getpid()}')
    stamps = []
    probe.create_subscription(TwistStamped, 'cmd', lambda m: stamps.append(time.monotonic()), 50)
    camera = probe.create_publisher(CompressedImage, 'image/compressed', qos_profile_sensor_data)
    frame = CompressedImage(format='jpeg', data=cv2.imencode('.jpg', np.full((60, 80, 3), 90, np.uint8))[1].tobytes())
    executor = MultiThreadedExecutor(num_threads=3, context=context)
    executor.add_node(node)
    executor.add_node(probe)
    threading.Thread(target=spin, args=(executor,), daemon=True).start()
    running = threading.Event()
    running.set()

    def publish_camera():
        while running.is_set():
            camera.publish(frame)
            time.sleep(1 / 15)
    threading.Thread(target=publish_camera, daemon=True).start()
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node._params.camera.image_type == 'compressed' and node._params.control.control_rate_hz == 10.0
        assert node._adapter.msg_type is TwistStamped
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        t0 = time.monotonic()
        time.sleep(3.0)
        assert node.stats.images_received > 0 and node.stats.images_dropped == 0
        received = [t for t in stamps if t > t0 + 0.5]
        assert len(received) >= 15, f'{len(received)} TwistStamped commands in 2.5 s at the recorded 10 Hz'
        assert 1.0 / np.diff(received).mean() == pytest.approx(10.0, rel=0.15)
    finally:
        running.clear()
        executor.shutdown()
        node.destroy_node()
        probe.destroy_node()
        rclpy.try_shutdown(context=context)

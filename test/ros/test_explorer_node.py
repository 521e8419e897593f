"""explorer_node drives sim_node through real topics: commands of the robot's type, episode
markers, resets between episodes, zero on disable."""
import json
import os
import time

import numpy as np

import rclpy  # noqa: E402

from geometry_msgs.msg import TwistStamped  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from std_msgs.msg import Bool, Float64MultiArray, String  # noqa: E402

from lewm_training.explorer_node import ExplorerNode  # noqa: E402
from lewm_training.sim_node import SimNode  # noqa: E402

NS = f'/explore_test_{os.getpid()}'


def test_explorer_drives_the_simulated_robot_in_episodes_and_stops_on_disable():
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=64)
    sim = SimNode(context=context, namespace=NS, cli_args=['--ros-args', '-r', '/clock:=clock'],
                  parameter_overrides=[Parameter('real_time_factor', value=4.0), Parameter('image_size', value=32)])
    explorer = ExplorerNode(context=context, namespace=NS,
                            cli_args=['--ros-args', '-r', 'cmd:=cmd_vel', '-r', 'state:=sim_node/state'],
                            parameter_overrides=[Parameter('episode_steps', value=15),
                                                 Parameter('reset_service', value='sim_node/reset'),
                                                 Parameter('episodes', value=4),
                                                 Parameter('control_rate', value=40.0)])
    probe = rclpy.create_node('probe', context=context, namespace=NS)
    commands, markers, states = [], [], []
    probe.create_subscription(TwistStamped, 'cmd_vel', lambda m: commands.append(
        (time.monotonic(), np.array([m.twist.linear.x, m.twist.linear.y]))), 50)
    probe.create_subscription(String, 'explorer_node/episode', lambda m: markers.append(json.loads(m.data)), 10)
    probe.create_subscription(Float64MultiArray, 'sim_node/state', lambda m: states.append(np.array(m.data)), 10)
    enable = probe.create_publisher(Bool, 'explorer_node/enable', 10)
    executor = MultiThreadedExecutor(num_threads=3, context=context)
    for node in (sim, explorer, probe):
        executor.add_node(node)

    def spin_until(cond, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end and not cond():
            executor.spin_once(timeout_sec=0.02)
        return cond()
    try:
        assert spin_until(lambda: len(markers) >= 3, 30.0), f'episodes started: {markers}'
        assert [m['episode'] for m in markers[:3]] == [0, 1, 2]
        values = np.stack([c for _, c in commands])
        assert np.all(np.abs(values) <= 1.0) and np.abs(values).max() > 0.1
        positions = np.stack([s[:2] for s in states])
        assert np.ptp(positions, axis=0).max() > 0.05, 'the robot did not move'
        enable.publish(Bool(data=False))
        assert spin_until(lambda: commands and not commands[-1][1].any(), 5.0), 'no zero command on disable'
        enable.publish(Bool(data=True))
        assert spin_until(explorer.finished.is_set, 30.0), 'did not stop after its episodes'
        assert [m['episode'] for m in markers] == [0, 1, 2, 3]
        assert spin_until(lambda: not commands[-1][1].any(), 2.0), 'no zero command at the end'
        stopped = time.monotonic()
        spin_until(lambda: False, 0.5)
        assert not [c for t, c in commands if t > stopped + 0.2 and c.any()], 'commands while disabled'
    finally:
        executor.shutdown()
        for node in (explorer, sim, probe):
            node.destroy_node()
        rclpy.try_shutdown(context=context)

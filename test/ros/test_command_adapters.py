"""Command mapping (ROS-free math) and the real message adapters."""
import numpy as np
import pytest
from geometry_msgs.msg import Twist, TwistStamped
from rclpy.time import Time
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from lewm_ros.ros.command_adapters import CommandAdapter
from lewm_ros.control.command_mapping import CommandMapping

STAMP = Time(seconds=12, nanoseconds=5)
ACTION = np.array([0.5, -0.25])
WIDE = ((-10.0, -10.0), (10.0, 10.0))  # command limits that clip nothing here


def test_twist_maps_fields_with_scales():
    mapping = CommandMapping('twist', ('linear.x', 'angular.z'), (2.0, 4.0), *WIDE)
    msg = CommandAdapter(mapping).build(ACTION, STAMP)
    assert isinstance(msg, Twist)
    assert (msg.linear.x, msg.angular.z, msg.linear.y, msg.angular.x) == (1.0, -1.0, 0.0, 0.0)


def test_twist_stamped_has_header():
    msg = CommandAdapter(CommandMapping('twist_stamped', ('linear.y', 'angular.z'), (1.0, 1.0), *WIDE,
                                        frame_id='base')).build(ACTION, STAMP)
    assert isinstance(msg, TwistStamped)
    assert msg.header.frame_id == 'base' and msg.header.stamp == STAMP.to_msg()
    assert (msg.twist.linear.y, msg.twist.angular.z) == (0.5, -0.25)


def test_float64_multi_array_for_forward_command_controllers():
    msg = CommandAdapter(CommandMapping('float64_multi_array', (), (1.0, 10.0), *WIDE)).build(ACTION, STAMP)
    assert isinstance(msg, Float64MultiArray)
    assert list(msg.data) == [0.5, -2.5] and msg.layout.dim[0].size == 2


def test_joint_trajectory_one_point():
    msg = CommandAdapter(CommandMapping('joint_trajectory', ('j1', 'j2'), (1.0, 1.0), *WIDE,
                                        time_from_start_s=1.25)).build(ACTION, STAMP)
    assert isinstance(msg, JointTrajectory)
    assert msg.joint_names == ['j1', 'j2'] and list(msg.points[0].positions) == [0.5, -0.25]
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (0, 0)  # start now, whatever the clock skew
    assert (msg.points[0].time_from_start.sec, msg.points[0].time_from_start.nanosec) == (1, 250_000_000)


@pytest.mark.parametrize('args, match', [
    (('cmd_vel', ('linear.x',), (1.0,)), 'command_type'),
    (('twist', ('linear.x',), (1.0, 1.0)), 'command_fields'),
    (('twist', ('linear.w', 'angular.z'), (1.0, 1.0)), 'not Twist fields'),
    (('twist', ('linear.x', 'linear.x'), (1.0, 1.0)), 'twice'),
    (('joint_trajectory', ('j1', ''), (1.0, 1.0)), 'joint name'),
    (('twist', ('linear.x', 'angular.z'), (1.0, float('nan'))), 'command_scales'),
])
def test_bad_mappings_name_the_parameter(args, match):
    dims = len(args[2])
    with pytest.raises(ValueError, match=match):
        CommandMapping(*args, (-1.0,) * dims, (1.0,) * dims)


@pytest.mark.parametrize('low, high', [((0.1, -1.0), (1.0, 1.0)), ((-1.0, -1.0), (1.0, -0.5)),
                                       ((-1.0,), (1.0,)), ((-1.0, -1.0), (1.0, float('inf')))])
def test_command_limits_must_be_finite_and_allow_the_stop_command(low, high):
    with pytest.raises(ValueError, match='command_'):
        CommandMapping('twist', ('linear.x', 'angular.z'), (1.0, 1.0), low, high)


def test_limits_bound_the_final_command_and_non_finite_values_become_zero():
    mapping = CommandMapping('float64_multi_array', (), (100.0, -100.0), (-2.0, -3.0), (1.0, 4.0))
    np.testing.assert_array_equal(mapping.values(np.array([1.0, 1.0])), [1.0, -3.0])
    np.testing.assert_array_equal(mapping.values(np.array([np.nan, -np.inf])), [0.0, 0.0])


def test_action_width_mismatch():
    with pytest.raises(ValueError, match='shape'):
        CommandMapping('twist', ('linear.x',), (1.0,), (-1.0,), (1.0,)).values(ACTION)

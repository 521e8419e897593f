"""The recording room: ROS-free writing of rosbag2 bags (``lewm-record``'s core; no ROS imports).

bag_writer: serialized messages -> MCAP bag parts split by size, message definitions from
rosbags' type store of the running distro. The rclpy node is lewm_ros.ros.recorder.
"""
from lewm_ros.recording.bag_writer import BagWriterConfig, SplitBagWriter, running_distro

__all__ = ['BagWriterConfig', 'SplitBagWriter', 'running_distro']

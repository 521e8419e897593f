"""Simulation in the loop: sim_node (a lewm_training MuJoCo task) + the LeWM planner_node.

ros2 launch lewm_ros sim.launch.py                                  # the shipped tworoom model
ros2 launch lewm_ros sim.launch.py task:=pusht                      # the shipped Push-T model
ros2 launch lewm_ros sim.launch.py model_dir:=/path/to/model task:=tworoom mode:=realtime
ros2 launch lewm_ros sim.launch.py model_dir:=/path/to/model mode:=lockstep use_sim_time:=false

sim_node is the side package's console script (pip install -e training), found on PATH.
Wiring: sim camera/image_raw -> camera_topic -> planner image; planner cmd -> cmd_topic -> sim
cmd_vel/command; sim ~/goal_image (latched, one per episode) -> planner ~/goal_image.
Every parameter: config/sim.yaml. The planner comes from planner.launch.py (the robot's launch
file, included): configured and activated on start.
lockstep mode needs use_sim_time:=false (the simulation only advances when a command arrives).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    share = get_package_share_directory('lewm_ros')
    default_params = os.path.join(share, 'config', 'sim.yaml')
    arguments = [
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='Parameters of both nodes (config/sim.yaml).'),
        DeclareLaunchArgument('task', default_value='tworoom',
                              description='Simulated task: tworoom | reacher | pusht.'),
        # declared after 'task': its default is the shipped model of the task
        DeclareLaunchArgument('model_dir', default_value=[os.path.join(share, 'models', ''),
                                                          LaunchConfiguration('task'), '_compact'],
                              description='Model trained on the task (config.json + weights.pt + lewm_meta.json); '
                                          'default: the shipped model of the task, models/<task>_compact.'),
        DeclareLaunchArgument('backend', default_value='torch', description='torch | onnxruntime | tensorrt.'),
        DeclareLaunchArgument('device', default_value='cpu', description='cpu | cuda | cuda:N.'),
        DeclareLaunchArgument('mode', default_value='realtime',
                              description='realtime (wall-clock paced) | lockstep (one env step per command).'),
        DeclareLaunchArgument('use_sim_time', default_value='true',
                              description='Planner on /clock (realtime); false for lockstep.'),
        DeclareLaunchArgument('camera_topic', default_value='camera/image_raw', description='Camera topic.'),
        DeclareLaunchArgument('cmd_topic', default_value='cmd_vel', description='Command topic.'),
    ]
    camera, cmd = LaunchConfiguration('camera_topic'), LaunchConfiguration('cmd_topic')
    sim = Node(
        executable='sim_node',
        name='sim_node',
        output='screen',
        parameters=[LaunchConfiguration('params_file'),
                    {'task': LaunchConfiguration('task'), 'mode': LaunchConfiguration('mode')}],
        remappings=[('camera/image_raw', camera), ('cmd_vel', cmd), ('command', cmd)],
    )
    # the robot's own launch file, on the simulator's topics and its goal image of each episode
    planner = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, 'launch', 'planner.launch.py')),
        launch_arguments={**{name: LaunchConfiguration(name)
                             for name in ('params_file', 'model_dir', 'backend', 'device', 'use_sim_time')},
                          'camera_topic': camera, 'cmd_topic': cmd, 'image_type': 'raw',
                          'goal_topic': 'sim_node/goal_image'}.items())
    return LaunchDescription([*arguments, sim, planner])

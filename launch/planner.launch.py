"""Real robot: the LeWM planner_node as a managed lifecycle node, configured and activated on start.

ros2 launch lewm_ros planner.launch.py model_dir:=/path/to/model backend:=tensorrt device:=cuda \
    camera_topic:=/camera/image_raw cmd_topic:=/cmd_vel
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.conditions import IfCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition


def generate_launch_description():
    default_params = os.path.join(get_package_share_directory('lewm_ros'), 'config', 'planner.yaml')
    arguments = [
        DeclareLaunchArgument('namespace', default_value='', description='Namespace of the node.'),
        DeclareLaunchArgument('node_name', default_value='planner_node', description='Name of the node.'),
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='Parameter file (every parameter: config/planner.yaml).'),
        DeclareLaunchArgument('use_sim_time', default_value='false', description='Use /clock time.'),
        DeclareLaunchArgument('model_dir', description='Model directory (config.json + weights.pt + lewm_meta.json).'),
        DeclareLaunchArgument('backend', default_value='torch', description='torch | onnxruntime | tensorrt.'),
        DeclareLaunchArgument('device', default_value='cpu', description='cpu | cuda | cuda:N.'),
        DeclareLaunchArgument('image_type', default_value='raw', description='raw | compressed camera messages.'),
        DeclareLaunchArgument('camera_topic', default_value='/camera/image_raw', description='Camera topic.'),
        DeclareLaunchArgument('cmd_topic', default_value='/cmd_vel', description='Command topic.'),
        DeclareLaunchArgument('autostart', default_value='true',
                              description='Configure, then activate the node on start.'),
    ]
    planner = LifecycleNode(
        package='lewm_ros',
        executable='planner_node',
        name=LaunchConfiguration('node_name'),
        namespace=LaunchConfiguration('namespace'),
        output='screen',
        parameters=[
            LaunchConfiguration('params_file'),
            {
                'use_sim_time': LaunchConfiguration('use_sim_time'),
                'model_dir': LaunchConfiguration('model_dir'),
                'backend': LaunchConfiguration('backend'),
                'device': LaunchConfiguration('device'),
                'image_type': LaunchConfiguration('image_type'),
            },
        ],
        remappings=[('image', LaunchConfiguration('camera_topic')), ('cmd', LaunchConfiguration('cmd_topic'))],
    )
    autostart = IfCondition(LaunchConfiguration('autostart'))
    configure = EmitEvent(
        event=ChangeState(lifecycle_node_matcher=matches_action(planner), transition_id=Transition.TRANSITION_CONFIGURE),
        condition=autostart,
    )
    activate_when_configured = RegisterEventHandler(
        OnStateTransition(
            target_lifecycle_node=planner,
            start_state='configuring',
            goal_state='inactive',
            entities=[EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(planner),
                                                  transition_id=Transition.TRANSITION_ACTIVATE))],
        ),
        condition=autostart,
    )
    return LaunchDescription([*arguments, planner, activate_when_configured, configure])

"""Real robot: the LeWM planner_node as a managed lifecycle node, configured and activated on start.

ros2 launch lewm_ros planner.launch.py                      # the shipped model, camera/image_raw -> cmd_vel
ros2 launch lewm_ros planner.launch.py model_dir:=/path/to/model backend:=tensorrt device:=cuda \
    namespace:=robot1 camera_topic:=front_camera/image_raw cmd_topic:=cmd_vel

Every argument has a default. Topics are relative, so ``namespace:=`` namespaces them; with
``image_type:=compressed`` the node reads ``<camera_topic>/compressed`` (image_transport naming).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, LogInfo, RegisterEventHandler
from launch.conditions import IfCondition
from launch.events import matches_action
from launch.substitutions import EqualsSubstitution, LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition


SHIPPED_MODEL = 'tworoom_compact'


def generate_launch_description():
    share = get_package_share_directory('lewm_ros')
    default_params = os.path.join(share, 'config', 'planner.yaml')
    shipped_model = os.path.join(share, 'models', SHIPPED_MODEL)
    arguments = [
        DeclareLaunchArgument('namespace', default_value='', description='Namespace of the node.'),
        DeclareLaunchArgument('node_name', default_value='planner_node', description='Name of the node.'),
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='Parameter file (every parameter: config/planner.yaml).'),
        DeclareLaunchArgument('use_sim_time', default_value='false', description='Use /clock time.'),
        DeclareLaunchArgument('model_dir', default_value=shipped_model,
                              description='Model directory (config.json + weights.pt + lewm_meta.json); '
                                          'default: the shipped model.'),
        DeclareLaunchArgument('backend', default_value='torch', description='torch | onnxruntime | tensorrt.'),
        DeclareLaunchArgument('device', default_value='cpu', description='cpu | cuda | cuda:N.'),
        DeclareLaunchArgument('image_type', default_value='raw', description='raw | compressed camera messages.'),
        DeclareLaunchArgument('camera_topic', default_value='camera/image_raw',
                              description='Camera topic (relative names follow namespace).'),
        DeclareLaunchArgument('cmd_topic', default_value='cmd_vel',
                              description='Command topic (relative names follow namespace).'),
        DeclareLaunchArgument('autostart', default_value='true',
                              description='Configure, then activate the node on start.'),
    ]
    camera = LaunchConfiguration('camera_topic')
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
        remappings=[('image', camera), ('image/compressed', [camera, '/compressed']),
                    ('cmd', LaunchConfiguration('cmd_topic'))],
    )
    shipped_note = LogInfo(msg=f'planning with the shipped model {shipped_model} (model_dir:=... to use yours)',
                           condition=IfCondition(EqualsSubstitution(LaunchConfiguration('model_dir'), shipped_model)))
    autostart = IfCondition(LaunchConfiguration('autostart'))
    configure = EmitEvent(
        event=ChangeState(lifecycle_node_matcher=matches_action(planner),
                          transition_id=Transition.TRANSITION_CONFIGURE),
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
    return LaunchDescription([*arguments, shipped_note, planner, activate_when_configured, configure])

"""Simulation in the loop: sim_node (a lewm_training MuJoCo task) + the LeWM planner_node.

ros2 launch lewm_ros sim.launch.py                                  # the shipped tworoom model
ros2 launch lewm_ros sim.launch.py model_dir:=/path/to/model task:=tworoom mode:=realtime
ros2 launch lewm_ros sim.launch.py model_dir:=/path/to/model mode:=lockstep use_sim_time:=false

sim_node is the side package's console script (pip install -e training), found on PATH.
Wiring: sim camera/image_raw -> camera_topic -> planner image; planner cmd -> cmd_topic -> sim
cmd_vel/command; sim ~/goal_image (latched, one per episode) -> planner ~/goal_image.
Every parameter: config/sim.yaml. The planner is configured and activated on start (autostart).
lockstep mode needs use_sim_time:=false (the simulation only advances when a command arrives).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition


def generate_launch_description():
    share = get_package_share_directory('lewm_ros')
    default_params = os.path.join(share, 'config', 'sim.yaml')
    arguments = [
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='Parameters of both nodes (config/sim.yaml).'),
        DeclareLaunchArgument('model_dir', default_value=os.path.join(share, 'models', 'tworoom_compact'),
                              description='Model trained on the task (config.json + weights.pt + lewm_meta.json); '
                                          'default: the shipped tworoom model.'),
        DeclareLaunchArgument('backend', default_value='torch', description='torch | onnxruntime | tensorrt.'),
        DeclareLaunchArgument('device', default_value='cpu', description='cpu | cuda | cuda:N.'),
        DeclareLaunchArgument('task', default_value='tworoom', description='Simulated task: tworoom | reacher.'),
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
    planner = LifecycleNode(
        package='lewm_ros',
        executable='planner_node',
        name='planner_node',
        namespace='',
        output='screen',
        parameters=[LaunchConfiguration('params_file'),
                    {'use_sim_time': LaunchConfiguration('use_sim_time'),
                     'model_dir': LaunchConfiguration('model_dir'),
                     'backend': LaunchConfiguration('backend'),
                     'device': LaunchConfiguration('device')}],
        remappings=[('image', camera), ('image/compressed', [camera, '/compressed']), ('cmd', cmd),
                    ('~/goal_image', 'sim_node/goal_image')],
    )
    configure = EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(planner),
                                            transition_id=Transition.TRANSITION_CONFIGURE))
    activate_when_configured = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=planner, start_state='configuring', goal_state='inactive',
        entities=[EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(planner),
                                              transition_id=Transition.TRANSITION_ACTIVATE))]))
    return LaunchDescription([*arguments, sim, planner, activate_when_configured, configure])

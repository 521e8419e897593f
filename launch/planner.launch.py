"""Real robot: the LeWM planner_node as a managed lifecycle node, configured and activated on start.

ros2 launch lewm_ros planner.launch.py                      # the shipped model, camera/image_raw -> cmd_vel
ros2 launch lewm_ros planner.launch.py model_dir:=/path/to/model backend:=tensorrt device:=cuda \
    namespace:=robot1 camera_topic:=front_camera/image_raw cmd_topic:=cmd_vel

Every argument has a default. camera_topic, cmd_topic and image_type left empty take the topics
of the model's recording (lewm_meta.json ``extra.deployment``, written by ``lewm-train import-bag``
and ``fit``), else camera/image_raw, cmd_vel and raw. Topics are relative, so ``namespace:=``
namespaces them; with a compressed camera the node reads ``<camera_topic>/compressed``
(image_transport naming).
"""
import json
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, LogInfo, OpaqueFunction, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition


SHIPPED_MODEL = 'tworoom_compact'
DEFAULT_TOPICS = {'camera_topic': 'camera/image_raw', 'cmd_topic': 'cmd_vel', 'image_type': 'raw'}


def recorded_topics(model_dir: str) -> dict:
    """The camera / command topics and image type of the model's recording ({} for a simulator
    model or an unreadable file: planner_node reports the file itself at configure)."""
    try:
        with open(os.path.join(model_dir, 'lewm_meta.json')) as handle:
            deployment = json.load(handle).get('extra', {}).get('deployment') or {}
    except (OSError, ValueError, AttributeError):
        return {}
    topics = {'cmd_topic': deployment.get('command_topic'), 'image_type': deployment.get('image_type')}
    camera = deployment.get('camera_topic')
    if camera and deployment.get('image_type') == 'compressed' and camera.endswith('/compressed'):
        camera = camera[:-len('/compressed')]  # the node adds it (image_transport naming)
    topics['camera_topic'] = camera
    return {name: value for name, value in topics.items() if value}


def launch_planner(context):
    """The node, its remappings resolved (argument, else the recording, else DEFAULT_TOPICS), and
    the autostart transitions."""
    value = {name: LaunchConfiguration(name).perform(context)
             for name in ('model_dir', 'camera_topic', 'cmd_topic', 'image_type', 'goal_topic', 'autostart')}
    recorded = recorded_topics(value['model_dir'])
    chosen = {name: value[name] or recorded.get(name) or default for name, default in DEFAULT_TOPICS.items()}
    notes = [f'{name}: {chosen[name]} (from the model\'s recording)' for name in DEFAULT_TOPICS
             if not value[name] and name in recorded]
    if value['model_dir'] == os.path.join(get_package_share_directory('lewm_ros'), 'models', SHIPPED_MODEL):
        notes.append(f"planning with the shipped model {value['model_dir']} (model_dir:=... to use yours)")
    overrides = {name: LaunchConfiguration(name) for name in ('use_sim_time', 'model_dir', 'backend', 'device')}
    if value['image_type']:  # else the node takes it from the model's recording itself
        overrides['image_type'] = value['image_type']
    camera = chosen['camera_topic']
    planner = LifecycleNode(
        package='lewm_ros',
        executable='planner_node',
        name=LaunchConfiguration('node_name'),
        namespace=LaunchConfiguration('namespace'),
        output='screen',
        parameters=[LaunchConfiguration('params_file'), overrides],
        remappings=[('image', camera), ('image/compressed', camera + '/compressed'), ('cmd', chosen['cmd_topic']),
                    *([('~/goal_image', value['goal_topic'])] if value['goal_topic'] else [])],
    )
    if value['autostart'].lower() not in ('true', '1'):
        return [*(LogInfo(msg=note) for note in notes), planner]
    configure = EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(planner),
                                            transition_id=Transition.TRANSITION_CONFIGURE))
    activate_when_configured = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=planner, start_state='configuring', goal_state='inactive',
        entities=[EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(planner),
                                              transition_id=Transition.TRANSITION_ACTIVATE))]))
    return [*(LogInfo(msg=note) for note in notes), planner, activate_when_configured, configure]


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
        DeclareLaunchArgument('image_type', default_value='',
                              description="raw | compressed camera messages; '' = the model's recording, else raw."),
        DeclareLaunchArgument('camera_topic', default_value='',
                              description="Camera topic (relative names follow namespace); '' = the model's "
                                          'recording, else camera/image_raw.'),
        DeclareLaunchArgument('cmd_topic', default_value='',
                              description="Command topic (relative names follow namespace); '' = the model's "
                                          'recording, else cmd_vel.'),
        DeclareLaunchArgument('goal_topic', default_value='',
                              description="Topic of goal images (sensor_msgs/Image); '' = the node's ~/goal_image."),
        DeclareLaunchArgument('autostart', default_value='true',
                              description='Configure, then activate the node on start.'),
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=launch_planner)])

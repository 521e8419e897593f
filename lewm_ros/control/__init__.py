"""ROS-free parts of the control loop: what planner_node runs between the camera and the command.

action_stream (plans -> per-tick actions), planning_worker (the planner thread), safety (the
filter every command passes), command_mapping (action -> command values), node_params (every
parameter, validated), diagnostics (statistics and status text), realtime (process settings).
The rclpy glue around them lives in lewm_ros.ros.
"""

"""rclpy glue only: planner_node, command adapters, message builders, parameter declarations,
the pip-only runner and executor spinning. Everything testable without ROS lives elsewhere."""

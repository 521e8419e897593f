"""Reliability kit: one command per published reliability figure (README "Reliability").

    python -m lewm_training.reliability fuzz          # malformed camera messages into planner_node
    python -m lewm_training.reliability stall         # camera stops -> time to the first zero command
    python -m lewm_training.reliability faults        # planner raises / NaN / 1e9 / hangs -> zero commands
    python -m lewm_training.reliability model-safety  # malicious pickles in weights.pt refused at configure
    python -m lewm_training.reliability resume        # kill -9 during collect / fit -> bit-identical resume
    python -m lewm_training.reliability soak          # sim in the loop for minutes: rate, gaps, RSS

Each command prints one JSON line (``{"check": ..., "passed": ..., ...figures}``) and a human
summary, and exits 0 when the figure holds. Everything runs over real rclpy topics in one ROS
domain (``ROS_DOMAIN_ID``; discovery is kept on this machine unless the environment says
otherwise). Planner faults are injected by wrapping the node's planner object in-process (a fault
injector, not a replacement of the node). Modules: ``common`` (results, waiting, stderr capture),
``rig`` (planner_node + a probe node in one process), one module per check.
"""

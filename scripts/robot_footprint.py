"""Start-up footprint of planner_node in the Python environment that runs this script: import
time, configure time (model, backend, planner, goal) and resident memory after configure, plus
the size of the environment's site-packages. Prints one JSON object.

Usage (README "Install on a robot"), once per environment:
  .venv-robot/bin/python scripts/robot_footprint.py --backend onnxruntime
  .venv/bin/python scripts/robot_footprint.py --backend torch
"""
from __future__ import annotations

import argparse
import json
import os
import site
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _status_mib(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM) [MiB]."""
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(field + ':'):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def _du_mib(path: str) -> float:
    return int(subprocess.run(['du', '-sk', path], capture_output=True, text=True, check=True).stdout.split()[0]) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--backend', default='onnxruntime', choices=('onnxruntime', 'torch'))
    parser.add_argument('--model-dir', default=str(ROOT / 'models' / 'tworoom_compact'))
    parser.add_argument('--threads', type=int, default=2, help='cpu_threads of the node')
    args = parser.parse_args()
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    start = time.perf_counter()
    import rclpy
    from rclpy.parameter import Parameter

    from lewm_ros.ros.planner_node import PlannerNode
    imported = time.perf_counter()
    rclpy.init()
    goal = Path(args.model_dir) / 'goal.png'
    overrides = [Parameter('model_dir', value=args.model_dir), Parameter('backend', value=args.backend),
                 Parameter('cpu_threads', value=args.threads)]
    if goal.is_file():
        overrides.append(Parameter('goal_image_path', value=str(goal)))
    node = PlannerNode(parameter_overrides=overrides)
    created = time.perf_counter()
    result = node.trigger_configure()
    configured = time.perf_counter()
    report = {'python': sys.prefix, 'backend': args.backend, 'configured': str(result),
              'torch_imported': 'torch' in sys.modules, 'import_s': round(imported - start, 3),
              'configure_s': round(configured - created, 3), 'rss_mib': round(_status_mib('VmRSS'), 1),
              'peak_rss_mib': round(_status_mib('VmHWM'), 1),
              'site_packages_mib': round(_du_mib(site.getsitepackages()[0]), 1)}
    node.destroy_node()
    rclpy.shutdown()
    print(json.dumps(report))
    return 0


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env bash
# Set up the environment and run the main job: LeWM closing the loop on a simulated robot
# through real ROS 2 topics. Usage: scripts/demo.sh [lewm-demo args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_env.sh
# shellcheck disable=SC1091
. "${LEWM_VENV:-.venv}/bin/activate"
export MUJOCO_GL=egl
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-42}"
exec lewm-demo "$@"

#!/usr/bin/env bash
# Set up the environment and run the full test suite. Usage: scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_env.sh
# shellcheck disable=SC1091
. "${LEWM_VENV:-.venv}/bin/activate"
export MUJOCO_GL=egl
export LEWM_REQUIRE_ROBOT_VENV=1                  # the torch-free .venv-robot test must run, not skip
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST   # ROS traffic never leaves this machine
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-77}"       # test modules override it per module
ruff check .                                      # the linter (ruff.toml): clean, or no tests
exec python -m pytest test -q -p no:cacheprovider --timeout=600 "$@"

#!/usr/bin/env bash
# Create (or update) the project's virtual environment: CPU torch, ROS 2 wheels, lewm_ros and
# lewm_training installed editable; and beside it the torch-free robot environment (.venv-robot:
# lewm_ros[robot-cpu] + ROS 2 wheels). Idempotent; safe to re-run. Usage: scripts/setup_env.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${LEWM_VENV:-.venv}"
TORCH_VERSION="${LEWM_TORCH:-2.13.0}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV"
  python3 -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
export PIP_DISABLE_PIP_VERSION_CHECK=1

# Headless MuJoCo rendering needs EGL (Mesa); install it when missing and we may.
if ! ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[setup] installing EGL (Mesa) for headless MuJoCo"
    apt-get update -qq && apt-get install -y -qq libegl1 libgl1-mesa-dri >/dev/null
  else
    echo "[setup] WARNING: libEGL not found; install libegl1 + libgl1-mesa-dri for MuJoCo rendering" >&2
  fi
fi

if ! python -c "import sys, torch; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  echo "[setup] installing torch==$TORCH_VERSION (CPU build; pinned on purpose)"
  python -m pip install -q "torch==$TORCH_VERSION"
fi
echo "[setup] installing requirements"
python -m pip install -q -r requirements.txt
# pip's own warnings filtered out of the log; a failed install still fails the script
python -m pip install -q --no-deps --no-build-isolation -e . -e training 2> >(grep -v -i warning >&2)
python -c "import torch, rclpy, mujoco, onnxruntime, lewm_ros, lewm_training"
echo "[setup] ok: $(python -c 'import torch; print("torch", torch.__version__)')"
deactivate

# The light robot install beside it: lewm_ros[robot-cpu] + the ROS wheels, no torch (a test runs
# planner_node in it). Re-pinned by requirements.txt on every run, like .venv.
ROBOT_VENV="${LEWM_ROBOT_VENV:-.venv-robot}"
if [ ! -x "$ROBOT_VENV/bin/python" ]; then
  echo "[setup] creating the torch-free robot environment $ROBOT_VENV (lewm_ros[robot-cpu])"
  python3 -m venv "$ROBOT_VENV"
fi
echo "[setup] installing lewm_ros[robot-cpu] into $ROBOT_VENV"
"$ROBOT_VENV/bin/python" -m pip install -q -c requirements.txt -e ".[robot-cpu]" \
  $(grep -E '^ros-' requirements.txt) 2> >(grep -v -i warning >&2)
if "$ROBOT_VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "[setup] ERROR: $ROBOT_VENV has torch; the robot profile must not" >&2
  exit 1
fi
"$ROBOT_VENV/bin/python" -c "import lewm_ros.ros.planner_node"
echo "[setup] ok: $ROBOT_VENV (no torch)"

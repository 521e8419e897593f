#!/usr/bin/env bash
# The real-robot workflow rehearsed on the simulator through ROS topics only (README "On your robot:
# record, import, train, deploy"). sim_node is "the robot" (camera frames, TwistStamped on cmd_vel,
# like a Jazzy robot); the exploration driver drives it, lewm-record records the topics, then
# import-bag -> fit -> the paper-protocol evaluation of the trained model, beside the random baseline.
#
#   scripts/rehearse.sh [OUT]        # env: EPISODES (default 20), STEPS (fit steps, 300), SPEED (sim
#                                    # speed-up on sim time, 8.0; reacher 2.0), EVAL_EPISODES (10), TASK (tworoom),
#                                    # DEMO_EPISODES (0: no closed loop through planner_node),
#                                    # EVAL_FLAGS (planner flags of lewm-train eval, e.g. "--paper --hold-actions")
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-rehearsal_out}"
EPISODES="${EPISODES:-20}"; STEPS="${STEPS:-300}"
SPEED="${SPEED:-$([ "${TASK:-tworoom}" = reacher ] && echo 2.0 || echo 8.0)}"   # sim steps/s: 10 Hz or 50 Hz x SPEED
EVAL_EPISODES="${EVAL_EPISODES:-10}"; TASK="${TASK:-tworoom}"
# shellcheck disable=SC1091
. "${LEWM_VENV:-.venv}/bin/activate"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST             # ROS traffic never leaves this machine
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-61}"
mkdir -p "$OUT"
NS="/rehearsal_$$"                                          # this run's topics, apart from any other
SIM_TIME=(-p use_sim_time:=true -r "__ns:=$NS")

if [ "$TASK" = reacher ]; then                              # joint torques as Float64MultiArray, dt 0.02 s
  COMMAND=(-p command_type:=float64_multi_array -p control_rate:=50.0); SIM_COMMAND=(-p command_type:=float64_multi_array)
  EXPLORE_FIELDS=(); IMPORT_FIELDS=(); CMD_TOPIC=command
else                                                        # tworoom: (vx, vy) as linear.x, linear.y
  COMMAND=(); SIM_COMMAND=(); EXPLORE_FIELDS=(); IMPORT_FIELDS=(--command-fields linear.x linear.y); CMD_TOPIC=cmd_vel
fi

echo "[rehearse] 1/5 the robot (sim_node, ${SPEED}x on sim time), the driver and the recorder: $EPISODES episodes"
sim_node --ros-args -r "__ns:=$NS" -r /clock:=clock -p task:="$TASK" -p real_time_factor:="$SPEED" \
  "${SIM_COMMAND[@]}" > "$OUT/sim_node.log" 2>&1 &
SIM=$!
lewm-record --camera-topic camera/image_raw --command-topic "$CMD_TOPIC" --topic explorer_node/episode \
  -o "$OUT/bag" --ros-args "${SIM_TIME[@]}" -r /clock:=clock > "$OUT/record.log" 2>&1 &
REC=$!
trap 'kill $SIM $REC 2>/dev/null || true' EXIT
sleep 3
lewm-explore --ros-args "${SIM_TIME[@]}" -r /clock:=clock -r "cmd:=$CMD_TOPIC" -r state:=sim_node/state \
  -p task:="$TASK" -p episodes:="$EPISODES" -p reset_service:=sim_node/reset "${COMMAND[@]}" \
  "${EXPLORE_FIELDS[@]}" > "$OUT/explore.log" 2>&1
sleep 1
kill -TERM $REC; wait $REC || true
kill -TERM $SIM; wait $SIM || true
trap - EXIT

echo "[rehearse] 2/5 import the bag"
lewm-train import-bag "$OUT/bag" --camera-topic "$NS/camera/image_raw" --command-topic "$NS/$CMD_TOPIC" \
  --marker-topic "$NS/explorer_node/episode" "${IMPORT_FIELDS[@]}" --task "$TASK" --out "$OUT/data"

echo "[rehearse] 3/5 train ($STEPS steps)"
lewm-train fit --data "$OUT/data" --out "$OUT/run" --preset compact --steps "$STEPS" --batch-size 32 \
  --threads 2 --checkpoint-every 100 --val-every 100

echo "[rehearse] 4/5 the paper-protocol evaluation of the trained model ($EVAL_EPISODES episodes, random baseline beside)"
# shellcheck disable=SC2086  # EVAL_FLAGS: several flags, split on purpose
lewm-train eval --model-dir "$OUT/run/model" --task "$TASK" --episodes "$EVAL_EPISODES" --out "$OUT/eval.json" \
  ${EVAL_FLAGS:-}

echo "[rehearse] 5/5 the deployment: lewm_meta.json carries what planner_node publishes; closed loop over ROS"
python - "$OUT/run/model" <<'PY'
import sys
from lewm_ros.control.deployment import Deployment
from lewm_ros.model import ModelMetadata
print(Deployment.of_model(ModelMetadata.load(sys.argv[1])))
PY
if [ "${DEMO_EPISODES:-0}" -gt 0 ] && [ "$TASK" = tworoom ]; then   # planner_node <-> sim_node over topics
  lewm-demo --model-dir "$OUT/run/model" --episodes "$DEMO_EPISODES" --headless --out "$OUT/demo"
fi

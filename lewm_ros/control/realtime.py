"""Process settings that keep a Python control timer on time beside a planner thread (no ROS).

Measured on a 2-core machine with a 20 Hz control timer and a planner thread (see
test/ros/test_planner_node.py): at CPython's default 5 ms GIL switch interval every handoff of
the GIL from the planner thread to an executor thread could wait 5 ms, and one executor iteration
takes many handoffs, so the timer fell to 7-10 Hz with periods up to 800 ms. Longest period over
ten 2 s windows: 5 ms interval 1566 ms, 1 ms 141 ms, 0.5 ms 89 ms, 0.2 ms 59 ms (process CPU also
fell, 30-50 % -> 24 %: less spinning on the GIL). A full (generation 2) garbage collection of a
process holding torch took 110 ms and showed as a 180 ms period.
"""
from __future__ import annotations

import gc
import sys

#: Longest time [s] one thread may hold the GIL while another waits (CPython default 0.005).
GIL_SWITCH_INTERVAL_S = 0.0002


def prepare_for_control_loop() -> None:
    """Shorten the GIL switch interval (never lengthens it) and freeze the objects alive now
    (the loaded model, modules, node) out of the garbage collector, so later collections scan
    only what the loops allocate. Call once, after the model is loaded; process-wide."""
    if sys.getswitchinterval() > GIL_SWITCH_INTERVAL_S:
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    gc.collect()
    gc.freeze()

"""Closed-loop episodes scored by the surprise monitor, without ROS (what ``lewm-train surprise
--calibrate`` and ``lewm-train surprise-eval`` run).

One episode: a :class:`~lewm_training.sim_robot.SimRobot` start/goal pair, the MPC planner
executing the first block of every plan, and at every block boundary the planner's
``observe(frame, executed block, score_surprise=True)`` probe -- the score planner_node computes --
handed to a :class:`~lewm_ros.control.surprise_monitor.SurpriseMonitor` (the class the node
runs). A fault (:mod:`lewm_training.faults`) may be injected before the first env step of a
given block. The robot keeps going after an alarm, so the whole score trace is recorded.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lewm_ros.control.surprise_monitor import SurpriseMonitor
from lewm_ros.planning import MPCPlanner
from lewm_training.sim_robot import SimRobot


@dataclass
class SurpriseTrace:
    """One episode: episode index; fault kind ('' = normal) and fault_block (the block whose first
    env step it precedes, -1 = none); per block boundary b = 1..blocks (the frame after block
    b - 1): scores [latent units^2], levels [calibrated units, NaN while warming up], alarms;
    first_alarm: the first alarmed boundary at or after the fault's (None: none), false_alarms:
    alarmed boundaries before it (every one in a normal episode)."""
    episode: int
    fault: str = ''
    fault_block: int = -1
    scores: list[float] = field(default_factory=list)
    levels: list[float] = field(default_factory=list)
    alarms: list[bool] = field(default_factory=list)

    @property
    def first_alarm(self) -> int | None:
        start = self.fault_block + 1 if self.fault else len(self.alarms) + 1
        return next((b for b, alarm in enumerate(self.alarms, start=1) if alarm and b >= start), None)

    @property
    def false_alarms(self) -> int:
        end = self.fault_block + 1 if self.fault else len(self.alarms) + 1
        return sum(alarm for b, alarm in enumerate(self.alarms, start=1) if b < end)

    @property
    def delay_blocks(self) -> int | None:
        """Block boundaries from the fault to the alarm (1 = the first frame after the fault)."""
        first = self.first_alarm
        return None if first is None or not self.fault else first - self.fault_block


def run_episode(robot: SimRobot, planner: MPCPlanner, monitor: SurpriseMonitor, blocks: int,
                fault: str = '', fault_block: int = -1) -> SurpriseTrace:
    """Run one closed-loop episode of ``blocks`` action blocks (see the module docstring)."""
    episode = robot.new_episode()
    planner.reset()
    planner.set_goal(episode.goal_pixels)
    monitor.reset_streak()
    trace = SurpriseTrace(episode=episode.index, fault=fault, fault_block=fault_block if fault else -1)
    planner.observe(robot.frame().pixels, None)
    for block in range(blocks):
        if fault and block == fault_block:
            robot.faults.inject(fault)
        actions = planner.plan().raw_actions[0]                      # (frameskip, A) [raw units]
        for action in actions:
            frame = robot.step(action)
        score = planner.observe(frame.pixels, actions, score_surprise=True)()
        reading = monitor.update(score, tick=(block + 1) * len(actions))
        trace.scores.append(reading.score)
        trace.levels.append(np.nan if reading.level is None else reading.level)
        trace.alarms.append(reading.alarm)
    return trace

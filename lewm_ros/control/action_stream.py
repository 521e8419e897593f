"""Hand-over of plans from the planner thread to the control timer (no ROS imports).

Time is counted in control ticks k (one env step each). A plan computed from the observation
taken at tick k0 (a block boundary) covers ticks k0 .. k0 + H*frameskip - 1; the timer reads
the action for its own tick, so the actions already executed while the planner was thinking are
dropped by construction. Every reset bumps an epoch; a plan observed in an older epoch is
discarded on arrival. All methods are thread-safe and never wait on the planner.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StreamPlan:
    """actions: (H*frameskip, A) float64 [raw units]; start_tick: tick of actions[0];
    stamp_s: when the plan was installed [s]; cost: planner cost of the plan."""
    actions: np.ndarray
    start_tick: int
    stamp_s: float
    cost: float


@dataclass(frozen=True)
class BlockBoundary:
    """What the planner observes at a block boundary: tick k (a multiple of frameskip since the
    epoch start), executed: (frameskip, A) raw actions published during the block just ended
    [raw units], None on the first boundary of an epoch; epoch: reset counter."""
    tick: int
    executed: np.ndarray | None
    epoch: int


class ActionStream:
    """Ticks, executed actions and the current plan (see the module docstring)."""

    def __init__(self, frameskip: int, action_dim: int) -> None:
        self.frameskip, self.action_dim = frameskip, action_dim
        self._lock = threading.Lock()
        self._tick = 0
        self._epoch = 0
        self._block: list[np.ndarray] = []
        self._first_boundary = True
        self._plan: StreamPlan | None = None

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def plan(self) -> StreamPlan | None:
        return self._plan

    def reset(self) -> int:
        """Forget the plan and the executed block; the next boundary is an epoch's first.
        Returns the new epoch."""
        with self._lock:
            self._epoch += 1
            self._tick = 0
            self._block = []
            self._first_boundary = True
            self._plan = None
            return self._epoch

    def current_action(self) -> tuple[np.ndarray | None, float | None]:
        """(action (A,) for the current tick or None when no plan covers it, plan stamp [s] or None)."""
        with self._lock:
            plan = self._plan
            if plan is None:
                return None, None
            index = self._tick - plan.start_tick
            if 0 <= index < len(plan.actions):
                return plan.actions[index].copy(), plan.stamp_s
            return None, plan.stamp_s

    def boundary_due(self) -> BlockBoundary | None:
        """At a block boundary (tick % frameskip == 0) the observation the planner must take now."""
        with self._lock:
            if self._tick % self.frameskip:
                return None
            executed = None if self._first_boundary else np.stack(self._block)
            self._first_boundary = False
            self._block = []
            return BlockBoundary(tick=self._tick, executed=executed, epoch=self._epoch)

    def record(self, executed: np.ndarray) -> None:
        """The action (A,) [raw units] actually published this tick; advances the tick."""
        with self._lock:
            self._block.append(np.asarray(executed, dtype=np.float64).copy())
            self._tick += 1

    def drop_plan(self) -> None:
        """Forget the plan in force (a broken planner): no action until the next plan is installed."""
        with self._lock:
            self._plan = None

    def install(self, raw_actions: np.ndarray, observed: BlockBoundary, stamp_s: float, cost: float) -> bool:
        """raw_actions: (H, frameskip, A) planned from the boundary `observed`. Returns False
        (plan discarded) when a reset happened since that observation."""
        actions = np.asarray(raw_actions, dtype=np.float64).reshape(-1, self.action_dim)
        with self._lock:
            if observed.epoch != self._epoch:
                return False
            self._plan = StreamPlan(actions=actions, start_tick=observed.tick, stamp_s=stamp_s, cost=cost)
            return True

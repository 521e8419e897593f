"""The planner thread: observe at block boundaries, plan, hand plans to the ActionStream (no ROS).

The control timer only submits work (never waits): block-boundary observations, goal images,
parameter changes. The worker applies them in order between plans, so a goal or a
receding_blocks change never lands in the middle of a plan.
"""
from __future__ import annotations

import collections
import logging
import math
import threading
from dataclasses import dataclass
from typing import Protocol
from collections.abc import Callable

import numpy as np

from lewm_ros.control.action_stream import ActionStream, BlockBoundary
from lewm_ros.control.surprise_monitor import SurpriseMonitor, SurpriseReading
from lewm_ros.model.metadata import ModelMetadata

LOG = logging.getLogger(__name__)
#: Transitions at the start of an epoch (after a reset of the planner history) left unscored.
RESTART_UNSCORED = 2


class Planner(Protocol):
    """The part of lewm_ros.planning.MPCPlanner the worker uses (metadata: the model's
    ModelMetadata; its action bounds bound every plan the planner may return)."""
    has_goal: bool
    metadata: ModelMetadata

    def set_goal(self, rgb: np.ndarray) -> None: ...
    def reset(self) -> None: ...
    def observe(self, rgb: np.ndarray, executed_raw_actions: np.ndarray | None,
                score_surprise: bool = False) -> Callable[[], float] | None: ...
    def plan(self): ...


@dataclass(frozen=True)
class PlanReport:
    """One finished plan: raw_actions (H, frameskip, A) float64 [raw units] as installed in the
    ActionStream; latency_s [s] (plan() only); cost; iterations; observed_tick (the boundary it
    planned from); installed (False: a reset made it obsolete, the robot does not execute it);
    disagreement: the world model scored the policy's proposal far above the best sampled plan
    (planner mode policy_cem; see lewm_ros.planning.policy)."""
    raw_actions: np.ndarray
    latency_s: float
    cost: float
    iterations: int
    observed_tick: int
    installed: bool
    disagreement: bool = False


def invalid_plan_reason(raw_actions: np.ndarray, metadata: ModelMetadata) -> str:
    """Why raw_actions (H, frameskip, A) [raw units] cannot come from a working planner, or ''.
    MPCPlanner clips every plan to the model's action bounds, so a non-finite action or one
    outside those bounds (beyond rounding) means the planner is broken, not that it is bold."""
    if raw_actions.ndim != 3 or raw_actions.shape[-1] != metadata.action_dim:
        return f'shape {raw_actions.shape}, expected (H, frameskip, {metadata.action_dim})'
    if not np.all(np.isfinite(raw_actions)):
        return 'non-finite actions'
    low, high = np.asarray(metadata.action_low), np.asarray(metadata.action_high)
    slack = 1e-6 * np.maximum(1.0, np.maximum(np.abs(low), np.abs(high)))
    if np.any(raw_actions < low - slack) or np.any(raw_actions > high + slack):
        return f'actions in [{raw_actions.min():.3g}, {raw_actions.max():.3g}] outside the model bounds ' \
               f'{list(metadata.action_low)}..{list(metadata.action_high)}'
    return ''


class GoalRequest:
    """A goal image (S, S, 3) uint8 waiting for the worker; wait() -> error message or ''."""

    def __init__(self, rgb: np.ndarray) -> None:
        self.rgb = rgb
        self._done = threading.Event()
        self.error = ''

    def finish(self, error: str = '') -> None:
        self.error = error
        self._done.set()

    def wait(self, timeout_s: float) -> str:
        if not self._done.wait(timeout_s):
            return f'goal not applied within {timeout_s:.1f} s (planner busy)'
        return self.error


class PlanningWorker:
    """planner: an MPCPlanner; stream: the ActionStream the timer reads; clock: now [s] on the
    control clock; on_plan: called from the worker thread after each plan; surprise: the
    monitor that scores the observed block boundaries (None: no score), on_surprise: called
    from the worker thread with each reading, right after the plan of the same round (the
    predictor steps never delay a plan; an alarm latches a stop that overrides it). The first
    RESTART_UNSCORED transitions of an epoch are not scored: the first frame may predate the
    restart (the robot was moved while stopped and a frame from before was still the newest),
    and while the robot starts from rest a command applied one step late (a loaded machine)
    changes the block's motion the most; a stale frame further back in the history barely moves
    the prediction. For the same reason a boundary submitted with a late frame (the newest frame,
    not the one captured at the boundary: lewm_ros.control.frame_alignment) is planned from but
    neither the transition into it nor the one out of it is scored: each pairs a block with a
    frame from the wrong time, which inflates the surprise and could latch a surprise stop."""

    def __init__(self, planner: Planner, stream: ActionStream, receding_blocks: int,
                 clock: Callable[[], float], on_plan: Callable[[PlanReport], None],
                 surprise: SurpriseMonitor | None = None,
                 on_surprise: Callable[[SurpriseReading], None] | None = None) -> None:
        self._planner = planner
        self._surprise = surprise
        self._on_surprise = on_surprise
        self._stream = stream
        self._clock = clock
        self._on_plan = on_plan
        self._receding_blocks = receding_blocks
        self._cond = threading.Condition()
        self._queue: collections.deque = collections.deque()
        self._running = False
        self._thread: threading.Thread | None = None
        self._epoch: int | None = None
        self._epoch_frames = 0   # frames observed in this epoch
        self._previous_late = False  # the previous boundary of this epoch came with a late frame
        self._replan = False
        self.errors = 0

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._run, name='lewm_planner', daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop after the current plan (a plan is not interruptible)."""
        with self._cond:
            self._running = False
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                LOG.warning('planner thread still busy after %.1f s; leaving it to finish (daemon)', timeout_s)
        with self._cond:
            pending, self._queue = list(self._queue), collections.deque()
        for item in pending:
            if isinstance(item, GoalRequest):
                item.finish('planner stopped')

    def submit_boundary(self, boundary: BlockBoundary, rgb: np.ndarray, late: bool = False) -> None:
        """rgb: (S, S, 3) uint8 model-size frame seen at the boundary; late: rgb is the newest frame
        after the frame captured at the boundary did not come in time (planned from, not scored)."""
        self._put((boundary, rgb, bool(late)))

    def submit_goal(self, rgb: np.ndarray) -> GoalRequest:
        request = GoalRequest(rgb)
        self._put(request)
        return request

    def set_receding_blocks(self, blocks: int) -> None:
        self._put(('receding_blocks', int(blocks)))

    def _put(self, item) -> None:
        with self._cond:
            self._queue.append(item)
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._running and not self._queue:
                    self._cond.wait()
                if not self._running:
                    return
                items = list(self._queue)
                self._queue.clear()
            probes: list[tuple[int, Callable[[], float]]] = []
            try:
                latest = self._apply(items, probes)
                if latest is not None and self._plan_due(latest):
                    self._plan(latest)
            except Exception:  # a failing plan must not kill the thread: the watchdog stops the robot
                self.errors += 1
                LOG.exception('planning failed; the robot stops when the plan times out')
            try:  # the observed boundaries are scored even when planning failed
                self._score(probes)
            except Exception:
                self.errors += 1
                LOG.exception('surprise reporting failed')

    def _apply(self, items: list, probes: list[tuple[int, Callable[[], float]]]) -> BlockBoundary | None:
        """Apply the queued items in order; the surprise probes of the observed boundaries go to
        ``probes`` as (tick, probe). Returns the newest boundary of the current epoch, or None."""
        latest = None
        for item in items:
            if isinstance(item, GoalRequest):
                try:
                    self._planner.set_goal(item.rgb)
                    self._replan = True
                    item.finish()
                except Exception as exc:
                    item.finish(f'set_goal failed: {exc}')
            elif item[0] == 'receding_blocks':
                self._receding_blocks = item[1]
            else:
                boundary, rgb, late = item
                if boundary.epoch != self._epoch:
                    self._planner.reset()
                    self._epoch = boundary.epoch
                    self._epoch_frames = 0
                    self._previous_late = False
                    if self._surprise is not None:
                        self._surprise.reset_streak()
                score = (self._surprise is not None and self._epoch_frames > RESTART_UNSCORED
                         and not late and not self._previous_late)
                probe = self._planner.observe(rgb, boundary.executed, score_surprise=score)
                self._epoch_frames += 1
                self._previous_late = late
                if probe is not None:
                    probes.append((boundary.tick, probe))
                latest = boundary
        if latest is not None and latest.epoch != self._stream.epoch:
            return None
        return latest

    def _score(self, probes: list[tuple[int, Callable[[], float]]]) -> None:
        """The surprise readings of the observed boundaries, in order, to the monitor and on_surprise."""
        for tick, probe in probes:
            try:
                score = probe()
            except Exception:  # no prediction to trust: the monitor counts it as surprising (fails closed)
                self.errors += 1
                LOG.exception('surprise score failed at tick %d: counted as over the threshold', tick)
                score = math.nan
            reading = self._surprise.update(score, tick)
            if self._on_surprise is not None:
                self._on_surprise(reading)

    def _plan_due(self, latest: BlockBoundary) -> bool:
        if not self._planner.has_goal:
            return False
        plan = self._stream.plan
        if plan is None or self._replan:
            return True
        return latest.tick - plan.start_tick >= self._receding_blocks * self._stream.frameskip

    def _plan(self, observed: BlockBoundary) -> None:
        self._replan = False
        plan = self._planner.plan()
        raw_actions = np.asarray(plan.raw_actions, dtype=np.float64)
        problem = invalid_plan_reason(raw_actions, self._planner.metadata)
        if problem:  # a broken planner: drop the plan in force too, so the robot stops at the next tick
            self.errors += 1
            self._stream.drop_plan()
            LOG.error('planner returned an invalid plan (%s): dropped; the robot stops', problem)
            installed = False
        else:
            installed = self._stream.install(raw_actions, observed, self._clock(), float(plan.cost))
        self._on_plan(PlanReport(raw_actions=raw_actions, latency_s=float(plan.latency_s), cost=float(plan.cost),
                                 iterations=int(plan.iterations), observed_tick=observed.tick,
                                 installed=installed, disagreement=bool(plan.disagreement)))

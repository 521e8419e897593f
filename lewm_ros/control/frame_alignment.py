"""Pairing of block boundaries with the camera frame that shows them (no ROS imports).

The control timer and the camera callback run in different threads, so the newest frame at a
block boundary may show the state one env step before it (a simulator publishes /clock t_k and
then the frame stamped t_k; under load the timer may tick at t_k first). Planning from that
frame, and scoring the surprise of the block just ended against it, is off by one step.

BoundaryFrameAligner pairs each boundary (control tick time t [s], node clock) with the newest
frame at the tick when that frame was captured at or after t - tolerance_s; otherwise with the
first frame captured at or after t - tolerance_s that arrives within max_wait_s. When none
arrives in time, a later control tick submits the boundary with the newest frame and counts a
late frame. Nothing here blocks: a waiting boundary is submitted from the camera callback when
its frame arrives, or from a control tick when the wait expires. At most one boundary waits; a
new boundary submits a waiting one first (newest frame, late), so boundaries stay in tick order.
A reset of the ActionStream (new epoch) drops the waiting boundary; the planner resets its
history at the new epoch's first boundary anyway.

A camera faster than twice the control rate never waits: its newest frame at the tick is at
most one camera period (< tolerance_s, half a control period by default) old.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from collections.abc import Callable

import numpy as np

from lewm_ros.control.action_stream import BlockBoundary

LOG = logging.getLogger(__name__)
#: Seconds between two warnings about late frames (wall clock).
LOG_THROTTLE_S = 2.0


@dataclass(frozen=True)
class _Frame:
    """image: (S, S, 3) uint8 model-size frame; capture_s: capture time [s, node clock]."""
    image: np.ndarray
    capture_s: float


@dataclass(frozen=True)
class _Waiting:
    """A boundary waiting for its frame: tick_s, the control tick time [s, node clock]; the frame
    must be captured at or after target_s [s]; the wait ends at deadline_s [s]."""
    boundary: BlockBoundary
    tick_s: float
    target_s: float
    deadline_s: float


class BoundaryFrameAligner:
    """Submits every block boundary with the frame that shows the state at it (module docstring).

    submit(boundary, image): where a paired boundary goes (PlanningWorker.submit_boundary), called
    with this object's lock held, in tick order, at most once per boundary; image: (S, S, 3) uint8.
    epoch(): the ActionStream's current epoch; a waiting boundary of an older epoch is dropped.
    period_s: control period [s] (> 0); tolerance_s: a frame captured at or after the tick time
    minus this shows the boundary [s] (>= 0, default period_s / 2); max_wait_s: longest wait for
    that frame [s] (>= 0, default period_s; the expiry is noticed at the first control tick at or
    after it); max_stamp_offset_s: a header stamp further than this from the receipt time [s]
    (zero stamps, a camera's own clock) is ignored and the receipt time taken instead (> 0).

    Thread-safe: add_frame (camera callback) and on_tick (control timer) may run concurrently.
    Counters: late_frames (boundaries submitted with the newest frame after the wait), waited
    (boundaries that did not find their frame at the tick), dropped (waiting boundaries dropped
    by a reset, or with no frame at all to submit).
    """

    def __init__(self, submit: Callable[[BlockBoundary, np.ndarray], None], epoch: Callable[[], int],
                 period_s: float, tolerance_s: float | None = None, max_wait_s: float | None = None,
                 max_stamp_offset_s: float = 1.0) -> None:
        tolerance_s = period_s / 2.0 if tolerance_s is None else tolerance_s
        max_wait_s = period_s if max_wait_s is None else max_wait_s
        for name, value, low_ok in (('period_s', period_s, False), ('tolerance_s', tolerance_s, True),
                                    ('max_wait_s', max_wait_s, True),
                                    ('max_stamp_offset_s', max_stamp_offset_s, False)):
            if not (math.isfinite(value) and (value >= 0.0 if low_ok else value > 0.0)):
                raise ValueError(f'{name}={value} must be a finite number {">=" if low_ok else ">"} 0 [s]')
        self._submit = submit
        self._epoch = epoch
        self.period_s, self.tolerance_s, self.max_wait_s = period_s, tolerance_s, max_wait_s
        self.max_stamp_offset_s = max_stamp_offset_s
        self._lock = threading.Lock()
        self._newest: _Frame | None = None
        self._waiting: _Waiting | None = None
        self._last_warning = -math.inf
        self.late_frames = 0
        self.waited = 0
        self.dropped = 0

    @property
    def waiting(self) -> BlockBoundary | None:
        """The boundary waiting for its frame, or None."""
        waiting = self._waiting
        return None if waiting is None else waiting.boundary

    def capture_time(self, receipt_s: float, stamp_s: float) -> float:
        """The capture time [s, node clock] of a frame received at receipt_s [s, node clock] with
        header stamp stamp_s [s]: the stamp when set (> 0) and within max_stamp_offset_s of the
        receipt time, else the receipt time."""
        if stamp_s > 0.0 and abs(stamp_s - receipt_s) <= self.max_stamp_offset_s:
            return stamp_s
        return receipt_s

    def add_frame(self, image: np.ndarray, receipt_s: float, stamp_s: float) -> None:
        """Camera callback: image (S, S, 3) uint8 model-size frame, received at receipt_s [s, node
        clock], header stamp stamp_s [s]. Submits the waiting boundary when this frame shows it."""
        frame = _Frame(image, self.capture_time(receipt_s, stamp_s))
        with self._lock:
            self._newest = frame
            self._drop_old_epoch()
            waiting = self._waiting
            if waiting is not None and frame.capture_s >= waiting.target_s:
                self._waiting = None
                self._submit(waiting.boundary, frame.image)

    def on_tick(self, now_s: float, boundary: BlockBoundary | None) -> None:
        """Control timer, every tick: now_s [s, node clock]; boundary: the one due at this tick
        (ActionStream.boundary_due) or None. Ends an expired wait (or one the new boundary
        supersedes) with the newest frame, then submits the new boundary or lets it wait."""
        with self._lock:
            self._drop_old_epoch()
            waiting = self._waiting
            if waiting is not None and (boundary is not None or now_s >= waiting.deadline_s
                                        or now_s < waiting.tick_s):  # (a clock that went back: stop waiting)
                self._waiting = None
                self._fall_back(waiting, now_s)
            if boundary is None:
                return
            target_s = now_s - self.tolerance_s
            newest = self._newest
            if newest is not None and newest.capture_s >= target_s:
                self._submit(boundary, newest.image)
                return
            self.waited += 1
            self._waiting = _Waiting(boundary, now_s, target_s, now_s + self.max_wait_s)

    def _drop_old_epoch(self) -> None:
        """(lock held) Drop a waiting boundary from before a reset of the stream."""
        if self._waiting is not None and self._waiting.boundary.epoch != self._epoch():
            self._waiting = None
            self.dropped += 1

    def _fall_back(self, waiting: _Waiting, now_s: float) -> None:
        """(lock held) Submit a boundary whose frame did not come with the newest frame (late)."""
        newest = self._newest
        if newest is None:  # no frame at all yet: nothing to observe
            self.dropped += 1
            return
        self.late_frames += 1
        self._submit(waiting.boundary, newest.image)
        wall = time.monotonic()
        if wall - self._last_warning >= LOG_THROTTLE_S:
            self._last_warning = wall
            LOG.warning('block boundary at tick %d (%.3f s): no camera frame captured after %.3f s arrived within '
                        '%.3f s; planned from the newest frame, captured %.3f s before the boundary (%d late '
                        'frames so far)', waiting.boundary.tick, waiting.tick_s, waiting.target_s,
                        now_s - waiting.tick_s, waiting.tick_s - newest.capture_s, self.late_frames)

"""Pairing of block boundaries with the camera frame that shows them (no ROS imports).

The control timer and the camera callback run in different threads, so the newest frame at a
block boundary may show the state one env step before it (a simulator publishes /clock t_k and
then the frame stamped t_k; under load the timer may tick at t_k first). Planning from that
frame, and scoring the surprise of the block just ended against it, is off by one step.

BoundaryFrameAligner pairs each boundary (control tick time t [s], node clock) with the newest
frame at the tick when that frame was captured at or after t - tolerance_s; otherwise with the
first frame captured at or after t - tolerance_s that arrives within wait_ticks control ticks.
When none arrives in time, the wait_ticks-th control tick after the boundary's (or an earlier one
that comes wait_ticks - 1/2 periods after it: a timer that skipped ticks) submits the boundary
with the newest frame, flagged late and counted (late_frames). The wait is counted in ticks, not
compared with a deadline in seconds: on sim time t_k + period often rounds above t_{k+1}.
Nothing here blocks: a waiting boundary is submitted from the camera callback when its frame
arrives, or from a control tick when the wait ends. At most one boundary waits; a new boundary
submits a waiting one first (newest frame, late), so boundaries stay in tick order. A reset of
the ActionStream (new epoch) drops the waiting boundary; the planner resets its history at the
new epoch's first boundary anyway. wait_ticks 0 switches the alignment off: every boundary goes
with the newest frame at its tick, never late (the behaviour before this module).

Capture times: the header stamp (exposure time), when set and within max_stamp_offset_s of the
receipt time, else the receipt time. A camera delivers each frame some time after its stamp
(exposure, readout, transport), or stamps on a clock offset from the node's; compared as they
are, such stamps would make every boundary wait and fall back to the newest frame anyway. So the
stamps are compared with the camera's typical stamp-to-receipt delay added: the running median of
receipt - stamp over the last DELAY_WINDOW frames, never below 0 (a simulator's frame may arrive
before the node's /clock reaches its stamp; its stamp is then the truth). A frame then counts as
the boundary's when it is as fresh at the tick as this camera delivers them; only a frame that
came later than usual (or a timer that ticked before it) makes the boundary wait.

A camera faster than twice the control rate never waits: its newest frame at the tick is at
most one camera period (< tolerance_s, half a control period by default) old.
"""
from __future__ import annotations

import collections
import logging
import math
import statistics
import threading
import time
from dataclasses import dataclass
from collections.abc import Callable

import numpy as np

from lewm_ros.control.action_stream import BlockBoundary
from lewm_ros.validation import check_int, check_number, check_positive

LOG = logging.getLogger(__name__)
#: Seconds between two warnings about late frames (wall clock).
LOG_THROTTLE_S = 2.0
#: Frames in the running median of the camera's stamp-to-receipt delay.
DELAY_WINDOW = 31


@dataclass(frozen=True)
class _Frame:
    """image: (S, S, 3) uint8 model-size frame; capture_s: capture time [s, node clock], the
    camera's typical stamp-to-receipt delay added (module docstring)."""
    image: np.ndarray
    capture_s: float


@dataclass(frozen=True)
class _Waiting:
    """A boundary waiting for its frame: tick_s, the control tick time [s, node clock]; the frame
    must be captured at or after target_s [s]; the wait ends at the control tick numbered
    deadline_tick, or at the first tick at or after deadline_s [s]."""
    boundary: BlockBoundary
    tick_s: float
    target_s: float
    deadline_tick: int
    deadline_s: float


class BoundaryFrameAligner:
    """Submits every block boundary with the frame that shows the state at it (module docstring).

    submit(boundary, image, late): where a paired boundary goes (PlanningWorker.submit_boundary),
    called with this object's lock held, in tick order, at most once per boundary; image:
    (S, S, 3) uint8; late: True when the frame showing the boundary did not come in time and
    image is the newest frame instead.
    epoch(): the ActionStream's current epoch; a waiting boundary of an older epoch is dropped.
    period_s: control period [s] (> 0); wait_ticks: longest wait for the boundary's frame in
    control ticks (>= 0; 0: no alignment, the newest frame at the tick); tolerance_s: a frame
    captured at or after the tick time minus this shows the boundary [s] (>= 0, default
    period_s / 2); max_stamp_offset_s: a header stamp further than this from the receipt time [s]
    (zero stamps, a camera's own clock) is ignored and the receipt time taken instead (> 0).

    Thread-safe: add_frame (camera callback) and on_tick (control timer) may run concurrently.
    Counters: late_frames (boundaries submitted late, with the newest frame), waited (boundaries
    that did not find their frame at the tick), dropped (waiting boundaries dropped by a reset,
    or boundaries with no frame at all to submit); stamp_delay_s: the camera's typical
    stamp-to-receipt delay [s] now added to the stamps.
    """

    def __init__(self, submit: Callable[[BlockBoundary, np.ndarray, bool], None], epoch: Callable[[], int],
                 period_s: float, wait_ticks: int = 1, tolerance_s: float | None = None,
                 max_stamp_offset_s: float = 1.0) -> None:
        tolerance_s = period_s / 2.0 if tolerance_s is None else tolerance_s
        check_positive('period_s', period_s)
        check_number('tolerance_s', tolerance_s, minimum=0.0)
        check_positive('max_stamp_offset_s', max_stamp_offset_s)
        check_int('wait_ticks', wait_ticks, 0)
        self._submit = submit
        self._epoch = epoch
        self.period_s, self.wait_ticks, self.tolerance_s = period_s, wait_ticks, tolerance_s
        self.max_stamp_offset_s = max_stamp_offset_s
        self._lock = threading.Lock()
        self._newest: _Frame | None = None
        self._waiting: _Waiting | None = None
        self._ticks = 0
        self._delays: collections.deque[float] = collections.deque(maxlen=DELAY_WINDOW)
        self._last_warning = -math.inf
        self.stamp_delay_s = 0.0
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
        header stamp stamp_s [s]: the stamp plus stamp_delay_s when the stamp is set (> 0) and
        within max_stamp_offset_s of the receipt time, else the receipt time."""
        if self._stamp_valid(receipt_s, stamp_s):
            return stamp_s + self.stamp_delay_s
        return receipt_s

    def _stamp_valid(self, receipt_s: float, stamp_s: float) -> bool:
        return stamp_s > 0.0 and abs(stamp_s - receipt_s) <= self.max_stamp_offset_s

    def add_frame(self, image: np.ndarray, receipt_s: float, stamp_s: float) -> float:
        """Camera callback: image (S, S, 3) uint8 model-size frame, received at receipt_s [s, node
        clock], header stamp stamp_s [s]. Submits the waiting boundary when this frame shows it.
        Returns the frame's capture time [s] as compared with the boundaries (capture_time)."""
        with self._lock:
            if self._stamp_valid(receipt_s, stamp_s):
                self._delays.append(receipt_s - stamp_s)
                self.stamp_delay_s = max(0.0, statistics.median(self._delays))
            frame = _Frame(image, self.capture_time(receipt_s, stamp_s))
            self._newest = frame
            self._drop_old_epoch()
            waiting = self._waiting
            if waiting is not None and frame.capture_s >= waiting.target_s:
                self._waiting = None
                self._submit(waiting.boundary, frame.image, False)
            return frame.capture_s

    def on_tick(self, now_s: float, boundary: BlockBoundary | None) -> None:
        """Control timer, every tick: now_s [s, node clock]; boundary: the one due at this tick
        (ActionStream.boundary_due) or None. Ends a wait that is over (or one the new boundary
        supersedes) with the newest frame, then submits the new boundary or lets it wait."""
        with self._lock:
            self._ticks += 1
            self._drop_old_epoch()
            waiting = self._waiting
            if waiting is not None and (boundary is not None or self._ticks >= waiting.deadline_tick
                                        or now_s >= waiting.deadline_s
                                        or now_s < waiting.tick_s):  # (a clock that went back: stop waiting)
                self._waiting = None
                self._fall_back(waiting, now_s)
            if boundary is None:
                return
            target_s = now_s - self.tolerance_s
            newest = self._newest
            if newest is not None and (self.wait_ticks == 0 or newest.capture_s >= target_s):
                self._submit(boundary, newest.image, False)
                return
            if self.wait_ticks == 0:  # no alignment and no frame at all yet: nothing to observe
                self.dropped += 1
                return
            self.waited += 1
            self._waiting = _Waiting(boundary, now_s, target_s, self._ticks + self.wait_ticks,
                                     now_s + (self.wait_ticks - 0.5) * self.period_s)

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
        self._submit(waiting.boundary, newest.image, True)
        wall = time.monotonic()
        if wall - self._last_warning >= LOG_THROTTLE_S:
            self._last_warning = wall
            LOG.warning('block boundary at tick %d (%.3f s): no camera frame captured after %.3f s arrived within '
                        '%.3f s (camera stamp-to-receipt delay %.3f s added to the stamps); planned from the newest '
                        'frame, captured %.3f s before the boundary, and not scored for surprise (%d late frames '
                        'so far)', waiting.boundary.tick, waiting.tick_s, waiting.target_s, now_s - waiting.tick_s,
                        self.stamp_delay_s, waiting.tick_s - newest.capture_s, self.late_frames)

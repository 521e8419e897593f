"""What /diagnostics says, without ROS: latency percentiles, event rates, the planner's counters
and the status text (lewm_ros.ros.messages turns a DiagnosticsReport into a message)."""
from __future__ import annotations

import collections
import threading
from dataclasses import dataclass

import numpy as np

from lewm_ros.control.safety import LATCHED, SafetyState
from lewm_ros.control.surprise_monitor import SurpriseStatus


class LatencyStats:
    """The last `window` durations [s]; percentiles in [s]."""

    def __init__(self, window: int = 200) -> None:
        self._values: collections.deque[float] = collections.deque(maxlen=window)
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._values.append(float(seconds))

    def percentile(self, q: float) -> float | None:
        """q in [0, 100]; None before the first sample."""
        with self._lock:
            return float(np.percentile(self._values, q)) if self._values else None

    def __len__(self) -> int:
        return len(self._values)


class RateMeter:
    """Event rate [Hz] over the events of the last `horizon_s` seconds (stamps from one clock [s])."""

    def __init__(self, horizon_s: float = 5.0) -> None:
        self._stamps: collections.deque[float] = collections.deque()
        self._horizon = horizon_s
        self._lock = threading.Lock()

    def tick(self, now_s: float) -> None:
        with self._lock:
            self._stamps.append(now_s)
            while self._stamps and now_s - self._stamps[0] > self._horizon:
                self._stamps.popleft()

    def rate_hz(self) -> float:
        with self._lock:
            if len(self._stamps) < 2:
                return 0.0
            return (len(self._stamps) - 1) / max(self._stamps[-1] - self._stamps[0], 1e-9)


def fmt(value: float | None, scale: float = 1.0, digits: int = 1) -> str:
    """A diagnostics value string: 'n/a' for None."""
    return 'n/a' if value is None else f'{value * scale:.{digits}f}'


@dataclass(frozen=True)
class DiagnosticsReport:
    """One /diagnostics status, ROS-free: level 'ok' | 'warn' | 'error'; message; values:
    key -> text (the KeyValue pairs)."""
    level: str
    message: str
    values: dict[str, str]


class PlannerStats:
    """What planner_node counts for /diagnostics: plan latency and rate, control rate, the last
    plan cost, camera images received and dropped (with the last drop reason), and the plans on
    which the goal-conditioned policy and the world model disagreed (planner mode policy_cem:
    in all, and the share of the last ``window`` plans). Thread-safe enough for counters written
    by one callback group and read by another."""

    def __init__(self, window: int = 200) -> None:
        self.plan_latency = LatencyStats(window)
        self.plan_rate, self.control_rate = RateMeter(), RateMeter()
        self.last_cost: float | None = None
        self.images_received = 0
        self.images_dropped = 0
        self.last_drop_reason = ''
        self.disagreements = 0
        self._recent_disagreements: collections.deque[bool] = collections.deque(maxlen=window)

    def plan_finished(self, latency_s: float, cost: float, now_s: float, disagreement: bool = False) -> None:
        self.plan_latency.add(latency_s)
        self.plan_rate.tick(now_s)
        self.last_cost = cost
        self.disagreements += int(disagreement)
        self._recent_disagreements.append(bool(disagreement))

    def recent_disagreement_share(self) -> float | None:
        """Share [0, 1] of the last ``window`` plans that were disagreements; None before a plan."""
        recent = list(self._recent_disagreements)
        return sum(recent) / len(recent) if recent else None

    def image_received(self) -> None:
        self.images_received += 1

    def image_dropped(self, reason: str) -> None:
        self.images_dropped += 1
        self.last_drop_reason = reason

    def report(self, safety_state: SafetyState | None, image_age_s: float | None, backend: str, model: str,
               planner_mode: str, planner_errors: int, surprise: SurpriseStatus | None = None,
               boundary_frames_late: int = 0, boundary_frames_waited: int = 0) -> DiagnosticsReport:
        """safety_state: None while the node is inactive; image_age_s [s] of the newest frame;
        planner_mode: the mode the planner runs (planner.mode 'auto' resolved);
        surprise: the surprise monitor's status (None: no monitor); boundary_frames_late: block
        boundaries planned from the newest frame because the frame showing them came too late
        (lewm_ros.control.frame_alignment); boundary_frames_waited: block boundaries that waited for
        their frame (it came after the tick: in time, or late). A surprise alarm raises the level
        (WARN, or ERROR for a stop) and puts its reason in the message."""
        level = 'ok' if safety_state is SafetyState.OK else 'error' if safety_state in LATCHED else 'warn'
        state = safety_state.value if safety_state is not None else 'inactive'
        message = state
        if surprise is not None and surprise.reason:
            level = max(level, surprise.level, key=('ok', 'warn', 'error').index)
            message = f'{state}: {surprise.reason}'
        values = {
            'plan_latency_p50_ms': fmt(self.plan_latency.percentile(50), 1e3),
            'plan_latency_p99_ms': fmt(self.plan_latency.percentile(99), 1e3),
            'planning_rate_hz': fmt(self.plan_rate.rate_hz(), digits=2),
            'control_rate_hz': fmt(self.control_rate.rate_hz(), digits=2),
            'image_age_s': fmt(image_age_s, digits=3),
            'last_cost': fmt(self.last_cost, digits=4),
            'backend': backend,
            'model': model,
            'planner_mode': planner_mode,
            'safety_state': state,
            'images_received': str(self.images_received),
            'images_dropped': str(self.images_dropped),
            'last_drop_reason': self.last_drop_reason,
            'planner_errors': str(planner_errors),
            'boundary_frames_late': str(boundary_frames_late),
            'boundary_frames_waited': str(boundary_frames_waited),
            'policy_disagreements': str(self.disagreements),
            'policy_disagreements_recent_pct': fmt(self.recent_disagreement_share(), 100.0),
            **(surprise.values if surprise is not None else {}),
        }
        return DiagnosticsReport(level=level, message=message, values=values)

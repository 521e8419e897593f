"""Running statistics for /diagnostics: latency percentiles and event rates (no ROS imports)."""
from __future__ import annotations

import collections
import threading

import numpy as np


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

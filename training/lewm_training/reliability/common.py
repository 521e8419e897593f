"""What every reliability check shares: its result, waiting, stderr capture, process memory."""
from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterator

import numpy as np

REPO = Path(__file__).resolve().parents[3]
SHIPPED_MODEL = REPO / 'models' / 'tworoom_compact'


def ros_environment() -> None:
    """Keep DDS discovery on this machine unless the caller chose otherwise (before rclpy loads)."""
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    os.environ.setdefault('MUJOCO_GL', 'egl')


@dataclass
class CheckResult:
    """check: the command's name; passed: whether the figure holds; figures: the measured
    values (JSON-serialisable); summary: lines for a human; failures: why it did not hold."""
    check: str
    figures: dict[str, Any] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def require(self, condition: bool, failure: str) -> None:
        if not condition:
            self.failures.append(failure)

    def json_line(self) -> str:
        return json.dumps({'check': self.check, 'passed': self.passed, **self.figures,
                           'failures': self.failures}, sort_keys=False, default=_jsonable)

    def emit(self, stream=None) -> None:
        """The JSON line, then the summary (and the failures) for a human, on stream (stdout)."""
        stream = stream or sys.stdout
        print(self.json_line(), file=stream)
        for line in self.summary:
            print(f'  {line}', file=stream)
        print(f'  => {self.check}: ' + ('PASS' if self.passed else 'FAIL: ' + '; '.join(self.failures)),
              file=stream, flush=True)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def wait_for(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.01) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(poll_s)
    return bool(predicate())


def rss_mb(pid: int | None = None) -> float:
    """Resident set size [MiB] of a process (this one by default), from /proc."""
    status = Path(f'/proc/{pid or os.getpid()}/status').read_text()
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith('VmRSS:'))
    return kib / 1024.0


def interval_stats(stamps: np.ndarray) -> dict[str, float]:
    """stamps: (n,) arrival times [s], n >= 2 -> rate [Hz] and gap percentiles [s]."""
    gaps = np.diff(np.asarray(stamps, dtype=np.float64))
    if gaps.size == 0:
        return {'rate_hz': 0.0, 'gap_p50_s': float('nan'), 'gap_p99_s': float('nan'), 'gap_max_s': float('nan')}
    return {'rate_hz': float(gaps.size / max(stamps[-1] - stamps[0], 1e-9)),
            'gap_p50_s': float(np.percentile(gaps, 50)), 'gap_p99_s': float(np.percentile(gaps, 99)),
            'gap_max_s': float(gaps.max())}


@contextlib.contextmanager
def captured_stderr() -> Iterator[Callable[[], str]]:
    """Capture file descriptor 2 (rcutils logs write there, not to sys.stderr); yields a reader."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode='w+b') as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lambda: (sink.seek(0), sink.read().decode(errors='replace'))[1]
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)

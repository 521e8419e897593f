"""Progress of a TensorRT engine build, through Python logging (no TensorRT import).

A build takes from seconds to many minutes (a Jetson, a large graph) and TensorRT says nothing
meanwhile. :class:`BuildProgress` logs the start (which graph, which precision), then every
``interval_s`` the elapsed time and the builder's current phase, then the end with the build
time (or the failure). :func:`progress_monitor` adapts it to TensorRT's ``IProgressMonitor``
(TensorRT 10 and 11), which reports the builder's phases and steps; without it the heartbeat
still logs the elapsed time.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any
from collections.abc import Callable

_LOG = logging.getLogger(__name__)

#: Seconds between two "still building" log lines.
DEFAULT_INTERVAL_S = 10.0


class BuildProgress:
    """Context manager logging one engine build.

    label: the graph (e.g. 'rollout_cost_k3 (/path/rollout_cost_k3.onnx)'); precision: 'fp16' |
    'fp32'; interval_s: heartbeat period [s] (> 0); logger: where the lines go; clock: seconds
    (monotonic). The phase callbacks may come from TensorRT's internal threads (a lock guards
    the state).
    """

    def __init__(self, label: str, precision: str, interval_s: float = DEFAULT_INTERVAL_S,
                 logger: logging.Logger = _LOG, clock: Callable[[], float] = time.monotonic) -> None:
        if not interval_s > 0:
            raise ValueError(f'interval_s={interval_s!r} is out of range; allowed: a number > 0')
        self.label, self.precision, self.interval_s = label, precision, float(interval_s)
        self.log, self.clock = logger, clock
        self._lock = threading.Lock()
        self._phases: dict[str, list[int]] = {}   # phase -> [steps done, steps], in start order
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started = 0.0

    # ----- the build -----------------------------------------------------------------------
    def __enter__(self) -> BuildProgress:
        self.started = self.clock()
        self.log.info('building TensorRT %s engine for %s (this can take minutes)', self.precision, self.label)
        self._thread = threading.Thread(target=self._heartbeat, name='lewm-trt-build-progress', daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if exc_type is None:
            self.log.info('built TensorRT %s engine for %s in %.1f s', self.precision, self.label, self.elapsed())
        else:
            self.log.error('TensorRT %s engine build for %s failed after %.1f s: %s', self.precision, self.label,
                           self.elapsed(), exc)

    def elapsed(self) -> float:
        """Seconds since the build started."""
        return self.clock() - self.started

    def status(self) -> str:
        """The innermost running phase with its step count, e.g. "phase 'Tactic selection' step
        12/40", or '' before the first phase."""
        with self._lock:
            if not self._phases:
                return ''
            name, (done, total) = next(reversed(self._phases.items()))
        return f'phase {name!r} step {done}/{total}'

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.interval_s):
            status = self.status()
            self.log.info('still building TensorRT %s engine for %s: %.0f s elapsed%s', self.precision, self.label,
                          self.elapsed(), f', {status}' if status else '')

    # ----- IProgressMonitor callbacks ------------------------------------------------------
    def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
        with self._lock:
            self._phases[phase_name] = [0, int(num_steps)]
        level = logging.INFO if parent_phase is None else logging.DEBUG
        self.log.log(level, 'TensorRT build of %s: phase %r started (%d steps)', self.label, phase_name, num_steps)

    def step_complete(self, phase_name: str, step: int) -> bool:
        with self._lock:
            if phase_name in self._phases:
                self._phases[phase_name][0] = int(step) + 1
        return True   # never cancel the build

    def phase_finish(self, phase_name: str) -> None:
        with self._lock:
            self._phases.pop(phase_name, None)


def progress_monitor(trt: Any, progress: BuildProgress) -> Any:
    """A ``trt.IProgressMonitor`` forwarding the builder's phases to ``progress`` (assign it to
    ``IBuilderConfig.progress_monitor`` and keep it alive until the build returns)."""

    class Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            progress.phase_start(phase_name, parent_phase, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            return progress.step_complete(phase_name, step)

        def phase_finish(self, phase_name: str) -> None:
            progress.phase_finish(phase_name)

    return Monitor()

"""The thread that steps a :class:`~lewm_training.sim_robot.SimRobot` (ROS-free core of ``sim_node``).

Two modes: ``'realtime'`` (one step every ``dt / real_time_factor`` seconds of wall time with the
newest command, zero-order hold, zero action once the newest command is older than
``command_timeout_s``) or ``'lockstep'`` (exactly one step per submitted command: the simulation
never runs ahead of the controller). Every MuJoCo call (physics and the EGL renderer, whose GL
context belongs to one thread) happens on that thread; ROS callbacks only hand it commands and
reset requests.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from collections.abc import Callable

import numpy as np

from lewm_training.sim_robot import Episode, Frame, SimRobot

LOG = logging.getLogger(__name__)

LOCKSTEP_QUEUE = 1000
"""Commands buffered in lockstep mode before new ones are dropped (with a warning)."""


@dataclass
class _Reset:
    done: threading.Event
    episode: Episode | None = None
    error: str = ''


class SimLoop:
    """The thread that steps a SimRobot (see the module docstring for the two modes).

    on_episode(Episode) is called after every reset (the first one at start), then
    on_frame(Frame) with the start frame; on_frame(Frame) after every env step. Both run on
    the loop thread. ``clock`` is the wall clock [s] used for pacing and command age.
    """

    def __init__(self, robot: SimRobot, on_frame: Callable[[Frame], None],
                 on_episode: Callable[[Episode], None], clock: Callable[[], float] = time.monotonic) -> None:
        self.robot = robot
        self.mode = robot.config.mode
        self.period_s = robot.dt / robot.config.real_time_factor
        self.command_timeout_s = robot.config.command_timeout
        self._on_frame = on_frame
        self._on_episode = on_episode
        self._clock = clock
        self._lock = threading.Lock()
        self._latest: tuple[np.ndarray, float] | None = None  # realtime: (action, received [s])
        self._commands: queue.Queue = queue.Queue(maxsize=LOCKSTEP_QUEUE)  # lockstep: actions and _Reset
        self._resets: list[_Reset] = []  # realtime: pending reset requests
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.steps = 0
        self.dropped_commands = 0
        self.error: BaseException | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError('SimLoop already started')
        self._thread = threading.Thread(target=self._run, name='sim_loop', daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and close the task (its GL context) on it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                LOG.error('sim loop thread did not stop within %.1f s', timeout_s)

    def submit_command(self, action: np.ndarray) -> None:
        """A raw action (A,) from the controller: realtime keeps the newest, lockstep queues it."""
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (self.robot.action_dim,):
            raise ValueError(f'command has {action.shape[0]} values, the task action_dim is {self.robot.action_dim}')
        if self.mode == 'realtime':
            with self._lock:
                self._latest = (action, self._clock())
            return
        try:
            self._commands.put_nowait(action)
        except queue.Full:
            self.dropped_commands += 1
            LOG.warning('lockstep command queue full (%d): command dropped', LOCKSTEP_QUEUE)

    def request_reset(self, timeout_s: float = 10.0) -> Episode:
        """Start the next episode (between two env steps); blocks until done. RuntimeError on failure."""
        request = _Reset(threading.Event())
        if self.mode == 'realtime':
            with self._lock:
                self._resets.append(request)
        else:
            self._commands.put(request, timeout=timeout_s)
        if not request.done.wait(timeout_s):
            raise RuntimeError(f'reset not done within {timeout_s} s (is the sim loop running?)')
        if request.episode is None:
            raise RuntimeError(f'reset failed: {request.error}')
        return request.episode

    # ------------------------------------------------------------------ loop thread
    def _run(self) -> None:
        try:
            self._reset()
            if self.mode == 'realtime':
                self._run_realtime()
            else:
                self._run_lockstep()
        except BaseException as exc:  # reported, never swallowed: the node checks loop.error
            self.error = exc
            LOG.exception('sim loop stopped on an error')
        finally:
            self.robot.close()
            for request in self._pending_resets():
                request.error = 'sim loop stopped'
                request.done.set()

    def _pending_resets(self) -> list[_Reset]:
        with self._lock:
            pending, self._resets = self._resets, []
        while True:
            try:
                item = self._commands.get_nowait()
            except queue.Empty:
                return pending
            if isinstance(item, _Reset):
                pending.append(item)

    def _reset(self, request: _Reset | None = None) -> None:
        try:
            episode = self.robot.new_episode()
        except Exception as exc:
            if request is None:
                raise
            request.error = str(exc)
            request.done.set()
            return
        self._on_episode(episode)
        self._on_frame(self.robot.frame())
        if request is not None:
            request.episode = episode
            request.done.set()

    def _run_realtime(self) -> None:
        next_tick = self._clock() + self.period_s
        while not self._stop.is_set():
            delay = next_tick - self._clock()
            if delay > 0 and self._stop.wait(delay):
                return
            now = self._clock()
            # A late tick is taken at once; more than one period late: drop the backlog, keep the rate.
            next_tick = next_tick + self.period_s if next_tick + self.period_s > now else now + self.period_s
            with self._lock:
                resets, self._resets = self._resets, []
                if resets:  # a new episode starts at rest: the previous episode's command is not held over
                    self._latest = None
                latest = self._latest
            for request in resets:
                self._reset(request)
            action = np.zeros(self.robot.action_dim)
            if latest is not None and now - latest[1] <= self.command_timeout_s:
                action = latest[0]
            self._step(action)

    def _run_lockstep(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._commands.get(timeout=0.05)
            except queue.Empty:
                continue
            if isinstance(item, _Reset):
                self._reset(item)
            else:
                self._step(item)

    def _step(self, action: np.ndarray) -> None:
        frame = self.robot.step(action)
        self.steps += 1
        self._on_frame(frame)

"""Safety filter between the plan and the command publisher (no ROS imports).

Every control tick the planned raw action (A,) [raw units] passes through, in order:
stop conditions (e-stop and surprise-stop latches, enable input, stale image, stale/missing plan), per-dimension
limits, then per-dimension rate limits [raw units/s] relative to the previous output. A stop is
immediate (zero command, no rate limiting); leaving a stop ramps up from zero at the rate limit.
"""
from __future__ import annotations

import enum
import math
import threading
from dataclasses import dataclass

import numpy as np


class SafetyState(str, enum.Enum):
    """Why the filter commands what it commands; OK is the only state that passes the plan."""
    OK = 'ok'
    ESTOP = 'estop'
    SURPRISE = 'surprise_stop'
    DISABLED = 'disabled'
    STALE_IMAGE = 'stale_image'
    STALE_PLAN = 'stale_plan'
    NO_PLAN = 'no_plan'


#: Stops after which the planner's history no longer matches the robot (inputs halted or unseen
#: frames): the planner history is reset on resume. During STALE_PLAN / NO_PLAN stops the planner
#: keeps observing and records the zero commands actually executed, so its history stays exact.
RESET_ON_RESUME = frozenset({SafetyState.ESTOP, SafetyState.SURPRISE, SafetyState.DISABLED,
                             SafetyState.STALE_IMAGE})
#: Latched stops: they hold until reset_estop().
LATCHED = frozenset({SafetyState.ESTOP, SafetyState.SURPRISE})


@dataclass(frozen=True)
class SafetyConfig:
    """action_low / action_high: (A,) per-dimension command limits [raw action units];
    rate_limit: (A,) largest change per second [raw units/s], math.inf = unlimited;
    image_timeout: stop when the newest image is older than this [s];
    plan_timeout: stop when the newest plan is older than this [s]."""
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    rate_limit: tuple[float, ...]
    image_timeout: float = 0.5
    plan_timeout: float = 2.0

    def __post_init__(self) -> None:
        dims = len(self.action_low)
        for name in ('action_high', 'rate_limit'):
            if len(getattr(self, name)) != dims:
                raise ValueError(f'{name} must have {dims} entries (one per action dim), '
                                 f'got {list(getattr(self, name))}')
        for i, (lo, hi) in enumerate(zip(self.action_low, self.action_high)):
            if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
                raise ValueError(f'action_low[{i}]={lo} / action_high[{i}]={hi}: need finite low <= high')
            if lo > 0.0 or hi < 0.0:
                raise ValueError(f'action_low[{i}]={lo} / action_high[{i}]={hi}: the range must contain 0 '
                                 '(the stop command)')
        for i, rate in enumerate(self.rate_limit):
            if not rate > 0.0:
                raise ValueError(f'rate_limit[{i}]={rate} must be > 0 [units/s] (inf = unlimited)')
        for name in ('image_timeout', 'plan_timeout'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f'{name}={value} must be a finite number > 0 [s]')


@dataclass(frozen=True)
class SafetyOutput:
    """command: (A,) float64 [raw units] to publish; state: why; resumed: True on the first tick
    out of a stop in RESET_ON_RESUME (reset the planner history), also when that tick has no plan
    to pass: after a long latched stop the plan has run out, and the frames the planner observes
    from then on must not extend the history from before the stop."""
    command: np.ndarray
    state: SafetyState
    resumed: bool


class SafetyFilter:
    """Thread-safe: enable / e-stop inputs arrive from subscriber threads, filter() runs in the
    control timer."""

    def __init__(self, config: SafetyConfig) -> None:
        self._lock = threading.Lock()
        self._config = config
        self._enabled = True
        self._estop = False
        self._surprise_stop = False
        self._previous = np.zeros(len(config.action_low))
        self._state = SafetyState.NO_PLAN
        self._reset_pending = False

    @property
    def config(self) -> SafetyConfig:
        return self._config

    @property
    def state(self) -> SafetyState:
        return self._state

    @property
    def estopped(self) -> bool:
        """A latched stop (e-stop or surprise stop) holds."""
        return self._estop or self._surprise_stop

    def set_config(self, config: SafetyConfig) -> None:
        """Swap limits/timeouts (a dynamic parameter change); the action dim must not change."""
        if len(config.action_low) != len(self._config.action_low):
            raise ValueError(f'safety config has {len(config.action_low)} dims, filter has '
                             f'{len(self._config.action_low)}')
        with self._lock:
            self._config = config

    def set_enabled(self, enabled: bool) -> None:
        with self._lock:
            self._enabled = bool(enabled)

    def set_estop(self, active: bool) -> None:
        """An e-stop input of True latches; False does not release it (use reset_estop)."""
        if active:
            with self._lock:
                self._estop = True

    def set_surprise_stop(self) -> None:
        """Latch a stop raised by the surprise monitor (held like the e-stop until reset_estop)."""
        with self._lock:
            self._surprise_stop = True

    def reset_estop(self) -> None:
        """Release the latched stops (e-stop and surprise stop)."""
        with self._lock:
            self._estop = False
            self._surprise_stop = False

    def stop(self) -> np.ndarray:
        """Force a zero command now (deactivate/shutdown); the next pass through starts from 0."""
        with self._lock:
            self._previous = np.zeros_like(self._previous)
            if self._state is SafetyState.OK:
                self._state = SafetyState.NO_PLAN
            return self._previous.copy()

    def filter(self, action: np.ndarray | None, now_s: float, image_stamp_s: float | None,
               plan_stamp_s: float | None, dt_s: float) -> SafetyOutput:
        """action: (A,) planned raw action or None (no plan covers this tick); now_s and the
        stamps: one clock [s]; dt_s: control period [s] used by the rate limit."""
        with self._lock:
            cfg = self._config
            state = self._stop_reason(cfg, action, now_s, image_stamp_s, plan_stamp_s)
            resumed = False
            if state in RESET_ON_RESUME:
                self._reset_pending = True
            else:
                resumed, self._reset_pending = self._reset_pending, False
            if state is not SafetyState.OK:
                command = np.zeros_like(self._previous)
            else:
                low, high = np.asarray(cfg.action_low), np.asarray(cfg.action_high)
                target = np.clip(np.asarray(action, dtype=np.float64), low, high)
                step = np.asarray(cfg.rate_limit) * dt_s
                command = np.clip(np.clip(target, self._previous - step, self._previous + step), low, high)
            self._previous = command
            self._state = state
            return SafetyOutput(command=command.copy(), state=state, resumed=resumed)

    def _stop_reason(self, cfg: SafetyConfig, action: np.ndarray | None, now_s: float,
                     image_stamp_s: float | None, plan_stamp_s: float | None) -> SafetyState:
        if self._estop:
            return SafetyState.ESTOP
        if self._surprise_stop:
            return SafetyState.SURPRISE
        if not self._enabled:
            return SafetyState.DISABLED
        if image_stamp_s is None or not 0.0 <= now_s - image_stamp_s <= cfg.image_timeout:  # < 0: clock jumped back
            return SafetyState.STALE_IMAGE
        if plan_stamp_s is not None and not 0.0 <= now_s - plan_stamp_s <= cfg.plan_timeout:
            return SafetyState.STALE_PLAN
        if action is None:
            return SafetyState.NO_PLAN
        if not np.all(np.isfinite(action)):
            return SafetyState.NO_PLAN
        return SafetyState.OK

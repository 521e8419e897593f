"""Online surprise monitor: the world model's own prediction error as a runtime safety signal
(no ROS, no torch).

At every block boundary the planner thread scores the frame just observed (the
:class:`~lewm_ros.planning.mpc.SurpriseProbe` of :meth:`lewm_ros.planning.MPCPlanner.observe`
with ``score_surprise``, run right after that round's plan: one predictor step from the history
and the block actually executed, ||predicted - observed latent||^2 summed over D [latent
units^2]) and hands the score to :meth:`SurpriseMonitor.update`. The monitor reports it in
calibrated units (the score over the reference quantile of normal transitions): from the model's
:class:`~lewm_ros.control.surprise_calibration.SurpriseCalibration` when it ships one, else from
a running estimate over the scores seen so far (after ``warmup_blocks`` blocks; reported as
uncalibrated). ``consecutive`` blocks at or above ``threshold`` raise an alarm; what an alarm does
(nothing, a diagnostics warning, a latched stop) is the node's ``action``.

planner_node and ``lewm-train surprise-eval`` run this same class.
"""
from __future__ import annotations

import collections
import math
import threading
from dataclasses import dataclass

import numpy as np

from lewm_ros.control.surprise_calibration import REFERENCE_LEVEL, SurpriseCalibration
from lewm_ros.validation import check_choice, check_int, check_number, check_positive

#: none: no score is computed; warn: diagnostics WARN while alarmed; stop: latched stop (ERROR).
SURPRISE_ACTIONS = ('none', 'warn', 'stop')
#: Scores the running estimate keeps (the newest, alarms left out).
RUNNING_WINDOW = 1000


@dataclass(frozen=True)
class SurprisePolicy:
    """Two tiers: a sudden large surprise (a teleport, a push, a black frame) alarms at once; a
    moderate one must persist (a frozen camera, a stuck wheel), so one high block of normal
    driving does not stop the robot (over ROS on a loaded machine, normal blocks reached 4.5).

    action: one of SURPRISE_ACTIONS; threshold: alarm level [calibrated units: 1 = the reference
    quantile of normal transitions]; consecutive: blocks in a row at or above the threshold that
    make an alarm; instant_threshold: a single block at or above this level makes an alarm
    (>= threshold); warmup_blocks: scores the running estimate needs before it reports (models
    without a calibration)."""
    action: str = 'stop'
    threshold: float = 3.0
    consecutive: int = 2
    instant_threshold: float = 8.0
    warmup_blocks: int = 30

    def __post_init__(self) -> None:
        check_choice('surprise.action', self.action, SURPRISE_ACTIONS)
        check_positive('surprise.threshold', self.threshold)
        check_int('surprise.consecutive', self.consecutive, 1)
        check_number('surprise.instant_threshold', self.instant_threshold, self.threshold, 1e6)
        check_int('surprise.warmup_blocks', self.warmup_blocks, 2)

    def alarm(self, level: float | None, streak: int) -> bool:
        """Whether a block at ``level`` [calibrated units] (None: not yet calibrated), ending a run
        of ``streak`` blocks at or above the threshold, raises an alarm."""
        return level is not None and (level >= self.instant_threshold or streak >= self.consecutive)

    @property
    def enabled(self) -> bool:
        return self.action != 'none'


@dataclass(frozen=True)
class SurpriseReading:
    """One scored block boundary: tick (the control tick of the boundary); score [latent
    units^2]; level: score in calibrated units, None while an uncalibrated monitor warms up;
    calibrated: level comes from the model's calibration (else the running estimate); streak:
    blocks in a row at or above the threshold; alarm: streak >= consecutive."""
    tick: int
    score: float
    level: float | None
    calibrated: bool
    streak: int
    alarm: bool


@dataclass(frozen=True)
class SurpriseStatus:
    """What /diagnostics says about the monitor: level 'ok' | 'warn' | 'error'; reason ('' when
    ok); values: key -> text."""
    level: str
    reason: str
    values: dict[str, str]


class SurpriseMonitor:
    """Scores -> readings and alarms (see the module docstring). update() runs on the planner
    thread; status() and set_policy() may run on others."""

    def __init__(self, policy: SurprisePolicy, calibration: SurpriseCalibration | None) -> None:
        self._lock = threading.Lock()
        self._policy = policy
        self.calibration = calibration
        self._normal: collections.deque[float] = collections.deque(maxlen=RUNNING_WINDOW)
        self._streak = 0
        self._alarmed = False
        self.alarms = 0
        self.last: SurpriseReading | None = None

    @property
    def policy(self) -> SurprisePolicy:
        return self._policy

    def set_policy(self, policy: SurprisePolicy) -> None:
        """Threshold and consecutive may change while running; the action and the warm-up may not."""
        if (policy.action, policy.warmup_blocks) != (self._policy.action, self._policy.warmup_blocks):
            raise ValueError('surprise.action and surprise.warmup_blocks are static')
        with self._lock:
            self._policy = policy

    def reference(self) -> float | None:
        """The score [latent units^2] that is one calibrated unit, or None (warming up)."""
        if self.calibration is not None:
            return self.calibration.reference
        if len(self._normal) < self._policy.warmup_blocks:
            return None
        return float(np.quantile(np.fromiter(self._normal, np.float64), REFERENCE_LEVEL))

    def update(self, score: float, tick: int) -> SurpriseReading:
        """The reading of one block boundary's score [latent units^2]. A non-finite score (the
        model produced NaN or inf) counts as over the threshold, warming up or not, and never
        enters the running estimate: the monitor fails closed."""
        with self._lock:
            policy = self._policy
            reference = self.reference()
            if not math.isfinite(score):
                level = math.inf
            else:
                level = None if reference is None else score / max(reference, 1e-12)
            exceeded = level is not None and level >= policy.threshold
            self._streak = self._streak + 1 if exceeded else 0
            if not exceeded:
                self._normal.append(float(score))
            alarm = policy.alarm(level, self._streak)
            self.alarms += int(alarm and not self._alarmed)
            self._alarmed = alarm
            self.last = SurpriseReading(tick=tick, score=float(score), level=level,
                                        calibrated=self.calibration is not None, streak=self._streak, alarm=alarm)
            return self.last

    def reset_streak(self) -> None:
        """Forget the run of high scores (the planner history restarted: no prediction spans it)."""
        with self._lock:
            self._streak = 0
            self._alarmed = False
            self.last = None

    def status(self) -> SurpriseStatus:
        """Diagnostics: WARN while a warn-policy alarm lasts, ERROR on a stop-policy alarm."""
        with self._lock:
            policy, last = self._policy, self.last
            reference = self.reference()
        values = {
            'surprise_action': policy.action,
            'surprise_calibration': 'model' if self.calibration is not None else
            'running estimate (uncalibrated)' if reference is not None else 'warming up (uncalibrated)',
            'surprise_score': 'n/a' if last is None else f'{last.score:.4g}',
            'surprise_level': 'n/a' if last is None or last.level is None else f'{last.level:.3g}',
            'surprise_threshold': f'{policy.threshold:g}',
            'surprise_instant_threshold': f'{policy.instant_threshold:g}',
            'surprise_alarms': str(self.alarms),
        }
        if last is None or not last.alarm:
            return SurpriseStatus('ok', '', values)
        reason = (f'surprise {last.level:.3g} >= instant threshold {policy.instant_threshold:g} (tick {last.tick})'
                  if last.level >= policy.instant_threshold else
                  f'surprise {last.level:.3g} >= threshold {policy.threshold:g} '
                  f'for {last.streak} block(s) (tick {last.tick})')
        return SurpriseStatus('error' if policy.action == 'stop' else 'warn', reason, values)

"""ROS-free core of the exploration driver: the collection policy mix, one action per control tick.

The driver moves a robot the way a person teleoperating for data would, with the policies of
``lewm-train collect`` (:mod:`lewm_training.policies`): a sticky low-passed random walk, a noisy
goal-directed heuristic, or a per-episode mix. The heuristic needs the robot's state; the
explorer keeps a *mirror* of the task (a MuJoCo model it never steps or renders) and writes the
latest observed state into it before asking the policy, so the policies run unchanged. Without a
state (a real robot has none) only the random walk is available. An episode is ``episode_steps``
ticks with one policy draw, as in ``collect``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lewm_ros.validation import check_int, require
from lewm_training.policies import PolicyConfig, make_policy
from lewm_training.tasks import make_task, task_names


@dataclass(frozen=True)
class ExplorerConfig:
    """task: the task whose action bounds (and, for the heuristic, state and geometry) the
    driver uses; policy: the collection policy mix; episode_steps: control ticks per episode
    (one policy draw each); seed: seed of every random draw."""
    task: str = 'tworoom'
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    episode_steps: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        require(self.task in task_names(), 'task', self.task, f'one of {task_names()}')
        check_int('episode_steps', self.episode_steps, 1)
        check_int('seed', self.seed, 0)

    @property
    def needs_state(self) -> bool:
        """Whether some episode drives the goal-directed heuristic (it reads the robot's state)."""
        return self.policy.kind == 'heuristic' or (self.policy.kind == 'mix' and self.policy.heuristic_frac > 0)


class Explorer:
    """Per tick: ``action(state)`` -> (A,) float64 raw action within the task's bounds. A new
    episode (a new policy draw) starts every ``episode_steps`` ticks; ``episode`` and
    ``step`` say where the driver is."""

    def __init__(self, config: ExplorerConfig) -> None:
        self.config = config
        self._mirror = make_task(config.task, image_size=8)
        self.action_low, self.action_high = self._mirror.action_low.copy(), self._mirror.action_high.copy()
        self._rng = np.random.default_rng(config.seed)
        self.episode = -1
        self.step = config.episode_steps  # the first tick starts episode 0
        self.kind = ''
        self._policy = None

    @property
    def action_dim(self) -> int:
        return int(self.action_low.shape[0])

    @property
    def state_dim(self) -> int:
        return int(self._mirror.state_dim)

    def episode_due(self) -> bool:
        """True when the next tick starts a new episode (the caller may reset the robot first)."""
        return self.step >= self.config.episode_steps

    def action(self, state: np.ndarray | None) -> np.ndarray:
        """state: (state_dim,) the robot's latest state, or None when unknown. Returns the raw
        action for this tick; zeros while a goal-directed episode waits for its first state."""
        if state is not None:
            self._mirror.set_state(np.asarray(state, dtype=np.float64))
        if self.episode_due():
            self.episode += 1
            self.step = 0
            self.kind, self._policy = make_policy(self.config.policy, self._mirror, self._rng)
        self.step += 1
        if self.kind == 'heuristic' and state is None:
            return np.zeros(self.action_dim)
        action = np.asarray(self._policy(self._mirror), dtype=np.float64)
        return np.clip(action, self.action_low, self.action_high)

    def close(self) -> None:
        self._mirror.close()

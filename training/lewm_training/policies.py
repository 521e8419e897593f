"""Data-collection policies: a smooth random walk and a noisy goal-directed heuristic.

Both are called once per env step as ``policy(task) -> action`` (action_dim,)
float64 in raw units, read the live task state and draw all randomness from the
generator they were built with, so an episode is a pure function of its seeds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lewm_ros.validation import check_choice, check_number
from lewm_training.tasks.base import MujocoTask

POLICY_KINDS = ('random', 'heuristic', 'mix')


@dataclass(frozen=True)
class PolicyConfig:
    """Collection policy.

    kind: 'random' (every episode a random walk), 'heuristic' (every episode
        goal-directed) or 'mix' (per episode: heuristic with probability
        ``heuristic_frac``, else random).
    heuristic_frac: in [0, 1], used by 'mix'.
    hold_prob: in [0, 1), random walk: probability of keeping the current
        target action at each step (mean hold 1 / (1 - hold_prob) steps).
    smoothing: in [0, 1), random walk: a_t = smoothing * a_{t-1} + (1 - smoothing) * target.
    noise: >= 0, heuristic: std of the Gaussian noise added to its action [raw units].
    """

    kind: str = 'mix'
    heuristic_frac: float = 0.5
    hold_prob: float = 0.8
    smoothing: float = 0.5
    noise: float = 0.3

    def __post_init__(self) -> None:
        check_choice('kind', self.kind, POLICY_KINDS)
        check_number('heuristic_frac', self.heuristic_frac, 0.0, 1.0)
        check_number('hold_prob', self.hold_prob, 0.0, 1.0, exclusive_maximum=True)
        check_number('smoothing', self.smoothing, 0.0, 1.0, exclusive_maximum=True)
        check_number('noise', self.noise, 0.0, 10.0)


class RandomWalkPolicy:
    """Sticky, low-passed uniform actions: motion stays visible over a 5-step block.

    A target action is drawn uniformly in [action_low, action_high] and kept
    with probability ``hold_prob`` per step; the applied action moves towards it
    by the factor ``1 - smoothing`` per step.
    """

    def __init__(self, task: MujocoTask, rng: np.random.Generator,
                 hold_prob: float = 0.8, smoothing: float = 0.5) -> None:
        self.low, self.high = task.action_low, task.action_high
        self.rng = rng
        self.hold_prob = hold_prob
        self.smoothing = smoothing
        self._target = rng.uniform(self.low, self.high)
        self._action = self._target.copy()

    def __call__(self, task: MujocoTask) -> np.ndarray:
        if self.rng.random() >= self.hold_prob:
            self._target = self.rng.uniform(self.low, self.high)
        self._action = self.smoothing * self._action + (1.0 - self.smoothing) * self._target
        return self._action.copy()


class HeuristicPolicy:
    """Noisy goal-directed policy: ``task.heuristic_action`` towards a random goal state.

    A new random goal is drawn whenever the current one is reached, so the
    agent keeps moving for the whole episode.
    """

    def __init__(self, task: MujocoTask, rng: np.random.Generator, noise: float = 0.3) -> None:
        self.rng = rng
        self.noise = noise
        self.goal_state = task.sample_state(rng)

    def __call__(self, task: MujocoTask) -> np.ndarray:
        if task.is_success(task.get_state(), self.goal_state):
            self.goal_state = task.sample_state(self.rng)
        return task.heuristic_action(self.goal_state, self.rng, self.noise)


def make_policy(config: PolicyConfig, task: MujocoTask,
                rng: np.random.Generator) -> tuple[str, RandomWalkPolicy | HeuristicPolicy]:
    """Draw this episode's policy; returns (kind, policy) with kind 'random' or 'heuristic'."""
    kind = config.kind
    if kind == 'mix':
        kind = 'heuristic' if rng.random() < config.heuristic_frac else 'random'
    if kind == 'heuristic':
        return kind, HeuristicPolicy(task, rng, config.noise)
    return kind, RandomWalkPolicy(task, rng, config.hold_prob, config.smoothing)


def protocol_policy_config(task: MujocoTask, heuristic_frac: float) -> PolicyConfig:
    """The policy mix whose rollouts give ``task``'s evaluation start/goal pairs: ``heuristic_frac``
    goal-directed episodes, unless the task fixes the share (``task.protocol_heuristic_frac``)."""
    fixed = task.protocol_heuristic_frac
    return PolicyConfig(kind='mix', heuristic_frac=heuristic_frac if fixed is None else fixed)


def protocol_pair(task: MujocoTask, policy: RandomWalkPolicy | HeuristicPolicy,
                  goal_offset: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, goal) states (state_dim,) of one evaluation episode from the live simulation (just
    reset): env steps of ``policy`` until ``task.protocol_ready()`` (at most
    ``task.protocol_warmup_steps``), the start, ``goal_offset`` more env steps, the goal. The
    simulation is left at the goal."""
    for _ in range(task.protocol_warmup_steps):
        if task.protocol_ready():
            break
        task.step(policy(task))
    start = task.get_state()
    for _ in range(goal_offset):
        task.step(policy(task))
    return start, task.get_state()

"""ROS-free core of ``sim_node``: a MuJoCo task driven like a robot (parameters, episodes, goals, stepping).

* :class:`SimRobot` owns one task: seeded start/goal episodes (the eval protocol's
  "policy rollout" pairs: start = a random state, goal = the state after ``goal_offset``
  env steps of the collection policy mix), one env step per call, episode status.
* :class:`~lewm_training.sim_loop.SimLoop` (its own module) owns the thread that steps it.

Sim time [s] is ``total env steps * dt``: monotonic across episodes, 0 at start.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lewm_ros.validation import check_choice, check_int, check_number, check_positive, require
from lewm_training.faults import FaultInjector
from lewm_training.policies import make_policy, protocol_pair, protocol_policy_config
from lewm_training.tasks import make_task, task_names

MODES = ('realtime', 'lockstep')
COMMAND_TYPES = ('twist_stamped', 'twist', 'float64_multi_array')
"""Names shared with the planner's ``command_type`` (lewm_ros.control.command_mapping)."""
TWIST_FIELDS = tuple(f'{part}.{axis}' for part in ('linear', 'angular') for axis in 'xyz')


@dataclass(frozen=True)
class SimParam:
    """One sim_node parameter: ROS type name, default, unit ('' = none), meaning."""
    name: str
    type: str
    default: Any
    unit: str
    description: str


SIM_PARAMS: tuple[SimParam, ...] = (
    SimParam('task', 'string', 'tworoom', '', 'Task name (lewm_training.tasks registry).'),
    SimParam('image_size', 'integer', 64, 'px', 'Side S of the square camera image (S x S rgb8).'),
    SimParam('seed', 'integer', 0, '', 'Seed of the episode sequence (start/goal pairs).'),
    SimParam('goal_offset', 'integer', 25, 'env steps',
             'Goal = the state after this many env steps of the collection policy mix from the start.'),
    SimParam('heuristic_frac', 'double', 0.5, '',
             'Probability that an episode goal comes from the goal-directed heuristic (else the random walk); '
             'pusht always uses the heuristic.'),
    SimParam('mode', 'string', 'realtime', '', f'Stepping: one of {", ".join(MODES)}.'),
    SimParam('real_time_factor', 'double', 1.0, '',
             "realtime: sim seconds per wall second (steps at real_time_factor / dt Hz)."),
    SimParam('command_timeout', 'double', 0.5, 's',
             'realtime: apply a zero action when the newest command is older than this (wall time).'),
    SimParam('command_type', 'string', 'twist_stamped', '',
             f'Command message: one of {", ".join(COMMAND_TYPES)} (twist types on cmd_vel, as a Jazzy '
             'diff_drive_controller reads them; float64_multi_array on command).'),
    SimParam('twist_fields', 'string_array', ['linear.x', 'linear.y'], '',
             'twist types: the Twist field giving each action dim (action[i] = field i, raw action units).'),
    SimParam('publish_clock', 'bool', True, '', 'Publish /clock (sim time) after every env step.'),
    SimParam('frame_id', 'string', 'sim_camera', '', 'header.frame_id of the camera messages.'),
)
SIM_PARAM_BY_NAME = {p.name: p for p in SIM_PARAMS}


@dataclass(frozen=True)
class SimConfig:
    """Validated sim_node parameters (see SIM_PARAMS for meanings and units)."""
    task: str = 'tworoom'
    image_size: int = 64
    seed: int = 0
    goal_offset: int = 25
    heuristic_frac: float = 0.5
    mode: str = 'realtime'
    real_time_factor: float = 1.0
    command_timeout: float = 0.5
    command_type: str = 'twist_stamped'
    twist_fields: tuple[str, ...] = ('linear.x', 'linear.y')
    publish_clock: bool = True
    frame_id: str = 'sim_camera'

    def __post_init__(self) -> None:
        check_choice('task', self.task, task_names())
        check_int('image_size', self.image_size, 8, 1024)
        check_int('seed', self.seed, 0)
        check_int('goal_offset', self.goal_offset, 1)
        check_number('heuristic_frac', self.heuristic_frac, 0.0, 1.0)
        check_choice('mode', self.mode, MODES)
        check_number('real_time_factor', self.real_time_factor, 0.0, 100.0, exclusive_minimum=True)
        check_positive('command_timeout', self.command_timeout)
        check_choice('command_type', self.command_type, COMMAND_TYPES)
        distinct = len(set(self.twist_fields)) == len(self.twist_fields)
        require(distinct and all(f in TWIST_FIELDS for f in self.twist_fields), 'twist_fields', self.twist_fields,
                f'distinct Twist fields from {list(TWIST_FIELDS)}')
        require(bool(self.frame_id), 'frame_id', self.frame_id, 'a non-empty frame name')

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> SimConfig:
        """name -> value (missing names take their default); unknown names raise ValueError."""
        unknown = sorted(set(values) - set(SIM_PARAM_BY_NAME))
        if unknown:
            raise ValueError(f'unknown sim_node parameter(s) {unknown}; allowed: {sorted(SIM_PARAM_BY_NAME)}')
        merged = {p.name: values.get(p.name, p.default) for p in SIM_PARAMS}
        merged['twist_fields'] = tuple(merged['twist_fields'])
        try:
            return cls(**merged)
        except ValueError as exc:  # name the ROS parameter as such
            raise ValueError(f'parameter {exc}') from None


@dataclass(frozen=True)
class Frame:
    """The simulation after an env step (or a reset).

    pixels: (S, S, 3) uint8 RGB as the camera delivers it (injected camera faults included);
    state: (state_dim,) float32 task state; sim_time_s [s];
    episode: episode index; step: env steps in this episode; action: (A,) float64 raw action
    applied in the step (zeros after a reset); distance: to the goal [task units];
    success: within the task's success threshold now; reached: success at any step so far.
    """
    pixels: np.ndarray
    state: np.ndarray
    sim_time_s: float
    episode: int
    step: int
    action: np.ndarray
    distance: float
    success: bool
    reached: bool

    def status_json(self) -> str:
        """The ``~/episode`` status message: episode, step, sim_time, distance, success, reached."""
        return json.dumps({'episode': self.episode, 'step': self.step, 'sim_time': round(self.sim_time_s, 6),
                           'distance': self.distance, 'success': self.success, 'reached': self.reached})


@dataclass(frozen=True)
class Episode:
    """One start/goal pair: index, start_state/goal_state (state_dim,) float32, goal_pixels (S, S, 3) uint8."""
    index: int
    start_state: np.ndarray
    goal_state: np.ndarray
    goal_pixels: np.ndarray


class SimRobot:
    """One task stepped like a robot (not thread-safe: call it from one thread, see SimLoop).

    Episode ``i`` is a pure function of (seed, i) and the call order: the task is reset with
    seed ``seed * 1000 + i`` (a random start state), the collection policy mix (drawn from one
    generator seeded ``seed + 10_000`` for the whole sequence) runs ``goal_offset`` steps from it,
    the state reached is the goal, and the simulation is put back at the start. That is the
    start/goal construction of ``lewm-train eval`` without ``--data``.
    """

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.task = make_task(config.task, image_size=config.image_size, seed=config.seed)
        self.dt = self.task.dt
        self.action_dim = self.task.action_dim
        self._policy_rng = np.random.default_rng(config.seed + 10_000)
        self._policy_config = protocol_policy_config(self.task, config.heuristic_frac)
        self._episode: Episode | None = None
        self._next_index = 0
        self._total_steps = 0
        self._step = 0
        self._reached = False
        self._last_action = np.zeros(self.action_dim)
        #: Injected faults (lewm_training.faults); cleared by every new episode.
        self.faults = FaultInjector(config.seed + 20_000)

    @property
    def episode(self) -> Episode | None:
        return self._episode

    @property
    def sim_time_s(self) -> float:
        """[s] total env steps * dt."""
        return self._total_steps * self.dt

    def camera_intrinsics(self) -> tuple[float, float, float, float, bool]:
        """(fx, fy, cx, cy, orthographic) of the task camera for an S x S image.

        Perspective camera: focal lengths [px] of the pinhole model. Orthographic camera (the
        top-down views of tworoom/reacher): fx = fy = S / view height [px/m], the image scale
        (a pinhole K does not describe it; consumers must check ``orthographic``).
        """
        model, size = self.task.model, float(self.config.image_size)
        cam = model.camera(self.task.camera).id
        fovy = float(model.cam_fovy[cam])
        orthographic = bool(model.cam_projection[cam] == 1)
        focal = size / fovy if orthographic else (size / 2.0) / math.tan(math.radians(fovy) / 2.0)
        return focal, focal, (size - 1.0) / 2.0, (size - 1.0) / 2.0, orthographic

    def new_episode(self) -> Episode:
        """Draw the next start/goal pair, put the simulation at the start; returns the episode."""
        index = self._next_index
        self._next_index += 1
        self.faults.clear()
        self.task.set_goal(None)
        self.task.reset(seed=self.config.seed * 1000 + index)
        _, policy = make_policy(self._policy_config, self.task, self._policy_rng)
        start, goal = protocol_pair(self.task, policy, self.config.goal_offset)
        self.task.reset(options={'state': start})
        self.task.set_goal(goal)
        self._episode = Episode(index, start, goal, self.task.render_state(goal))
        self._step = 0
        self._reached = self.task.is_success(start, goal)
        self._last_action = np.zeros(self.action_dim)
        return self._episode

    def step(self, action: np.ndarray) -> Frame:
        """One env step (dt seconds) with raw ``action`` (A,) (clipped to the task bounds)."""
        if self._episode is None:
            raise RuntimeError('SimRobot.step before new_episode')
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (self.action_dim,) or not np.all(np.isfinite(action)):
            raise ValueError(f'action must be {self.action_dim} finite values, got {action.tolist()}')
        self._last_action = np.clip(action, self.task.action_low, self.task.action_high)
        self.faults.before_step(self.task)
        self.task.step(self._last_action)
        self.faults.after_step(self.task)
        self._total_steps += 1
        self._step += 1
        return self.frame()

    def frame(self) -> Frame:
        """The current simulation as a Frame (renders; does not step)."""
        if self._episode is None:
            raise RuntimeError('SimRobot.frame before new_episode')
        obs = self.task.observe()
        goal = self._episode.goal_state
        success = self.task.is_success(obs.state, goal)
        self._reached = self._reached or success
        return Frame(pixels=self.faults.pixels(obs.pixels, self.task), state=obs.state, sim_time_s=self.sim_time_s,
                     episode=self._episode.index,
                     step=self._step, action=self._last_action.copy(),
                     distance=self.task.distance(obs.state, goal), success=success, reached=self._reached)

    def close(self) -> None:
        self.task.close()

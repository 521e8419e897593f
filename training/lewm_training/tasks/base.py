"""Shared machinery of the MuJoCo tasks: model, one reused renderer, stepping.

A subclass provides the MJCF, the mapping between its low-dimensional state
vector and ``MjData``, the start-state distribution, success/distance, the
perturbations and a goal-directed heuristic. This class does the rest:
seeding, action clipping/scaling, physics sub-steps per env step, rendering.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass

import mujoco
import numpy as np

from lewm_ros.validation import check_int

VISUAL_QUALITY = '<quality offsamples="0" shadowsize="0"/>'
"""Required in every task's ``<visual>``: without it a CPU (llvmpipe) frame costs ~21 ms."""


@dataclass(frozen=True)
class Observation:
    """One observation.

    pixels: (S, S, 3) uint8 RGB from the task camera.
    state: (state_dim,) float32 low-dimensional physical state (for probing;
        the planner never sees it).
    """

    pixels: np.ndarray
    state: np.ndarray


class MujocoTask(abc.ABC):
    """A MuJoCo task with a Gymnasium-style ``reset``/``step`` API.

    Attributes:
        name: registry name.
        image_size: S, rendered frames are (S, S, 3) uint8.
        action_low, action_high: (action_dim,) float64 bounds of the raw action.
        action_dim, state_dim: vector sizes.
        dt: [s] simulated time per env step (``n_substeps`` physics steps).
        success_threshold: task-specific tolerance of :meth:`is_success`.
        distance_unit: the unit of :meth:`distance` (for plots and reports).
    """

    name: str = ''
    camera: str = 'top'
    distance_unit: str = 'm'
    protocol_warmup_steps: int = 0
    """At most this many env steps of the collection policy run before an evaluation episode's
    start state, until :meth:`protocol_ready` (see :func:`lewm_training.policies.protocol_pair`);
    0: the start is a reset state."""
    protocol_heuristic_frac: float | None = None
    """The share of goal-directed evaluation episodes the task needs, or None: the caller's
    mix (see :func:`lewm_training.policies.protocol_policy_config`)."""

    def __init__(self, xml: str, image_size: int, seed: int | None, n_substeps: int,
                 action_low: np.ndarray, action_high: np.ndarray, state_dim: int) -> None:
        check_int('image_size', int(image_size), 8, 1024)
        check_int('n_substeps', n_substeps, 1)
        self.image_size = int(image_size)
        self.model = mujoco.MjModel.from_xml_string(xml)
        self.model.vis.global_.offwidth = max(self.model.vis.global_.offwidth, self.image_size)
        self.model.vis.global_.offheight = max(self.model.vis.global_.offheight, self.image_size)
        self.data = mujoco.MjData(self.model)
        self._renderer: mujoco.Renderer | None = None
        self.n_substeps = int(n_substeps)
        self.dt = float(self.model.opt.timestep * self.n_substeps)
        self.action_low = np.asarray(action_low, dtype=np.float64)
        self.action_high = np.asarray(action_high, dtype=np.float64)
        self.action_dim = int(self.action_low.shape[0])
        self.state_dim = int(state_dim)
        self._default_rgba = self.model.geom_rgba.copy()
        self.rng = np.random.default_rng(seed)

    # ----- subclass hooks -------------------------------------------------
    @abc.abstractmethod
    def get_state(self) -> np.ndarray:
        """Current state, (state_dim,) float32."""

    @abc.abstractmethod
    def _write_state(self, state: np.ndarray) -> None:
        """Write ``state`` into ``self.data`` (qpos/qvel/...); forward is done by the caller."""

    @abc.abstractmethod
    def sample_state(self, rng: np.random.Generator) -> np.ndarray:
        """A random valid start state, (state_dim,) float32."""

    @abc.abstractmethod
    def _apply_action(self, action: np.ndarray) -> None:
        """Write the clipped raw action into ``self.data.ctrl``."""

    @abc.abstractmethod
    def distance(self, state: np.ndarray, goal_state: np.ndarray) -> float:
        """Task distance between two states (unit documented by the task)."""

    @abc.abstractmethod
    def sample_agent_qpos(self, rng: np.random.Generator) -> np.ndarray:
        """A random free agent configuration: the first k entries of ``qpos`` (k,) (e.g. a
        position [m] or joint angles [rad])."""

    @abc.abstractmethod
    def heuristic_action(self, goal_state: np.ndarray, rng: np.random.Generator,
                         noise: float) -> np.ndarray:
        """Noisy goal-directed raw action (action_dim,) from the current state."""

    @property
    @abc.abstractmethod
    def success_threshold(self) -> float:
        """``is_success`` holds when ``distance < success_threshold``."""

    @property
    @abc.abstractmethod
    def agent_geoms(self) -> list[int]:
        """Geom ids recoloured by :meth:`recolor`."""

    def protocol_ready(self) -> bool:
        """Whether the live state may start an evaluation episode (after the warm-up steps of
        ``protocol_warmup_steps``); every state may, unless a task says otherwise."""
        return True

    # ----- shared behaviour -----------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[Observation, dict]:
        """Start an episode; ``seed`` reseeds the task generator first.

        options: ``{'state': (state_dim,)}`` starts from that state instead of a random one.
        """
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        mujoco.mj_resetData(self.model, self.data)
        self.model.geom_rgba[:] = self._default_rgba
        state = None if options is None else options.get('state')
        self.set_state(self.sample_state(self.rng) if state is None else state)
        return self.observe(), {}

    def step(self, action: np.ndarray) -> tuple[Observation, float, bool, bool, dict]:
        """Apply ``action`` (clipped to [action_low, action_high]) for ``dt`` seconds.

        Returns (obs, reward, terminated, truncated, info); reward is
        ``-distance`` to ``info['goal_state']`` when a goal was set with
        :meth:`set_goal`, else 0. Episodes never terminate by themselves.
        """
        action = np.asarray(action, dtype=np.float64).reshape(self.action_dim)
        self._apply_action(np.clip(action, self.action_low, self.action_high))
        mujoco.mj_step(self.model, self.data, nstep=self.n_substeps)
        # mj_step leaves positions (xpos) of the last sub-step's start: recompute for rendering.
        mujoco.mj_forward(self.model, self.data)
        obs = self.observe()
        info: dict = {}
        reward = 0.0
        goal = getattr(self, '_goal_state', None)
        if goal is not None:
            reward = -self.distance(obs.state, goal)
            info = {'goal_state': goal, 'is_success': self.is_success(obs.state, goal)}
        return obs, reward, False, False, info

    def set_goal(self, goal_state: np.ndarray | None) -> None:
        """Goal used for ``step``'s reward/info (None: no goal)."""
        self._goal_state = None if goal_state is None else np.asarray(goal_state, np.float32).copy()

    def set_state(self, state: np.ndarray) -> None:
        """Set the simulation to ``state`` (state_dim,) and recompute derived quantities."""
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (self.state_dim,):
            raise ValueError(f'state shape {state.shape} != ({self.state_dim},)')
        self._write_state(state)
        mujoco.mj_forward(self.model, self.data)

    def observe(self) -> Observation:
        return Observation(pixels=self.render(), state=self.get_state())

    def render(self) -> np.ndarray:
        """Current frame, (S, S, 3) uint8 RGB (a new array)."""
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self.image_size, self.image_size)
        self._renderer.update_scene(self.data, camera=self.camera)
        return self._renderer.render()

    def render_state(self, state: np.ndarray) -> np.ndarray:
        """Frame of ``state`` (e.g. a goal image); the live simulation is left unchanged."""
        saved = (self.data.qpos.copy(), self.data.qvel.copy(), self.data.act.copy(),
                 self.data.qacc_warmstart.copy())
        try:
            self.set_state(state)
            return self.render()
        finally:
            # Restore the float64 simulation exactly (get_state() is float32).
            for dst, src in zip((self.data.qpos, self.data.qvel, self.data.act,
                                 self.data.qacc_warmstart), saved):
                dst[:] = src
            mujoco.mj_forward(self.model, self.data)

    def is_success(self, state: np.ndarray, goal_state: np.ndarray) -> bool:
        """``distance(state, goal_state) < success_threshold``."""
        return bool(self.distance(state, goal_state) < self.success_threshold)

    def teleport(self, rng: np.random.Generator) -> None:
        """Perturbation: move the agent to a random free configuration (:meth:`sample_agent_qpos`)
        at rest, in the live simulation."""
        qpos = self.sample_agent_qpos(rng)
        self.data.qpos[:len(qpos)] = qpos
        self.data.qvel[:len(qpos)] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def recolor(self, rng: np.random.Generator) -> None:
        """Perturbation: give the agent a new random saturated colour (live simulation)."""
        hue = rng.uniform(0.0, 1.0)
        rgb = _hsv_to_rgb(hue, 1.0, 1.0)
        for geom in self.agent_geoms:
            old = self.model.geom_rgba[geom, :3].copy()
            # Keep the new colour visibly different from the current one.
            if np.abs(rgb - old).sum() < 0.6:
                rgb = _hsv_to_rgb((hue + 0.5) % 1.0, 1.0, 1.0)
            self.model.geom_rgba[geom, :3] = rgb

    def close(self) -> None:
        """Free the renderer's GL context."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6.0) % 6
    f = h * 6.0 - int(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i])

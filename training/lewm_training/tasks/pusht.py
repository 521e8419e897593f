"""Push-T: a round pusher slides a T-shaped block on a table into a goal pose, seen from above.

Own MJCF after the Push-T task of the Diffusion Policy benchmark (arXiv 2303.04137) as the LeWM
paper evaluates it (``swm/PushT``); 2-D Pymunk there, MuJoCo here. Geometry [m] (world frame,
+x right and +y up in the image; the 512 px Pymunk workspace maps to 1 m):

* table ``[-0.5, 0.5] x [-0.5, 0.5]`` bounded by walls;
* pusher: sphere of radius 0.03 on two slide joints (x, y), 1 kg, driven by velocity actuators
  (kv = 50 N s/m, time constant 0.02 s);
* T block: a bar 0.24 x 0.06 and a stem 0.06 x 0.18 below its middle (one rigid body, 0.5 kg
  each), on slide x, slide y and a hinge about z; its pose is its centre of mass (midway between
  the bar's and the stem's centres) and its heading (0 rad: the stem points to -y, the T upright
  in the image). Every point of the T lies within 0.15 of the pose point. The table's friction is a
  viscous drag on the block's joints (10 N s/m, 0.08 N m s: time constants ~0.1 s), so a pushed
  block stops within ~0.3 s of losing contact (quasi-static pushing, as in the Pymunk task).
  Pusher-block contact: sliding friction 0.5 (condim 3); no gravity (the physics is planar).

Action: (2,) in [-1, 1], the pusher's commanded velocity as a fraction of ``max_speed`` (default
0.2 m/s). ``dt`` = 0.1 s per env step (20 physics steps of 5 ms).

State: (10,) float32 ``[pusher_x, pusher_y, block_x, block_y, block_angle, pusher_vx,
pusher_vy, block_vx, block_vy, block_angular_velocity]`` [m, rad, m/s, rad/s]; the block angle
is wrapped to [-pi, pi).

Success: the block within ``POSITION_TOLERANCE`` (0.04 m, the Pymunk task's 20 px of 512) of the
goal block position AND within ``ANGLE_TOLERANCE`` (pi / 9 rad = 20 deg) of its angle: the
success test of ``swm/PushT``. ``distance`` is the larger of the two errors in units of their
tolerance (unitless: success is ``distance < 1``); the pusher's position does not count.

Rendering: orthographic top-down camera, flat colours (headlight ambient only): light table,
dark walls, slate-grey T, blue pusher. The goal pose is not drawn: the goal is an image.
"""
from __future__ import annotations

import math

import mujoco
import numpy as np

from lewm_ros.validation import check_number
from lewm_training.tasks.base import VISUAL_QUALITY, MujocoTask

HALF_SIZE = 0.5
"""[m] the table is [-HALF_SIZE, HALF_SIZE]^2."""
WALL_HALF = 0.03
"""[m] half thickness of the walls."""
PUSHER_RADIUS = 0.03
"""[m]."""
BAR_HALF = (0.12, 0.03)
"""[m] half extents (x, y) of the T's bar, centred on the block pose."""
STEM_HALF = (0.03, 0.09)
"""[m] half extents (x, y) of the T's stem."""
BAR_CENTRE_Y = (BAR_HALF[1] + STEM_HALF[1]) / 2
"""[m] the bar's centre in the block frame (above the centre of mass)."""
STEM_CENTRE_Y = -BAR_CENTRE_Y
"""[m] the stem's centre in the block frame (below the centre of mass)."""
BLOCK_REACH = math.hypot(BAR_HALF[0], BAR_CENTRE_Y + BAR_HALF[1])
"""[m] 0.15: the farthest point of the T from its pose point (the bar's corners; the stem's tip
is as far)."""
POSITION_TOLERANCE = 0.04
"""[m] success: block position error (the Pymunk task's 20 px of a 512 px = 1 m workspace)."""
ANGLE_TOLERANCE = math.pi / 9
"""[rad] success: block angle error (20 deg)."""
BLOCK_SPAWN_HALF = 0.25
"""[m] start states put the block pose point in [-BLOCK_SPAWN_HALF, BLOCK_SPAWN_HALF]^2, so the
whole T stays 0.1 m clear of the walls at any angle."""
_HALF_HEIGHT = 0.02
_MARGIN = 0.01

_XML = """
<mujoco model="pusht">
  <compiler angle="radian"/>
  <option timestep="0.005" gravity="0 0 0" integrator="implicitfast"/>
  <visual>
    {quality}
    <headlight ambient="1 1 1" diffuse="0 0 0" specular="0 0 0"/>
  </visual>
  <default>
    <geom contype="1" conaffinity="1" condim="3" friction="0.5 0.005 0.0001"/>
  </default>
  <worldbody>
    <camera name="top" pos="0 0 2" projection="orthographic" fovy="{fovy}"/>
    <geom name="table" type="plane" size="{outer} {outer} 0.1" rgba="0.9 0.9 0.88 1"
          contype="0" conaffinity="0"/>
    <geom name="wall_left" type="box" pos="{wall_c} 0 {h}" size="{w} {outer} {h}" rgba="0.3 0.3 0.3 1"/>
    <geom name="wall_right" type="box" pos="{wall_c_neg} 0 {h}" size="{w} {outer} {h}" rgba="0.3 0.3 0.3 1"/>
    <geom name="wall_bottom" type="box" pos="0 {wall_c} {h}" size="{outer} {w} {h}" rgba="0.3 0.3 0.3 1"/>
    <geom name="wall_top" type="box" pos="0 {wall_c_neg} {h}" size="{outer} {w} {h}" rgba="0.3 0.3 0.3 1"/>
    <body name="pusher" pos="0 0 {h}">
      <joint name="pusher_x" type="slide" axis="1 0 0"/>
      <joint name="pusher_y" type="slide" axis="0 1 0"/>
      <geom name="pusher" type="sphere" size="{r}" mass="1" rgba="0.25 0.41 0.88 1"/>
    </body>
    <body name="block" pos="0 0 {h}">
      <joint name="block_x" type="slide" axis="1 0 0" damping="10"/>
      <joint name="block_y" type="slide" axis="0 1 0" damping="10"/>
      <joint name="block_angle" type="hinge" axis="0 0 1" damping="0.08"/>
      <geom name="bar" type="box" pos="0 {bar_y_c} 0" size="{bar_x} {bar_y} {h}" mass="0.5"
            rgba="0.47 0.53 0.6 1"/>
      <geom name="stem" type="box" pos="0 {stem_y} 0" size="{stem_x} {stem_hy} {h}" mass="0.5"
            rgba="0.47 0.53 0.6 1"/>
    </body>
  </worldbody>
  <actuator>
    <velocity name="vx" joint="pusher_x" kv="50" ctrlrange="-{vmax} {vmax}"/>
    <velocity name="vy" joint="pusher_y" kv="50" ctrlrange="-{vmax} {vmax}"/>
  </actuator>
</mujoco>
"""


def wrap_angle(angle: float | np.ndarray) -> float | np.ndarray:
    """Angle(s) [rad] wrapped to [-pi, pi)."""
    return (np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi


def block_clearance(point: np.ndarray, block_pose: np.ndarray) -> float:
    """[m] distance from ``point`` (2,) to the T of ``block_pose`` (x, y, angle): 0 inside."""
    c, s = math.cos(block_pose[2]), math.sin(block_pose[2])
    dx, dy = float(point[0] - block_pose[0]), float(point[1] - block_pose[1])
    local = np.array([c * dx + s * dy, -s * dx + c * dy])          # into the block frame
    def box(centre_y: float, half: tuple[float, float]) -> float:
        outside = np.maximum(np.abs(local - (0.0, centre_y)) - half, 0.0)
        return float(np.hypot(*outside))
    return min(box(BAR_CENTRE_Y, BAR_HALF), box(STEM_CENTRE_Y, STEM_HALF))


class PushTTask(MujocoTask):
    """A pusher and a T block on a table (see the module docstring)."""

    name = 'pusht'
    distance_unit = 'tolerance units'
    # The paper's Push-T goals come from demonstrations, where the pusher is always pushing: a
    # random walk seldom touches the block within 25 steps (its start/goal pairs would be solved
    # by standing still), so evaluation episodes follow the pushing heuristic, and start once it
    # moves the block (protocol_ready).
    protocol_warmup_steps = 150
    protocol_heuristic_frac = 1.0

    def __init__(self, image_size: int = 64, seed: int | None = None,
                 max_speed: float = 0.2, n_substeps: int = 20) -> None:
        check_number('max_speed', max_speed, 0.0, 2.0, exclusive_minimum=True)   # [m/s]
        self.max_speed = float(max_speed)
        outer = HALF_SIZE + 2 * WALL_HALF
        xml = _XML.format(
            quality=VISUAL_QUALITY, fovy=2 * outer, outer=outer, w=WALL_HALF, h=_HALF_HEIGHT,
            wall_c=-(HALF_SIZE + WALL_HALF), wall_c_neg=HALF_SIZE + WALL_HALF, r=PUSHER_RADIUS,
            bar_x=BAR_HALF[0], bar_y=BAR_HALF[1], stem_x=STEM_HALF[0], stem_hy=STEM_HALF[1],
            bar_y_c=BAR_CENTRE_Y, stem_y=STEM_CENTRE_Y, vmax=self.max_speed)
        super().__init__(xml, image_size, seed, n_substeps,
                         action_low=-np.ones(2), action_high=np.ones(2), state_dim=10)
        geom = lambda name: mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, name)  # noqa: E731
        self._pusher_geom = geom('pusher')
        self._block_geoms = [geom('bar'), geom('stem')]

    @property
    def success_threshold(self) -> float:
        """``distance`` is in units of the tolerances: success below 1."""
        return 1.0

    @property
    def agent_geoms(self) -> list[int]:
        return [self._pusher_geom]

    @property
    def block_geoms(self) -> list[int]:
        """Geom ids of the T (bar, stem)."""
        return list(self._block_geoms)

    def protocol_ready(self) -> bool:
        """An evaluation episode starts while the pusher moves the block (faster than 2 cm/s)."""
        return float(np.linalg.norm(self.data.qvel[2:4])) > 0.02

    def get_state(self) -> np.ndarray:
        qpos, qvel = self.data.qpos, self.data.qvel
        return np.array([qpos[0], qpos[1], qpos[2], qpos[3], wrap_angle(qpos[4]),
                         *qvel[:5]], dtype=np.float32)

    def _write_state(self, state: np.ndarray) -> None:
        self.data.qpos[:5] = state[:5]
        self.data.qvel[:5] = state[5:10]

    def _apply_action(self, action: np.ndarray) -> None:
        self.data.ctrl[:2] = action * self.max_speed

    def _free_pusher_position(self, rng: np.random.Generator, block_pose: np.ndarray) -> np.ndarray:
        """Uniform pusher position on the table, clear of the block, (2,) [m]."""
        lim = HALF_SIZE - PUSHER_RADIUS - _MARGIN
        while True:
            pos = rng.uniform(-lim, lim, size=2)
            if block_clearance(pos, block_pose) > PUSHER_RADIUS + _MARGIN:
                return pos

    def sample_agent_qpos(self, rng: np.random.Generator) -> np.ndarray:
        """The pusher somewhere free on the table (the block stays), (2,) [m]."""
        return self._free_pusher_position(rng, self.get_state()[2:5])

    def sample_block_pose(self, rng: np.random.Generator) -> np.ndarray:
        """A block pose (x, y, angle) [m, m, rad] with the whole T on the table."""
        xy = rng.uniform(-BLOCK_SPAWN_HALF, BLOCK_SPAWN_HALF, size=2)
        return np.array([xy[0], xy[1], rng.uniform(-np.pi, np.pi)])

    def sample_state(self, rng: np.random.Generator) -> np.ndarray:
        block = self.sample_block_pose(rng)
        pusher = self._free_pusher_position(rng, block)
        return np.concatenate([pusher, block, np.zeros(5)]).astype(np.float32)

    def teleport_object(self, rng: np.random.Generator) -> None:
        """Perturbation: move the T to a new random pose at rest (live simulation), clear of the
        pusher."""
        pusher = self.data.qpos[:2].copy()
        while True:
            pose = self.sample_block_pose(rng)
            if block_clearance(pusher, pose) > PUSHER_RADIUS + _MARGIN:
                break
        self.data.qpos[2:5] = pose
        self.data.qvel[2:5] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def errors(self, state: np.ndarray, goal_state: np.ndarray) -> tuple[float, float]:
        """(block position error [m], block angle error [rad]) between two states."""
        state, goal = np.asarray(state, np.float64), np.asarray(goal_state, np.float64)
        return (float(np.linalg.norm(state[2:4] - goal[2:4])),
                float(abs(wrap_angle(state[4] - goal[4]))))

    def distance(self, state: np.ndarray, goal_state: np.ndarray) -> float:
        """max(position error / 0.04 m, angle error / (pi / 9)): unitless, success below 1."""
        position, angle = self.errors(state, goal_state)
        return max(position / POSITION_TOLERANCE, angle / ANGLE_TOLERANCE)

    def heuristic_action(self, goal_state: np.ndarray, rng: np.random.Generator,
                         noise: float) -> np.ndarray:
        """Push the block to the goal position, then turn it to the goal angle.

        Stateless (a function of the live state): :meth:`_push_target` while the block is more
        than 0.03 m from its goal position or its angle is within tolerance, else
        :meth:`_turn_target`; the pusher heads for that waypoint (kept on the table) at full
        speed, slowing within 0.05 m of it. ``noise`` is the std of Gaussian noise on the (2,)
        action before clipping.
        """
        state = self.get_state().astype(np.float64)
        goal = np.asarray(goal_state, np.float64)
        position_error, angle_error = self.errors(state, goal)
        if position_error > 0.03 or angle_error < 0.7 * ANGLE_TOLERANCE:
            target = self._push_target(state, goal)
        else:
            target = self._turn_target(state, float(wrap_angle(goal[4] - state[4])))
        lim = HALF_SIZE - PUSHER_RADIUS - _MARGIN
        delta = np.clip(target, -lim, lim) - state[:2]
        dist = float(np.linalg.norm(delta))
        action = np.zeros(2) if dist < 1e-9 else delta / dist * min(1.0, dist / 0.05)
        action = action + noise * rng.standard_normal(2)
        return np.clip(action, self.action_low, self.action_high)

    def _push_target(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Waypoint (2,) [m] of a push towards the goal position. The push direction ``u`` is
        from the block to its goal (the nearest of 16 compass directions whose start point is on
        the table, when the block is near a wall); the contact line runs through the block pose
        along ``u``, offset sideways in proportion to the angle error (an off-centre push turns
        the T). In the corridor behind the block: push through; behind it but off the corridor:
        line up; otherwise go around the block first (on the pusher's side unless that side is
        off the table)."""
        pusher, block, angle = state[:2], state[2:4], state[4]
        lim = HALF_SIZE - PUSHER_RADIUS - _MARGIN
        reach = BLOCK_REACH + PUSHER_RADIUS + 0.03
        on_table = lambda point: bool(np.all(np.abs(point) <= lim))  # noqa: E731
        to_goal = goal[2:4] - block
        heading = math.atan2(to_goal[1], to_goal[0])
        for turn in sorted(np.arange(16) * np.pi / 8, key=lambda a: abs(wrap_angle(a))):
            u = np.array([math.cos(heading + turn), math.sin(heading + turn)])
            if on_table(block - reach * u):
                break
        n = np.array([-u[1], u[0]])                                   # u turned +90 deg
        # An offset +s along n pushes with torque -s (clockwise): turn towards the goal angle.
        offset = -float(np.clip(0.15 * wrap_angle(goal[4] - angle), -0.08, 0.08))
        rel = pusher - block
        along, across = float(rel @ u), float(rel @ n)
        if abs(across - offset) < 0.04 and -reach - 0.1 < along < 0.05:
            return block + 0.1 * u + offset * n                        # push through
        if along < -reach + 0.02:
            return block - reach * u + offset * n                      # line up behind the block
        side = 1.0 if across >= 0 else -1.0                            # go around the block
        target = block + side * (reach + 0.02) * n - reach * u
        return target if on_table(target) else block - side * (reach + 0.02) * n - reach * u

    def _turn_target(self, state: np.ndarray, turn: float) -> np.ndarray:
        """Waypoint (2,) [m] of a turn by ``turn`` [rad]: press the top of the bar down near one
        end (the end that turns the T the right way), reaching it around the bar's end."""
        pusher, block, angle = state[:2], state[2:4], state[4]
        c, s = math.cos(angle), math.sin(angle)
        to_world = np.array([[c, -s], [s, c]])
        x, y = to_world.T @ (pusher - block)                           # pusher in the block frame
        top = BAR_CENTRE_Y + BAR_HALF[1] + PUSHER_RADIUS               # pusher centre touching the bar
        # Pressing down (-y) at x_c gives torque x_c * -(-1) ... tau = -x_c: x_c = -0.1 turns +.
        x_c = -0.1 if turn > 0 else 0.1
        end = BAR_HALF[0] + PUSHER_RADIUS + 0.03
        if y > top + 0.01:
            local = (x_c, 0.0) if abs(x - x_c) < 0.03 else (x_c, top + 0.03)   # press / line up
        elif abs(x) > end - 0.02:
            local = (math.copysign(end, x), top + 0.03)                # up beside the bar's end
        else:
            local = (math.copysign(end, x if x != 0 else 1.0), y)      # out from under the bar
        return block + to_world @ np.asarray(local)

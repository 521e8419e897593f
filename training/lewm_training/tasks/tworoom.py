"""TwoRoom: a point mass in two rooms joined by a door, seen from above.

Geometry [m] (world frame, +x right and +y up in the image):

* free arena ``[-1, 1] x [-1, 1]`` bounded by outer walls;
* a dividing wall at ``x = 0`` (thickness 0.1) with a door ``|y| < 0.2``
  (0.4 wide, 2.7 agent diameters): left room ``x < 0``, right room ``x > 0``;
* agent: sphere of radius 0.075 on two frictionless slide joints (x, y),
  1 kg, driven by velocity actuators (kv = 20 N s/m, time constant 0.05 s).

Action: (2,) in [-1, 1], the commanded velocity as a fraction of
``max_speed`` (default 0.4 m/s). ``dt`` = 0.1 s per env step (10 physics steps
of 0.01 s), so 100 steps cover 4 m: enough to cross from any corner of one room
to any corner of the other (<= 2.7 m through the door) with time to spare,
and a 5-step action block moves the agent up to 0.2 m (~6 px at 64 px).

State: (4,) float32 ``[x, y, vx, vy]`` [m, m/s].

Success: agent centre within 0.1 m of the goal position (``distance`` is the
Euclidean position distance [m]). 0.1 m is 5% of the arena side (the paper's
TwoRoom also uses a radius small relative to the arena), about one agent
diameter (so success means the agent visibly overlaps its goal image) and half
of what one 5-step action block can move, so a planner working in blocks can
still stop inside it.

Rendering: orthographic top-down camera showing the walls, flat colours
(headlight ambient only): dark floor, light-grey walls, saturated red agent.
"""
from __future__ import annotations

import mujoco
import numpy as np

from lewm_ros.validation import check_number
from lewm_training.tasks.base import VISUAL_QUALITY, MujocoTask

HALF_SIZE = 1.0
"""[m] the free arena is [-HALF_SIZE, HALF_SIZE]^2."""
WALL_HALF = 0.05
"""[m] half thickness of every wall."""
DOOR_HALF = 0.2
"""[m] the door is the gap |y| < DOOR_HALF in the dividing wall."""
AGENT_RADIUS = 0.075
"""[m]."""
SUCCESS_RADIUS = 0.1
"""[m] see the module docstring."""
_MARGIN = 0.01

_XML = """
<mujoco model="tworoom">
  <compiler angle="radian"/>
  <option timestep="0.01" gravity="0 0 0" integrator="implicitfast"/>
  <visual>
    {quality}
    <headlight ambient="1 1 1" diffuse="0 0 0" specular="0 0 0"/>
  </visual>
  <default>
    <geom contype="1" conaffinity="1" condim="1"/>
  </default>
  <worldbody>
    <camera name="top" pos="0 0 3" projection="orthographic" fovy="{fovy}"/>
    <geom name="floor" type="plane" size="{outer} {outer} 0.1" rgba="0.12 0.12 0.14 1"
          contype="0" conaffinity="0"/>
    <geom name="wall_left" type="box" pos="{wall_c} 0 0.1" size="{w} {outer} 0.1" rgba="0.8 0.8 0.8 1"/>
    <geom name="wall_right" type="box" pos="{wall_c_neg} 0 0.1" size="{w} {outer} 0.1" rgba="0.8 0.8 0.8 1"/>
    <geom name="wall_bottom" type="box" pos="0 {wall_c} 0.1" size="{outer} {w} 0.1" rgba="0.8 0.8 0.8 1"/>
    <geom name="wall_top" type="box" pos="0 {wall_c_neg} 0.1" size="{outer} {w} 0.1" rgba="0.8 0.8 0.8 1"/>
    <geom name="divider_low" type="box" pos="0 {div_low_c} 0.1" size="{w} {div_half} 0.1"
          rgba="0.8 0.8 0.8 1"/>
    <geom name="divider_high" type="box" pos="0 {div_high_c} 0.1" size="{w} {div_half} 0.1"
          rgba="0.8 0.8 0.8 1"/>
    <body name="agent" pos="0 0 {r}">
      <joint name="x" type="slide" axis="1 0 0"/>
      <joint name="y" type="slide" axis="0 1 0"/>
      <geom name="agent" type="sphere" size="{r}" mass="1" rgba="1 0.15 0.15 1"/>
    </body>
  </worldbody>
  <actuator>
    <velocity name="vx" joint="x" kv="20" ctrlrange="-{vmax} {vmax}"/>
    <velocity name="vy" joint="y" kv="20" ctrlrange="-{vmax} {vmax}"/>
  </actuator>
</mujoco>
"""


class TwoRoomTask(MujocoTask):
    """Point mass in two rooms joined by a door (see the module docstring)."""

    name = 'tworoom'

    def __init__(self, image_size: int = 64, seed: int | None = None,
                 max_speed: float = 0.4, n_substeps: int = 10) -> None:
        check_number('max_speed', max_speed, 0.0, 5.0, exclusive_minimum=True)   # [m/s]
        self.max_speed = float(max_speed)
        outer = HALF_SIZE + 2 * WALL_HALF
        div_half = (HALF_SIZE - DOOR_HALF) / 2
        xml = _XML.format(
            quality=VISUAL_QUALITY, fovy=2 * outer, outer=outer, w=WALL_HALF,
            wall_c=-(HALF_SIZE + WALL_HALF), wall_c_neg=HALF_SIZE + WALL_HALF,
            div_half=div_half, div_low_c=-(DOOR_HALF + div_half), div_high_c=DOOR_HALF + div_half,
            r=AGENT_RADIUS, vmax=self.max_speed)
        super().__init__(xml, image_size, seed, n_substeps,
                         action_low=-np.ones(2), action_high=np.ones(2), state_dim=4)
        self._agent_geom = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, 'agent')

    @property
    def success_threshold(self) -> float:
        return SUCCESS_RADIUS

    @property
    def agent_geoms(self) -> list[int]:
        return [self._agent_geom]

    def get_state(self) -> np.ndarray:
        return np.concatenate([self.data.qpos[:2], self.data.qvel[:2]]).astype(np.float32)

    def _write_state(self, state: np.ndarray) -> None:
        self.data.qpos[:2] = state[:2]
        self.data.qvel[:2] = state[2:4]

    def _apply_action(self, action: np.ndarray) -> None:
        self.data.ctrl[:2] = action * self.max_speed

    def sample_agent_qpos(self, rng: np.random.Generator) -> np.ndarray:
        """Uniform free position inside either room (never in the door), (2,) [m]."""
        lim = HALF_SIZE - AGENT_RADIUS - _MARGIN
        while True:
            pos = rng.uniform(-lim, lim, size=2)
            if abs(pos[0]) > WALL_HALF + AGENT_RADIUS + _MARGIN:
                return pos

    def sample_state(self, rng: np.random.Generator) -> np.ndarray:
        return np.concatenate([self.sample_agent_qpos(rng), np.zeros(2)]).astype(np.float32)

    def distance(self, state: np.ndarray, goal_state: np.ndarray) -> float:
        """Euclidean distance between the agent positions [m]."""
        return float(np.linalg.norm(np.asarray(state[:2], np.float64) - np.asarray(goal_state[:2], np.float64)))

    def heuristic_action(self, goal_state: np.ndarray, rng: np.random.Generator,
                         noise: float) -> np.ndarray:
        """Head for the goal; through the door first when it is in the other room.

        Waypoints: when the goal is across the dividing wall, the agent first
        goes to a point 0.25 m in front of the door on its side, then (once
        aligned with the door) to the same point on the far side. Speed is
        proportional to the remaining distance within 0.2 m. ``noise`` is the
        std of Gaussian noise added to the (2,) action before clipping.
        """
        pos = self.data.qpos[:2].copy()
        goal = np.asarray(goal_state[:2], np.float64)
        target = goal
        side = 1.0 if pos[0] >= 0 else -1.0
        if side * goal[0] < 0:
            approach = WALL_HALF + AGENT_RADIUS + 0.12
            aligned = abs(pos[1]) < DOOR_HALF - AGENT_RADIUS - 0.02 and abs(pos[0]) < approach + 0.05
            target = np.array([(-side if aligned else side) * approach, 0.0])
        delta = target - pos
        dist = float(np.linalg.norm(delta))
        action = np.zeros(2) if dist < 1e-9 else delta / dist * min(1.0, dist / 0.2)
        action = action + noise * rng.standard_normal(2)
        return np.clip(action, self.action_low, self.action_high)

"""Reacher: the DeepMind Control Suite reacher (two-link planar arm, random target).

Own MJCF with the Control Suite geometry, not ``dm_control`` itself:
``dm_control`` pins exact ``mujoco`` versions (each release requires the
``mujoco`` it was built with), so installing it would replace or conflict with
the ``mujoco`` this project already uses; the task is small enough to
describe directly. Geometry as in the Control Suite (lengths [m]):

* arena 0.6 x 0.6 with low walls; the arm's root at the centre;
* upper arm: capsule 0.12 long, radius 0.01, shoulder hinge about z (unlimited);
* forearm: capsule 0.10 long, radius 0.01, wrist hinge about z in +-160 deg;
  the fingertip (sphere, radius 0.01) sits 0.12 from the wrist;
* both joints damping 0.01; motors with gear 0.05, control in [-1, 1];
* target: sphere of radius ``target_size`` (0.05 "easy" by default, 0.015
  "hard"), placed at a radius U(0.05, 0.20) and angle U(0, 2 pi) from the root;
* physics and control step 0.02 s (``dt`` = 0.02 s, as the Control Suite).

What the camera draws differs from the Control Suite in two ways, both rendering only (masses,
inertias and dynamics are those above):

* the arm is drawn with radius ``arm_visual_radius`` = 0.025 m (5 cm wide; the fingertip as
  wide), so that a 64-px frame shows it about as many pixels wide (5 px) as the paper's 224-px
  frames show the Control Suite's 2-cm-wide arm (7 px); drawn 2 cm wide it is 2 px, under a
  16-px patch, and the encoder loses the wrist angle;
* the target is hidden (``show_target=False``). Under the goal-image protocol the goal is a pose
  of the same episode, so the target is in the start and the goal frame alike, changing between
  episodes and never within one. In this project's CPU-budget runs (64 px, 500-3000 episodes)
  the encoder then learned the target instead of the arm: a latent of the target is nearly
  perfectly predictable, and it held no arm pose at all. ``show_target=True`` draws it (the
  Control Suite's own task, :meth:`reached_target`).

``models/reacher_compact/README.md`` has the measurements (probes of four renderings); the
shipped model was trained on the defaults.

Start state: shoulder U(-pi, pi), wrist U(-160, 160) deg, zero velocity, random
target. State: (6,) float32 ``[shoulder, wrist, shoulder_vel, wrist_vel,
target_x, target_y]`` [rad, rad/s, m]. Action: (2,) joint torque commands in
[-1, 1].

Success (``is_success``): the fingertip of ``state`` within ``target_size +
0.01`` m (target radius plus fingertip radius: the Control Suite's success
radius) of the fingertip of ``goal_state``. Under the goal-image protocol the
goal is a state of the same episode, so this is "reach the pose shown in the
goal image"; :meth:`ReacherTask.reached_target` is the Control Suite's own
criterion (fingertip to the state's target).
"""
from __future__ import annotations

import mujoco
import numpy as np

from lewm_ros.validation import check_bool, check_number
from lewm_training.tasks.base import VISUAL_QUALITY, MujocoTask

UPPER_ARM = 0.12
"""[m] shoulder to wrist."""
FOREARM = 0.12
"""[m] wrist to fingertip centre."""
FINGER_RADIUS = 0.01
"""[m]."""
WRIST_LIMIT = np.deg2rad(160.0)
"""[rad]."""
ARENA_HALF = 0.3
"""[m]."""

_XML = """
<mujoco model="reacher">
  <compiler angle="radian"/>
  <option timestep="0.02"/>
  <visual>
    {quality}
    <headlight ambient="0.75 0.75 0.75" diffuse="0.25 0.25 0.25" specular="0 0 0"/>
  </visual>
  <default>
    <joint type="hinge" axis="0 0 1" damping="0.01"/>
    <motor gear="0.05" ctrlrange="-1 1" ctrllimited="true"/>
    <geom contype="0" conaffinity="0"/>
  </default>
  <worldbody>
    <camera name="top" pos="0 0 1" projection="orthographic" fovy="{fovy}"/>
    <geom name="floor" type="plane" size="{half} {half} 0.1" rgba="0.15 0.2 0.3 1"/>
    <geom name="wall_x" type="box" pos="-{wall_c} 0 0.02" size="0.01 {wall_l} 0.02" rgba="0.6 0.6 0.65 1"/>
    <geom name="wall_neg_x" type="box" pos="{wall_c} 0 0.02" size="0.01 {wall_l} 0.02" rgba="0.6 0.6 0.65 1"/>
    <geom name="wall_y" type="box" pos="0 -{wall_c} 0.02" size="{wall_l} 0.01 0.02" rgba="0.6 0.6 0.65 1"/>
    <geom name="wall_neg_y" type="box" pos="0 {wall_c} 0.02" size="{wall_l} 0.01 0.02" rgba="0.6 0.6 0.65 1"/>
    <body name="arm" pos="0 0 0.01">
      <geom name="root" type="cylinder" fromto="0 0 0 0 0 0.02" size="0.011" rgba="0.5 0.5 0.5 1"/>
      <geom name="arm" type="capsule" fromto="0 0 0 {upper} 0 0" size="0.01" rgba="0.95 0.65 0.2 1"/>
      <geom name="arm_visual" type="capsule" fromto="0 0 0 {upper} 0 0" size="{arm_visual}" density="0"
            rgba="0.95 0.65 0.2 1"/>
      <joint name="shoulder" limited="false"/>
      <body name="hand" pos="{upper} 0 0">
        <geom name="hand" type="capsule" fromto="0 0 0 0.1 0 0" size="0.01" rgba="0.95 0.65 0.2 1"/>
        <geom name="hand_visual" type="capsule" fromto="0 0 0 0.1 0 0" size="{arm_visual}" density="0"
              rgba="0.95 0.65 0.2 1"/>
        <joint name="wrist" limited="true" range="-{wrist} {wrist}"/>
        <body name="finger" pos="{forearm} 0 0">
          <geom name="finger" type="sphere" size="{finger}" rgba="0.2 0.9 0.3 1"/>
          <geom name="finger_visual" type="sphere" size="{finger_visual}" density="0" rgba="0.2 0.9 0.3 1"/>
        </body>
      </body>
    </body>
    <body name="target" pos="0 0 0.005">
      <joint name="target_x" type="slide" axis="1 0 0" damping="0"/>
      <joint name="target_y" type="slide" axis="0 1 0" damping="0"/>
      <geom name="target" type="sphere" size="{target}" rgba="0.9 0.15 0.15 {target_alpha}"/>
    </body>
  </worldbody>
  <actuator>
    <motor name="shoulder" joint="shoulder"/>
    <motor name="wrist" joint="wrist"/>
  </actuator>
</mujoco>
"""


def _wrap(angle: np.ndarray | float) -> np.ndarray | float:
    """Wrap to [-pi, pi)."""
    return (np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi


class ReacherTask(MujocoTask):
    """Two-link reacher (see the module docstring)."""

    name = 'reacher'

    def __init__(self, image_size: int = 64, seed: int | None = None,
                 target_size: float = 0.05, n_substeps: int = 1,
                 arm_visual_radius: float = 0.025, show_target: bool = False) -> None:
        check_number('target_size', target_size, 0.005, 0.1)   # [m]
        check_number('arm_visual_radius', arm_visual_radius, FINGER_RADIUS, 0.05)   # [m]; the 1-cm arm is drawn anyway
        check_bool('show_target', show_target)
        self.target_size = float(target_size)
        self.arm_visual_radius = float(arm_visual_radius)
        self.show_target = bool(show_target)
        xml = _XML.format(
            quality=VISUAL_QUALITY, fovy=2 * (ARENA_HALF + 0.02), half=ARENA_HALF,
            wall_c=ARENA_HALF, wall_l=ARENA_HALF + 0.01, upper=UPPER_ARM, forearm=FOREARM,
            wrist=WRIST_LIMIT, finger=FINGER_RADIUS, target=self.target_size,
            arm_visual=self.arm_visual_radius, finger_visual=max(FINGER_RADIUS, self.arm_visual_radius),
            target_alpha=1 if self.show_target else 0)
        super().__init__(xml, image_size, seed, n_substeps,
                         action_low=-np.ones(2), action_high=np.ones(2), state_dim=6)
        name2id = lambda name: mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, name)  # noqa: E731
        self._agent_geom_ids = [name2id('arm'), name2id('hand'), name2id('arm_visual'), name2id('hand_visual')]

    @property
    def success_threshold(self) -> float:
        return self.target_size + FINGER_RADIUS

    @property
    def agent_geoms(self) -> list[int]:
        return self._agent_geom_ids

    def get_state(self) -> np.ndarray:
        d = self.data
        return np.concatenate([d.qpos[:2], d.qvel[:2], d.qpos[2:4]]).astype(np.float32)

    def _write_state(self, state: np.ndarray) -> None:
        self.data.qpos[:2] = state[:2]
        self.data.qvel[:2] = state[2:4]
        self.data.qpos[2:4] = state[4:6]
        self.data.qvel[2:4] = 0.0

    def _apply_action(self, action: np.ndarray) -> None:
        self.data.ctrl[:2] = action

    def sample_agent_qpos(self, rng: np.random.Generator) -> np.ndarray:
        """Random joint angles (2,) [rad]: shoulder U(-pi, pi), wrist within its limits."""
        return np.array([rng.uniform(-np.pi, np.pi), rng.uniform(-WRIST_LIMIT, WRIST_LIMIT)])

    def sample_state(self, rng: np.random.Generator) -> np.ndarray:
        arm = self.sample_agent_qpos(rng)
        angle = rng.uniform(0.0, 2 * np.pi)
        radius = rng.uniform(0.05, 0.20)
        target = radius * np.array([np.cos(angle), np.sin(angle)])
        return np.concatenate([arm, np.zeros(2), target]).astype(np.float32)

    @staticmethod
    def fingertip(state: np.ndarray) -> np.ndarray:
        """Fingertip position (2,) [m] of ``state`` (planar forward kinematics)."""
        q1, q2 = float(state[0]), float(state[1])
        return np.array([UPPER_ARM * np.cos(q1) + FOREARM * np.cos(q1 + q2),
                         UPPER_ARM * np.sin(q1) + FOREARM * np.sin(q1 + q2)])

    def distance(self, state: np.ndarray, goal_state: np.ndarray) -> float:
        """Distance between the fingertips of ``state`` and ``goal_state`` [m]."""
        return float(np.linalg.norm(self.fingertip(state) - self.fingertip(goal_state)))

    def reached_target(self, state: np.ndarray) -> bool:
        """Control Suite success: fingertip within target + finger radius of the target."""
        tip_to_target = np.linalg.norm(self.fingertip(state) - np.asarray(state[4:6], np.float64))
        return bool(tip_to_target < self.success_threshold)

    def heuristic_action(self, goal_state: np.ndarray, rng: np.random.Generator,
                         noise: float) -> np.ndarray:
        """PD control of the joint angles towards ``goal_state``'s pose, plus Gaussian noise.

        The shoulder error is wrapped to [-pi, pi); the wrist error is not (it
        cannot pass its +-160 deg limit). ``noise`` is the std added to the (2,)
        action before clipping.
        """
        q, qd = self.data.qpos[:2], self.data.qvel[:2]
        goal = np.asarray(goal_state[:2], np.float64)
        err = np.array([_wrap(goal[0] - q[0]), goal[1] - q[1]])
        action = 2.0 * err - 0.1 * qd + noise * rng.standard_normal(2)
        return np.clip(action, self.action_low, self.action_high)

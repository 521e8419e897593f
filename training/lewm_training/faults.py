"""Faults injected into a simulated robot (ROS-free): what the surprise monitor must catch.

Physical faults act on the MuJoCo simulation, image faults on the camera frame:

* ``teleport``: the agent jumps to a random free position (once);
* ``push``: a shove, ``push_speed`` [m/s] added to the agent's velocity in a random direction
  (once; the velocity actuators and the walls take it from there);
* ``hold``: a stuck wheel, the agent stays where it is whatever it is commanded (lasting);
* ``freeze``: the camera repeats one frame (lasting);
* ``black``: black frames (lasting);
* ``shift`` / ``rotate``: the camera knocked askew, the image translated by ``shift_px`` [px] /
  rotated by ``rotate_deg`` [deg] about its centre, edges replicated (lasting);
* ``recolor``: every geom (floor, walls, agent) gets a new random colour (lasting, in the model);
* ``floor``: an unseen floor texture, the floor's pixels replaced by a checkerboard (lasting).

A :class:`FaultInjector` belongs to one SimRobot: ``inject`` may be called from any thread;
everything that touches MuJoCo runs on the stepping thread (``before_step`` / ``after_step``),
and lasting faults hold until ``clear`` (a new episode clears them).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import mujoco
import numpy as np

from lewm_ros.validation import check_choice, check_int, check_positive

FAULT_KINDS = ('teleport', 'push', 'hold', 'freeze', 'black', 'shift', 'rotate', 'recolor', 'floor')
#: Faults that happen once (the rest last until cleared).
ONE_SHOT = frozenset({'teleport', 'push'})
#: Pixels within this L-inf distance [0..255] of the floor's colour are floor.
_FLOOR_TOLERANCE = 12
_CHECKER = np.array([[150, 110, 60], [60, 120, 150]], np.uint8)


@dataclass(frozen=True)
class FaultConfig:
    """push_speed [m/s] added to the agent; shift_px [px] of the image shift (right and down);
    rotate_deg [deg] of the image rotation; checker_px [px] side of a floor checker square."""
    push_speed: float = 5.0
    shift_px: int = 6
    rotate_deg: float = 15.0
    checker_px: int = 6

    def __post_init__(self) -> None:
        check_positive('push_speed', self.push_speed)
        check_int('shift_px', self.shift_px, 1)
        check_positive('rotate_deg', self.rotate_deg)
        check_int('checker_px', self.checker_px, 1)


class FaultInjector:
    """Pending and active faults of one simulated robot (see the module docstring)."""

    def __init__(self, seed: int, config: FaultConfig | None = None) -> None:
        self.config = config or FaultConfig()
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._active: set[str] = set()
        self._held: np.ndarray | None = None      # hold: (nq,) qpos kept
        self._frozen: np.ndarray | None = None    # freeze: (S, S, 3) the repeated frame
        self._floor_rgb: np.ndarray | None = None

    @property
    def active(self) -> tuple[str, ...]:
        """Lasting faults in force, in FAULT_KINDS order."""
        with self._lock:
            return tuple(kind for kind in FAULT_KINDS if kind in self._active)

    def inject(self, kind: str) -> None:
        """Ask for a fault (any thread); it takes effect at the next env step / frame."""
        check_choice('fault', kind, FAULT_KINDS)
        with self._lock:
            self._pending.append(kind)

    def clear(self) -> None:
        """End every fault (a new episode: the task's reset restores the colours)."""
        with self._lock:
            self._pending, self._active = [], set()
            self._held = self._frozen = None

    # ----- stepping thread ------------------------------------------------------------------
    def before_step(self, task) -> None:
        """Apply the pending faults to ``task`` (a MujocoTask) before its next env step."""
        with self._lock:
            pending, self._pending = self._pending, []
            for kind in pending:
                self._apply(kind, task)

    def after_step(self, task) -> None:
        """hold: put the agent back where it was held, at rest."""
        with self._lock:
            held = self._held if 'hold' in self._active else None
        if held is not None:
            task.data.qpos[:] = held
            task.data.qvel[:] = 0.0
            mujoco.mj_forward(task.model, task.data)

    def pixels(self, pixels: np.ndarray, task) -> np.ndarray:
        """The camera frame (S, S, 3) uint8 as the faulty camera delivers it."""
        with self._lock:
            active = set(self._active)
            if 'freeze' in active:
                if self._frozen is None:
                    self._frozen = pixels.copy()
                return self._frozen.copy()
        if 'black' in active:
            return np.zeros_like(pixels)
        if 'floor' in active:
            pixels = self._checker_floor(pixels, task)
        if 'shift' in active or 'rotate' in active:
            pixels = self._warp(pixels, 'shift' in active, 'rotate' in active)
        return pixels

    def _apply(self, kind: str, task) -> None:
        if kind == 'teleport':
            task.teleport(self._rng)
        elif kind == 'push':
            angle = self._rng.uniform(0.0, 2.0 * np.pi)
            dofs = min(2, task.model.nv)
            task.data.qvel[:dofs] += self.config.push_speed * np.array([np.cos(angle), np.sin(angle)])[:dofs]
        elif kind == 'recolor':
            task.model.geom_rgba[:, :3] = self._rng.uniform(0.0, 1.0, (task.model.ngeom, 3))
        else:
            if kind == 'hold':
                self._held = task.data.qpos.copy()
            self._active.add(kind)

    def _checker_floor(self, pixels: np.ndarray, task) -> np.ndarray:
        floor = mujoco.mj_name2id(task.model, mujoco.mjtObj.mjOBJ_GEOM, 'floor')
        if floor < 0:
            return pixels
        rgb = np.round(task.model.geom_rgba[floor, :3] * 255.0).astype(np.int16)
        mask = np.abs(pixels.astype(np.int16) - rgb).max(-1) <= _FLOOR_TOLERANCE            # (S, S)
        side = self.config.checker_px
        ys, xs = np.indices(mask.shape)
        checker = _CHECKER[((ys // side) + (xs // side)) % 2]                                # (S, S, 3)
        return np.where(mask[..., None], checker, pixels)

    def _warp(self, pixels: np.ndarray, shift: bool, rotate: bool) -> np.ndarray:
        import cv2
        size = pixels.shape[0]
        centre = ((size - 1) / 2.0, (size - 1) / 2.0)
        matrix = cv2.getRotationMatrix2D(centre, self.config.rotate_deg if rotate else 0.0, 1.0)
        if shift:
            matrix[:, 2] += self.config.shift_px
        return cv2.warpAffine(pixels, matrix, (pixels.shape[1], size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)

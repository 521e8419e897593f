"""stall: the camera stops while the robot moves; time from its last frame to the first zero command.

A 30 Hz camera feeds planner_node (control_rate, image_timeout as given) until it commands a
non-zero motion, then stops at a random phase of the control period. The stop time is measured
at the probe, from the publication of the last frame to the arrival of the first zero command,
K times. Holds when every stall stops the robot within image_timeout + 2 control periods and the
command stays zero until the camera comes back.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from lewm_training.reliability.common import SHIPPED_MODEL, CheckResult
from lewm_training.reliability.rig import Rig, RigConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--repeats', type=int, default=10, help='stalls measured (K)')
    parser.add_argument('--image-timeout', type=float, default=0.5, help='planner_node image_timeout [s]')
    parser.add_argument('--control-rate', type=float, default=10.0, help='planner_node control_rate [Hz]')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--model-dir', type=Path, default=SHIPPED_MODEL)
    parser.add_argument('--domain-id', type=int, default=None, help='ROS domain (default: ROS_DOMAIN_ID)')


def _one_stall(rig: Rig, rng: np.random.Generator, observe_s: float) -> tuple[float | None, bool, bool]:
    """-> (stop time [s] or None, robot was moving at the stall, command held zero afterwards)."""
    if not rig.moving(30.0):
        return None, False, False
    time.sleep(float(rng.uniform(0.0, 1.0 / rig.config.control_rate)))
    rig.camera_on.clear()
    time.sleep(observe_s)
    last_frame = rig.last_frame_s
    before = [c for t, c in rig.commands if t <= last_frame]
    after = rig.since(last_frame)
    rig.camera_on.set()
    moving = bool(before) and np.abs(before[-1]).max() > 1e-9
    zeros = [i for i, (_, c) in enumerate(after) if not c.any()]
    if not zeros:
        return None, moving, False
    held = all(not c.any() for _, c in after[zeros[0]:])
    return after[zeros[0]][0] - last_frame, moving, held


def run(args: argparse.Namespace) -> CheckResult:
    result = CheckResult('stall')
    rng = np.random.default_rng(args.seed)
    period = 1.0 / args.control_rate
    bound = args.image_timeout + 2 * period
    stops, held_flags = [], []
    with tempfile.TemporaryDirectory() as tmp:
        rig = Rig(RigConfig(model_dir=args.model_dir, control_rate=args.control_rate,
                            image_timeout=args.image_timeout, domain_id=args.domain_id), Path(tmp))
        try:
            result.require(rig.start(), 'planner_node did not configure/activate')
            rig.camera_on.set()
            attempts = 0
            while len(stops) < args.repeats and attempts < 2 * args.repeats and rig.alive():
                attempts += 1
                stop, moving, held = _one_stall(rig, rng, args.image_timeout + 1.0)
                if not moving:  # the robot happened to stand still at the stall: not a measurement
                    continue
                stops.append(stop)
                held_flags.append(held)
            result.require(rig.alive(), f'planner_node crashed: {rig.crashes}')
        finally:
            rig.close()
    measured = [s for s in stops if s is not None]
    result.require(len(stops) == args.repeats, f'{len(stops)} of {args.repeats} stalls happened while moving')
    result.require(len(measured) == len(stops), f'{len(stops) - len(measured)} stalls never stopped the robot')
    result.require(all(s <= bound for s in measured), f'a stop took longer than {bound:.2f} s: {measured}')
    result.require(all(held_flags), 'the command did not stay zero after a stop')
    result.figures = {'repeats': len(stops), 'image_timeout_s': args.image_timeout,
                      'control_rate_hz': args.control_rate,
                      'stop_min_s': round(min(measured), 3) if measured else None,
                      'stop_max_s': round(max(measured), 3) if measured else None,
                      'stop_mean_s': round(float(np.mean(measured)), 3) if measured else None,
                      'stops_s': [round(s, 3) for s in measured], 'bound_s': round(bound, 3),
                      'zero_held': all(held_flags)}
    if measured:
        result.summary = [f'{len(measured)} camera stalls while moving: first zero command '
                          f'{min(measured):.3f}-{max(measured):.3f} s after the last frame '
                          f'(image_timeout {args.image_timeout} s, control {args.control_rate:g} Hz, '
                          f'bound {bound:.2f} s)']
    return result

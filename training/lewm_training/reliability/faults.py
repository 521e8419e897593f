"""faults: a planner that raises, returns NaN, returns 1e9, hangs or spins -> zero commands, steady timer.

The node's planner object is wrapped in-process by a FaultInjector (a test fixture around the
real MPCPlanner, installed where planner_node builds its planner). For each fault, while the
robot moves: switch the fault on, record every command until the command has been zero for
``--hold`` seconds (or ``plan_timeout`` + 3 s pass), switch it off and wait for motion again.
Holds when every fault ends in held zero commands, no command leaves its limits, and the
control timer keeps its rate (within 5 %) with no gap over 2 periods.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import tempfile
import threading
import time
from pathlib import Path
from collections.abc import Iterator

import numpy as np

from lewm_training.reliability.common import SHIPPED_MODEL, CheckResult, interval_stats, wait_for
from lewm_training.reliability.rig import Rig, RigConfig

FAULTS = ('raise', 'nan', 'huge', 'hang', 'busy')
"""raise: plan() raises; nan / huge: plan() returns NaN / 1e9 raw actions; hang: plan() blocks;
busy: plan() loops in Python holding the GIL as much as the interpreter lets it."""


class FaultInjector:
    """planner: the real planner; mode: None (pass through) or one of FAULTS; release: ends a
    hang/busy plan (which then returns a real plan)."""

    def __init__(self, planner) -> None:
        self._planner = planner
        self.mode: str | None = None
        self.release = threading.Event()
        self.faulty_calls = 0

    def __getattr__(self, name: str):
        return getattr(self._planner, name)

    def plan(self):
        mode = self.mode
        if mode is None:
            return self._planner.plan()
        self.faulty_calls += 1
        if mode == 'raise':
            raise RuntimeError('injected planner fault')
        if mode == 'hang':
            self.release.wait()
        elif mode == 'busy':
            while not self.release.is_set():
                pass
        plan = self._planner.plan()
        if mode in ('nan', 'huge'):
            value = np.nan if mode == 'nan' else 1e9
            plan = dataclasses.replace(plan, raw_actions=np.full_like(plan.raw_actions, value))
        return plan


@contextlib.contextmanager
def injected_planners() -> Iterator[list[FaultInjector]]:
    """While open, every planner_node built in this process plans through a FaultInjector."""
    from lewm_ros.ros import planner_node
    original = planner_node.build_planner
    made: list[FaultInjector] = []

    def build(params):
        made.append(FaultInjector(original(params)))
        return made[-1]
    planner_node.build_planner = build
    try:
        yield made
    finally:
        planner_node.build_planner = original


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--faults', nargs='+', choices=FAULTS, default=list(FAULTS))
    parser.add_argument('--hold', type=float, default=2.0, help='zero commands held this long end a fault [s]')
    parser.add_argument('--control-rate', type=float, default=10.0, help='planner_node control_rate [Hz]')
    parser.add_argument('--plan-timeout', type=float, default=2.0, help='planner_node plan_timeout [s]')
    parser.add_argument('--model-dir', type=Path, default=SHIPPED_MODEL)
    parser.add_argument('--domain-id', type=int, default=None, help='ROS domain (default: ROS_DOMAIN_ID)')


def _zero_since(commands: list[tuple[float, np.ndarray]]) -> float | None:
    """Arrival time of the first command of the final all-zero run (None: the last is not zero)."""
    start = None
    for t, c in commands:
        start = (start if start is not None else t) if not c.any() else None
    return start


def _one_fault(rig: Rig, injector: FaultInjector, mode: str, hold_s: float, limit_s: float) -> dict:
    period = 1.0 / rig.config.control_rate
    moving = rig.moving(30.0)
    errors0 = int(rig.fresh_diagnostics().get('planner_errors', 0))
    t0 = time.monotonic()
    injector.mode = mode

    def held() -> bool:
        since = _zero_since(rig.since(t0))
        return since is not None and time.monotonic() - since >= hold_s
    stopped = wait_for(held, limit_s, poll_s=0.05)
    commands = rig.since(t0)
    diagnostics = rig.fresh_diagnostics()
    injector.mode = None
    injector.release.set()
    recovered = rig.moving(30.0)
    injector.release.clear()
    zero_at = _zero_since(commands)
    timing = interval_stats(np.array([t for t, _ in commands]))
    return {'moving_before': moving, 'zero_held': stopped, 'time_to_zero_s': None if zero_at is None else
            round(zero_at - t0, 3), 'commands': len(commands), 'out_of_limits': rig.out_of_limits(commands),
            'max_abs_command': round(float(max((np.abs(c).max() for _, c in commands), default=0.0)), 6),
            'rate_hz': round(timing['rate_hz'], 3), 'gap_max_s': round(timing['gap_max_s'], 3),
            'rate_ok': abs(timing['rate_hz'] * period - 1.0) < 0.05 and timing['gap_max_s'] < 2 * period,
            'planner_errors': int(diagnostics.get('planner_errors', 0)) - errors0,
            'faulty_calls': injector.faulty_calls, 'recovered': recovered}


def run(args: argparse.Namespace) -> CheckResult:
    result = CheckResult('faults')
    per_fault: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp, injected_planners() as injectors:
        rig = Rig(RigConfig(model_dir=args.model_dir, control_rate=args.control_rate,
                            plan_timeout=args.plan_timeout, domain_id=args.domain_id), Path(tmp))
        try:
            result.require(rig.start(), 'planner_node did not configure/activate')
            rig.camera_on.set()
            for mode in args.faults:
                calls = injectors[-1].faulty_calls
                per_fault[mode] = _one_fault(rig, injectors[-1], mode, args.hold, args.plan_timeout + 3.0 + args.hold)
                per_fault[mode]['faulty_calls'] -= calls
            result.require(rig.alive(), f'planner_node crashed: {rig.crashes}')
        finally:
            injectors[-1].release.set() if injectors else None
            rig.close()
    for mode, f in per_fault.items():
        result.require(f['moving_before'] and f['faulty_calls'] > 0, f'{mode}: the fault was never exercised')
        result.require(f['zero_held'], f'{mode}: commands did not end at zero (max |command| {f["max_abs_command"]})')
        result.require(f['out_of_limits'] == 0, f'{mode}: {f["out_of_limits"]} commands out of limits')
        result.require(f['rate_ok'], f'{mode}: control {f["rate_hz"]} Hz, longest gap {f["gap_max_s"]} s')
        result.require(f['recovered'], f'{mode}: no motion after the fault was removed')
    result.figures = {'faults': per_fault, 'control_rate_hz': args.control_rate, 'plan_timeout_s': args.plan_timeout}
    result.summary = [f'{mode:5s}: ' + (f'zero after {f["time_to_zero_s"]} s' if f['zero_held'] else
                                        f'NOT zero (max |command| {f["max_abs_command"]})')
                      + f', control {f["rate_hz"]} Hz (longest gap {f["gap_max_s"]} s), '
                        f'{f["out_of_limits"]} out of limits, planner errors {f["planner_errors"]}'
                      for mode, f in per_fault.items()]
    return result

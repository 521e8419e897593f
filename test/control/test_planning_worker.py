"""ActionStream and PlanningWorker without ROS: a real MPCPlanner on a random compact model."""
import threading

import numpy as np
import pytest

from lewm_ros.control.action_stream import ActionStream
from lewm_ros.control.planning_worker import PlanningWorker, PlanReport
from lewm_ros.model import LeWM, ModelMetadata, preset
from lewm_ros.planning import MPCPlanner
from lewm_ros.planning.config import CEMConfig, MPCConfig
from lewm_ros.runtime.backend import make_backend

FRAMESKIP, ACTIONS, SIZE, HORIZON = 5, 2, 64, 3


@pytest.fixture(scope='module')
def planner(tmp_path_factory):
    from lewm_ros.model import save_model_dir
    metadata = ModelMetadata(action_dim=ACTIONS, frameskip=FRAMESKIP, history=3, image_size=SIZE,
                             action_mean=[0, 0], action_std=[1, 1], action_low=[-1, -1], action_high=[1, 1])
    directory = save_model_dir(LeWM(preset('compact', action_dim=ACTIONS, frameskip=FRAMESKIP)).eval(),
                               tmp_path_factory.mktemp('compact'), metadata)
    config = MPCConfig(cem=CEMConfig(num_samples=8, num_elites=2, iterations=1, horizon=HORIZON))
    return MPCPlanner(make_backend('torch', directory), metadata, config)


def frame(value: int) -> np.ndarray:
    return np.full((SIZE, SIZE, 3), value, np.uint8)


class Reports:
    """Collects PlanReports from the worker thread."""

    def __init__(self) -> None:
        self.items: list[PlanReport] = []
        self.arrived = threading.Event()

    def __call__(self, report: PlanReport) -> None:
        self.items.append(report)
        self.arrived.set()

    def next(self, timeout_s: float = 30.0) -> PlanReport:
        assert self.arrived.wait(timeout_s), 'no plan within the timeout'
        self.arrived.clear()
        return self.items[-1]


def test_stream_hands_each_tick_its_action_and_drops_plans_of_an_old_epoch():
    stream = ActionStream(frameskip=2, action_dim=1)
    first = stream.boundary_due()
    assert first is not None and first.tick == 0 and first.executed is None
    plan = np.arange(6, dtype=float).reshape(3, 2, 1)
    assert stream.install(plan, first, stamp_s=1.0, cost=0.5)
    for tick in range(3):
        action, stamp = stream.current_action()
        assert action[0] == tick and stamp == 1.0
        stream.record(action)
        due = stream.boundary_due()
        assert (due is not None) == (tick % 2 == 1)
        if due is not None:
            assert due.tick == 2 and due.executed.ravel().tolist() == [0.0, 1.0]
    stream.reset()
    assert stream.current_action() == (None, None)
    assert not stream.install(plan, first, stamp_s=2.0, cost=0.5)  # observed before the reset


def test_worker_reports_the_installed_plan_and_the_stream_serves_it(planner):
    stream = ActionStream(FRAMESKIP, ACTIONS)
    reports = Reports()
    worker = PlanningWorker(planner, stream, receding_blocks=1, clock=lambda: 7.0, on_plan=reports)
    worker.start()
    try:
        assert worker.submit_goal(frame(200)).wait(30.0) == ''
        worker.submit_boundary(stream.boundary_due(), frame(10))
        report = reports.next()
        assert report.installed and report.observed_tick == 0
        assert report.raw_actions.shape == (HORIZON, FRAMESKIP, ACTIONS)
        action, stamp = stream.current_action()
        np.testing.assert_array_equal(action, report.raw_actions[0, 0])
        assert stamp == 7.0 and np.isfinite(report.cost) and report.latency_s > 0
        assert np.all(np.abs(report.raw_actions) <= 1.0)
    finally:
        worker.stop()
    assert worker.errors == 0


def test_a_plan_made_obsolete_by_a_reset_is_reported_but_not_installed(planner):
    stream = ActionStream(FRAMESKIP, ACTIONS)
    reports = Reports()
    release = threading.Event()

    def late_clock() -> float:  # runs inside the plan's install: reset the stream first
        stream.reset()
        release.set()
        return 1.0
    worker = PlanningWorker(planner, stream, receding_blocks=1, clock=late_clock, on_plan=reports)
    worker.start()
    try:
        assert worker.submit_goal(frame(200)).wait(30.0) == ''
        worker.submit_boundary(stream.boundary_due(), frame(10))
        report = reports.next()
        assert release.is_set() and not report.installed and stream.plan is None
    finally:
        worker.stop()


def test_a_bad_goal_is_refused_with_its_reason(planner):
    worker = PlanningWorker(planner, ActionStream(FRAMESKIP, ACTIONS), 1, clock=lambda: 0.0, on_plan=Reports())
    worker.start()
    try:
        error = worker.submit_goal(np.zeros((8, 8, 3), np.uint8)).wait(30.0)
        assert error.startswith('set_goal failed') and '(64, 64, 3)' in error
    finally:
        worker.stop()


@pytest.mark.parametrize('value', [np.nan, 1e9, -3.0])
def test_a_plan_no_working_planner_returns_is_dropped_and_the_plan_in_force_with_it(planner, value):
    """MPCPlanner clips every plan to the model bounds ([-1, 1] here): NaN or actions beyond the
    bounds mean a broken planner. The worker counts it, installs nothing and drops the plan in
    force, so the stream has no action and the safety filter stops the robot."""
    import dataclasses
    stream = ActionStream(FRAMESKIP, ACTIONS)
    reports = Reports()
    broken = {'on': False}
    real_plan = planner.plan

    class Faulty:  # the real planner, whose plans can be corrupted
        has_goal = property(lambda self: planner.has_goal)
        metadata = planner.metadata
        set_goal, reset, observe = planner.set_goal, planner.reset, planner.observe

        def plan(self):
            plan = real_plan()
            if not broken['on']:
                return plan
            return dataclasses.replace(plan, raw_actions=np.full_like(plan.raw_actions, value))
    worker = PlanningWorker(Faulty(), stream, receding_blocks=1, clock=lambda: 1.0, on_plan=reports)
    worker.start()
    try:
        assert worker.submit_goal(frame(200)).wait(30.0) == ''
        worker.submit_boundary(stream.boundary_due(), frame(10))
        assert reports.next().installed and stream.current_action()[0] is not None
        broken['on'] = True
        for _ in range(FRAMESKIP):
            stream.record(np.zeros(ACTIONS))
        worker.submit_boundary(stream.boundary_due(), frame(11))
        report = reports.next()
        assert not report.installed and worker.errors == 1
        assert stream.plan is None and stream.current_action() == (None, None)
    finally:
        worker.stop()

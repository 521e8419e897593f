"""SimRobot / SimLoop (the ROS-free core of sim_node): real MuJoCo, real threads, no rclpy."""
import threading
import time

import numpy as np
import pytest

from lewm_training.sim_loop import SimLoop
from lewm_training.sim_robot import SimConfig, SimRobot


def test_config_rejects_bad_values_naming_the_parameter():
    with pytest.raises(ValueError, match='mode'):
        SimConfig(mode='fast')
    with pytest.raises(ValueError, match='twist_fields'):
        SimConfig(twist_fields=('linear.x', 'linear.x'))
    with pytest.raises(ValueError, match=r"unknown sim_node parameter\(s\) \['speed'\]"):
        SimConfig.from_values({'speed': 1.0})


def test_episodes_are_seeded_and_goal_is_a_policy_rollout():
    a, b = SimRobot(SimConfig(seed=3)), SimRobot(SimConfig(seed=3))
    try:
        ea0, eb0 = a.new_episode(), b.new_episode()
        np.testing.assert_array_equal(ea0.start_state, eb0.start_state)
        np.testing.assert_array_equal(ea0.goal_state, eb0.goal_state)
        np.testing.assert_array_equal(ea0.goal_pixels, eb0.goal_pixels)
        # The simulation sits at the start, the goal is where 25 policy steps led.
        start = a.frame()
        np.testing.assert_allclose(start.state, ea0.start_state, atol=1e-6)
        assert start.step == 0 and start.sim_time_s == 0.0
        assert start.distance == pytest.approx(a.task.distance(ea0.start_state, ea0.goal_state))
        assert np.abs(ea0.goal_pixels.astype(int) - start.pixels.astype(int)).sum() > 0
        ea1 = a.new_episode()
        assert ea1.index == 1 and not np.array_equal(ea1.start_state, ea0.start_state)
    finally:
        a.close()
        b.close()


def test_step_moves_the_agent_and_advances_sim_time():
    robot = SimRobot(SimConfig())
    try:
        robot.new_episode()
        x0 = robot.frame().state[:2].copy()
        for _ in range(10):
            frame = robot.step(np.array([1.0, 0.0]))
        assert frame.step == 10 and frame.sim_time_s == pytest.approx(10 * robot.dt)
        assert frame.state[0] - x0[0] > 0.25  # 10 steps at up to 0.4 m/s for 0.1 s each
        assert abs(frame.state[1] - x0[1]) < 1e-3
        with pytest.raises(ValueError, match='2 finite values'):
            robot.step(np.array([np.nan, 0.0]))
    finally:
        robot.close()


class _Recorder:
    def __init__(self):
        self.frames, self.episodes = [], []
        self.lock = threading.Lock()

    def frame(self, f):
        with self.lock:
            self.frames.append((time.monotonic(), f))

    def episode(self, e):
        self.episodes.append(e)


def _wait(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end and not cond():
        time.sleep(0.01)
    return cond()


def test_lockstep_steps_exactly_once_per_command_and_resets_between_steps():
    rec = _Recorder()
    loop = SimLoop(SimRobot(SimConfig(mode='lockstep')), rec.frame, rec.episode)
    loop.start()
    try:
        assert _wait(lambda: len(rec.frames) == 1)  # the start frame of episode 0
        time.sleep(0.3)
        assert loop.steps == 0  # no command, no step
        for _ in range(7):
            loop.submit_command(np.array([0.5, 0.0]))
        assert _wait(lambda: loop.steps == 7)
        time.sleep(0.2)
        assert loop.steps == 7 and [f.step for _, f in rec.frames] == list(range(8))
        episode = loop.request_reset()
        assert episode.index == 1 and [e.index for e in rec.episodes] == [0, 1]
        assert rec.frames[-1][1].step == 0 and rec.frames[-1][1].episode == 1
        assert rec.frames[-1][1].sim_time_s == pytest.approx(7 * loop.robot.dt)  # sim time never goes back
    finally:
        loop.stop()
    assert loop.error is None


def test_realtime_paces_steps_and_zeroes_a_stale_command():
    rec = _Recorder()
    config = SimConfig(mode='realtime', real_time_factor=4.0, command_timeout=0.2)  # 40 Hz
    loop = SimLoop(SimRobot(config), rec.frame, rec.episode)
    loop.start()
    try:
        assert _wait(lambda: len(rec.frames) == 1)  # episode 0 is drawn (~0.2 s) before stepping starts
        loop.submit_command(np.array([0.0, 1.0]))
        time.sleep(1.0)
    finally:
        loop.stop()
    assert loop.error is None
    stamps = [t for t, f in rec.frames if f.step > 0]
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    assert 36.0 < rate < 44.0, rate
    actions = [f.action[1] for _, f in rec.frames if f.step > 0]
    # Held for command_timeout (0.2 s = ~8 steps), then zero.
    assert 5 <= sum(a == 1.0 for a in actions) <= 10 and actions[-1] == 0.0

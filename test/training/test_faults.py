"""Fault injection into SimRobot (the ROS-free core of sim_node): real MuJoCo, each kind does
what lewm_training.faults says, and a new episode clears it."""
import numpy as np
import pytest

from lewm_training.faults import FAULT_KINDS, FaultInjector
from lewm_training.sim_robot import SimConfig, SimRobot

RIGHT = np.array([1.0, 0.0])


@pytest.fixture(scope='module')
def robots():
    """Two robots on the same episode sequence: one gets the fault, the twin stays normal."""
    pair = SimRobot(SimConfig(seed=3)), SimRobot(SimConfig(seed=3))
    yield pair
    for robot in pair:
        robot.close()


def steps(robot, n, action=RIGHT):
    return [robot.step(action) for _ in range(n)]


@pytest.mark.parametrize('kind', FAULT_KINDS)
def test_each_fault_and_the_next_episode_clears_it(robots, kind):
    faulty, twin = robots
    for robot in robots:
        robot.new_episode()
        steps(robot, 3)
    faulty.faults.inject(kind)
    after, normal = steps(faulty, 3), steps(twin, 3)
    moved = np.linalg.norm(after[-1].state[:2] - normal[-1].state[:2])
    same_frames = np.array_equal(after[-1].pixels, normal[-1].pixels)
    if kind in ('teleport', 'push'):
        assert moved > 0.05 and faulty.faults.active == ()          # once, in the simulation
    elif kind == 'hold':
        assert np.allclose(after[0].state[:2], after[-1].state[:2]) and moved > 0.05
    else:
        assert moved < 1e-6 and not same_frames and faulty.faults.active == ((kind,) if kind != 'recolor' else ())
    if kind == 'freeze':
        assert all(np.array_equal(after[0].pixels, f.pixels) for f in after)
    if kind == 'black':
        assert not after[-1].pixels.any()
    faulty.new_episode()
    twin.new_episode()
    assert np.array_equal(faulty.frame().pixels, twin.frame().pixels) and faulty.faults.active == ()


def test_unknown_fault_is_an_error():
    with pytest.raises(ValueError, match='fault'):
        FaultInjector(0).inject('earthquake')

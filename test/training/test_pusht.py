"""Push-T task: contact pushing, turning, walls, the success test and the collection heuristic,
on the real MuJoCo simulation (EGL rendering at a small size)."""
import math

import numpy as np
import pytest

from lewm_training.tasks import make_task
from lewm_training.tasks import pusht as pt
from lewm_training.surprise import perturbations_of


@pytest.fixture(scope='module')
def task():
    made = make_task('pusht', image_size=32, seed=0)
    yield made
    made.close()


def _state(pusher, block, angle=0.0):
    return np.array([*pusher, *block, angle, 0, 0, 0, 0, 0], np.float32)


def test_pushing_through_the_centre_translates_the_block(task):
    task.reset(options={'state': _state((-0.35, 0.0), (0.0, 0.0))})
    for _ in range(30):                     # 3 s at 0.2 m/s: 0.6 m of pusher travel
        obs, *_ = task.step(np.array([1.0, 0.0]))
    # The pusher meets the bar's left end (0.15 m of travel) and pushes the block right.
    assert obs.state[2] > 0.2, obs.state
    assert obs.state[0] < obs.state[2]     # the pusher stays behind the block, never through it
    assert abs(obs.state[3]) < 0.05


def test_an_off_centre_push_turns_the_block(task):
    # Pushing the bar's left end upwards (+y) turns the T counter-clockwise... from below the
    # bar's left end, the torque about the centre of mass is -x * F_y < 0: clockwise.
    task.reset(options={'state': _state((-0.1, -0.12), (0.0, 0.0))})
    for _ in range(15):
        obs, *_ = task.step(np.array([0.0, 1.0]))
    assert obs.state[4] < -0.2, obs.state


def test_the_block_stops_when_contact_ends(task):
    task.reset(options={'state': _state((-0.3, 0.0), (0.0, 0.0))})
    for _ in range(15):
        task.step(np.array([1.0, 0.0]))
    for _ in range(5):                      # pusher stops: the table's drag stops the block
        obs, *_ = task.step(np.array([0.0, 0.0]))
    assert np.abs(obs.state[7:10]).max() < 0.01, obs.state


def test_walls_keep_the_block_on_the_table(task):
    task.reset(options={'state': _state((-0.05, 0.0), (0.2, 0.0))})
    for _ in range(60):                     # push right for 6 s
        obs, *_ = task.step(np.array([1.0, 0.0]))
    assert obs.state[2] < pt.HALF_SIZE and obs.state[0] < obs.state[2]


def test_distance_is_in_units_of_the_tolerances(task):
    s = _state((0, 0), (0.1, 0.1), 3.0)
    moved = s.copy()
    moved[2] += 0.02                        # half the position tolerance
    assert task.distance(s, moved) == pytest.approx(0.5, rel=1e-5)
    turned = s.copy()
    turned[4] = 3.0 + pt.ANGLE_TOLERANCE * 0.5 - 2 * math.pi   # wrapped angle error
    assert task.distance(s, turned) == pytest.approx(0.5, rel=1e-4)
    assert task.is_success(s, moved) and task.is_success(s, turned)
    far = s.copy()
    far[2] += 0.05
    assert not task.is_success(s, far)
    pusher_only = s.copy()
    pusher_only[:2] = (0.4, -0.4)           # the pusher's position does not count
    assert task.distance(s, pusher_only) == 0.0


def test_start_states_keep_the_pusher_clear_of_the_block(task):
    rng = np.random.default_rng(0)
    for _ in range(200):
        state = task.sample_state(rng)
        assert pt.block_clearance(state[:2], state[2:5]) > pt.PUSHER_RADIUS
        assert np.all(np.abs(state[2:4]) <= pt.BLOCK_SPAWN_HALF)
        assert -math.pi <= state[4] < math.pi


def test_block_teleport_moves_only_the_block(task):
    obs, _ = task.reset(seed=3)
    task.teleport_object(np.random.default_rng(1))
    after = task.observe()
    np.testing.assert_array_equal(after.state[:2], obs.state[:2])
    assert np.linalg.norm(after.state[2:4] - obs.state[2:4]) > 0 and np.any(after.pixels != obs.pixels)
    assert perturbations_of(task) == ('teleport', 'recolor', 'teleport_object')  # lewm-train surprise tests it
    tworoom = make_task('tworoom', image_size=32)
    try:
        assert perturbations_of(tworoom) == ('teleport', 'recolor')
    finally:
        tworoom.close()


def test_heuristic_reaches_goal_poses(task):
    """The collection heuristic pushes and turns the T into most sampled goal poses."""
    reached = 0
    for episode in range(10):
        task.reset(seed=episode)
        rng = np.random.default_rng(100 + episode)
        goal = task.sample_state(rng)
        for _ in range(300):
            obs, *_ = task.step(task.heuristic_action(goal, rng, noise=0.0))
            if task.is_success(obs.state, goal):
                reached += 1
                break
    assert reached >= 4, reached


def test_protocol_episodes_move_the_block():
    """Push-T evaluation pairs come from the pushing heuristic after it reached the block: the goal
    differs from the start (a random walk would mostly leave the block where it is)."""
    from lewm_training.evaluate import EvalConfig, episodes_from_policy
    specs = episodes_from_policy('pusht', 32, EvalConfig(episodes=12, seed=42), heuristic_frac=0.0)
    task = make_task('pusht', image_size=32)
    solved_at_start = sum(task.is_success(spec.start_state, spec.goal_state) for spec in specs)
    task.close()
    assert solved_at_start <= 6, solved_at_start
    moving = sum(np.linalg.norm(spec.start_state[7:9]) > 0.02 for spec in specs)   # started mid-push
    assert moving >= 9, moving

"""The exploration driver's core: the collection policy mix one tick at a time (real MuJoCo mirror)."""
import numpy as np
import pytest

from lewm_training.explorer import Explorer, ExplorerConfig
from lewm_training.policies import PolicyConfig


def run(config: ExplorerConfig, ticks: int, state=None) -> tuple[np.ndarray, list[str]]:
    explorer = Explorer(config)
    try:
        actions, kinds = [], []
        for _ in range(ticks):
            actions.append(explorer.action(state))
            kinds.append(explorer.kind)
        return np.stack(actions), kinds
    finally:
        explorer.close()


def test_random_walk_stays_in_bounds_changes_and_repeats_with_its_seed():
    config = ExplorerConfig(policy=PolicyConfig(kind='random'), episode_steps=20, seed=3)
    actions, kinds = run(config, 60)
    assert actions.shape == (60, 2) and np.all(np.abs(actions) <= 1.0)
    assert np.abs(np.diff(actions, axis=0)).max() > 0.05 and set(kinds) == {'random'}
    np.testing.assert_array_equal(actions, run(config, 60)[0])
    assert not np.array_equal(actions, run(ExplorerConfig(policy=PolicyConfig(kind='random'), seed=4), 60)[0])


def test_heuristic_heads_for_its_goal_from_the_observed_state_and_waits_without_one():
    config = ExplorerConfig(policy=PolicyConfig(kind='heuristic', noise=0.0), episode_steps=10)
    idle, _ = run(config, 3, state=None)
    assert not idle.any()  # no state yet: no goal-directed command
    explorer = Explorer(config)
    try:
        state = np.array([-0.8, 0.5, 0.0, 0.0])
        first = explorer.action(state)
        assert np.linalg.norm(first) > 0.1 and explorer.kind == 'heuristic' and config.needs_state
        # the action follows the observed state (the mirror is set to the robot's state each tick)
        assert not np.allclose(first, explorer.action(np.array([0.8, -0.5, 0.0, 0.0])))
    finally:
        explorer.close()


def test_episodes_draw_a_policy_each_and_count():
    explorer = Explorer(ExplorerConfig(policy=PolicyConfig(kind='mix', heuristic_frac=0.5), episode_steps=5, seed=1))
    try:
        kinds = set()
        for tick in range(50):
            assert explorer.episode_due() == (tick % 5 == 0)
            explorer.action(np.zeros(4))
            kinds.add(explorer.kind)
        assert explorer.episode == 9 and kinds == {'random', 'heuristic'}
    finally:
        explorer.close()


@pytest.mark.parametrize('kwargs, name', [({'task': 'car'}, 'task'), ({'episode_steps': 0}, 'episode_steps')])
def test_bad_config_names_the_field(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ExplorerConfig(**kwargs)

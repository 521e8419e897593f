"""Paper-exact CEM, once per array namespace (numpy on the host, torch): finds a known optimum,
repeats by seed, keeps the mean as sample 0, honours bounds only when asked, validates its
config; a seed gives the same samples in every namespace."""
import numpy as np
import pytest

from lewm_ros.planning import CEM, CEMConfig
from lewm_ros.runtime.arrays import array_space
from lewm_ros.runtime.backend import PlanningContext

BLOCK = 3


@pytest.fixture(params=['numpy', 'torch'])
def arrays(request):
    return array_space(request.param)


def context_in(arrays, block: int = BLOCK) -> PlanningContext:
    return PlanningContext(history_latents=arrays.zeros((1, 4)), history_blocks=arrays.zeros((0, block)),
                           goal_latent=arrays.zeros((4,)))


def quadratic(arrays, target: np.ndarray):
    """costs_fn of a known optimum: sum of squared distance to target (H, block)."""
    goal = arrays.from_host(target)

    def costs(candidates, context):
        assert isinstance(context, PlanningContext)
        return arrays.xp.sum((candidates - goal) ** 2, axis=(1, 2))
    return costs


def recording(arrays, store: list):
    def costs(candidates, context):
        store.append(arrays.to_host(candidates))
        return arrays.xp.sum(candidates ** 2, axis=(1, 2))
    return costs


def test_finds_the_optimum_of_a_quadratic(arrays):
    target = np.linspace(-1.5, 1.5, 5 * BLOCK, dtype=np.float32).reshape(5, BLOCK)
    result = CEM(CEMConfig(), BLOCK, arrays).solve(quadratic(arrays, target), context_in(arrays))  # paper budget
    mean = arrays.to_host(result.mean)
    assert mean.shape == (5, BLOCK) and np.abs(mean - target).max() < 0.05
    assert result.iterations == 30 and len(result.cost_history) == 30
    assert result.cost_history[-1] < result.cost_history[0] and result.cost == result.cost_history[-1]
    assert result.elapsed_s > 0


def test_same_seed_same_plan_and_reset_repeats(arrays):
    target, ctx = np.ones((5, BLOCK), np.float32), context_in(arrays)
    config = CEMConfig(num_samples=32, num_elites=4, iterations=3, seed=7)
    a, b = CEM(config, BLOCK, arrays), CEM(config, BLOCK, arrays)
    first = arrays.to_host(a.solve(quadratic(arrays, target), ctx).mean)
    np.testing.assert_array_equal(first, arrays.to_host(b.solve(quadratic(arrays, target), ctx).mean))
    assert not np.array_equal(first, arrays.to_host(a.solve(quadratic(arrays, target), ctx).mean))  # stream moved
    a.reset()
    np.testing.assert_array_equal(first, arrays.to_host(a.solve(quadratic(arrays, target), ctx).mean))
    other = CEM(CEMConfig(num_samples=32, num_elites=4, iterations=3, seed=8), BLOCK, arrays)
    assert not np.array_equal(first, arrays.to_host(other.solve(quadratic(arrays, target), ctx).mean))


def test_a_seed_gives_the_same_samples_in_every_namespace():
    """The noise comes from one host generator: numpy and torch see identical candidates, and
    the same costs give the same plan up to float rounding of the refit."""
    config = CEMConfig(num_samples=24, num_elites=6, iterations=4, seed=3, hold_actions=True)
    seen, plans = {}, {}
    for name in ('numpy', 'torch'):
        arrays, store = array_space(name), []
        plans[name] = arrays.to_host(CEM(config, 6, arrays, action_dim=2).solve(recording(arrays, store),
                                                                                context_in(arrays, 6)).mean)
        seen[name] = store
    np.testing.assert_array_equal(seen['numpy'][0], seen['torch'][0])   # the first iteration: bit for bit
    for a, b in zip(seen['numpy'], seen['torch']):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(plans['numpy'], plans['torch'], rtol=1e-5, atol=1e-6)


def test_mean_is_sample_zero_and_warm_start_is_used(arrays):
    seen = []
    init = np.full((2, BLOCK), 0.25, np.float32)
    result = CEM(CEMConfig(num_samples=16, num_elites=4, iterations=2, horizon=2), BLOCK, arrays).solve(
        recording(arrays, seen), context_in(arrays), init_mean=arrays.from_host(init), init_std=0.1, iterations=2)
    assert len(seen) == 2 and seen[0].shape == (16, 2, BLOCK)
    np.testing.assert_array_equal(seen[0][0], init)
    assert np.abs(seen[0][1:] - init).max() < 1.0            # std 0.1 around the warm start
    assert result.iterations == 2


def test_no_clipping_by_default_and_clamp_when_asked(arrays):
    low, high = np.full((BLOCK,), -0.5, np.float32), np.full((BLOCK,), 0.5, np.float32)
    seen = []
    CEM(CEMConfig(num_samples=64, num_elites=8, iterations=2), BLOCK, arrays, bounds_z=(low, high)).solve(
        recording(arrays, seen), context_in(arrays))
    assert np.abs(np.concatenate(seen)).max() > 0.5          # paper mode: no clipping while sampling
    seen.clear()
    result = CEM(CEMConfig(num_samples=64, num_elites=8, iterations=2, clamp_to_bounds=True), BLOCK, arrays,
                 bounds_z=(low, high)).solve(recording(arrays, seen), context_in(arrays))
    samples = np.concatenate(seen)
    assert samples.min() >= -0.5 and samples.max() <= 0.5
    mean = arrays.to_host(result.mean)
    assert mean.min() >= -0.5 and mean.max() <= 0.5


def test_clamp_without_bounds_is_an_error():
    with pytest.raises(ValueError, match='bounds'):
        CEM(CEMConfig(clamp_to_bounds=True), BLOCK)


@pytest.mark.parametrize('kwargs, field', [
    ({'num_samples': 1}, 'num_samples'),
    ({'num_samples': 10, 'num_elites': 11}, 'num_elites'),
    ({'iterations': 0}, 'iterations'),
    ({'horizon': 0}, 'horizon'),
    ({'init_std': 0.0}, 'init_std'),
    ({'seed': -1}, 'seed'),
    ({'num_samples': 3.5}, 'num_samples'),
])
def test_config_errors_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f'cem.{field}'):
        CEMConfig(**kwargs)


def test_hold_actions_samples_piecewise_constant_blocks(arrays):
    """hold_actions: one draw per raw action dim and block, repeated over the block's steps."""
    store: list = []
    frameskip, action_dim = 3, 2
    cem = CEM(CEMConfig(num_samples=16, num_elites=4, iterations=3, hold_actions=True), frameskip * action_dim,
              arrays, action_dim=action_dim)
    result = cem.solve(recording(arrays, store), context_in(arrays, 6))
    for candidates in store:
        steps = candidates.reshape(16, 5, frameskip, action_dim)
        np.testing.assert_array_equal(steps, np.broadcast_to(steps[:, :, :1], steps.shape))
        assert steps[:, :, 0].std() > 0  # still random across candidates, blocks and dims
    plan = arrays.to_host(result.mean).reshape(5, frameskip, action_dim)
    np.testing.assert_allclose(plan, np.broadcast_to(plan[:, :1], plan.shape), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match='hold_actions'):
        CEM(CEMConfig(hold_actions=True), 6)

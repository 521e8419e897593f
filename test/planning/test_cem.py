"""Paper-exact CEM: finds a known optimum, repeats by seed, keeps the mean as sample 0, honours
bounds only when asked, validates its config."""
import pytest
import torch

from lewm_ros.planning import CEM, CEMConfig
from lewm_ros.runtime.backend import PlanningContext

BLOCK = 3
CONTEXT = PlanningContext(history_latents=torch.zeros(1, 4), history_blocks=torch.zeros(0, BLOCK),
                          goal_latent=torch.zeros(4))


def quadratic(target: torch.Tensor):
    """costs_fn of a known optimum: sum of squared distance to target (H, block)."""
    def costs(candidates: torch.Tensor, context: PlanningContext) -> torch.Tensor:
        assert context is CONTEXT
        return (candidates - target).square().sum(dim=(1, 2))
    return costs


def recording(store: list):
    def costs(candidates: torch.Tensor, context: PlanningContext) -> torch.Tensor:
        store.append(candidates.clone())
        return candidates.square().sum(dim=(1, 2))
    return costs


def test_finds_the_optimum_of_a_quadratic():
    target = torch.linspace(-1.5, 1.5, 5 * BLOCK).reshape(5, BLOCK)
    result = CEM(CEMConfig(), BLOCK).solve(quadratic(target), CONTEXT)     # the paper's 300 x 30 budget
    assert result.mean.shape == (5, BLOCK)
    assert (result.mean - target).abs().max() < 0.05
    assert result.iterations == 30 and len(result.cost_history) == 30
    assert result.cost_history[-1] < result.cost_history[0] and result.cost == result.cost_history[-1]
    assert result.elapsed_s > 0


def test_same_seed_same_plan_and_reset_repeats():
    target = torch.ones(5, BLOCK)
    config = CEMConfig(num_samples=32, num_elites=4, iterations=3, seed=7)
    a, b = CEM(config, BLOCK), CEM(config, BLOCK)
    first = a.solve(quadratic(target), CONTEXT)
    assert torch.equal(first.mean, b.solve(quadratic(target), CONTEXT).mean)
    assert not torch.equal(first.mean, a.solve(quadratic(target), CONTEXT).mean)  # the stream moved on
    a.reset()
    assert torch.equal(first.mean, a.solve(quadratic(target), CONTEXT).mean)
    other = CEM(CEMConfig(num_samples=32, num_elites=4, iterations=3, seed=8), BLOCK)
    assert not torch.equal(first.mean, other.solve(quadratic(target), CONTEXT).mean)


def test_mean_is_sample_zero_and_warm_start_is_used():
    seen = []
    init = torch.full((2, BLOCK), 0.25)
    result = CEM(CEMConfig(num_samples=16, num_elites=4, iterations=2, horizon=2), BLOCK).solve(
        recording(seen), CONTEXT, init_mean=init, init_std=0.1, iterations=2)
    assert len(seen) == 2 and seen[0].shape == (16, 2, BLOCK)
    assert torch.equal(seen[0][0], init)
    assert (seen[0][1:] - init).abs().max() < 1.0            # std 0.1 around the warm start
    assert result.iterations == 2


def test_no_clipping_by_default_and_clamp_when_asked():
    low, high = torch.full((BLOCK,), -0.5), torch.full((BLOCK,), 0.5)
    seen = []
    CEM(CEMConfig(num_samples=64, num_elites=8, iterations=2), BLOCK, bounds_z=(low, high)).solve(
        recording(seen), CONTEXT)
    assert torch.cat(seen).abs().max() > 0.5                 # paper mode: no clipping while sampling
    seen.clear()
    result = CEM(CEMConfig(num_samples=64, num_elites=8, iterations=2, clamp_to_bounds=True), BLOCK,
                 bounds_z=(low, high)).solve(recording(seen), CONTEXT)
    samples = torch.cat(seen)
    assert samples.min() >= -0.5 and samples.max() <= 0.5
    assert result.mean.min() >= -0.5 and result.mean.max() <= 0.5


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


def test_hold_actions_samples_piecewise_constant_blocks():
    """hold_actions: one draw per raw action dim and block, repeated over the block's steps."""
    store: list = []
    frameskip, action_dim = 3, 2
    cem = CEM(CEMConfig(num_samples=16, num_elites=4, iterations=3, hold_actions=True), frameskip * action_dim,
              action_dim=action_dim)
    context = PlanningContext(history_latents=torch.zeros(1, 4), history_blocks=torch.zeros(0, 6),
                              goal_latent=torch.zeros(4))
    result = cem.solve(recording(store), context)
    for candidates in store:
        steps = candidates.reshape(16, 5, frameskip, action_dim)
        assert torch.equal(steps, steps[:, :, :1].expand_as(steps))
        assert steps[:, :, 0].std() > 0  # still random across candidates, blocks and dims
    plan = result.mean.reshape(5, frameskip, action_dim)
    assert torch.allclose(plan, plan[:, :1].expand_as(plan))
    with pytest.raises(ValueError, match='hold_actions'):
        CEM(CEMConfig(hold_actions=True), 6)

"""Planner modes policy / policy_cem on a tiny random model and a random goal-conditioned policy
(real files: weights, config, verified ONNX export; torch and ONNX Runtime runners)."""
import dataclasses
import math
import shutil

import numpy as np
import pytest
import torch

from lewm_ros.model.policy import GoalPolicy, load_policy, save_policy
from lewm_ros.planning.cem import CEM
from lewm_ros.planning.config import CEMConfig, MPCConfig, PolicyModeConfig, resolve_mode
from lewm_ros.planning.mpc import MPCPlanner
from lewm_ros.planning.policy import PolicyProposer
from lewm_ros.runtime.onnx_manifest import model_hash, sha256_file
from lewm_ros.runtime.policy_export import export_policy_onnx
from lewm_ros.runtime.policy_format import GoalPolicyConfig
from lewm_ros.runtime.policy_runner import OnnxPolicyRunner, TorchPolicyRunner, make_policy_runner
from planning_fixtures import FRAMESKIP, IMAGE, tiny_metadata

LATENT = 16
BLOCK = FRAMESKIP * 2


def write_policy(model_dir, num_blocks=3, seed=0):
    """A random policy (output scaled up so that it reaches the action bounds) with its ONNX."""
    torch.manual_seed(seed)
    config = GoalPolicyConfig(latent_dim=LATENT, block_dim=BLOCK, num_blocks=num_blocks, hidden_dim=32,
                              model_hash=model_hash(model_dir))
    policy = GoalPolicy(config)
    with torch.no_grad():
        policy.net[-1].weight.mul_(20.0)
    weights = save_policy(policy, model_dir)
    dataclasses.replace(config, weights_sha256=sha256_file(weights)).save(model_dir)
    export_policy_onnx(model_dir)
    return model_dir


@pytest.fixture(scope='module')
def policy_dir(tiny_model_dir, tmp_path_factory):
    directory = tmp_path_factory.mktemp('policy_model')
    for item in tiny_model_dir.iterdir():
        if item.is_file():
            shutil.copy(item, directory / item.name)
    return write_policy(directory)


def frame(seed):
    return np.random.default_rng(seed).integers(0, 256, (IMAGE, IMAGE, 3), dtype=np.uint8)


def ready(planner):
    planner.set_goal(frame(100))
    planner.observe(frame(1), None)
    planner.observe(frame(2), np.zeros((FRAMESKIP, 2)))
    return planner


def config(mode, **policy):
    cem = CEMConfig(num_samples=16, num_elites=4, iterations=3, horizon=4, clamp_to_bounds=True, hold_actions=True)
    return MPCConfig(cem=cem, warm_iterations=2, mode=mode, policy=PolicyModeConfig(**policy))


def test_torch_and_onnx_runners_agree(policy_dir):
    latent, goal = np.random.default_rng(0).standard_normal((2, LATENT)).astype(np.float32)
    torch_blocks = TorchPolicyRunner(policy_dir).propose(latent, goal, 4.0)
    onnx_blocks = OnnxPolicyRunner(policy_dir).propose(latent, goal, 4.0)
    assert torch_blocks.shape == (3, BLOCK) and np.abs(torch_blocks - onnx_blocks).max() < 1e-4


@pytest.mark.parametrize('backend', ['torch', 'onnxruntime'])
def test_policy_mode_holds_the_policy_block_clipped(policy_dir, backend):
    planner = ready(MPCPlanner.from_model_dir(policy_dir, backend=backend, config=config('policy')))
    context = planner.context()
    latent, goal = (planner.arrays.to_host(x) for x in (context.history_latents[-1, ...], context.goal_latent))
    expected = TorchPolicyRunner(policy_dir).propose(latent, goal, 1.0)[0]  # goal_blocks: 1 by default
    plan = planner.plan()
    assert plan.mode == 'policy' and plan.iterations == 0 and math.isnan(plan.cost) and not plan.disagreement
    np.testing.assert_allclose(plan.blocks, np.tile(expected, (4, 1)), atol=1e-4)  # held over H = 4
    meta = tiny_metadata()
    raw = np.clip(meta.denormalize_blocks(expected), meta.action_low, meta.action_high)
    np.testing.assert_allclose(plan.raw_actions[0], raw, atol=1e-4)
    assert raw.min() == meta.action_low[1] or raw.max() == meta.action_high[1]  # clipping did happen


def test_policy_cem_unrolls_the_policy_through_the_world_model(policy_dir):
    """Block j of the proposal is the policy's block at the latent the predictor expects after
    blocks 0..j-1 (history window kept), so the proposal is what the policy would do in the model."""
    from lewm_ros.runtime.backend import PlanningContext
    planner = ready(MPCPlanner.from_model_dir(policy_dir, config=config('policy_cem')))
    context = planner.context()
    proposal = np.asarray(planner._proposer.propose(context))
    runner, backend = TorchPolicyRunner(policy_dir), planner.backend
    latents, blocks, goal = context.history_latents, context.history_blocks, context.goal_latent
    for j in range(4):
        expected = runner.propose(np.asarray(latents[-1]), np.asarray(goal), 1.0)[0]
        np.testing.assert_allclose(proposal[j], expected, atol=1e-4)
        block = torch.as_tensor(expected)
        latent = backend.predict_next(PlanningContext(latents, blocks, goal), block)
        latents, blocks = torch.cat([latents, latent[None]])[-3:], torch.cat([blocks, block[None]])[-2:]
    assert not np.allclose(proposal[0], proposal[1])  # the predicted latents moved the policy


def test_policy_cem_scores_the_proposal_and_counts_disagreements(policy_dir):
    planner = ready(MPCPlanner.from_model_dir(policy_dir, config=config('policy_cem', disagreement_ratio=1.0)))
    plan = planner.plan()
    assert plan.mode == 'policy_cem' and plan.iterations == 2 and plan.proposal_cost is not None
    assert plan.cost <= plan.proposal_cost  # the proposal was a candidate: the best sample is no worse
    assert plan.disagreement == (plan.proposal_cost > plan.cost)
    planner.observe(frame(3), plan.raw_actions[0])
    assert planner.plan().proposal_cost is not None  # warm: the previous plan is injected beside it


def test_cem_proposals_compete_by_cost_only():
    target = torch.linspace(-1, 1, 4 * BLOCK).reshape(4, BLOCK)
    costs = lambda candidates, context: ((torch.as_tensor(candidates) - target) ** 2).sum(dim=(1, 2))  # noqa: E731
    from lewm_ros.runtime.arrays import array_space
    cem = CEM(CEMConfig(num_samples=32, num_elites=4, iterations=3, horizon=4), BLOCK, array_space('torch'))
    good = cem.solve(costs, None, proposals=target[None])
    assert good.proposal_costs == (0.0,) and good.cost_history[0] == 0.0
    bad_proposal = torch.full((1, 4, BLOCK), 50.0)
    bad = cem.solve(costs, None, proposals=bad_proposal)
    assert bad.proposal_costs[0] > 1e4 and float(torch.as_tensor(bad.mean).abs().max()) < 10.0
    with pytest.raises(ValueError, match='proposals must be'):
        cem.solve(costs, None, proposals=torch.zeros(32, 4, BLOCK))


class _FixedRunner:
    """A policy runner that proposes the same blocks whatever the input (a bad or broken policy)."""

    def __init__(self, blocks):
        self.blocks = np.asarray(blocks, np.float32)
        self.config = GoalPolicyConfig(latent_dim=LATENT, block_dim=BLOCK, num_blocks=len(self.blocks))
        self.source = 'fixed/policy_config.json'

    def propose(self, latent, goal, goal_blocks):
        return self.blocks


@pytest.mark.parametrize('proposal', [50.0, math.nan])
def test_policy_cem_never_returns_a_plan_worse_than_the_previous_one(proposal):
    """The previous plan is the optimum (cost 0); a far or non-finite proposal must not pull the
    returned plan away from it (the elite mean of samples around the proposal would)."""

    from lewm_ros.runtime.arrays import array_space
    from lewm_ros.runtime.backend import PlanningContext
    space = array_space('numpy')
    target = np.linspace(-1, 1, 4 * BLOCK, dtype=np.float32).reshape(4, BLOCK)
    costs = lambda candidates, context: ((np.asarray(candidates) - target) ** 2).sum(axis=(1, 2))  # noqa: E731
    mpc = config('policy_cem')
    proposer = PolicyProposer(_FixedRunner(np.full((4, BLOCK), proposal)), space, BLOCK, LATENT, mpc)
    context = PlanningContext(np.zeros((1, LATENT), np.float32), np.zeros((0, BLOCK), np.float32),
                              np.zeros(LATENT, np.float32))
    cem = CEM(dataclasses.replace(mpc.cem, clamp_to_bounds=False), BLOCK, space, action_dim=2)
    result = proposer.solve(cem, costs, context, previous=target)
    assert float(costs(np.asarray(result.mean)[None], None)[0]) == 0.0
    assert result.proposal_costs[0] > 1e3 and proposer.disagrees(result)
    cold = proposer.solve(cem, costs, context, previous=None)               # no previous plan: still finite
    assert np.all(np.isfinite(np.asarray(cold.mean)))


def test_a_policy_mode_without_a_policy_or_with_a_stale_one_is_refused(tiny_model_dir, policy_dir, tmp_path):
    with pytest.raises(ValueError, match='no goal-conditioned policy'):
        MPCPlanner.from_model_dir(tiny_model_dir, config=config('policy'))
    stale = tmp_path / 'stale'
    shutil.copytree(policy_dir, stale)
    GoalPolicyConfig.load(stale).__class__(**{**dataclasses.asdict(GoalPolicyConfig.load(stale)),
                                              'model_hash': '0' * 64}).save(stale)
    with pytest.raises(ValueError, match='trained on world model'):
        make_policy_runner('torch', stale)
    tampered = tmp_path / 'tampered'
    shutil.copytree(policy_dir, tampered)
    (tampered / 'policy.onnx').write_bytes(b'not onnx')
    with pytest.raises(ValueError, match='not the export its policy config records'):
        make_policy_runner('onnxruntime', tampered)
    assert load_policy(policy_dir).config.num_blocks == 3


@pytest.mark.parametrize('backend', ['torch', 'onnxruntime'])
def test_auto_mode_runs_policy_cem_with_a_policy_and_cem_without(tiny_model_dir, policy_dir, backend):
    with_policy = MPCPlanner.from_model_dir(policy_dir, backend=backend, config=config('auto'))
    without = MPCPlanner.from_model_dir(tiny_model_dir, backend=backend, config=config('auto'))
    assert (with_policy.config.mode, without.config.mode) == ('policy_cem', 'cem')
    result = ready(with_policy).plan()
    assert result.mode == 'policy_cem' and result.proposal_cost is not None and np.isfinite(result.cost)
    assert ready(without).plan().mode == 'cem'
    assert MPCConfig().mode == 'auto' and MPCConfig.paper().mode == 'cem'  # the paper's planner is CEM alone
    with pytest.raises(ValueError, match='mpc.mode'):
        resolve_mode('fast', True)
    two = dataclasses.replace(config('auto'), cem=CEMConfig(num_samples=2, num_elites=2, iterations=1, horizon=4))
    assert MPCPlanner.from_model_dir(tiny_model_dir, config=two).config.mode == 'cem'   # a valid CEM budget
    with pytest.raises(ValueError, match='num_samples'):   # too few for the proposal beside the previous plan
        MPCPlanner.from_model_dir(policy_dir, config=two)


def test_a_policy_that_does_not_fit_the_planner_is_refused_naming_its_file(policy_dir):
    too_far = MPCConfig(mode='policy', policy=PolicyModeConfig(goal_blocks=50.0))
    with pytest.raises(ValueError, match=r'policy_config.json: max_goal_blocks') as raised:
        MPCPlanner.from_model_dir(policy_dir, config=too_far)
    assert 'planner.policy_goal_blocks 50' in str(raised.value)
    runner = make_policy_runner('torch', policy_dir)
    space = MPCPlanner.from_model_dir(policy_dir, config=config('cem')).arrays
    with pytest.raises(ValueError, match=rf'{policy_dir / "policy_config.json"}: the policy takes latents of {LATENT}'):
        PolicyProposer(runner, space, BLOCK, LATENT + 1, config('policy'))


def test_policy_config_is_validated():
    with pytest.raises(ValueError, match='policy.num_blocks'):
        GoalPolicyConfig(latent_dim=4, block_dim=2, num_blocks=0)
    with pytest.raises(ValueError, match='unknown key'):
        GoalPolicyConfig.from_dict({'latent_dim': 4, 'block_dim': 2, 'surprise': 1})
    with pytest.raises(ValueError, match='mpc.mode'):
        MPCConfig(mode='dream')
    with pytest.raises(ValueError, match='disagreement_ratio'):
        PolicyModeConfig(disagreement_ratio=0.5)
    with pytest.raises(ValueError, match='cem.num_samples'):
        MPCConfig(cem=CEMConfig(num_samples=2, num_elites=2), mode='policy_cem')


def test_bench_times_every_mode(policy_dir):
    from lewm_ros.bench.modes import bench_mode, mode_table
    rows = [bench_mode(policy_dir, mode, 'mpc', 'torch', 'cpu', decisions=3, threads=1)
            for mode in ('cem', 'policy', 'policy_cem')]
    assert [r['mode'] for r in rows] == ['cem', 'policy', 'policy_cem']
    assert all(0 < r['plan_ms_p50'] <= r['plan_ms_p99'] <= r['plan_ms_max'] for r in rows)
    assert '| policy | - | torch | 3 |' in mode_table(rows)

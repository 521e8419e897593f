"""lewm-train fit-policy: hindsight pairs, and a whole fit on real MuJoCo episodes with a tiny
model (the policy's quality is meaningless here; its files, record and planner use are not)."""
import json

import numpy as np
import pytest
import torch

from lewm_ros.model import LeWM, ModelMetadata, save_model_dir
from lewm_ros.planning.config import MPCConfig
from lewm_ros.planning.mpc import MPCPlanner
from lewm_training.collect import CollectConfig, collect
from lewm_training.policy_data import EncodedEpisodes, sample_pairs
from lewm_training.policy_fit import PolicyFitConfig, fit_policy
from lewm_training.synthetic import tiny_model_config


def test_hindsight_pairs_stay_in_their_episode_and_mask_blocks_after_the_goal():
    lengths, k, blocks = (9, 21), 2, 3                      # frames per episode, frameskip, P
    frames = sum(lengths)
    end = torch.cat([torch.full((n,), first + n - 1) for n, first in zip(lengths, (0, lengths[0]))])
    actions = torch.arange(frames, dtype=torch.float32)[:, None].repeat(1, 2)  # action row = its frame index
    latents = torch.arange(frames, dtype=torch.float32)[:, None].repeat(1, 4)
    data = EncodedEpisodes(latents, actions, end)
    batch = sample_pairs(data, 2000, blocks, k, 4.0, torch.Generator().manual_seed(0))
    t = batch.latent[:, 0].long()
    goal = batch.goal[:, 0].long()
    offset = goal - t
    assert torch.all(offset >= 1) and torch.all(offset <= 8) and torch.all(goal <= end[t])
    assert torch.equal(batch.remaining, offset.float() / k)
    for j in range(blocks):
        first_step = t + j * k
        inside = first_step + k <= end[t]                   # the block's actions all exist
        expected = (j * k < offset) & inside
        assert torch.equal(batch.mask[:, j].bool(), expected)
        counted = expected.nonzero().squeeze(1)
        assert torch.equal(batch.target[counted, j, 0], first_step[counted].float())


@pytest.fixture(scope='module')
def model_and_data(tmp_path_factory):
    torch.manual_seed(0)
    meta = ModelMetadata(action_dim=2, frameskip=5, history=3, image_size=32, action_mean=[0.0, 0.0],
                         action_std=[0.6, 0.6], action_low=[-1.0, -1.0], action_high=[1.0, 1.0], task='tworoom',
                         preset='tiny')
    model_dir = save_model_dir(LeWM(tiny_model_config(image_size=32)).eval(), tmp_path_factory.mktemp('m'), meta)
    data = tmp_path_factory.mktemp('d') / 'data'
    collect(CollectConfig(task='tworoom', episodes=6, steps=30, image_size=32, seed=1, episodes_per_shard=6),
            data, workers=1)
    return model_dir, data


def test_fit_policy_ships_a_policy_the_planner_runs(model_and_data):
    """(The ONNX Runtime runner against torch: test/planning/test_policy_modes.py.)"""
    model_dir, data = model_and_data
    cfg = PolicyFitConfig(steps=30, batch_size=64, warmup_steps=5, hidden_dim=32, val_every=10, val_frac=0.2)
    config = fit_policy(model_dir, data, cfg, progress=False, command='lewm-train fit-policy ...')
    record = json.loads((model_dir / 'policy_config.json').read_text())['training']
    assert record['train_episodes'] + record['val_episodes'] == 6 and np.isfinite(record['val_mse'])
    assert config.onnx_sha256 and config.weights_sha256 and record['onnx_max_abs_err'] < 1e-4
    planner = MPCPlanner.from_model_dir(model_dir, config=MPCConfig(mode='policy'))
    planner.set_goal(np.zeros((32, 32, 3), np.uint8))
    planner.observe(np.full((32, 32, 3), 90, np.uint8), None)
    plan = planner.plan()
    assert plan.raw_actions.shape == (5, 5, 2) and np.all(np.abs(plan.raw_actions) <= 1.0)


def test_fit_config_is_validated():
    with pytest.raises(ValueError, match='max_goal_blocks'):
        PolicyFitConfig(max_goal_blocks=0.0)

"""Checkpoints written by the LeWM authors' code load strictly and give the same outputs.

The fixture (test/fixtures/reference, made by scripts/make_reference_fixture.py with
stable-worldmodel 0.1.1 + transformers 4.57 / 5.17) holds random weights in both transformers
key layouts, a published-format config.json, and the reference's inputs and outputs.
"""
import shutil
from pathlib import Path

import pytest
import torch

from lewm_ros.model import load_model
from lewm_ros.runtime.rollout import NaiveRolloutCost, RolloutCost

FIXTURE = Path(__file__).resolve().parents[1] / 'fixtures' / 'reference'
TOL = 1e-4


@pytest.fixture(scope='module')
def io():
    return torch.load(FIXTURE / 'io.pt', weights_only=True)


@pytest.fixture(scope='module', params=['weights.pt', 'weights_hf5.pt'])
def model(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp(request.param.replace('.', '_'))
    shutil.copy(FIXTURE / 'config.json', directory / 'config.json')
    shutil.copy(FIXTURE / request.param, directory / 'weights.pt')
    return load_model(directory)


def test_strict_load_and_sizes(model):
    assert len(model.state_dict()) == len(torch.load(FIXTURE / 'weights.pt', weights_only=True))
    assert model.config.action_encoder.smoothed_dim == 10  # reference default, absent from the file


def test_encode_and_predict_match_reference(model, io):
    with torch.no_grad():
        emb = model.encode(io['pixels'])
        act_emb = model.encode_actions(io['actions'])
        pred = model.predict(io['emb'], io['act_emb'])
    assert (emb - io['emb']).abs().max() <= TOL
    assert (act_emb - io['act_emb']).abs().max() <= TOL
    assert (pred - io['pred']).abs().max() <= TOL


@pytest.mark.parametrize('cost_kind', [RolloutCost, NaiveRolloutCost])
def test_rollout_costs_match_reference_get_cost(model, io, cost_kind):
    """One observed frame (window grows to 3) and three observed frames, as reference get_cost."""
    cost_fn = cost_kind(model).eval()
    with torch.no_grad():
        goal = model.encode(io['goal_pixels'])[:, 0]           # (B, D)
        first = model.encode(io['pixels'])                     # (B, 3, D)
        for b in range(io['candidates'].shape[0]):
            candidates = io['candidates'][b]                   # (S, T=5, block)
            costs = cost_fn(candidates, first[b, :1], candidates.new_zeros(0, candidates.shape[-1]), goal[b])
            ref = io['rollout_hs3_cost'][b]
            assert ((costs - ref).abs() / ref.abs()).max() <= TOL
            # Three observed frames: the reference pairs candidate blocks 0..2 with them (blocks 0, 1
            # executed, block 2 the first planned one), 3 predictor calls.
            ref3 = io['rollout_obs3_hs3_cost'][b]
            for s in range(candidates.shape[0]):
                cost3 = cost_fn(candidates[s:s + 1, 2:], first[b], candidates[s, :2], goal[b])
                assert abs(float(cost3[0]) - float(ref3[s])) / abs(float(ref3[s])) <= TOL

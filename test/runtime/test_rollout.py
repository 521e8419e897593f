"""RolloutCost (efficient) == NaiveRolloutCost (reference) on random models whose AdaLN gates
are non-zero, for every history length and horizon; cost terms; FLOP savings."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from lewm_ros.model import LeWM, preset
from lewm_ros.model.config import ActionEncoderConfig, EncoderConfig, LeWMConfig, PredictorConfig, ProjectorConfig
from lewm_ros.runtime.kernels import (ONEDNN_MIN_WIDTH, LinearKernels, OneDnnLinearKernels, onednn_available,
                                      select_kernels)
from lewm_ros.runtime.critics import LatentCostConfig
from lewm_ros.runtime.rollout import NaiveRolloutCost, RolloutCost

TOL = 1e-4

KERNELS = [pytest.param(LinearKernels, id='portable'),
           pytest.param(OneDnnLinearKernels, id='onednn', marks=pytest.mark.skipif(
               not onednn_available(), reason='this torch build has no oneDNN fused linear'))]


def small_model(input_dim: int, hidden_dim: int, history: int = 3, seed: int = 0) -> LeWM:
    """Random small LeWM; AdaLN modulation and BatchNorm statistics randomised (conditioning matters)."""
    torch.manual_seed(seed)
    config = LeWMConfig(
        encoder=EncoderConfig(size='test', patch_size=16, image_size=32, hidden_size=32, num_hidden_layers=1,
                              num_attention_heads=2, intermediate_size=64),
        predictor=PredictorConfig(num_frames=history, depth=3, heads=2, dim_head=8, mlp_dim=32,
                                  input_dim=input_dim, hidden_dim=hidden_dim, output_dim=input_dim),
        action_encoder=ActionEncoderConfig(input_dim=4, smoothed_dim=4, emb_dim=input_dim, mlp_scale=2),
        projector=ProjectorConfig(input_dim=32, hidden_dim=32, output_dim=input_dim),
        pred_proj=ProjectorConfig(input_dim=input_dim, hidden_dim=32, output_dim=input_dim))
    model = LeWM(config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if 'adaLN_modulation' in name:
                param.normal_(0.0, 0.3)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def inputs(model: LeWM, n: int, horizon: int, k: int, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    d, block = model.config.latent_dim, model.config.action_encoder.input_dim
    return (torch.randn(n, horizon, block, generator=gen), torch.randn(k, d, generator=gen),
            torch.randn(k - 1, block, generator=gen), torch.randn(d, generator=gen))


@pytest.mark.parametrize('dims', [(16, 16), (16, 24)], ids=['identity-proj', 'linear-proj'])
@pytest.mark.parametrize('horizon', [1, 2, 5])
@pytest.mark.parametrize('k', [1, 2, 3])
@pytest.mark.parametrize('kernels', KERNELS)
def test_efficient_equals_naive(dims, horizon, k, kernels):
    model = small_model(*dims)
    args = inputs(model, 7, horizon, k)
    with torch.inference_mode():
        fast, ref = RolloutCost(model, kernels=kernels)(*args), NaiveRolloutCost(model)(*args)
    assert fast.shape == (7,)
    assert ((fast - ref).abs() / ref.abs()).max() <= TOL
    # The candidates matter (live gates) and the two agree far below the spread between candidates.
    assert (fast - ref).abs().max() <= 0.01 * ref.std()


def test_kernel_selection():
    wide, narrow = ONEDNN_MIN_WIDTH, ONEDNN_MIN_WIDTH - 64
    assert select_kernels('auto', 'cpu', wide) is (OneDnnLinearKernels if onednn_available() else LinearKernels)
    assert select_kernels('auto', 'cpu', narrow) is LinearKernels
    assert select_kernels('auto', 'cuda', wide) is LinearKernels
    assert select_kernels('portable', 'cpu', wide) is LinearKernels
    with pytest.raises(ValueError, match='needs a CPU'):
        select_kernels('onednn', 'cuda', wide)
    with pytest.raises(ValueError, match='kernels must be one of'):
        select_kernels('mkl', 'cpu', wide)


@pytest.mark.parametrize('history', [1, 2, 4])
def test_efficient_equals_naive_other_history_lengths(history):
    model = small_model(16, 24, history=history, seed=3)
    for k in range(1, history + 1):
        args = inputs(model, 5, 4, k, seed=k)
        with torch.inference_mode():
            fast, ref = RolloutCost(model)(*args), NaiveRolloutCost(model)(*args)
        assert ((fast - ref).abs() / ref.abs()).max() <= TOL, (history, k)


def test_history_and_actions_change_the_cost():
    model = small_model(16, 24)
    cand, lat, blocks, goal = inputs(model, 3, 2, 3)
    cost = RolloutCost(model)
    with torch.inference_mode():
        base = cost(cand, lat, blocks, goal)
        assert (base - cost(cand, lat, blocks + 1.0, goal)).abs().max() > 1e-4    # executed blocks matter
        assert (base - cost(cand, lat + 0.5, blocks, goal)).abs().max() > 1e-4    # history latents matter
        assert torch.equal(base, cost(cand, lat, blocks, goal))                   # pure function


def test_default_cost_is_terminal_only_and_terms_add_up():
    model = small_model(16, 16)
    cand, lat, blocks, goal = inputs(model, 4, 3, 2)
    with torch.inference_mode():
        preds = []
        emb, blk = lat.expand(4, -1, -1), torch.cat([blocks.expand(4, -1, -1), cand[:, :1]], 1)
        for t in range(3):  # explicit reference rollout to get every predicted latent
            z = model.predict(emb[:, -3:], model.encode_actions(blk[:, -3:]))[:, -1]
            preds.append(z)
            emb = torch.cat([emb, z[:, None]], 1)
            blk = torch.cat([blk, cand[:, t + 1:t + 2]], 1)
        dist = [(z - goal).square().sum(-1) for z in preds]
        terminal = RolloutCost(model)(cand, lat, blocks, goal)
        assert torch.allclose(terminal, dist[-1], rtol=1e-5)
        weights = LatentCostConfig(terminal_weight=2.0, stage_weight=0.5, action_weight=0.1, smoothness_weight=0.3)
        expected = (2.0 * dist[-1] + 0.5 * (dist[0] + dist[1]) + 0.1 * cand.square().sum((1, 2))
                    + 0.3 * (cand[:, 1:] - cand[:, :-1]).square().sum((1, 2)))
        for kind in (RolloutCost, NaiveRolloutCost):
            assert torch.allclose(kind(model, weights)(cand, lat, blocks, goal), expected, rtol=1e-4)


@pytest.mark.parametrize('field, value', [('terminal_weight', -1.0), ('action_weight', float('nan'))])
def test_cost_config_rejects_bad_weights(field, value):
    with pytest.raises(ValueError, match=field):
        LatentCostConfig(**{field: value})
    with pytest.raises(ValueError, match='ignore the goal'):
        LatentCostConfig(terminal_weight=0.0)


def test_shape_errors_name_the_tensor():
    model = small_model(16, 16)
    cand, lat, blocks, goal = inputs(model, 2, 2, 2)
    cost = RolloutCost(model)
    with pytest.raises(ValueError, match='history_blocks'):
        cost(cand, lat, blocks[:0], goal)
    with pytest.raises(ValueError, match='candidates'):
        cost(cand[..., :3], lat, blocks, goal)
    with pytest.raises(ValueError, match='goal'):
        cost(cand, lat, blocks, goal[:3])


def test_efficient_rollout_saves_a_third_of_the_flops_on_the_paper_preset():
    """Paper sizes, k = 3, H = 5, N = 300 (the measured configuration): >= 1.4x fewer FLOPs.
    Shapes only, so the model lives on the meta device (no weights, no compute)."""
    with torch.device('meta'):
        model = LeWM(preset('paper')).eval()
        args = (torch.empty(300, 5, 10), torch.empty(3, 192), torch.empty(2, 10), torch.empty(192))
    flops = []
    with torch.inference_mode():
        for kind in (RolloutCost, NaiveRolloutCost):
            with FlopCounterMode(display=False) as counter:
                kind(model)(*args)
            flops.append(counter.get_total_flops())
    assert flops[1] / flops[0] >= 1.4


"""TorchBackend: registry, encode, costs (efficient == naive), input checks; CUDA graphs on GPU."""
import sys
from pathlib import Path

import pytest
import torch

from lewm_ros.model import save_model_dir
from lewm_ros.runtime.backend import BACKEND_NAMES, InferenceBackend, PlanningContext, make_backend
from lewm_ros.runtime.kernels import LinearKernels, OneDnnLinearKernels, onednn_available
from lewm_ros.runtime.critics import LatentCostConfig
from lewm_ros.runtime.torch_backend import TorchBackend

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'planning'))
from planning_fixtures import IMAGE, tiny_metadata, tiny_model  # noqa: E402

NO_CUDA = not torch.cuda.is_available()


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    return save_model_dir(tiny_model(), tmp_path_factory.mktemp('torch_backend'), tiny_metadata())


def context(k: int, device: str = 'cpu', seed: int = 0) -> PlanningContext:
    gen = torch.Generator().manual_seed(seed)
    return PlanningContext(history_latents=torch.randn(k, 16, generator=gen).to(device),
                           history_blocks=torch.randn(k - 1, 4, generator=gen).to(device),
                           goal_latent=torch.randn(16, generator=gen).to(device))


def test_registry_builds_the_torch_backend(model_dir):
    backend = make_backend('torch', model_dir)
    assert isinstance(backend, InferenceBackend) and backend.name == 'torch'
    assert (backend.latent_dim, backend.history, backend.block_dim) == (16, 3, 4)
    assert backend.device == torch.device('cpu')
    assert set(BACKEND_NAMES) == {'torch', 'onnxruntime', 'tensorrt'}
    with pytest.raises(ValueError, match="unknown inference backend 'tensorflow'"):
        make_backend('tensorflow', model_dir)


def test_encode_and_costs(model_dir):
    backend = make_backend('torch', model_dir)
    naive = make_backend('torch', model_dir, rollout='naive')
    pixels = torch.randn(2, 3, IMAGE, IMAGE)
    z = backend.encode(pixels)
    assert z.shape == (2, 16) and torch.allclose(z, naive.encode(pixels))
    candidates = torch.randn(9, 5, 4, generator=torch.Generator().manual_seed(3))
    for k in (1, 2, 3):
        fast, ref = backend.costs(candidates, context(k)), naive.costs(candidates, context(k))
        assert fast.shape == (9,) and fast.dtype == torch.float32
        assert ((fast - ref).abs() / ref.abs()).max() <= 1e-4


@pytest.mark.skipif(not onednn_available(), reason='this torch build has no oneDNN fused linear')
def test_onednn_kernels_give_the_same_costs(model_dir):
    auto = make_backend('torch', model_dir)
    onednn = make_backend('torch', model_dir, kernels='onednn')
    assert auto.kernels is LinearKernels  # the tiny predictor is narrower than ONEDNN_MIN_WIDTH
    assert onednn.kernels is OneDnnLinearKernels
    candidates = torch.randn(9, 5, 4, generator=torch.Generator().manual_seed(4))
    for k in (1, 2, 3):
        fast, ref = onednn.costs(candidates, context(k)), auto.costs(candidates, context(k))
        assert ((fast - ref).abs() / ref.abs()).max() <= 1e-5


def test_cost_terms_are_a_backend_option(model_dir):
    candidates = torch.randn(4, 5, 4)
    base = make_backend('torch', model_dir).costs(candidates, context(2))
    effort = make_backend('torch', model_dir, cost=LatentCostConfig(action_weight=1.0)).costs(candidates, context(2))
    assert torch.allclose(effort - base, candidates.square().sum((1, 2)), rtol=1e-4)


def test_input_errors(model_dir):
    backend = make_backend('torch', model_dir)
    with pytest.raises(ValueError, match=r'pixels must be \(B, 3, 32, 32\)'):
        backend.encode(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match='candidates'):
        backend.costs(torch.randn(4, 5, 3), context(1))
    with pytest.raises(ValueError, match='rollout must be one of'):
        TorchBackend(tiny_model(), rollout='fast')


@pytest.mark.skipif(not NO_CUDA, reason='checks the no-CUDA error')
def test_cuda_requested_without_cuda_fails_loudly():
    with pytest.raises(ValueError, match='CUDA is not available'):
        TorchBackend(tiny_model(), device='cuda')


@pytest.mark.skipif(NO_CUDA, reason='no CUDA')
def test_cuda_graph_costs_match_eager():
    graphed = TorchBackend(tiny_model(), device='cuda', cuda_graphs=True)
    eager = TorchBackend(tiny_model(), device='cuda', cuda_graphs=False)
    for seed in range(3):  # replays with new inputs, same (N, H, k)
        candidates = torch.randn(16, 5, 4, device='cuda', generator=torch.Generator('cuda').manual_seed(seed))
        ctx = context(3, 'cuda', seed)
        assert torch.allclose(graphed.costs(candidates, ctx), eager.costs(candidates, ctx), rtol=1e-4)
    assert len(graphed._graphs) == 1

"""ONNX Runtime backend: same numbers as the torch backend, static-shape errors, on-the-fly export into the cache."""
from __future__ import annotations

import onnxruntime as ort
import pytest
import torch

from lewm_ros.runtime.backend import PlanningContext, make_backend
from lewm_ros.runtime.export import cache_export_dir, default_export_dir
from lewm_ros.runtime.onnx_manifest import MANIFEST_FILE
from lewm_ros.runtime.onnx_backend import OnnxRuntimeBackend
from runtime_fixtures import BLOCK, HISTORY, IMAGE, LATENT, make_tiny_model_dir

N, H = 6, 3


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp('tiny_model'))


@pytest.fixture(scope='module')
def backends(model_dir):
    onnx = make_backend('onnxruntime', model_dir, num_samples=N, horizon=H, num_threads=1)
    return onnx, make_backend('torch', model_dir)


def _context(k: int, gen: torch.Generator) -> PlanningContext:
    return PlanningContext(torch.randn(k, LATENT, generator=gen), torch.randn(k - 1, BLOCK, generator=gen),
                           torch.randn(LATENT, generator=gen))


def test_exports_on_the_fly_into_the_cache(backends, model_dir):
    onnx, _ = backends
    assert isinstance(onnx, OnnxRuntimeBackend) and onnx.name == 'onnxruntime'
    assert onnx.manifest.directory == cache_export_dir(model_dir, N, H)
    assert (onnx.manifest.directory / MANIFEST_FILE).is_file()
    assert not default_export_dir(model_dir, N, H).exists()   # nothing written into the model directory
    assert (onnx.latent_dim, onnx.history, onnx.block_dim, onnx.device) == (LATENT, HISTORY, BLOCK,
                                                                            torch.device('cpu'))
    assert onnx.providers == ['CPUExecutionProvider']


def test_matches_torch_backend(backends):
    onnx, ref = backends
    gen = torch.Generator().manual_seed(3)
    for batch in (1, 2, 5):
        pixels = torch.randn(batch, 3, IMAGE, IMAGE, generator=gen)
        got = onnx.encode(pixels)
        assert got.shape == (batch, LATENT) and got.dtype == torch.float32
        assert (got - ref.encode(pixels)).abs().max() <= 1e-4
    for k in range(1, HISTORY + 1):
        context = _context(k, gen)
        candidates = torch.randn(N, H, BLOCK, generator=gen)
        got, want = onnx.costs(candidates, context), ref.costs(candidates, context)
        assert got.shape == (N,) and got.device == torch.device('cpu')
        assert (got - want).abs().max() <= 1e-4 * want.abs().max()


def test_does_not_modify_inputs(backends):
    onnx, _ = backends
    gen = torch.Generator().manual_seed(4)
    context = _context(2, gen)
    candidates = torch.randn(N, H, BLOCK, generator=gen)
    before = candidates.clone(), context.history_latents.clone()
    onnx.costs(candidates, context)
    assert torch.equal(candidates, before[0]) and torch.equal(context.history_latents, before[1])


def test_static_shape_mismatch_names_expected_and_got(backends):
    onnx, _ = backends
    context = _context(1, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r'built for candidates \(6, 3, 4\).*got \(7, 3, 4\)'):
        onnx.costs(torch.zeros(7, H, BLOCK), context)
    with pytest.raises(ValueError, match='history_blocks'):
        onnx.costs(torch.zeros(N, H, BLOCK), PlanningContext(torch.zeros(2, LATENT), torch.zeros(0, BLOCK),
                                                              torch.zeros(LATENT)))
    with pytest.raises(ValueError, match='at most 3'):
        onnx.costs(torch.zeros(N, H, BLOCK), PlanningContext(torch.zeros(4, LATENT), torch.zeros(3, BLOCK),
                                                              torch.zeros(LATENT)))
    with pytest.raises(ValueError, match=r'pixels \(B, 3, 32, 32\)'):
        onnx.encode(torch.zeros(1, 3, 16, 16))


@pytest.mark.skipif('CUDAExecutionProvider' in ort.get_available_providers(),
                    reason='this onnxruntime build has CUDA: the missing-provider error cannot occur')
def test_missing_cuda_provider_is_an_error_not_a_fallback(model_dir):
    with pytest.raises(ValueError, match='CUDAExecutionProvider'):
        OnnxRuntimeBackend(cache_export_dir(model_dir, N, H), device='cuda')

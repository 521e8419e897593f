"""ONNX Runtime backend: numpy arrays in and out (no torch on its path), same numbers as the torch backend,
static-shape errors, on-the-fly export into the cache."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from lewm_ros.runtime.backend import PlanningContext, make_backend
from lewm_ros.runtime.onnx_exports import cache_export_dir, default_export_dir
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


def _context(k: int, rng: np.random.Generator) -> PlanningContext:
    """A host (numpy) context of k frames."""
    return PlanningContext(rng.standard_normal((k, LATENT), np.float32),
                           rng.standard_normal((k - 1, BLOCK), np.float32), rng.standard_normal(LATENT, np.float32))


def _torch(context: PlanningContext) -> PlanningContext:
    return PlanningContext(*(torch.from_numpy(a) for a in (context.history_latents, context.history_blocks,
                                                           context.goal_latent)))


def test_exports_on_the_fly_into_the_cache(backends, model_dir):
    onnx, _ = backends
    assert isinstance(onnx, OnnxRuntimeBackend) and onnx.name == 'onnxruntime'
    assert onnx.manifest.directory == cache_export_dir(model_dir, N, H)
    assert (onnx.manifest.directory / MANIFEST_FILE).is_file()
    assert not default_export_dir(model_dir, N, H).exists()   # nothing written into the model directory
    assert (onnx.latent_dim, onnx.history, onnx.block_dim, onnx.device) == (LATENT, HISTORY, BLOCK, 'cpu')
    assert onnx.providers == ['CPUExecutionProvider'] and onnx.arrays.library == 'numpy'


def test_matches_torch_backend(backends):
    onnx, ref = backends
    rng = np.random.default_rng(3)
    for batch in (1, 2, 5):
        pixels = rng.standard_normal((batch, 3, IMAGE, IMAGE), np.float32)
        got = onnx.encode(pixels)
        assert isinstance(got, np.ndarray) and got.shape == (batch, LATENT) and got.dtype == np.float32
        assert np.abs(got - ref.encode(torch.from_numpy(pixels)).numpy()).max() <= 1e-4
    for k in range(1, HISTORY + 1):
        context = _context(k, rng)
        candidates = rng.standard_normal((N, H, BLOCK), np.float32)
        got = onnx.costs(candidates, context)
        want = ref.costs(torch.from_numpy(candidates), _torch(context)).numpy()
        assert isinstance(got, np.ndarray) and got.shape == (N,)
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


def test_does_not_modify_inputs(backends):
    onnx, _ = backends
    rng = np.random.default_rng(4)
    context = _context(2, rng)
    candidates = rng.standard_normal((N, H, BLOCK), np.float32)
    before = candidates.copy(), context.history_latents.copy()
    onnx.costs(candidates, context)
    assert np.array_equal(candidates, before[0]) and np.array_equal(context.history_latents, before[1])


def test_static_shape_mismatch_names_expected_and_got(backends):
    onnx, _ = backends
    context = _context(1, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r'built for candidates \(6, 3, 4\).*got \(7, 3, 4\)'):
        onnx.costs(np.zeros((7, H, BLOCK), np.float32), context)
    f32 = np.float32
    with pytest.raises(ValueError, match='history_blocks'):
        onnx.costs(np.zeros((N, H, BLOCK), f32), PlanningContext(np.zeros((2, LATENT), f32),
                                                                   np.zeros((0, BLOCK), f32), np.zeros(LATENT, f32)))
    with pytest.raises(ValueError, match='at most 3'):
        onnx.costs(np.zeros((N, H, BLOCK), f32), PlanningContext(np.zeros((4, LATENT), f32),
                                                                   np.zeros((3, BLOCK), f32), np.zeros(LATENT, f32)))
    with pytest.raises(ValueError, match=r'pixels \(B, 3, 32, 32\)'):
        onnx.encode(np.zeros((1, 3, 16, 16), f32))


@pytest.mark.skipif('CUDAExecutionProvider' in ort.get_available_providers(),
                    reason='this onnxruntime build has CUDA: the missing-provider error cannot occur')
def test_missing_cuda_provider_is_an_error_not_a_fallback(model_dir):
    with pytest.raises(ValueError, match='CUDAExecutionProvider'):
        OnnxRuntimeBackend(cache_export_dir(model_dir, N, H), device='cuda')

"""TensorRT without torch: engines fed with numpy through pycuda buffers.

Without a GPU (every machine): the backend on stand-ins for ``tensorrt`` and ``pycuda.driver``
shaped like the real APIs (test/runtime/fake_cuda.py) -- buffer shapes from the shipped export's
manifest, the primary context around every CUDA call, the data path through device memory, the
engine cache keys from pycuda's device query, the version gate, a planner on top. With an
NVIDIA GPU, TensorRT and pycuda: the real engines agree with ONNX Runtime."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from fake_cuda import FakeCuda, engine_bytes, fake_tensorrt
from lewm_ros.model.model_dir import load_metadata
from lewm_ros.planning import MPCConfig, MPCPlanner
from lewm_ros.runtime.backend import PlanningContext
from lewm_ros.runtime.engine_cache import EngineCache
from lewm_ros.runtime.onnx_manifest import OnnxManifest
from lewm_ros.runtime.tensorrt_io import PycudaGpu, open_gpu

MODEL = Path(__file__).resolve().parents[2] / 'models' / 'tworoom_compact'
EXPORT = MODEL / 'onnx' / 'n64_h5'


@pytest.fixture
def fakes(monkeypatch):
    """(fake cuda, fake tensorrt) installed as the ``pycuda.driver`` and ``tensorrt`` modules."""
    cuda = FakeCuda()
    package = type(sys)('pycuda')
    package.driver = cuda.module()
    monkeypatch.setitem(sys.modules, 'pycuda', package)
    monkeypatch.setitem(sys.modules, 'pycuda.driver', package.driver)
    trt = fake_tensorrt(cuda)
    monkeypatch.setitem(sys.modules, 'tensorrt', trt)
    monkeypatch.setattr('lewm_ros.runtime.tensorrt_build._TRT_LOGGER', None)  # no fake logger outlives the test
    return cuda, trt


def _backend(fakes, tmp_path, encoder_max_batch: int = 2):
    """A TensorRTBackend on numpy arrays whose engines are already in the cache (fp32: the export
    itself is the source), so nothing is built."""
    from lewm_ros.runtime.tensorrt_backend import EngineBuilder, TensorRTBackend
    manifest = OnnxManifest.load(EXPORT)
    builder = EngineBuilder('cuda', tmp_path, 'fp32', arrays='numpy')
    for name, info in manifest.files.items():
        stem = name.removesuffix('.onnx')
        batch = encoder_max_batch if stem == 'encoder' else 0
        EngineCache(tmp_path).store(stem, builder.key(info['sha256'], batch), engine_bytes(stem, info))
    return TensorRTBackend(EXPORT, 'cuda', cache_dir=tmp_path, precision='fp32', arrays='numpy',
                           encoder_max_batch=encoder_max_batch)


def test_buffers_are_sized_from_the_manifest(fakes, tmp_path):
    backend = _backend(fakes, tmp_path, encoder_max_batch=3)
    manifest = OnnxManifest.load(EXPORT)
    assert backend.arrays.library == 'numpy' and backend.device == 'cuda:0'
    assert {'encoder', 'rollout_cost_k1', 'rollout_cost_k2', 'rollout_cost_k3'} <= set(backend._engines)
    for stem, engine in backend._engines.items():
        info = manifest.files[f'{stem}.onnx']
        want = {k: tuple(3 if d == 'batch' else d for d in v) for k, v in {**info['inputs'], **info['outputs']}.items()}
        bindings = engine.bindings
        assert bindings.shapes == want, stem
        assert {k: v.shape for k, v in bindings.host.items()} == want   # page-locked staging, same shapes
    cuda, _ = fakes
    assert cuda.context_depth == 0   # every push had its pop


def test_numpy_in_numpy_out_through_device_memory(fakes, tmp_path):
    backend = _backend(fakes, tmp_path)
    rng = np.random.default_rng(0)
    pixels = rng.standard_normal((2, 3, 64, 64)).astype(np.float32)
    latents = backend.encode(pixels)
    assert isinstance(latents, np.ndarray) and latents.shape == (2, 64)
    np.testing.assert_allclose(latents, pixels.mean(axis=(1, 2, 3))[:, None] + np.arange(64), rtol=1e-6)
    assert backend.encode(pixels[:1]).shape == (1, 64)   # a smaller batch of the dynamic axis
    with pytest.raises(ValueError, match='encoder_max_batch=2'):
        backend.encode(np.zeros((3, 3, 64, 64), np.float32))
    for k in (1, 2, 3):
        context = PlanningContext(rng.standard_normal((k, 64)).astype(np.float32),
                                  rng.standard_normal((k - 1, 10)).astype(np.float32),
                                  rng.standard_normal(64).astype(np.float32))
        candidates = rng.standard_normal((64, 5, 10)).astype(np.float32)
        costs = backend.costs(candidates, context)
        want = (candidates ** 2).sum(axis=(1, 2)) + (context.goal_latent ** 2).sum() + k
        assert isinstance(costs, np.ndarray) and costs.shape == (64,)
        np.testing.assert_allclose(costs, want, rtol=1e-6)


def test_engine_cache_keys_come_from_the_pycuda_device(fakes, tmp_path):
    backend = _backend(fakes, tmp_path)
    engines = sorted(p.name for p in tmp_path.glob('*.engine'))
    assert len(engines) >= 4 and all('-nvidia-jetson-agx-orin-sm87-trt10-3-0-fp32-' in n for n in engines)
    assert backend.cost == OnnxManifest.load(EXPORT).cost_config


def test_a_planner_runs_on_it(fakes, tmp_path):
    backend = _backend(fakes, tmp_path)
    metadata = load_metadata(MODEL)
    planner = MPCPlanner(backend, metadata, MPCConfig())
    rng = np.random.default_rng(1)
    planner.set_goal(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    planner.observe(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    plan = planner.plan()
    assert plan.raw_actions.shape == (5, 5, 2) and np.isfinite(plan.cost)
    # the stand-in cost is smallest at zero z-scored actions: the plan moves towards the action mean
    assert np.abs(plan.blocks).mean() < 0.5


@pytest.mark.parametrize('version, ok', [('10.3.0', True), ('11.4.0.106', True), ('8.6.1', False)])
def test_version_gate_with_pycuda(fakes, tmp_path, monkeypatch, version, ok):
    cuda, _ = fakes
    monkeypatch.setitem(sys.modules, 'tensorrt', fake_tensorrt(cuda, version))
    from lewm_ros.runtime.tensorrt_backend import TensorRTBackend
    if ok:
        TensorRTBackend.check_available('cuda', arrays='numpy')
    else:
        with pytest.raises(ImportError, match=r"10\.x and 11\.x; found TensorRT '8.6.1'"):
            TensorRTBackend.check_available('cuda', arrays='numpy')


def test_missing_pycuda_or_gpu_is_named(fakes, monkeypatch):
    with pytest.raises(ValueError, match='only 1 GPU'):
        open_gpu('cuda:1', 'numpy')
    assert isinstance(open_gpu('cuda', 'numpy'), PycudaGpu)
    monkeypatch.setitem(sys.modules, 'pycuda', None)
    monkeypatch.setitem(sys.modules, 'pycuda.driver', None)
    with pytest.raises(ImportError, match=r"'pycuda'.*robot-trt"):
        open_gpu('cuda', 'numpy')
    with pytest.raises(ValueError, match='arrays'):
        open_gpu('cuda', 'cupy')


HAVE_GPU_STACK = all(importlib.util.find_spec(m) is not None for m in ('tensorrt', 'pycuda'))


def _gpu_visible() -> bool:
    try:
        import pycuda.driver as cuda
        cuda.init()
        return cuda.Device.count() > 0
    except Exception:  # noqa: BLE001 - no driver, no device: the test below skips
        return False


@pytest.mark.skipif(not (HAVE_GPU_STACK and _gpu_visible()), reason='needs an NVIDIA GPU + TensorRT + pycuda')
def test_real_engines_through_pycuda_agree_with_onnxruntime(tmp_path):
    from lewm_ros.runtime.backend import make_backend
    trt_backend = make_backend('tensorrt', MODEL, device='cuda', num_samples=64, horizon=5, cache_dir=tmp_path,
                               arrays='numpy', precision='fp32')
    ort = make_backend('onnxruntime', MODEL, num_samples=64, horizon=5)
    rng = np.random.default_rng(0)
    pixels = rng.standard_normal((2, 3, 64, 64)).astype(np.float32)
    got = trt_backend.encode(pixels)
    assert isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, ort.encode(pixels), atol=1e-3)
    context = PlanningContext(*(rng.standard_normal(s).astype(np.float32) for s in ((3, 64), (2, 10), (64,))))
    candidates = rng.standard_normal((64, 5, 10)).astype(np.float32)
    want = ort.costs(candidates, context)
    np.testing.assert_allclose(trt_backend.costs(candidates, context), want, rtol=1e-3,
                               atol=1e-3 * np.abs(want).max())

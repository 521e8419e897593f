"""TensorRT backend: engine cache keys and files (pure Python, tested everywhere); the ONNX the
engines are built from; engine build + agreement with torch (needs TensorRT >= 10 and a GPU)."""
from __future__ import annotations

import importlib.util
import json
import logging

import onnx
import pytest
import torch

from lewm_ros.runtime.engine_cache import CACHE_ENV, EngineCache, EngineKey, default_cache_root
from lewm_ros.runtime.export import ensure_onnx
from runtime_fixtures import BLOCK, HISTORY, IMAGE, LATENT, make_tiny_model_dir

HAVE_TRT = importlib.util.find_spec('tensorrt') is not None
HAVE_GPU = torch.cuda.is_available()
SHA = 'ab' * 32


def _key(**changes) -> EngineKey:
    fields = dict(gpu_name='NVIDIA Jetson AGX Orin', compute_capability=(8, 7), tensorrt_version='10.3.0',
                  onnx_sha256=SHA, precision='fp16', max_batch=0)
    fields.update(changes)
    return EngineKey(**fields)


# ----- cache keys --------------------------------------------------------------------------------
def test_key_is_deterministic_and_names_the_target():
    assert _key().digest() == _key().digest()
    name = _key().filename('rollout_cost_k3')
    assert name.startswith('rollout-cost-k3-nvidia-jetson-agx-orin-sm87-trt10-3-0-fp16-') and name.endswith('.engine')


@pytest.mark.parametrize('change', [dict(gpu_name='NVIDIA GeForce RTX 4090'), dict(compute_capability=(8, 9)),
                                    dict(tensorrt_version='10.4.0'), dict(onnx_sha256='cd' * 32),
                                    dict(precision='fp32'), dict(max_batch=2)])
def test_every_field_changes_the_key(change):
    assert _key(**change).digest() != _key().digest()
    assert _key(**change).filename('encoder') != _key().filename('encoder')


@pytest.mark.parametrize('change, field', [(dict(gpu_name=''), 'gpu_name'),
                                           (dict(compute_capability=(8,)), 'compute'),
                                           (dict(tensorrt_version='ten'), 'tensorrt_version'),
                                           (dict(onnx_sha256='xyz'), 'onnx_sha256'),
                                           (dict(precision='int8'), 'precision'),
                                           (dict(max_batch=-1), 'max_batch')])
def test_invalid_key_fields_are_named(change, field):
    with pytest.raises(ValueError, match=field):
        _key(**change)


def test_key_json_round_trip():
    assert EngineKey.from_dict(json.loads(json.dumps(_key().to_dict()))) == _key()


def test_default_root_honours_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    assert default_cache_root() == tmp_path and EngineCache().root == tmp_path
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
    assert default_cache_root() == tmp_path / 'xdg' / 'lewm_ros' / 'engines'


# ----- cache files -------------------------------------------------------------------------------
def test_store_then_load_round_trip(tmp_path):
    cache = EngineCache(tmp_path / 'engines')
    path = cache.store('encoder', _key(), b'serialized-engine')
    assert path.parent == tmp_path / 'engines' and path.is_file()
    assert cache.load('encoder', _key()) == b'serialized-engine'
    assert cache.load('encoder', _key(tensorrt_version='10.4.0')) is None  # another TensorRT: another file
    assert sorted(p.suffix for p in path.parent.iterdir()) == ['.engine', '.json']


def test_corrupt_engine_is_rejected_with_a_log_line(tmp_path, caplog):
    cache = EngineCache(tmp_path)
    path = cache.store('encoder', _key(), b'serialized-engine')
    path.write_bytes(b'serialized-engina')
    with caplog.at_level(logging.WARNING):
        assert cache.load('encoder', _key()) is None
    assert 'is corrupt' in caplog.text and 'rebuilding' in caplog.text


def test_mismatched_or_missing_sidecar_is_rejected(tmp_path, caplog):
    cache = EngineCache(tmp_path)
    path = cache.store('encoder', _key(), b'engine')
    sidecar = EngineCache.sidecar_for(path)
    meta = json.loads(sidecar.read_text())
    meta['key']['gpu_name'] = 'NVIDIA A100'
    sidecar.write_text(json.dumps(meta))
    with caplog.at_level(logging.WARNING):
        assert cache.load('encoder', _key()) is None
    assert 'was built for' in caplog.text
    sidecar.unlink()
    with caplog.at_level(logging.WARNING):
        assert cache.load('encoder', _key()) is None
    assert 'no valid sidecar' in caplog.text


def test_invalidate_removes_both_files(tmp_path):
    cache = EngineCache(tmp_path)
    path = cache.store('encoder', _key(), b'engine')
    cache.invalidate('encoder', _key(), 'TensorRT could not deserialise it')
    assert not path.exists() and not EngineCache.sidecar_for(path).exists()
    with pytest.raises(ValueError, match='empty engine'):
        cache.store('encoder', _key(), b'')


# ----- the ONNX the engines consume --------------------------------------------------------------
@pytest.fixture(scope='module')
def manifest(tmp_path_factory):
    model_dir = make_tiny_model_dir(tmp_path_factory.mktemp('tiny_model'))
    return model_dir, ensure_onnx(model_dir, 6, 3)


def test_engine_inputs_are_static_except_the_encoder_batch(manifest):
    """build_engine adds an optimisation profile only for dynamic inputs: exactly the encoder batch."""
    _, man = manifest
    enc = onnx.load(str(man.encoder_path)).graph.input[0]
    dims = [d.dim_param or d.dim_value for d in enc.type.tensor_type.shape.dim]
    assert dims == ['batch', 3, IMAGE, IMAGE]
    for k in range(1, HISTORY + 1):
        for tensor in onnx.load(str(man.cost_path(k))).graph.input:
            assert all(d.dim_value > 0 for d in tensor.type.tensor_type.shape.dim), tensor.name
    assert {name: info['sha256'] for name, info in man.files.items()}  # the engine keys' onnx_sha256


def test_engine_cli_exports_then_fails_clearly_without_tensorrt(manifest, tmp_path, caplog):
    if HAVE_TRT and HAVE_GPU:
        pytest.skip('TensorRT and a GPU are present: the CLI builds engines (covered by the GPU test)')
    from lewm_ros.runtime.engine_cli import EXIT_NO_TENSORRT, main
    model_dir, man = manifest
    with caplog.at_level(logging.INFO):
        code = main(['build', '--model-dir', str(model_dir), '--samples', '6', '--horizon', '3',
                     '--cache', str(tmp_path)])
    assert code == EXIT_NO_TENSORRT
    assert 'ONNX exported and verified' in caplog.text
    assert ('tensorrt' in caplog.text.lower()) and ('not installed' in caplog.text or 'GPU' in caplog.text)
    assert not list(tmp_path.rglob('*.engine'))   # the cache holds the derived ONNX export, no engine
    assert (tmp_path / 'onnx').is_dir() and not (model_dir / 'onnx').exists()


@pytest.mark.skipif(HAVE_TRT, reason='tensorrt is installed')
def test_missing_tensorrt_names_the_package(manifest):
    from lewm_ros.runtime.backend import make_backend
    with pytest.raises(ImportError, match="'tensorrt'"):
        make_backend('tensorrt', manifest[0], device='cuda', num_samples=6, horizon=3)


def test_cpu_device_is_rejected():
    from lewm_ros.runtime.tensorrt_io import cuda_index
    with pytest.raises(ValueError, match='NVIDIA GPU'):
        cuda_index('cpu')
    assert (cuda_index('cuda'), cuda_index('cuda:1')) == (None, 1)


# ----- on a GPU with TensorRT --------------------------------------------------------------------
@pytest.mark.skipif(not (HAVE_TRT and HAVE_GPU), reason='needs TensorRT >= 10 and a CUDA GPU')
def test_tensorrt_matches_torch_and_reuses_cached_engines(manifest, tmp_path, caplog):
    from lewm_ros.runtime.backend import PlanningContext, make_backend
    model_dir, _ = manifest
    trt_backend = make_backend('tensorrt', model_dir, device='cuda', num_samples=6, horizon=3, cache_dir=tmp_path)
    ref = make_backend('torch', model_dir, device='cuda', cuda_graphs=False)
    gen = torch.Generator(device='cuda').manual_seed(0)
    pixels = torch.randn(2, 3, IMAGE, IMAGE, device='cuda', generator=gen)
    assert (trt_backend.encode(pixels) - ref.encode(pixels)).abs().max() <= 2e-2  # FP16 engines
    for k in range(1, HISTORY + 1):
        context = PlanningContext(torch.randn(k, LATENT, device='cuda', generator=gen),
                                  torch.randn(k - 1, BLOCK, device='cuda', generator=gen),
                                  torch.randn(LATENT, device='cuda', generator=gen))
        candidates = torch.randn(6, 3, BLOCK, device='cuda', generator=gen)
        got, want = trt_backend.costs(candidates, context), ref.costs(candidates, context)
        assert got.device.type == 'cuda' and got.shape == (6,)
        assert (got - want).abs().max() <= 2e-2 * want.abs().max()
    engines = sorted(tmp_path.glob('*.engine'))
    assert len(engines) == 1 + HISTORY
    engines[0].write_bytes(b'garbage')  # corrupt one: the next backend rebuilds it with a log line
    with caplog.at_level(logging.WARNING):
        make_backend('tensorrt', model_dir, device='cuda', num_samples=6, horizon=3, cache_dir=tmp_path)
    assert 'rebuilding' in caplog.text

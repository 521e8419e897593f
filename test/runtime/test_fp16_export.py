"""The FP16 variant the strongly typed TensorRT engines are built from, checked on ONNX Runtime's
CPU provider against the FP32 export: float32 interface, FP16 weights, FP32 normalisations and
reductions, costs within tolerance, derived into the cache (keyed by the source graphs)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from lewm_ros.runtime import fp16_export
from lewm_ros.runtime.backend import PlanningContext
from lewm_ros.runtime.engine_cache import EngineKey
from lewm_ros.runtime.export import ensure_onnx
from lewm_ros.runtime.fp16_export import FP16_COST_RTOL, ensure_fp16, fp16_dir
from lewm_ros.runtime.onnx_backend import OnnxRuntimeBackend
from lewm_ros.runtime.onnx_fp16 import KEEP_FP32_OPS, convert_to_fp16
from lewm_ros.runtime.onnx_manifest import ExportError, OnnxManifest
from runtime_fixtures import BLOCK, HISTORY, IMAGE, LATENT, make_tiny_model_dir

N, H = 16, 3
SHIPPED = Path(__file__).resolve().parents[2] / 'models' / 'tworoom_compact' / 'onnx' / 'n300_h5'


@pytest.fixture(scope='module')
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp('fp16')
    model_dir = make_tiny_model_dir(root / 'model')
    source = ensure_onnx(model_dir, N, H, root / 'onnx')
    return source, ensure_fp16(source, root / 'cache')


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*graph.input, *graph.output, *graph.value_info)}
    types.update({t.name: t.data_type for t in graph.initializer})
    return types


def test_interface_stays_float32_and_compute_is_fp16(exports):
    source, variant = exports
    assert variant.precision == 'fp16' and source.precision == 'fp32'
    assert variant.directory == fp16_dir(source, variant.directory.parents[2])
    for name in source.files:
        model = onnx.load(str(variant.directory / name))
        graph = model.graph
        assert all(v.type.tensor_type.elem_type == TensorProto.FLOAT for v in (*graph.input, *graph.output))
        assert [v.name for v in graph.input] == [v.name for v in onnx.load(str(source.directory / name)).graph.input]
        types = _elem_types(model)
        weights = [t for t in graph.initializer if t.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16)]
        fp16 = [t for t in weights if t.data_type == TensorProto.FLOAT16]
        assert len(fp16) > len(weights) // 2, name
        for node in graph.node:   # normalisations and reductions read and write float32
            if node.op_type in KEEP_FP32_OPS:
                floats = [types[t] for t in (*node.input[:1], *node.output) if t in types]
                assert all(t == TensorProto.FLOAT for t in floats), (name, node.op_type, node.name)
            elif node.op_type == 'MatMul':
                assert types[node.output[0]] == TensorProto.FLOAT16, (name, node.name)


def test_costs_match_the_fp32_graphs_on_onnxruntime(exports):
    source, variant = exports
    fp32, fp16 = (OnnxRuntimeBackend(m.directory, num_threads=1) for m in (source, variant))
    rng = np.random.default_rng(0)
    pixels = rng.standard_normal((2, 3, IMAGE, IMAGE), np.float32)
    z32, z16 = fp32.encode(pixels), fp16.encode(pixels)
    assert z16.dtype == np.float32 and np.abs(z16 - z32).max() <= 1e-2 * np.abs(z32).max()
    for k in range(1, HISTORY + 1):
        context = PlanningContext(rng.standard_normal((k, LATENT), np.float32),
                                  rng.standard_normal((k - 1, BLOCK), np.float32),
                                  rng.standard_normal(LATENT, np.float32))
        candidates = rng.standard_normal((N, H, BLOCK), np.float32)
        want, got = fp32.costs(candidates, context), fp16.costs(candidates, context)
        assert got.dtype == np.float32 and got.shape == (N,)
        assert np.abs(got - want).max() <= FP16_COST_RTOL * np.abs(want).max(), k
        assert want[got.argmin()] - want.min() <= FP16_COST_RTOL * np.abs(want).max()   # FP16's pick is near-best
    assert all(v <= FP16_COST_RTOL for k, v in variant.verification.items() if 'fp16' in k)


def test_variant_is_reused_then_rewritten_when_tampered(exports, caplog):
    source, variant = exports
    root = variant.directory.parents[2]
    path = variant.directory / 'encoder.onnx'
    stamp = path.stat().st_mtime_ns
    assert ensure_fp16(source, root) == variant and path.stat().st_mtime_ns == stamp
    path.write_bytes(path.read_bytes() + b'\0')
    caplog.set_level('WARNING')
    assert ensure_fp16(source, root).files == variant.files
    assert 'rewriting the FP16 variant' in caplog.text and 'sha256' in caplog.text


def test_engine_keys_differ_by_precision_graph_version_and_recipe(exports):
    source, variant = exports
    name = 'rollout_cost_k2.onnx'
    assert source.files[name]['sha256'] != variant.files[name]['sha256']

    def key(**changes):
        fields = dict(gpu_name='NVIDIA Jetson AGX Orin', compute_capability=(8, 7), tensorrt_version='10.3.0',
                      onnx_sha256=variant.files[name]['sha256'], precision='fp16')
        return EngineKey(**{**fields, **changes})

    keys = [key(), key(precision='fp32', onnx_sha256=source.files[name]['sha256']),
            key(tensorrt_version='11.4.0.106'), key(onnx_sha256=source.files[name]['sha256']), key(recipe=1)]
    assert len({k.digest() for k in keys}) == len(keys)
    assert len({k.filename('rollout_cost_k2') for k in keys}) == len(keys)
    assert EngineKey.from_dict({**key().to_dict()}) == key()
    legacy = {k: v for k, v in key().to_dict().items() if k != 'recipe'}   # a sidecar from before recipes
    assert EngineKey.from_dict(legacy).recipe == 1 and EngineKey.from_dict(legacy) != key()


def test_verification_failure_is_loud(exports, tmp_path, monkeypatch):
    source, _ = exports
    monkeypatch.setattr(fp16_export, 'FP16_COST_RTOL', -1.0)
    with pytest.raises(ExportError, match='FP16 outputs differ from FP32'):
        fp16_export.export_fp16(source, tmp_path / 'v')
    assert not (tmp_path / 'v' / 'onnx_manifest.json').exists()
    with pytest.raises(ExportError, match='needs the fp32 export'):
        fp16_export.export_fp16(OnnxManifest.load(exports[1].directory), tmp_path / 'w')


def test_out_of_range_constants_are_clipped_and_infinities_kept():
    from onnx import helper, numpy_helper
    value = numpy_helper.from_array(np.array([1e6, -np.inf, 0.5], np.float32), 'c')
    graph = helper.make_graph([helper.make_node('Constant', [], ['c'], value=value),
                               helper.make_node('Add', ['x', 'c'], ['y'])], 'g',
                              [helper.make_tensor_value_info('x', TensorProto.FLOAT, [3])],
                              [helper.make_tensor_value_info('y', TensorProto.FLOAT, [3])])
    converted = convert_to_fp16(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)]))
    constant = numpy_helper.to_array(converted.graph.node[0].attribute[0].t)
    assert constant.dtype == np.float16 and constant[0] == np.finfo(np.float16).max and constant[1] == -np.inf
    import onnxruntime as ort
    session = ort.InferenceSession(converted.SerializeToString(), providers=['CPUExecutionProvider'])
    (y,) = session.run(None, {'x': np.ones(3, np.float32)})
    assert y.dtype == np.float32 and y[2] == 1.5 and y[1] == -np.inf


@pytest.mark.skipif(not (SHIPPED / 'onnx_manifest.json').is_file(), reason='the shipped model export is absent')
def test_shipped_model_fp16_costs(tmp_path):
    """The shipped tworoom_compact export (N=300, H=5): FP16 vs FP32 on ONNX Runtime's CPU
    provider, relative max cost error below FP16_COST_RTOL (measured ~1e-3) and the same
    30 elites on random inputs."""
    source = OnnxManifest.load(SHIPPED)
    variant = ensure_fp16(source, tmp_path)
    fp32, fp16 = (OnnxRuntimeBackend(m.directory, num_threads=2) for m in (source, variant))
    rng = np.random.default_rng(1)
    context = PlanningContext(rng.standard_normal((3, source.latent_dim), np.float32),
                              rng.standard_normal((2, source.block_dim), np.float32),
                              rng.standard_normal(source.latent_dim, np.float32))
    candidates = rng.standard_normal((source.num_samples, source.horizon, source.block_dim), np.float32)
    want, got = fp32.costs(candidates, context), fp16.costs(candidates, context)
    assert np.abs(got - want).max() <= FP16_COST_RTOL * np.abs(want).max()
    elites = 30
    assert len(set(want.argsort()[:elites].tolist()) & set(got.argsort()[:elites].tolist())) >= elites - 2

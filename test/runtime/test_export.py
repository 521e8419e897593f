"""ONNX export: files, manifest, onnx.checker, agreement with the torch reference rollout."""
from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from lewm_ros.model import load_model
from lewm_ros.runtime import export
from lewm_ros.runtime.export import ensure_onnx, export_onnx
from lewm_ros.runtime.onnx_manifest import (MANIFEST_FILE, SHARED_WEIGHTS_FILE, ExportError, OnnxManifest,
                                            cost_file, graph_sha256, model_hash, predict_file)
from lewm_ros.runtime.rollout import NaiveRolloutCost
from runtime_fixtures import BLOCK, HISTORY, IMAGE, LATENT, make_tiny_model_dir

N, H = 8, 4


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp('tiny_model'))


@pytest.fixture(scope='module')
def exported(model_dir, tmp_path_factory):
    return export_onnx(model_dir, tmp_path_factory.mktemp('onnx'), N, H)


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_export_writes_checked_files_and_manifest(exported, model_dir):
    names = ['encoder.onnx'] + [f(k) for f in (cost_file, predict_file) for k in range(1, HISTORY + 1)]
    assert sorted(exported.files) == sorted(names)
    data = json.loads((exported.directory / MANIFEST_FILE).read_text())
    assert data['opset'] == 17 and data['num_samples'] == N and data['horizon'] == H
    assert data['model_hash'] == model_hash(model_dir)
    for name in names:
        path = exported.directory / name
        onnx.checker.check_model(str(path), full_check=True)
        external = data['files'][name].get('external_data')
        assert data['files'][name]['sha256'] == graph_sha256(path, *([exported.directory / external]
                                                                     if external else []))
        assert onnx.load(str(path)).opset_import[0].version == 17
    # the rollout-cost graphs share one weights file: the predictor is stored once, not per graph
    weights = exported.directory / SHARED_WEIGHTS_FILE
    assert {data['files'][cost_file(k)]['external_data'] for k in range(1, HISTORY + 1)} == {weights.name}
    model = load_model(model_dir)
    one_copy = 4 * sum(p.numel() for part in (model.predictor, model.action_encoder, model.pred_proj)
                       for p in part.parameters())
    # HISTORY cost graphs hold the (rearranged) predictor about once, the predictor-step graphs once more
    assert weights.stat().st_size < 3 * one_copy
    assert all(v <= 1e-4 for v in data['verification'].values())


def test_graph_signatures(exported):
    enc = onnx.load(str(exported.encoder_path))
    assert [(i.name, _dims(i)) for i in enc.graph.input] == [('pixels', ['batch', 3, IMAGE, IMAGE])]
    assert [(o.name, _dims(o)) for o in enc.graph.output] == [('latents', ['batch', LATENT])]
    for k in range(1, HISTORY + 1):
        graph = onnx.load(str(exported.cost_path(k))).graph
        inputs = {i.name: _dims(i) for i in graph.input}
        expected = {'candidates': [N, H, BLOCK], 'history_latents': [k, LATENT], 'goal': [LATENT]}
        if k > 1:
            expected['history_blocks'] = [k - 1, BLOCK]
        assert inputs == expected  # all static: TensorRT needs no optimisation profile
        assert [(o.name, _dims(o)) for o in graph.output] == [('costs', [N])]


def test_onnx_costs_match_naive_reference_rollout(exported, model_dir):
    """The exported efficient rollout agrees with the reference (whole-window) rollout in torch."""
    model = load_model(model_dir)
    naive = NaiveRolloutCost(model)
    gen = torch.Generator().manual_seed(7)
    for k in range(1, HISTORY + 1):
        cand = torch.randn(N, H, BLOCK, generator=gen)
        lat = torch.randn(k, LATENT, generator=gen)
        blocks = torch.randn(k - 1, BLOCK, generator=gen)
        goal = torch.randn(LATENT, generator=gen)
        with torch.no_grad():
            ref = naive(cand, lat, blocks, goal).numpy()
        feeds = {'candidates': cand.numpy(), 'history_latents': lat.numpy(), 'goal': goal.numpy()}
        if k > 1:
            feeds['history_blocks'] = blocks.numpy()
        sess = ort.InferenceSession(str(exported.cost_path(k)), providers=['CPUExecutionProvider'])
        got = sess.run(None, feeds)[0]
        assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()
        assert np.ptp(ref) > 1e-3 * np.abs(ref).max()  # the costs really depend on the candidates
    pixels = torch.randn(5, 3, IMAGE, IMAGE, generator=gen)
    sess = ort.InferenceSession(str(exported.encoder_path), providers=['CPUExecutionProvider'])
    with torch.no_grad():
        assert np.abs(sess.run(None, {'pixels': pixels.numpy()})[0] - model.encode(pixels).numpy()).max() <= 1e-4


def test_ensure_onnx_reuses_valid_export_and_reexports_stale(model_dir, tmp_path, caplog):
    out = tmp_path / 'onnx'
    first = ensure_onnx(model_dir, N, H, out)
    stamp = (out / 'encoder.onnx').stat().st_mtime_ns
    again = ensure_onnx(model_dir, N, H, out)
    assert (out / 'encoder.onnx').stat().st_mtime_ns == stamp and again.files == first.files
    # A corrupted file is detected by its sha256 and re-exported.
    with open(out / cost_file(2), 'r+b') as handle:
        handle.seek(100)
        handle.write(b'\x00corrupt')
    caplog.set_level('WARNING')
    ensure_onnx(model_dir, N, H, out)
    assert 'does not match its manifest sha256' in caplog.text
    assert graph_sha256(out / cost_file(2), out / SHARED_WEIGHTS_FILE) == first.files[cost_file(2)]['sha256']
    # Another candidate count is another export.
    assert ensure_onnx(model_dir, N + 1, H, out).num_samples == N + 1
    assert 'exported for N=8' in caplog.text


def test_manifest_tracks_model_weights(model_dir, tmp_path):
    copy = tmp_path / 'model'
    shutil.copytree(model_dir, copy)
    manifest = export_onnx(copy, tmp_path / 'onnx', N, H)
    assert manifest.stale_reason(copy, N, H) is None
    make_tiny_model_dir(copy, seed=1)  # retrained weights, same directory
    assert 'model directory is now' in OnnxManifest.load(tmp_path / 'onnx').stale_reason(copy, N, H)


def test_verification_failure_is_loud(model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(export, 'ENCODER_ATOL', -1.0)  # no error can pass: the check must raise
    with pytest.raises(ExportError, match='ONNX Runtime latents differ from torch'):
        export_onnx(model_dir, tmp_path, N, H)
    assert not (tmp_path / MANIFEST_FILE).exists()


def test_rejects_bad_arguments(model_dir, tmp_path):
    with pytest.raises(ValueError, match='num_samples'):
        export_onnx(model_dir, tmp_path, 0, H)
    with pytest.raises(ValueError, match='opset'):
        export_onnx(model_dir, tmp_path, N, H, opset=9)


def test_lewm_train_export_subcommand(model_dir, tmp_path):
    from lewm_training.cli import main
    out = tmp_path / 'cli'
    assert main(['export', '--model-dir', str(model_dir), '--samples', '4', '--horizon', '2', '--out', str(out)]) == 0
    manifest = OnnxManifest.load(out)
    assert (manifest.num_samples, manifest.horizon) == (4, 2)


def test_lewm_train_export_reports_a_missing_model(tmp_path, caplog):
    from lewm_training.cli import main
    assert main(['export', '--model-dir', str(tmp_path / 'nope'), '--out', str(tmp_path / 'o')]) == 1
    assert 'does not exist' in caplog.text

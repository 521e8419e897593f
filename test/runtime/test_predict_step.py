"""The predictor step (predict_next, the surprise monitor's prediction) on ONNX Runtime: the
exported predict_k graphs give the torch backend's numbers; an export made before they existed
says so instead of guessing."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from lewm_ros.runtime.backend import PlanningContext, make_backend
from lewm_ros.runtime.onnx_backend import OnnxRuntimeBackend
from lewm_ros.runtime.onnx_manifest import MANIFEST_FILE, predict_file
from runtime_fixtures import BLOCK, HISTORY, LATENT, make_tiny_model_dir


@pytest.fixture(scope='module')
def backends(tmp_path_factory):
    model_dir = make_tiny_model_dir(tmp_path_factory.mktemp('tiny_model'))
    return make_backend('onnxruntime', model_dir, num_samples=4, horizon=2, num_threads=1), \
        make_backend('torch', model_dir)


def test_predict_next_matches_torch(backends):
    onnx, ref = backends
    rng = np.random.default_rng(0)
    assert onnx.predictor_missing() == '' and ref.predictor_missing() == ''
    for k in range(1, HISTORY + 1):
        latents, blocks = rng.standard_normal((k, LATENT), np.float32), rng.standard_normal((k - 1, BLOCK), np.float32)
        block, goal = rng.standard_normal(BLOCK, np.float32), np.zeros(LATENT, np.float32)
        got = onnx.predict_next(PlanningContext(latents, blocks, goal), block)
        want = ref.predict_next(PlanningContext(*map(torch.from_numpy, (latents, blocks, goal))),
                                torch.from_numpy(block)).numpy()
        assert isinstance(got, np.ndarray) and got.shape == (LATENT,)
        assert np.abs(got - want).max() <= 1e-4
    with pytest.raises(ValueError, match='block must be'):
        onnx.predict_next(PlanningContext(latents, blocks, goal), block[:-1])


def test_export_without_predictor_graphs_names_itself(backends, tmp_path):
    onnx, _ = backends
    old = shutil.copytree(onnx.manifest.directory, tmp_path / 'old_export')
    manifest = json.loads((old / MANIFEST_FILE).read_text())
    for k in range(1, HISTORY + 1):
        del manifest['files'][predict_file(k)]
        (old / predict_file(k)).unlink()
    (old / MANIFEST_FILE).write_text(json.dumps(manifest))
    backend = OnnxRuntimeBackend(old, num_threads=1)
    assert 'has no predictor-step graphs' in backend.predictor_missing() and str(old) in backend.predictor_missing()
    with pytest.raises(NotImplementedError, match='export it again'):
        backend.predict_next(PlanningContext(np.zeros((1, LATENT), np.float32), np.zeros((0, BLOCK), np.float32),
                                             np.zeros(LATENT, np.float32)), np.zeros(BLOCK, np.float32))

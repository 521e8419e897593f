"""Nothing writes into a model directory: exports for planning batches it does not ship go to the
engine cache (keyed by the model hash); a shipped, verified export is read in place."""
from __future__ import annotations

import os
import shutil
import stat

import numpy as np
import pytest

from lewm_ros.model.metadata import ModelMetadata
from lewm_ros.planning import MPCPlanner
from lewm_ros.planning.config import CEMConfig, MPCConfig
from lewm_ros.runtime.engine_cache import CACHE_ENV
from lewm_ros.runtime.export import ensure_onnx
from lewm_ros.runtime.onnx_exports import cache_export_dir, default_export_dir
from lewm_ros.runtime.onnx_manifest import MANIFEST_FILE, model_hash
from runtime_fixtures import BLOCK, HISTORY, IMAGE, make_tiny_model_dir

N, H = 6, 2


def _tree(root) -> dict[str, int]:
    """Relative path -> mtime_ns of every file under root."""
    return {os.path.relpath(os.path.join(d, f), root): os.stat(os.path.join(d, f)).st_mtime_ns
            for d, _, files in os.walk(root) for f in files}


def _set_writable(root, writable: bool) -> None:
    for d, dirs, files in os.walk(root):
        for name in [*dirs, *files, '.']:
            path = os.path.join(d, name)
            mode = os.stat(path).st_mode
            bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
            os.chmod(path, (mode | stat.S_IWUSR) if writable else (mode & ~bits))


@pytest.fixture()
def shipped_model(tmp_path_factory):
    """A tiny model directory that ships a verified export for (N, H) and lewm_meta.json."""
    model_dir = make_tiny_model_dir(tmp_path_factory.mktemp('shipped') / 'm')
    ModelMetadata(action_dim=2, frameskip=BLOCK // 2, history=HISTORY, image_size=IMAGE, action_mean=[0, 0],
                  action_std=[1, 1], action_low=[-1, -1], action_high=[1, 1]).save(model_dir)
    ensure_onnx(model_dir, N, H, default_export_dir(model_dir, N, H))
    yield model_dir
    _set_writable(model_dir, True)


def test_read_only_model_plans_with_a_batch_it_does_not_ship(shipped_model, tmp_path, monkeypatch):
    # chmod makes a write fail for a normal user; root ignores it, so the file-tree comparison
    # below (no file added, none rewritten) is the check that holds for both.
    cache = tmp_path / 'cache'
    monkeypatch.setenv(CACHE_ENV, str(cache))
    before = _tree(shipped_model)
    _set_writable(shipped_model, False)
    config = MPCConfig(cem=CEMConfig(num_samples=N + 2, horizon=H, iterations=2, num_elites=2))
    mpc = MPCPlanner.from_model_dir(shipped_model, backend='onnxruntime', config=config, num_threads=1)
    rng = np.random.default_rng(0)
    mpc.set_goal(rng.integers(0, 255, (IMAGE, IMAGE, 3), dtype=np.uint8))
    mpc.observe(rng.integers(0, 255, (IMAGE, IMAGE, 3), dtype=np.uint8))
    plan = mpc.plan()
    assert np.isfinite(plan.raw_actions).all() and plan.raw_actions.shape == (H, BLOCK // 2, 2)
    assert _tree(shipped_model) == before                     # not one file added or rewritten
    export_dir = cache_export_dir(shipped_model, N + 2, H, root=cache)
    assert (export_dir / MANIFEST_FILE).is_file()
    assert export_dir.is_relative_to(cache / 'onnx' / model_hash(shipped_model)[:16])


def test_shipped_export_is_used_in_place(shipped_model, tmp_path, caplog):
    before = _tree(shipped_model)
    _set_writable(shipped_model, False)
    manifest = ensure_onnx(shipped_model, N, H, cache_root=tmp_path / 'cache')
    assert manifest.directory == default_export_dir(shipped_model, N, H)
    assert _tree(shipped_model) == before and not (tmp_path / 'cache').exists()


def test_stale_shipped_export_is_left_alone_and_the_cache_used(shipped_model, tmp_path, caplog):
    shipped = default_export_dir(shipped_model, N, H)
    (shipped / 'encoder.onnx').write_bytes((shipped / 'encoder.onnx').read_bytes() + b'\0')   # tampered
    before = _tree(shipped_model)
    caplog.set_level('INFO')
    manifest = ensure_onnx(shipped_model, N, H, cache_root=tmp_path / 'cache')
    assert manifest.directory == cache_export_dir(shipped_model, N, H, root=tmp_path / 'cache')
    assert 'does not fit' in caplog.text and 'sha256' in caplog.text
    assert _tree(shipped_model) == before


def test_cache_dir_is_keyed_by_model_batch_and_cost(shipped_model, tmp_path):
    from lewm_ros.runtime.critics import LatentCostConfig
    base = cache_export_dir(shipped_model, N, H, root=tmp_path)
    assert base.parent.name == model_hash(shipped_model)[:16]
    others = {cache_export_dir(shipped_model, N + 1, H, root=tmp_path),
              cache_export_dir(shipped_model, N, H + 1, root=tmp_path),
              cache_export_dir(shipped_model, N, H, opset=18, root=tmp_path),
              cache_export_dir(shipped_model, N, H, cost=LatentCostConfig(stage_weight=1.0), root=tmp_path)}
    assert base not in others and len(others) == 4
    copy = tmp_path / 'retrained'
    shutil.copytree(shipped_model, copy)
    _set_writable(copy, True)
    make_tiny_model_dir(copy, seed=1)
    assert cache_export_dir(copy, N, H, root=tmp_path).parent != base.parent

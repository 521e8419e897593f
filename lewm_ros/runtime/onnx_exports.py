"""Where a model's ONNX exports are, and whether one fits a planning batch (no torch needed).

A model directory ships verified exports in ``<model_dir>/onnx/n{N}_h{H}`` (read in place, never
written by the runtime); other planning batches and cost terms are exported into the cache
(``<cache root>/onnx/<model hash>/n{N}_h{H}-opset{o}-<cost digest>``). :func:`find_export` looks
in both without torch; making a missing export needs torch (:mod:`lewm_ros.runtime.export`), so
a torch-free install gets :func:`missing_export_error`, which names the directories searched and
the command that makes the export. :func:`resolve_export` does all three.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from lewm_ros.runtime.arrays import torch_installed
from lewm_ros.runtime.critics import LatentCostConfig
from lewm_ros.runtime.engine_cache import derived_onnx_dir
from lewm_ros.runtime.onnx_manifest import DEFAULT_OPSET, MANIFEST_FILE, ExportError, OnnxManifest, model_hash


def default_export_dir(model_dir: str | Path, num_samples: int, horizon: int) -> Path:
    """``<model_dir>/onnx/n{N}_h{H}``: where a model directory ships a verified export (written
    by ``lewm-train export``; the runtime reads it there but never writes into a model directory)."""
    return Path(model_dir) / 'onnx' / f'n{num_samples}_h{horizon}'


def cache_export_dir(model_dir: str | Path, num_samples: int, horizon: int, opset: int = DEFAULT_OPSET,
                     cost: LatentCostConfig | None = None, root: str | Path | None = None) -> Path:
    """Where the runtime exports a planning batch the model directory does not ship:
    ``<cache root>/onnx/<model hash>/n{N}_h{H}-opset{o}-<cost digest>`` (root: the engine cache
    root, :func:`~lewm_ros.runtime.engine_cache.default_cache_root` when None)."""
    terms = json.dumps(dataclasses.asdict(cost or LatentCostConfig()), sort_keys=True)
    digest = hashlib.sha256(terms.encode()).hexdigest()[:8]
    return derived_onnx_dir(root, model_hash(model_dir), f'n{num_samples}_h{horizon}-opset{opset}-{digest}')


def fit_reason(out_dir: Path, model_dir: str | Path, num_samples: int, horizon: int, opset: int,
               cost: LatentCostConfig | None) -> tuple[OnnxManifest | None, str]:
    """(the export in out_dir, '') when it fits the request, else (None, why not)."""
    if not (out_dir / MANIFEST_FILE).is_file():
        return None, 'no export there'
    try:
        manifest = OnnxManifest.load(out_dir)
        reason = manifest.stale_reason(model_dir, num_samples, horizon, opset, cost)
    except ExportError as exc:
        reason = str(exc)
    return (manifest, '') if reason is None else (None, reason)


def find_export(model_dir: str | Path, num_samples: int, horizon: int, out_dir: str | Path | None = None,
                opset: int = DEFAULT_OPSET, cost: LatentCostConfig | None = None,
                cache_root: str | Path | None = None) -> tuple[OnnxManifest | None, Path, list[str]]:
    """(a fitting export or None, the directory to export into when None, why each directory
    searched did not fit). With ``out_dir`` only that directory is searched; without, the
    shipped :func:`default_export_dir`, then :func:`cache_export_dir` under ``cache_root``."""
    candidates = [Path(out_dir)] if out_dir is not None else [
        default_export_dir(model_dir, num_samples, horizon),
        cache_export_dir(model_dir, num_samples, horizon, opset, cost, cache_root)]
    reasons = []
    for directory in candidates:
        manifest, reason = fit_reason(directory, model_dir, num_samples, horizon, opset, cost)
        if manifest is not None:
            return manifest, directory, []
        reasons.append(f'{directory} does not fit: {reason}')
    return None, candidates[-1], reasons


def missing_export_error(model_dir: str | Path, num_samples: int, horizon: int, reasons: list[str],
                         cost: LatentCostConfig | None = None) -> ExportError:
    """The error of a torch-free install that lacks the export a planner needs: the directories
    searched (with why each did not fit) and the command that makes the export."""
    command = f'lewm-train export --model-dir {model_dir} --samples {num_samples} --horizon {horizon}'
    extra = '' if (cost or LatentCostConfig()) == LatentCostConfig() else \
        f' (these cost terms, {dataclasses.asdict(cost)}, are exported into the cache by a planner ' \
        'built once with them where torch is installed)'
    return ExportError(
        f'no ONNX export for N={num_samples}, H={horizon} fits model {model_dir} ({"; ".join(reasons)}), and this '
        f'install has no torch to export one. On a machine with torch and the training package, run '
        f'`{command}` and copy the model directory here{extra}, or plan with the num_samples and horizon of an '
        f'export the model ships (its onnx/ directory).')


def resolve_export(model_dir: str | Path, num_samples: int, horizon: int, out_dir: str | Path | None = None,
                   opset: int = DEFAULT_OPSET, cost: LatentCostConfig | None = None,
                   cache_root: str | Path | None = None) -> OnnxManifest:
    """The fitting export (:func:`find_export`); when none fits, one made with torch
    (:func:`~lewm_ros.runtime.export.ensure_onnx`), or without torch :func:`missing_export_error`."""
    manifest, _, reasons = find_export(model_dir, num_samples, horizon, out_dir, opset, cost, cache_root)
    if manifest is not None:
        return manifest
    if not torch_installed():
        raise missing_export_error(model_dir, num_samples, horizon, reasons, cost)
    from lewm_ros.runtime.export import ensure_onnx
    return ensure_onnx(model_dir, num_samples, horizon, out_dir, opset, cost, cache_root)

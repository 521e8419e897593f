"""ONNX export of a model directory: the encoder and the planning cost, verified.

Files written into ``out_dir`` (the format: :mod:`lewm_ros.runtime.onnx_manifest`):
``encoder.onnx`` (dynamic batch), ``rollout_cost_k{k}.onnx`` for k = 1..history (static shapes:
one graph per k because the rollout's window layout depends on k and TensorRT wants static
shapes; the planner picks the graph for the history it has), their shared weights, and
``onnx_manifest.json``.

Every file is checked with ``onnx.checker`` and run through ONNX Runtime (CPU) against
torch on random inputs: encoder max abs error <= 1e-4, costs max error <= 1e-4 relative to
the largest |cost|. A larger error raises :class:`ExportError`; nothing is left half-written
(the manifest is written last, so a directory without one is not an export).

The legacy TorchScript exporter (``dynamo=False``) is used: the dynamo exporter needs
``onnxscript``, which a robot's runtime environment does not otherwise need.
"""
from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lewm_ros.jsonio import write_json
from lewm_ros.model.checkpoint import load_model
from lewm_ros.model.lewm import LeWM
from lewm_ros.runtime.critics import LatentCostConfig
from lewm_ros.runtime.onnx_manifest import (COST_OUTPUTS, DEFAULT_OPSET, ENCODER_FILE, ENCODER_INPUTS,
                                            ENCODER_OUTPUTS, MANIFEST_FILE, PREDICT_OUTPUTS, SHARED_WEIGHTS_FILE,
                                            ExportError, OnnxManifest, cost_file, cost_input_names, graph_files,
                                            graph_sha256, model_hash, predict_file, predict_input_names,
                                            sha256_file, share_weights)
from lewm_ros.runtime.onnx_exports import find_export
from lewm_ros.runtime.rollout import RolloutCost, predict_next
from lewm_ros.validation import check_int

_LOG = logging.getLogger(__name__)

#: Verification tolerances: encoder and predictor-step max abs error, cost max error / max |cost|.
ENCODER_ATOL = 1e-4
COST_RTOL = 1e-4


class _EncoderGraph(nn.Module):
    """pixels (B, 3, S, S) -> latents (B, D)."""

    def __init__(self, model: LeWM) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode(pixels)


class _PredictGraph(nn.Module):
    """One predictor step (:func:`~lewm_ros.runtime.rollout.predict_next`): history_latents (k, D),
    [history_blocks (k-1, block) when k > 1,] block (block,) -> latent (D,)."""

    def __init__(self, model: LeWM, first_frame: bool) -> None:
        super().__init__()
        self.model = model
        self.first_frame = first_frame

    def forward(self, history_latents: torch.Tensor, *blocks: torch.Tensor) -> torch.Tensor:
        if self.first_frame:
            blocks = (blocks[0].new_zeros((0, blocks[0].shape[0])), *blocks)   # no executed blocks yet
        return predict_next(self.model, history_latents, *blocks)


class _FirstFrameCostGraph(nn.Module):
    """The k == 1 cost graph: no executed blocks yet, so no ``history_blocks`` input."""

    def __init__(self, cost: nn.Module, block_dim: int) -> None:
        super().__init__()
        self.cost = cost
        self.block_dim = block_dim

    def forward(self, candidates: torch.Tensor, history_latents: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        empty = candidates.new_zeros((0, self.block_dim))  # (0, block) [z-scored]
        return self.cost(candidates, history_latents, empty, goal)


def export_module(module: nn.Module, args: tuple[torch.Tensor, ...], path: Path, input_names: tuple[str, ...],
                  output_names: tuple[str, ...], opset: int, dynamic_axes: dict | None = None) -> None:
    """Export ``module`` called on ``args`` to ONNX at ``path`` (written beside it, then renamed)."""
    module.eval()
    tmp = path.with_name(path.name + '.tmp')
    with warnings.catch_warnings():
        # The legacy exporter announces its own deprecation on every call; the trace warnings of
        # static shape checks (image size, history length) are expected for static graphs.
        warnings.filterwarnings('ignore', message='.*legacy TorchScript-based ONNX export.*')
        warnings.filterwarnings('ignore', message='.*will be removed.*')
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        torch.onnx.export(module, args, str(tmp), input_names=list(input_names), output_names=list(output_names),
                          dynamic_axes=dynamic_axes, opset_version=opset, do_constant_folding=True, dynamo=False)
    tmp.replace(path)


def _declare_output_shape(path: Path, name: str, dims: list[int | str]) -> None:
    """Write the output shape into the graph (the tracer leaves reshaped axes unnamed-dynamic)."""
    import onnx
    model = onnx.load(str(path))
    (output,) = [o for o in model.graph.output if o.name == name]
    for axis, value in zip(output.type.tensor_type.shape.dim, dims):
        if isinstance(value, str):
            axis.dim_param = value
        else:
            axis.dim_value = value
    onnx.save(model, str(path))


def check_onnx(path: Path) -> None:
    """onnx.checker (full check) on ``path``; ExportError naming the file otherwise."""
    import onnx
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # noqa: BLE001 -- onnx raises several types; all mean an invalid file
        raise ExportError(f'onnx.checker rejected {path}: {type(exc).__name__}: {exc}') from exc


def ort_run(path: Path, feeds: dict[str, torch.Tensor]) -> np.ndarray:
    """The first output of the graph at ``path`` on ``feeds`` in an ONNX Runtime CPU session."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])
    return session.run(None, {k: v.detach().cpu().numpy() for k, v in feeds.items()})[0]


def _shapes(feeds: dict[str, torch.Tensor]) -> dict[str, list[int]]:
    return {name: list(t.shape) for name, t in feeds.items()}


def export_onnx(model_dir: str | Path, out_dir: str | Path, num_samples: int, horizon: int,
                opset: int = DEFAULT_OPSET, cost: LatentCostConfig | None = None, seed: int = 0) -> OnnxManifest:
    """Export and verify ``encoder.onnx`` + ``rollout_cost_k{1..history}.onnx`` +
    ``predict_k{1..history}.onnx``; write the manifest.

    model_dir: a model directory (config.json + weights); out_dir: created if needed;
    num_samples N / horizon H: the static candidate shape (N, H, block) of the cost graphs;
    opset: ONNX opset (17 parses in TensorRT 10); cost: the cost terms baked into the graphs
    (default: the paper's terminal cost); seed: verification inputs.
    Raises ExportError on a checker failure or an error above tolerance.
    """
    check_int('num_samples', num_samples, 1)
    check_int('horizon', horizon, 1)
    check_int('opset', opset, 13, 21)  # 17 for TensorRT 10
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST_FILE).unlink(missing_ok=True)
    model = load_model(model_dir, 'cpu')
    cfg = model.config
    latent, block, history, size = (cfg.latent_dim, cfg.action_encoder.input_dim, cfg.predictor.num_frames,
                                    cfg.encoder.image_size)
    gen = torch.Generator().manual_seed(seed)
    files: dict[str, dict[str, Any]] = {}
    verification: dict[str, float] = {}

    with torch.inference_mode(False), torch.no_grad():
        encoder = _EncoderGraph(model).eval()
        pixels = torch.randn(2, 3, size, size, generator=gen)
        path = out_dir / ENCODER_FILE
        export_module(encoder, (pixels,), path, ENCODER_INPUTS, ENCODER_OUTPUTS, opset,
                dynamic_axes={'pixels': {0: 'batch'}, 'latents': {0: 'batch'}})
        _declare_output_shape(path, ENCODER_OUTPUTS[0], ['batch', latent])
        check_onnx(path)
        # Verify at a batch other than the traced one: the dynamic axis must really be dynamic.
        probe = torch.randn(3, 3, size, size, generator=gen)
        err = float(np.abs(ort_run(path, {'pixels': probe}) - encoder(probe).numpy()).max())
        if not err <= ENCODER_ATOL:
            raise ExportError(f'{path}: ONNX Runtime latents differ from torch by {err:.3g} (max abs) '
                              f'> {ENCODER_ATOL}')
        verification['encoder_max_abs_err'] = err
        files[ENCODER_FILE] = {'sha256': sha256_file(path), 'inputs': {'pixels': ['batch', 3, size, size]},
                               'outputs': {'latents': ['batch', latent]}}

        cost_config = cost or LatentCostConfig()
        rollout = RolloutCost(model, cost_config).eval()
        shared = out_dir / SHARED_WEIGHTS_FILE
        shared.unlink(missing_ok=True)
        offsets: dict[str, tuple[int, int]] = {}
        for k in range(1, history + 1):
            feeds = {'candidates': torch.randn(num_samples, horizon, block, generator=gen),
                     'history_latents': torch.randn(k, latent, generator=gen),
                     'history_blocks': torch.randn(k - 1, block, generator=gen),
                     'goal': torch.randn(latent, generator=gen)}
            reference = rollout(feeds['candidates'], feeds['history_latents'], feeds['history_blocks'],
                             feeds['goal']).numpy()
            if k == 1:
                del feeds['history_blocks']
                graph: nn.Module = _FirstFrameCostGraph(rollout, block)
            else:
                graph = rollout
            path = out_dir / cost_file(k)
            export_module(graph, tuple(feeds.values()), path, cost_input_names(k), COST_OUTPUTS, opset)
            share_weights(path, shared, offsets)
            check_onnx(path)
            got = ort_run(path, feeds)
            if got.shape != reference.shape:
                raise ExportError(f'{path}: ONNX Runtime costs have shape {got.shape}, torch {reference.shape}')
            rel = float(np.abs(got - reference).max() / max(float(np.abs(reference).max()), 1e-12))
            if not rel <= COST_RTOL:
                raise ExportError(f'{path}: ONNX Runtime costs differ from torch by {rel:.3g} relative '
                                  f'(max error / max |cost|) > {COST_RTOL}')
            verification[f'cost_k{k}_max_rel_err'] = rel
            files[cost_file(k)] = {'inputs': _shapes(feeds), 'outputs': {'costs': [num_samples]},
                                   'external_data': SHARED_WEIGHTS_FILE}
        for k in range(1, history + 1):
            feeds = {'history_latents': torch.randn(k, latent, generator=gen),
                     'history_blocks': torch.randn(k - 1, block, generator=gen),
                     'block': torch.randn(block, generator=gen)}
            reference = predict_next(model, *feeds.values()).numpy()
            if k == 1:
                del feeds['history_blocks']
            path = out_dir / predict_file(k)
            export_module(_PredictGraph(model, k == 1), tuple(feeds.values()), path, predict_input_names(k),
                    PREDICT_OUTPUTS, opset)
            share_weights(path, shared, offsets)
            check_onnx(path)
            err = float(np.abs(ort_run(path, feeds) - reference).max())
            if not err <= ENCODER_ATOL:
                raise ExportError(f'{path}: ONNX Runtime prediction differs from torch by {err:.3g} (max abs) '
                                  f'> {ENCODER_ATOL}')
            verification[f'predict_k{k}_max_abs_err'] = err
            files[predict_file(k)] = {'inputs': _shapes(feeds), 'outputs': {'latent': [latent]},
                                      'external_data': SHARED_WEIGHTS_FILE}
        for name in files:  # hashes last: every graph's weights file is complete now
            files[name]['sha256'] = graph_sha256(*graph_files(out_dir, name, files[name]))

    manifest = OnnxManifest(directory=out_dir, num_samples=num_samples, horizon=horizon, history=history,
                            latent_dim=latent, block_dim=block, image_size=size, opset=opset,
                            model_hash=model_hash(model_dir), files=files,
                            cost=dataclasses.asdict(cost_config), verification=verification)
    write_json(out_dir / MANIFEST_FILE, manifest.to_dict())
    _LOG.info('exported %d ONNX files to %s in %.1f s (encoder err %.2g, worst cost rel err %.2g)', len(files),
              out_dir, time.perf_counter() - started, verification['encoder_max_abs_err'],
              max(v for k, v in verification.items() if k.startswith('cost_')))
    return manifest


def ensure_onnx(model_dir: str | Path, num_samples: int, horizon: int, out_dir: str | Path | None = None,
                opset: int = DEFAULT_OPSET, cost: LatentCostConfig | None = None,
                cache_root: str | Path | None = None) -> OnnxManifest:
    """A valid export for (model, N, H, opset, cost).

    With ``out_dir``: reuse it if its manifest fits the current model and files, else export
    there (logging why). Without: the model directory's shipped export
    (:func:`~lewm_ros.runtime.onnx_exports.default_export_dir`) when it fits, read in place; else the
    cache (:func:`~lewm_ros.runtime.onnx_exports.cache_export_dir` under ``cache_root``), reused or
    exported there. Nothing is ever written into the model directory (it may be installed read-only).
    """
    manifest, out_dir, reasons = find_export(model_dir, num_samples, horizon, out_dir, opset, cost, cache_root)
    if manifest is not None:
        return manifest
    stale = (out_dir / MANIFEST_FILE).is_file()   # an export there that no longer fits: worth a warning
    _LOG.log(logging.WARNING if stale else logging.INFO, '%s: exporting (N=%d, H=%d, opset %d) into %s',
             '; '.join(reasons), num_samples, horizon, opset, out_dir)
    return export_onnx(model_dir, out_dir, num_samples, horizon, opset, cost)

"""Export a trained model directory to verified ONNX (encoder + rollout-cost + predictor-step graphs).

Writes ``encoder.onnx``, ``rollout_cost_k{1..history}.onnx``, ``predict_k{1..history}.onnx`` (the
surprise monitor's predictor step) and ``onnx_manifest.json`` into
``--out`` (default ``<model-dir>/onnx/n{N}_h{H}``, where the runtime backends look first).
Each file is checked with onnx.checker and against torch through ONNX Runtime; a mismatch
fails the command. TensorRT engines are built on the target with ``lewm-engine build``.
"""
from __future__ import annotations

import argparse
import logging

from lewm_ros.model.checkpoint import CheckpointError
from lewm_ros.runtime.export import DEFAULT_OPSET, ExportError, export_onnx
from lewm_ros.runtime.onnx_exports import default_export_dir

_LOG = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--model-dir', required=True, help='model directory (config.json + weights)')
    parser.add_argument('--samples', type=int, default=300, help='CEM samples N (static graph shape; default 300)')
    parser.add_argument('--horizon', type=int, default=5, help='planning horizon H [blocks] (default 5)')
    parser.add_argument('--out', default=None, help='output directory (default <model-dir>/onnx/n{N}_h{H})')
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET, help='ONNX opset (default 17: TensorRT 10)')


def run(args: argparse.Namespace) -> int:
    out = args.out or default_export_dir(args.model_dir, args.samples, args.horizon)
    try:
        manifest = export_onnx(args.model_dir, out, args.samples, args.horizon, args.opset)
    except (CheckpointError, ExportError, ValueError) as exc:
        _LOG.error('ONNX export failed: %s', exc)
        return 1
    for name, info in manifest.files.items():
        _LOG.info('%s  sha256 %s  inputs %s', name, info['sha256'][:16], info['inputs'])
    return 0

"""ONNX export of a model directory's goal-conditioned policy (``policy.onnx``, format:
:mod:`lewm_ros.runtime.policy_format`), checked with ``onnx.checker`` and against torch in ONNX
Runtime (max abs error <= 1e-4 at a batch other than the traced one); its sha256 is recorded in
``policy_config.json``."""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import torch

from lewm_ros.model.policy import load_policy
from lewm_ros.runtime.export import check_onnx, export_module, ort_run
from lewm_ros.runtime.onnx_manifest import DEFAULT_OPSET, ExportError, sha256_file
from lewm_ros.runtime.policy_format import POLICY_INPUTS, POLICY_ONNX_FILE, POLICY_OUTPUTS

_LOG = logging.getLogger(__name__)

#: Verification tolerance: max abs error of the exported blocks [z-scored].
POLICY_ATOL = 1e-4


def export_policy_onnx(model_dir: str | Path, opset: int = DEFAULT_OPSET, seed: int = 0) -> Path:
    """Export ``<model_dir>/policy.onnx`` from ``policy.pt``, verify it, record its sha256 in the
    policy config; returns its path. Raises ExportError above tolerance."""
    model_dir = Path(model_dir)
    policy = load_policy(model_dir)
    cfg = policy.config
    gen = torch.Generator().manual_seed(seed)

    def inputs(batch: int) -> dict[str, torch.Tensor]:
        return {'latent': torch.randn(batch, cfg.latent_dim, generator=gen),
                'goal': torch.randn(batch, cfg.latent_dim, generator=gen),
                'remaining': cfg.max_goal_blocks * torch.rand(batch, generator=gen)}

    path = model_dir / POLICY_ONNX_FILE
    batch_axis = {name: {0: 'batch'} for name in (*POLICY_INPUTS, *POLICY_OUTPUTS)}
    with torch.inference_mode(False), torch.no_grad():
        export_module(policy, tuple(inputs(2).values()), path, POLICY_INPUTS, POLICY_OUTPUTS, opset, batch_axis)
        check_onnx(path)
        probe = inputs(3)
        err = float(np.abs(ort_run(path, probe) - policy(*probe.values()).numpy()).max())
    if not err <= POLICY_ATOL:
        raise ExportError(f'{path}: ONNX Runtime blocks differ from torch by {err:.3g} (max abs) > {POLICY_ATOL}')
    training = {**cfg.training, 'onnx_max_abs_err': err}
    dataclasses.replace(cfg, onnx_sha256=sha256_file(path), training=training).save(model_dir)
    _LOG.info('exported %s (max abs error vs torch %.2g)', path, err)
    return path

"""Running the goal-conditioned policy (:mod:`lewm_ros.runtime.policy_format`) beside a backend:
ONNX Runtime (the onnxruntime backend; needs no torch) or torch (the torch and TensorRT
backends). Inputs and outputs are host arrays on every runtime: the policy is a small MLP called
once per plan, so its (D,) inputs and (P, block) output cross to the host once each.
"""
from __future__ import annotations

import abc
import importlib.util
import logging
from pathlib import Path
from typing import Any

import numpy as np

from lewm_ros.runtime.onnx_manifest import model_hash, sha256_file
from lewm_ros.runtime.policy_format import (POLICY_CONFIG_FILE, POLICY_INPUTS, POLICY_ONNX_FILE,
                                            GoalPolicyConfig, check_policy_fits, has_policy)

_LOG = logging.getLogger(__name__)


class PolicyRunner(abc.ABC):
    """config: the policy's GoalPolicyConfig; source: the ``policy_config.json`` it came from
    (named by errors about the policy)."""
    config: GoalPolicyConfig
    source: Path

    @abc.abstractmethod
    def propose(self, latent: np.ndarray, goal: np.ndarray, remaining_blocks: float) -> np.ndarray:
        """latent, goal: (D,) float32; remaining_blocks: action blocks left to reach the goal ->
        the next P action blocks (P, block) [z-scored] float32."""


class TorchPolicyRunner(PolicyRunner):
    """The policy's torch weights (``policy.pt``) on ``device`` ('cpu', 'cuda', a torch.device)."""

    def __init__(self, model_dir: str | Path, device: Any = 'cpu') -> None:
        import torch
        from lewm_ros.model.policy import load_policy
        self._torch = torch
        self.device = torch.device(device)
        self.policy = load_policy(model_dir, self.device)
        self.config = self.policy.config
        self.source = Path(model_dir) / POLICY_CONFIG_FILE

    def propose(self, latent: np.ndarray, goal: np.ndarray, remaining_blocks: float) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            inputs = [torch.as_tensor(np.asarray(x, np.float32)[None], device=self.device) for x in (latent, goal)]
            remaining = torch.full((1,), float(remaining_blocks), device=self.device)
            return self.policy(*inputs, remaining)[0].cpu().numpy()


class OnnxPolicyRunner(PolicyRunner):
    """The policy's ONNX export (``policy.onnx``) in an ONNX Runtime CPU session (num_threads:
    intra-op threads, None = ONNX Runtime's default; idle threads do not spin)."""

    def __init__(self, model_dir: str | Path, num_threads: int | None = None) -> None:
        import onnxruntime as ort
        model_dir = Path(model_dir)
        self.config = GoalPolicyConfig.load(model_dir)
        self.source = model_dir / POLICY_CONFIG_FILE
        check_policy_fits(self.config, model_dir, model_hash(model_dir))
        path = model_dir / POLICY_ONNX_FILE
        if not path.is_file() or sha256_file(path) != self.config.onnx_sha256:
            raise ValueError(f'{path}: missing or not the export its policy config records (sha256); run '
                             'lewm-train fit-policy again')
        options = ort.SessionOptions()
        options.inter_op_num_threads = 1
        if num_threads is not None:
            options.intra_op_num_threads = num_threads
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        self.session = ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])

    def propose(self, latent: np.ndarray, goal: np.ndarray, remaining_blocks: float) -> np.ndarray:
        feeds = dict(zip(POLICY_INPUTS, (np.asarray(latent, np.float32)[None], np.asarray(goal, np.float32)[None],
                                         np.full((1,), remaining_blocks, np.float32))))
        return self.session.run(None, feeds)[0][0]                                     # (P, block)


def make_policy_runner(backend: str, model_dir: str | Path, device: Any = 'cpu',
                       num_threads: int | None = None) -> PolicyRunner:
    """The policy runner that goes with a backend: ONNX Runtime for 'onnxruntime' (CPU), torch on
    the backend's device for 'torch', and for 'tensorrt' torch when it is installed, else ONNX
    Runtime on the CPU (the torch-free robot-trt install; the policy is a small MLP). ValueError
    naming the model directory when it ships no policy (``lewm-train fit-policy`` makes one) or one
    that does not fit its world model."""
    if not has_policy(model_dir):
        raise ValueError(f'{model_dir} has no goal-conditioned policy (policy_config.json): train one with '
                         'lewm-train fit-policy, or use planner mode cem')
    on_onnxruntime = backend == 'onnxruntime' or (backend == 'tensorrt' and importlib.util.find_spec('torch') is None)
    runner = OnnxPolicyRunner(model_dir, num_threads) if on_onnxruntime else TorchPolicyRunner(model_dir, device)
    _LOG.info('goal-conditioned policy of %s: %s', model_dir, type(runner).__name__)
    return runner

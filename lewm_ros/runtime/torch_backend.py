"""PyTorch inference backend (CPU or CUDA), the reference for the other backends.

On CUDA the costs call can be captured in a CUDA graph per (N, H, k) shape: CEM calls it with
the same shapes every iteration, so replaying the graph removes the kernel-launch overhead of
~100 small kernels per rollout step.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from lewm_ros.model.checkpoint import load_model
from lewm_ros.model.lewm import LeWM
from lewm_ros.runtime.arrays import array_space
from lewm_ros.runtime.backend import InferenceBackend, PlanningContext, check_rollout_inputs
from lewm_ros.runtime.critics import LatentCostConfig
from lewm_ros.runtime.host_memory import reuse_freed_memory
from lewm_ros.runtime.kernels import select_kernels
from lewm_ros.runtime.rollout import NaiveRolloutCost, RolloutCost, predict_next

_LOG = logging.getLogger(__name__)

ROLLOUTS = ('efficient', 'naive')


class _GraphedCosts:
    """One CUDA graph of the costs call for fixed (N, H, k): static inputs, replay, static output."""

    def __init__(self, fn: RolloutCost | NaiveRolloutCost, candidates: torch.Tensor, context: PlanningContext,
                 warmup: int = 3) -> None:
        self.inputs = [candidates.clone(), context.history_latents.clone(), context.history_blocks.clone(),
                       context.goal_latent.clone()]
        stream = torch.cuda.Stream(device=candidates.device)
        stream.wait_stream(torch.cuda.current_stream(candidates.device))
        with torch.cuda.stream(stream):
            for _ in range(warmup):
                fn(*self.inputs)
        torch.cuda.current_stream(candidates.device).wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.output = fn(*self.inputs)

    def __call__(self, candidates: torch.Tensor, context: PlanningContext) -> torch.Tensor:
        for static, value in zip(self.inputs, (candidates, context.history_latents, context.history_blocks,
                                               context.goal_latent)):
            static.copy_(value)
        self.graph.replay()
        return self.output.clone()


class TorchBackend(InferenceBackend):
    """LeWM in PyTorch.

    model: a model directory (``config.json`` + weights) or a LeWM instance (used as is, put in
    eval mode); device: 'cpu', 'cuda', 'cuda:1', ...; rollout: 'efficient' (exact, default) or
    'naive' (reference recompute); cuda_graphs: capture the costs call per (N, H, k) on CUDA
    (ignored on CPU); cost: the latent cost terms (default: terminal cost, as in the paper).
    kernels: the efficient rollout's matrix-multiply kernels (the naive reference uses the model's
    own modules), 'auto' (oneDNN on CPU for a wide predictor), 'portable' or 'onednn'
    (:func:`~lewm_ros.runtime.kernels.select_kernels`).
    On CPU the process reuses freed memory for its large temporaries
    (:func:`~lewm_ros.runtime.host_memory.reuse_freed_memory`, process-wide).
    """
    name = 'torch'

    def __init__(self, model: str | Path | LeWM, device: str | torch.device = 'cpu', rollout: str = 'efficient',
                 cuda_graphs: bool = True, cost: LatentCostConfig | None = None, kernels: str = 'auto') -> None:
        self.device = torch.device(device)
        self.arrays = array_space('torch', self.device)
        if self.device.type == 'cuda' and not torch.cuda.is_available():
            raise ValueError(f'device {device!r} requested but CUDA is not available to torch')
        if rollout not in ROLLOUTS:
            raise ValueError(f'rollout must be one of {sorted(ROLLOUTS)}, got {rollout!r}')
        if self.device.type == 'cpu':
            reuse_freed_memory()
        self.model = (model if isinstance(model, LeWM) else load_model(model)).to(self.device).eval()
        self.kernels = select_kernels(kernels, self.device, self.model.config.predictor.hidden_dim)
        self.rollout = RolloutCost(self.model, cost, self.kernels) if rollout == 'efficient' \
            else NaiveRolloutCost(self.model, cost)
        self.cost = self.rollout.cost
        _LOG.info('torch backend on %s: %s rollout, %s kernels', self.device, rollout, self.kernels.name)
        self.latent_dim = self.model.config.latent_dim
        self.history = self.model.history
        self.block_dim = self.model.config.action_encoder.input_dim
        self.image_size = self.model.config.encoder.image_size
        self.use_cuda_graphs = bool(cuda_graphs) and self.device.type == 'cuda'
        self._graphs: dict[tuple[int, int, int], _GraphedCosts] = {}

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (B, 3, S, S) float32 ImageNet-normalised -> latents (B, D)."""
        s = self.image_size
        if pixels.ndim != 4 or tuple(pixels.shape[1:]) != (3, s, s):
            raise ValueError(f'pixels must be (B, 3, {s}, {s}), got {tuple(pixels.shape)}')
        with torch.inference_mode():
            return self.model.encode(pixels.to(self.device, torch.float32))

    def predict_next(self, context: PlanningContext, block: torch.Tensor) -> torch.Tensor:
        """block (block_dim,) [z-scored] executed after the context's last frame -> the predicted
        next latent (D,): the predictor on the last min(history, k) frames and their blocks."""
        if tuple(block.shape) != (self.block_dim,):
            raise ValueError(f'block must be ({self.block_dim},), got {tuple(block.shape)}')
        check_rollout_inputs(block.reshape(1, 1, -1), context.history_latents, context.history_blocks,
                             context.goal_latent, self.latent_dim, self.block_dim)
        with torch.inference_mode():
            return predict_next(self.model, context.history_latents, context.history_blocks,
                                block.to(self.device, torch.float32))

    def predictor_missing(self) -> str:
        return ''

    def costs(self, candidates: torch.Tensor, context: PlanningContext) -> torch.Tensor:
        """candidates (N, H, block_dim) [z-scored] -> costs (N,)."""
        check_rollout_inputs(candidates, context.history_latents, context.history_blocks, context.goal_latent,
                             self.latent_dim, self.block_dim)
        with torch.inference_mode():
            if not self.use_cuda_graphs:
                return self.rollout(candidates, context.history_latents, context.history_blocks,
                                    context.goal_latent)
            key = (candidates.shape[0], candidates.shape[1], context.num_frames)
            graphed = self._graphs.get(key)
            if graphed is None:
                _LOG.info('capturing a CUDA graph of the rollout cost for (N, H, k) = %s', key)
                graphed = self._graphs[key] = _GraphedCosts(self.rollout, candidates, context)
            return graphed(candidates, context)

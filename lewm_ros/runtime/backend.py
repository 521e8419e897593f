"""The one inference interface every runtime implements (torch, ONNX Runtime, TensorRT).

A backend does two things: encode images to latents, and score candidate action sequences
(the predictor rollout + latent cost of :mod:`lewm_ros.runtime.rollout`). Shapes and dtypes are
identical across backends; every tensor stays on ``backend.device``.
"""
from __future__ import annotations

import abc
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class PlanningContext:
    """What a rollout needs besides the candidates (all float32 on the backend's device).

    history_latents: (k, D), k = 1..history real frames, oldest first; the last is the current frame.
    history_blocks: (k-1, block_dim) [z-scored] action blocks executed between consecutive history frames.
    goal_latent: (D,) latent of the goal image.
    """
    history_latents: torch.Tensor
    history_blocks: torch.Tensor
    goal_latent: torch.Tensor

    @property
    def num_frames(self) -> int:
        """k: real frames in the history."""
        return int(self.history_latents.shape[0])


class InferenceBackend(abc.ABC):
    """Encoder + rollout cost behind one interface.

    Attributes: name (registry name), device, latent_dim (D), history (frames the predictor
    sees), block_dim (frameskip x action_dim).
    """
    name: str
    device: torch.device
    latent_dim: int
    history: int
    block_dim: int

    @abc.abstractmethod
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (B, 3, S, S) float32 ImageNet-normalised -> latents (B, D)."""

    @abc.abstractmethod
    def costs(self, candidates: torch.Tensor, context: PlanningContext) -> torch.Tensor:
        """candidates (N, H, block_dim) [z-scored] -> costs (N,) float32 (lower is better)."""


#: registry name -> (module, class, the third-party package the module needs).
_BACKENDS: dict[str, tuple[str, str, str]] = {
    'torch': ('lewm_ros.runtime.torch_backend', 'TorchBackend', 'torch'),
    'onnxruntime': ('lewm_ros.runtime.onnx_backend', 'OnnxRuntimeBackend', 'onnxruntime'),
    'tensorrt': ('lewm_ros.runtime.tensorrt_backend', 'TensorRTBackend', 'tensorrt'),
}

BACKEND_NAMES = tuple(_BACKENDS)


#: Backends whose graphs / engines have a fixed planning batch (num_samples, horizon).
STATIC_SHAPE_BACKENDS = ('onnxruntime', 'tensorrt')


def make_backend(name: str, model_dir: str | Path, device: str | torch.device = 'cpu',
                 **options: Any) -> InferenceBackend:
    """Build a backend by registry name ('torch', 'onnxruntime', 'tensorrt').

    The backend module is imported lazily, so a robot without TensorRT can still use ONNX
    Runtime. ``options`` go to the backend's constructor. Raises ValueError for an unknown name
    and ImportError naming the missing package when the backend's dependency is not installed.
    """
    if name not in _BACKENDS:
        raise ValueError(f'unknown inference backend {name!r}; choose one of {sorted(_BACKENDS)}')
    module_name, class_name, package = _BACKENDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise ImportError(f'backend {name!r} is not available in this install ({module_name} is missing)') \
                from exc
        raise ImportError(f'backend {name!r} needs the Python package {package!r} '
                          f'(missing module {exc.name!r}): install it or choose another backend') from exc
    return getattr(module, class_name)(model_dir, device=device, **options)

"""The one inference interface every runtime implements (torch, ONNX Runtime, TensorRT).

A backend does two things: encode images to latents, and score candidate action sequences
(the predictor rollout of :mod:`lewm_ros.runtime.rollout` + the critics of
:mod:`lewm_ros.runtime.critics`). Shapes and dtypes are identical across backends; every array
in and out belongs to ``backend.arrays`` (:mod:`lewm_ros.runtime.arrays`: numpy on the host, or
torch tensors on the backend's device). This module imports no torch: a robot may have none.

:func:`make_backend` is the factory: for the static-shape backends (ONNX Runtime, TensorRT) it
resolves the ONNX export first (exporting it with torch when missing or stale), so those backends
only read an export directory through :mod:`lewm_ros.runtime.onnx_manifest`.
"""
from __future__ import annotations

import abc
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lewm_ros.runtime.arrays import ArraySpace
    from lewm_ros.runtime.critics import LatentCostConfig


@dataclass(frozen=True)
class PlanningContext:
    """What a rollout needs besides the candidates (all float32 arrays of the backend's ``arrays``).

    history_latents: (k, D), k = 1..history real frames, oldest first; the last is the current frame.
    history_blocks: (k-1, block_dim) [z-scored] action blocks executed between consecutive history frames.
    goal_latent: (D,) latent of the goal image.
    """
    history_latents: Any
    history_blocks: Any
    goal_latent: Any

    @property
    def num_frames(self) -> int:
        """k: real frames in the history."""
        return int(self.history_latents.shape[0])


def check_rollout_inputs(candidates: Any, history_latents: Any, history_blocks: Any, goal: Any, latent_dim: int,
                         block_dim: int) -> None:
    """Shape checks shared by every backend; raises ValueError naming the tensor and shapes."""
    if candidates.ndim != 3 or candidates.shape[-1] != block_dim or candidates.shape[0] < 1 \
            or candidates.shape[1] < 1:
        raise ValueError(f'candidates must be (N, H, {block_dim}) with N, H >= 1, got {tuple(candidates.shape)}')
    if history_latents.ndim != 2 or history_latents.shape[-1] != latent_dim or history_latents.shape[0] < 1:
        raise ValueError(f'history_latents must be (k, {latent_dim}) with k >= 1, '
                         f'got {tuple(history_latents.shape)}')
    k = history_latents.shape[0]
    if tuple(history_blocks.shape) != (k - 1, block_dim):
        raise ValueError(f'history_blocks must be (k-1, block_dim) = {(k - 1, block_dim)}, '
                         f'got {tuple(history_blocks.shape)}')
    if tuple(goal.shape) != (latent_dim,):
        raise ValueError(f'goal must be ({latent_dim},), got {tuple(goal.shape)}')


class InferenceBackend(abc.ABC):
    """Encoder + rollout cost behind one interface.

    Attributes: name (registry name), device (where it computes: 'cpu', 'cuda:0', or a
    ``torch.device``), arrays (the :class:`~lewm_ros.runtime.arrays.ArraySpace` of its inputs and
    outputs), latent_dim (D), history (frames the predictor sees), block_dim (frameskip x
    action_dim), cost (the LatentCostConfig its costs use).
    """
    name: str
    device: Any
    arrays: 'ArraySpace'
    latent_dim: int
    history: int
    block_dim: int
    cost: 'LatentCostConfig'

    @classmethod  # noqa: B027 - not abstract: by default a backend runs anywhere
    def check_available(cls, device: Any, **options: Any) -> None:
        """Raise (ImportError / ValueError naming what is missing) when this backend cannot run on
        ``device`` here; the factory calls it before any costly preparation (an ONNX export)."""

    @abc.abstractmethod
    def encode(self, pixels: Any) -> Any:
        """pixels (B, 3, S, S) float32 ImageNet-normalised -> latents (B, D)."""

    @abc.abstractmethod
    def costs(self, candidates: Any, context: PlanningContext) -> Any:
        """candidates (N, H, block_dim) [z-scored] -> costs (N,) float32 (lower is better)."""

    def predict_next(self, context: PlanningContext, block: Any) -> Any:
        """The latent the predictor expects after executing ``block`` (block_dim,) [z-scored] from
        the context's history (its goal is unused) -> (D,) float32: one predictor step, the first
        step of every rollout. The surprise monitor compares it with the next frame's encoding.
        A backend without one raises NotImplementedError with :meth:`predictor_missing`."""
        raise NotImplementedError(self.predictor_missing())

    def predictor_missing(self) -> str:
        """Why :meth:`predict_next` cannot run here ('' when it can)."""
        return f'the {self.name} backend has no predictor step (predict_next)'


#: registry name -> (module, class, the third-party package the module needs).
_BACKENDS: dict[str, tuple[str, str, str]] = {
    'torch': ('lewm_ros.runtime.torch_backend', 'TorchBackend', 'torch'),
    'onnxruntime': ('lewm_ros.runtime.onnx_backend', 'OnnxRuntimeBackend', 'onnxruntime'),
    'tensorrt': ('lewm_ros.runtime.tensorrt_backend', 'TensorRTBackend', 'tensorrt'),
}

BACKEND_NAMES = tuple(_BACKENDS)


#: Backends whose graphs / engines have a fixed planning batch (num_samples, horizon).
STATIC_SHAPE_BACKENDS = ('onnxruntime', 'tensorrt')


def _static_backend_args(model_dir: str | Path, options: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """The ONNX export directory for a static-shape backend and its remaining options: pops
    num_samples (default 300), horizon (5), onnx_dir, opset and cost from ``options`` and resolves
    the export (:func:`~lewm_ros.runtime.onnx_exports.resolve_export`: the model directory's
    shipped export when it fits, else one in the cache under ``options['cache_dir']`` or the
    default cache root, exported with torch when missing; without torch a missing export is an
    error naming the directories and the command that makes it)."""
    from lewm_ros.runtime.onnx_exports import resolve_export
    from lewm_ros.runtime.onnx_manifest import DEFAULT_OPSET
    options = dict(options)
    manifest = resolve_export(model_dir, options.pop('num_samples', 300), options.pop('horizon', 5),
                              options.pop('onnx_dir', None), options.pop('opset', DEFAULT_OPSET),
                              options.pop('cost', None), options.get('cache_dir'))
    return manifest.directory, options


def make_backend(name: str, model_dir: str | Path, device: Any = 'cpu',
                 **options: Any) -> InferenceBackend:
    """Build a backend by registry name ('torch', 'onnxruntime', 'tensorrt').

    The backend module is imported lazily, so a robot without TensorRT can still use ONNX
    Runtime. ``options`` go to the backend's constructor; for the static-shape backends
    num_samples, horizon, onnx_dir, opset and cost select (or make) the ONNX export the backend
    runs (default: the shipped ``<model_dir>/onnx/n{N}_h{H}`` when it fits, else an export in the
    engine cache; the model directory is never written). Raises ValueError for an unknown name and
    ImportError naming the missing package when the backend's dependency is not installed.
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
    backend_class = getattr(module, class_name)
    if name in STATIC_SHAPE_BACKENDS:
        backend_class.check_available(device, **options)
        model_dir, options = _static_backend_args(model_dir, options)
    return backend_class(model_dir, device=device, **options)

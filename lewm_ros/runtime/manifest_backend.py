"""The backends that run an ONNX export (ONNX Runtime, TensorRT): shapes and cost terms from the
export's manifest, input checks against its static shapes, one encode/costs front for both.
Arrays in and out are those of the backend's ``arrays`` (:mod:`lewm_ros.runtime.arrays`)."""
from __future__ import annotations

import abc
from pathlib import Path
from typing import Any

from lewm_ros.runtime.backend import InferenceBackend, PlanningContext, check_rollout_inputs
from lewm_ros.runtime.onnx_manifest import OnnxManifest, cost_input_names, predict_input_names


def adopt_manifest(backend, manifest: OnnxManifest) -> None:
    """Give a static-shape backend (ONNX Runtime, TensorRT) its manifest, the shapes in it and
    the cost terms baked into its graphs (``backend.cost``)."""
    backend.manifest = manifest
    for name in ('latent_dim', 'history', 'block_dim', 'image_size', 'num_samples', 'horizon'):
        setattr(backend, name, getattr(manifest, name))
    backend.cost = manifest.cost_config


def static_cost_feeds(backend: str, candidates: Any, context: PlanningContext, num_samples: int,
                      horizon: int, latent_dim: int, block_dim: int, history: int) -> tuple[int, dict[str, Any]]:
    """Check a costs() call against the static shapes of exported graphs / built engines.

    Returns (k, feeds): the number of history frames (which graph to run) and the named inputs
    of that graph. Raises ValueError naming expected vs got shapes.
    """
    expected = (num_samples, horizon, block_dim)
    if tuple(candidates.shape) != expected:
        raise ValueError(f'{backend} backend was built for candidates {expected} (num_samples, horizon, block_dim), '
                         f'got {tuple(candidates.shape)}; build it with num_samples={candidates.shape[0]}, '
                         f'horizon={candidates.shape[1] if candidates.ndim > 1 else "?"}')
    check_rollout_inputs(candidates, context.history_latents, context.history_blocks, context.goal_latent,
                         latent_dim, block_dim)
    k = context.history_latents.shape[0]
    if k > history:
        raise ValueError(f'history_latents has {k} frames; the model attends to at most {history}')
    feeds = {'candidates': candidates, 'history_latents': context.history_latents,
             'history_blocks': context.history_blocks, 'goal': context.goal_latent}
    return k, {name: feeds[name] for name in cost_input_names(k)}


class ManifestBackend(InferenceBackend):
    """Base of the backends that run an ONNX export (ONNX Runtime, TensorRT): the shapes and the
    cost terms come from the manifest; subclasses run the graphs (:meth:`_encode`, :meth:`_costs`).
    ``max_encode_batch``: the largest batch :meth:`encode` accepts (None: any)."""

    manifest: OnnxManifest
    num_samples: int
    horizon: int
    image_size: int
    max_encode_batch: int | None = None

    def _load_manifest(self, onnx_dir: str | Path) -> OnnxManifest:
        adopt_manifest(self, OnnxManifest.load(onnx_dir))
        return self.manifest

    @abc.abstractmethod
    def _encode(self, pixels: Any) -> Any:
        """Run the encoder on checked pixels (B, 3, S, S) -> latents (B, D)."""

    @abc.abstractmethod
    def _costs(self, k: int, feeds: dict[str, Any]) -> Any:
        """Run the cost graph for k history frames on its checked, named inputs -> costs (N,)."""

    @abc.abstractmethod
    def _predict(self, k: int, feeds: dict[str, Any]) -> Any:
        """Run the predictor-step graph for k history frames on its checked, named inputs -> (D,)."""

    def predictor_missing(self) -> str:
        if self.manifest.predict_path(1) is not None:
            return ''
        return (f'the ONNX export {self.manifest.directory} has no predictor-step graphs (made before they '
                'existed): export it again (lewm-train export)')

    def predict_next(self, context: PlanningContext, block: Any) -> Any:
        """block (block_dim,) [z-scored] executed after the context's last frame -> the predicted
        next latent (D,) (the export's ``predict_k{k}`` graph)."""
        problem = self.predictor_missing()
        if problem:
            raise NotImplementedError(problem)
        if tuple(block.shape) != (self.block_dim,):
            raise ValueError(f'block must be ({self.block_dim},), got {tuple(block.shape)}')
        k = context.num_frames
        if not 1 <= k <= self.history or tuple(context.history_latents.shape) != (k, self.latent_dim) \
                or tuple(context.history_blocks.shape) != (k - 1, self.block_dim):
            raise ValueError(f'{self.name} predict_next: history_latents (k, {self.latent_dim}) with 1 <= k <= '
                             f'{self.history} and history_blocks (k-1, {self.block_dim}), got '
                             f'{tuple(context.history_latents.shape)} and {tuple(context.history_blocks.shape)}')
        feeds = {'history_latents': context.history_latents, 'history_blocks': context.history_blocks, 'block': block}
        return self._predict(k, {name: feeds[name] for name in predict_input_names(k)})

    def encode(self, pixels: Any) -> Any:
        """pixels (B, 3, S, S) float32 [ImageNet-normalised] -> latents (B, D)."""
        size, most = self.image_size, self.max_encode_batch
        if pixels.ndim != 4 or tuple(pixels.shape[1:]) != (3, size, size) or pixels.shape[0] < 1 \
                or (most is not None and pixels.shape[0] > most):
            limit = '' if most is None else f' with 1 <= B <= encoder_max_batch={most}'
            raise ValueError(f'{self.name} encode expects pixels (B, 3, {size}, {size}){limit}, '
                             f'got {tuple(pixels.shape)}')
        return self._encode(pixels)

    def costs(self, candidates: Any, context: PlanningContext) -> Any:
        """candidates (N, H, block) [z-scored] -> costs (N,), with N, H the exported shape."""
        k, feeds = static_cost_feeds(self.name, candidates, context, self.num_samples, self.horizon,
                                     self.latent_dim, self.block_dim, self.history)
        return self._costs(k, feeds)

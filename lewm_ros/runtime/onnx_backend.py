"""ONNX Runtime inference backend (any CPU; CUDA through CUDAExecutionProvider).

Runs an ONNX export directory (:mod:`lewm_ros.runtime.onnx_manifest`); the factory
:func:`~lewm_ros.runtime.backend.make_backend` resolves it for a model directory (exporting into
``<model_dir>/onnx/n{N}_h{H}`` unless ``onnx_dir`` says otherwise, when missing or stale).
Inputs and outputs are torch tensors on the backend's device, bound to the sessions by
pointer (I/O binding): no numpy copies, and on CUDA no host round trips.

The cost graphs have static shapes: the backend is built for one candidate shape (N, H) and
rejects any other with an error naming both.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from lewm_ros.runtime.manifest_backend import ManifestBackend
from lewm_ros.runtime.onnx_manifest import COST_OUTPUTS, ENCODER_OUTPUTS
from lewm_ros.validation import check_int

_LOG = logging.getLogger(__name__)


def _providers_for(device: torch.device, providers: list[str] | None) -> list[str]:
    import onnxruntime as ort
    available = ort.get_available_providers()
    if providers is None:
        providers = ['CUDAExecutionProvider'] if device.type == 'cuda' else ['CPUExecutionProvider']
    missing = [p for p in providers if p not in available]
    if missing:
        raise ValueError(
            f'onnxruntime backend on {device}: execution provider(s) {missing} not available in this onnxruntime '
            f'build (available: {available}); install onnxruntime-gpu for CUDA')
    return list(providers)


def _session_options(num_threads: int | None, spinning: bool):
    """CPU session options: all graph optimisations, one inter-op thread, num_threads intra-op
    threads (None: ONNX Runtime's default); spinning: idle intra-op threads busy-wait for the next
    op (fast for a session run back to back, costly for one that alternates with other work)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.inter_op_num_threads = 1
    if num_threads is not None:
        options.intra_op_num_threads = num_threads
    if not spinning:
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    return options


class OnnxRuntimeBackend(ManifestBackend):
    """InferenceBackend on ONNX Runtime sessions.

    onnx_dir: an ONNX export directory (its manifest gives the shapes and the cost terms);
    device: 'cpu' or 'cuda[:i]' (tensors in and out live there); providers: ONNX Runtime
    execution providers (default: CUDA for a cuda device, else CPU; a provider this build lacks
    is an error, never a silent fallback); num_threads: intra-op threads (None: ONNX Runtime's
    default). :meth:`costs` takes the exported candidate shape (num_samples, horizon) only.
    """

    name = 'onnxruntime'

    @classmethod
    def check_available(cls, device: str | torch.device, providers: list[str] | None = None, **_options) -> None:
        _providers_for(torch.device(device), providers)

    def __init__(self, onnx_dir: str | Path, device: str | torch.device = 'cpu', providers: list[str] | None = None,
                 num_threads: int | None = None) -> None:
        import onnxruntime as ort

        self.device = torch.device(device)
        if num_threads is not None:
            check_int('num_threads', num_threads, 1)
        self.providers = _providers_for(self.device, providers)
        self._load_manifest(onnx_dir)

        provider_options = [{'device_id': self.device.index or 0} if p == 'CUDAExecutionProvider' else {}
                            for p in self.providers]

        def session(path: Path, spinning: bool) -> 'ort.InferenceSession':
            return ort.InferenceSession(str(path), _session_options(num_threads, spinning), providers=self.providers,
                                        provider_options=provider_options)

        # The encoder runs once per frame between planning runs: its threads must not spin on the
        # cores the cost session needs next (spinning: warm MPC solve p50 45 ms, quiet encoder: 29 ms).
        self._encoder = session(self.manifest.encoder_path, spinning=False)
        self._cost_sessions = {k: session(self.manifest.cost_path(k), spinning=True)
                               for k in range(1, self.history + 1)}
        self._ort_device = 'cuda' if self.device.type == 'cuda' else 'cpu'
        self._device_id = self.device.index or 0
        _LOG.info('onnxruntime backend: %s on %s (%s), N=%d H=%d', self.manifest.directory, self.device,
                  ','.join(self.providers), self.num_samples, self.horizon)

    # ----- I/O binding ------------------------------------------------------------------------
    def _run(self, session, inputs: dict[str, torch.Tensor], output: str, shape: tuple[int, ...]) -> torch.Tensor:
        """Bind torch tensors (float32, contiguous, on self.device) by pointer and run."""
        binding = session.io_binding()
        keep = []  # contiguous copies must outlive the run
        for name, tensor in inputs.items():
            tensor = tensor.to(self.device, torch.float32).contiguous()
            keep.append(tensor)
            binding.bind_input(name, self._ort_device, self._device_id, np.float32, tuple(tensor.shape),
                               tensor.data_ptr())
        out = torch.empty(shape, dtype=torch.float32, device=self.device)
        binding.bind_output(output, self._ort_device, self._device_id, np.float32, shape, out.data_ptr())
        if self.device.type == 'cuda':
            # ONNX Runtime runs on its own stream: torch work that produced the inputs must be done.
            torch.cuda.current_stream(self.device).synchronize()
        session.run_with_iobinding(binding)
        return out

    # ----- ManifestBackend ---------------------------------------------------------------------
    def _encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return self._run(self._encoder, {'pixels': pixels}, ENCODER_OUTPUTS[0], (pixels.shape[0], self.latent_dim))

    def _costs(self, k: int, feeds: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._run(self._cost_sessions[k], feeds, COST_OUTPUTS[0], (self.num_samples,))

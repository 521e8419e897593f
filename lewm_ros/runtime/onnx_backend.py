"""ONNX Runtime inference backend (any CPU; CUDA through CUDAExecutionProvider).

Runs an ONNX export directory (:mod:`lewm_ros.runtime.onnx_manifest`); the factory
:func:`~lewm_ros.runtime.backend.make_backend` resolves it for a model directory (exporting into
``<model_dir>/onnx/n{N}_h{H}`` unless ``onnx_dir`` says otherwise, when missing or stale).
Inputs and outputs are arrays of the backend's ``arrays`` (:mod:`lewm_ros.runtime.arrays`),
bound to the sessions by pointer (I/O binding): numpy on a CPU (no torch needed); on CUDA torch
tensors when torch is installed (no host round trips), else numpy that ONNX Runtime copies to and
from the GPU inside each run.

The cost graphs have static shapes: the backend is built for one candidate shape (N, H) and
rejects any other with an error naming both.
"""
from __future__ import annotations

import logging
from pathlib import Path

from typing import Any

import numpy as np

from lewm_ros.runtime.arrays import host_or_torch
from lewm_ros.runtime.manifest_backend import ManifestBackend
from lewm_ros.runtime.onnx_manifest import COST_OUTPUTS, ENCODER_OUTPUTS, PREDICT_OUTPUTS
from lewm_ros.validation import check_int

_LOG = logging.getLogger(__name__)


def _device_name(device: Any) -> str:
    """'cpu' or 'cuda:<i>' for a device given as a string or a ``torch.device``."""
    name = str(device)
    if name == 'cpu' or name == 'cuda' or (name.startswith('cuda:') and name[5:].isdigit()):
        return 'cuda:0' if name == 'cuda' else name
    raise ValueError(f"onnxruntime backend: device must be 'cpu' or 'cuda[:i]', got {name!r}")


def _providers_for(device: str, providers: list[str] | None) -> list[str]:
    import onnxruntime as ort
    available = ort.get_available_providers()
    if providers is None:
        providers = ['CUDAExecutionProvider'] if device.startswith('cuda') else ['CPUExecutionProvider']
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
    device: 'cpu' or 'cuda[:i]' (its arrays: :func:`~lewm_ros.runtime.arrays.host_or_torch`); providers: ONNX Runtime
    execution providers (default: CUDA for a cuda device, else CPU; a provider this build lacks
    is an error, never a silent fallback); num_threads: intra-op threads (None: ONNX Runtime's
    default). :meth:`costs` takes the exported candidate shape (num_samples, horizon) only.
    """

    name = 'onnxruntime'

    @classmethod
    def check_available(cls, device: Any, providers: list[str] | None = None, **_options) -> None:
        _providers_for(_device_name(device), providers)

    def __init__(self, onnx_dir: str | Path, device: Any = 'cpu', providers: list[str] | None = None,
                 num_threads: int | None = None) -> None:
        import onnxruntime as ort

        self.device = _device_name(device)
        self.arrays = host_or_torch(self.device)
        if num_threads is not None:
            check_int('num_threads', num_threads, 1)
        self.providers = _providers_for(self.device, providers)
        self._load_manifest(onnx_dir)

        device_id = int(self.device.partition(':')[2] or 0)
        provider_options = [{'device_id': device_id} if p == 'CUDAExecutionProvider' else {} for p in self.providers]

        def session(path: Path, spinning: bool) -> 'ort.InferenceSession':
            return ort.InferenceSession(str(path), _session_options(num_threads, spinning), providers=self.providers,
                                        provider_options=provider_options)

        # The encoder runs once per frame between planning runs: its threads must not spin on the
        # cores the cost session needs next (spinning: warm MPC solve p50 45 ms, quiet encoder: 29 ms).
        self._encoder = session(self.manifest.encoder_path, spinning=False)
        self._cost_sessions = {k: session(self.manifest.cost_path(k), spinning=True)
                               for k in range(1, self.history + 1)}
        self._predict_sessions = {k: session(self.manifest.predict_path(k), spinning=False)
                                  for k in range(1, self.history + 1) if self.manifest.predict_path(k) is not None}
        # Where the bound arrays live (ONNX Runtime copies host arrays to a CUDA session's device).
        self._ort_device, self._device_id = ('cuda', device_id) if self.arrays.on_gpu else ('cpu', 0)
        _LOG.info('onnxruntime backend: %s on %s (%s, %s arrays), N=%d H=%d', self.manifest.directory, self.device,
                  ','.join(self.providers), self.arrays.library, self.num_samples, self.horizon)

    # ----- I/O binding ------------------------------------------------------------------------
    def _run(self, session, inputs: dict[str, Any], output: str, shape: tuple[int, ...]) -> Any:
        """Bind the arrays (float32, contiguous, in self.arrays) and a fresh output by pointer and run."""
        arrays = self.arrays
        binding = session.io_binding()
        keep = []  # contiguous copies must outlive the run
        for name, array in inputs.items():
            array = arrays.contiguous(array)
            keep.append(array)
            binding.bind_input(name, self._ort_device, self._device_id, np.float32, tuple(array.shape),
                               arrays.pointer(array))
        out = arrays.empty(shape)
        binding.bind_output(output, self._ort_device, self._device_id, np.float32, shape, arrays.pointer(out))
        arrays.synchronize()  # ONNX Runtime runs on its own stream: the inputs must be ready
        session.run_with_iobinding(binding)
        return out

    # ----- ManifestBackend ---------------------------------------------------------------------
    def _encode(self, pixels: Any) -> Any:
        return self._run(self._encoder, {'pixels': pixels}, ENCODER_OUTPUTS[0], (pixels.shape[0], self.latent_dim))

    def _costs(self, k: int, feeds: dict[str, Any]) -> Any:
        return self._run(self._cost_sessions[k], feeds, COST_OUTPUTS[0], (self.num_samples,))

    def _predict(self, k: int, feeds: dict[str, Any]) -> Any:
        return self._run(self._predict_sessions[k], feeds, PREDICT_OUTPUTS[0], (self.latent_dim,))

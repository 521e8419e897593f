"""TensorRT inference backend (NVIDIA GPUs, Jetson included), TensorRT 10.x and 11.x.

Engines are built from a verified ONNX export directory (:mod:`lewm_ros.runtime.onnx_manifest`;
the factory :func:`~lewm_ros.runtime.backend.make_backend` resolves it for a model) as strongly
typed networks (:mod:`lewm_ros.runtime.tensorrt_build`): 'fp16' from the export's FP16 variant
(:mod:`lewm_ros.runtime.fp16_export`, derived into the engine cache), 'fp32' from the export
itself. They are cached on disk by :class:`~lewm_ros.runtime.engine_cache.EngineCache` (keyed by
GPU name, compute capability, TensorRT version, precision and the sha256 of the ONNX built
from) and run with named I/O tensors: every input and output is a
torch CUDA tensor whose pointer is handed to ``set_tensor_address``, and ``execute_async_v3``
is enqueued on torch's current CUDA stream, so a plan never leaves the GPU and torch work
before and after is ordered without a host synchronisation.

The cost graphs have static shapes (no optimisation profile); the encoder has a dynamic batch
and is built with one profile for batch 1..``encoder_max_batch``.

``tensorrt`` is imported lazily: importing this module works everywhere; constructing the
backend without TensorRT 10 / 11 or without a CUDA GPU raises an error naming what is missing
(an unsupported version is named with the supported majors).
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import torch

from lewm_ros.runtime.engine_cache import PRECISIONS, EngineCache, EngineKey
from lewm_ros.runtime.manifest_backend import ManifestBackend, adopt_manifest
from lewm_ros.runtime.onnx_manifest import COST_OUTPUTS, ENCODER_FILE, ENCODER_OUTPUTS, OnnxManifest, cost_file
from lewm_ros.runtime.tensorrt_build import build_engine, import_tensorrt, trt_logger
from lewm_ros.validation import check_choice, check_int

_LOG = logging.getLogger(__name__)

def require_cuda(device: str | torch.device) -> torch.device:
    """A concrete CUDA device (index filled in), or ValueError naming the missing GPU."""
    device = torch.device(device)
    if device.type != 'cuda':
        raise ValueError(f"the tensorrt backend runs on an NVIDIA GPU: device must be 'cuda[:i]', got {str(device)!r}")
    if not torch.cuda.is_available():
        raise ValueError('the tensorrt backend needs an NVIDIA GPU visible to torch, but torch.cuda.is_available() '
                         'is False (no GPU, no driver, or a CPU-only torch build)')
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index >= torch.cuda.device_count():
        raise ValueError(f'device cuda:{index} requested but only {torch.cuda.device_count()} GPU(s) are visible')
    return torch.device('cuda', index)


def engine_key(device: torch.device, tensorrt_version: str, onnx_sha256: str, precision: str,
               max_batch: int = 0) -> EngineKey:
    """The cache key of an engine for the ONNX file with ``onnx_sha256`` on ``device``."""
    return EngineKey(gpu_name=torch.cuda.get_device_name(device),
                     compute_capability=tuple(torch.cuda.get_device_capability(device)),
                     tensorrt_version=str(tensorrt_version), onnx_sha256=onnx_sha256, precision=precision,
                     max_batch=max_batch)


class TrtEngine:
    """One deserialised engine + execution context; I/O as torch CUDA tensors by pointer."""

    def __init__(self, trt: Any, runtime: Any, data: bytes, device: torch.device, label: str) -> None:
        self.device = device
        self.label = label
        self.engine = runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise RuntimeError(f'TensorRT could not deserialise the engine for {label}')
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise RuntimeError(f'TensorRT could not create an execution context for {label}')
        to_torch = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32,
                    trt.int64: torch.int64, trt.bool: torch.bool}
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.dtypes: dict[str, torch.dtype] = {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self.inputs if is_input else self.outputs).append(name)
            self.dtypes[name] = to_torch[self.engine.get_tensor_dtype(name)]
        self.dynamic = {name for name in self.inputs if any(d < 0 for d in self.engine.get_tensor_shape(name))}
        self._lock = threading.Lock()  # one execution context: one enqueue at a time

    def __call__(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Enqueue on torch's current stream; returns fresh output tensors (valid in stream order)."""
        missing = sorted(set(self.inputs) - set(inputs))
        if missing:
            raise ValueError(f'{self.label}: missing input tensor(s) {missing}')
        with self._lock, torch.cuda.device(self.device):
            stream = torch.cuda.current_stream(self.device)
            keep = []
            for name in self.inputs:
                tensor = inputs[name].to(self.device, self.dtypes[name]).contiguous()
                keep.append(tensor)
                if name in self.dynamic:
                    self.context.set_input_shape(name, tuple(tensor.shape))
                self.context.set_tensor_address(name, tensor.data_ptr())
            outputs = {}
            for name in self.outputs:
                shape = tuple(self.context.get_tensor_shape(name))
                outputs[name] = torch.empty(shape, dtype=self.dtypes[name], device=self.device)
                self.context.set_tensor_address(name, outputs[name].data_ptr())
            if not self.context.execute_async_v3(stream.cuda_stream):
                raise RuntimeError(f'TensorRT execute_async_v3 failed for {self.label}')
            for tensor in keep:  # the caching allocator must not reuse them before the kernels ran
                tensor.record_stream(stream)
        return outputs


class EngineBuilder:
    """Loads engines from the cache or builds (and caches) them; a corrupt or mismatched cached
    engine is rebuilt with a log line."""

    def __init__(self, device: str | torch.device = 'cuda', cache_dir: str | Path | None = None,
                 precision: str = 'fp16', workspace_bytes: int | None = None) -> None:
        check_choice('precision', precision, PRECISIONS)
        self.trt = import_tensorrt()
        self.device = require_cuda(device)
        self.cache = EngineCache(cache_dir)
        self.precision = precision
        self.workspace_bytes = workspace_bytes
        self.runtime = self.trt.Runtime(trt_logger(self.trt))

    def source(self, manifest: OnnxManifest) -> OnnxManifest:
        """The export the engines are built from: for 'fp16' the FP16 variant of an fp32 export
        (converted and verified into the cache on first use), for 'fp32' the export itself."""
        if self.precision == 'fp16' and manifest.precision == 'fp32':
            from lewm_ros.runtime.fp16_export import ensure_fp16
            return ensure_fp16(manifest, self.cache.root)
        if manifest.precision != self.precision:
            raise ValueError(f'{manifest.directory} holds {manifest.precision} graphs; precision={self.precision!r} '
                             'needs the fp32 export')
        return manifest

    def key(self, onnx_sha256: str, max_batch: int = 0) -> EngineKey:
        return engine_key(self.device, self.trt.__version__, onnx_sha256, self.precision, max_batch)

    def engine_bytes(self, stem: str, onnx_path: Path, onnx_sha256: str, max_batch: int = 0) -> bytes:
        """Cached engine bytes for the ONNX file, building and caching them when absent/invalid."""
        key = self.key(onnx_sha256, max_batch)
        data = self.cache.load(stem, key)
        if data is None:
            with torch.cuda.device(self.device):
                data = build_engine(self.trt, onnx_path, self.precision, max_batch, self.workspace_bytes,
                                    label=f'{stem} on {key.gpu_name}')
            self.cache.store(stem, key, data)
        return data

    def load(self, stem: str, onnx_path: Path, onnx_sha256: str, max_batch: int = 0) -> TrtEngine:
        """A ready engine; a cached engine TensorRT refuses is discarded and rebuilt once."""
        data = self.engine_bytes(stem, onnx_path, onnx_sha256, max_batch)
        with torch.cuda.device(self.device):
            try:
                return TrtEngine(self.trt, self.runtime, data, self.device, stem)
            except RuntimeError as exc:
                self.cache.invalidate(stem, self.key(onnx_sha256, max_batch), str(exc))
            data = self.engine_bytes(stem, onnx_path, onnx_sha256, max_batch)
            return TrtEngine(self.trt, self.runtime, data, self.device, stem)


def build_engines(manifest: OnnxManifest, builder: EngineBuilder, encoder_max_batch: int = 2) -> dict[str, TrtEngine]:
    """Engines for every file of an export (``builder.source(export)``): 'encoder' and
    'rollout_cost_k{k}' -> TrtEngine."""
    engines = {'encoder': builder.load('encoder', manifest.encoder_path, manifest.files[ENCODER_FILE]['sha256'],
                                       encoder_max_batch)}
    for k in range(1, manifest.history + 1):
        name = cost_file(k)
        engines[f'rollout_cost_k{k}'] = builder.load(Path(name).stem, manifest.cost_path(k),
                                                     manifest.files[name]['sha256'])
    return engines


class TensorRTBackend(ManifestBackend):
    """InferenceBackend on TensorRT engines (CUDA only).

    onnx_dir: an ONNX export directory (its manifest gives the shapes and the cost terms);
    device: 'cuda[:i]'; cache_dir: engine cache (default ``$LEWM_ENGINE_CACHE`` or
    ``~/.cache/lewm_ros/engines``; it also holds the FP16 variant of the export);
    precision: 'fp16' (default; FP16 compute, FP32 normalisations and reductions) or 'fp32'; encoder_max_batch:
    largest encode batch (current + goal = 2); workspace_mb: builder scratch memory cap [MiB].
    :meth:`costs` takes the exported candidate shape (num_samples, horizon) only.
    """

    name = 'tensorrt'

    @classmethod
    def check_available(cls, device: str | torch.device, **_options) -> None:
        import_tensorrt()
        require_cuda(device)

    def __init__(self, onnx_dir: str | Path, device: str | torch.device = 'cuda', *,
                 cache_dir: str | Path | None = None, precision: str = 'fp16', encoder_max_batch: int = 2,
                 workspace_mb: int | None = None) -> None:
        check_int('encoder_max_batch', encoder_max_batch, 1)
        builder = EngineBuilder(device, cache_dir, precision,
                                None if workspace_mb is None else int(workspace_mb) << 20)
        self.device = builder.device
        self.max_encode_batch = self.encoder_max_batch = encoder_max_batch
        manifest = builder.source(OnnxManifest.load(onnx_dir))
        adopt_manifest(self, manifest)
        self._engines = build_engines(manifest, builder, encoder_max_batch)
        _LOG.info('tensorrt backend: %s engines on %s (N=%d H=%d)', precision, torch.cuda.get_device_name(self.device),
                  self.num_samples, self.horizon)

    def _encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return self._engines['encoder']({'pixels': pixels})[ENCODER_OUTPUTS[0]]

    def _costs(self, k: int, feeds: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._engines[f'rollout_cost_k{k}'](feeds)[COST_OUTPUTS[0]]

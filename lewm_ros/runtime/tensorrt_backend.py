"""TensorRT inference backend (NVIDIA GPUs, Jetson included), TensorRT 10.x and 11.x.

Engines are built from a verified ONNX export directory (:mod:`lewm_ros.runtime.onnx_manifest`;
the factory :func:`~lewm_ros.runtime.backend.make_backend` resolves it for a model) as strongly
typed networks (:mod:`lewm_ros.runtime.tensorrt_build`): 'fp16' from the export's FP16 variant
(:mod:`lewm_ros.runtime.fp16_export`, derived into the engine cache), 'fp32' from the export
itself. They are cached on disk by :class:`~lewm_ros.runtime.engine_cache.EngineCache` (keyed by
GPU name, compute capability, TensorRT version, precision and the sha256 of the ONNX built
from) and run with named I/O tensors (``set_tensor_address`` + ``execute_async_v3``) through one
of two GPU front ends (:mod:`lewm_ros.runtime.tensorrt_io`): torch CUDA tensors on torch's
current stream when torch is installed (a plan never leaves the GPU), else numpy arrays staged
through pycuda device buffers (no torch on the robot).

The cost graphs have static shapes (no optimisation profile); the encoder has a dynamic batch
and is built with one profile for batch 1..``encoder_max_batch``.

``tensorrt``, ``torch`` and ``pycuda`` are imported lazily: importing this module works
everywhere; constructing the backend without TensorRT 10 / 11, without a CUDA GPU or without a
way to reach it (torch or pycuda) raises an error naming what is missing (an unsupported version
is named with the supported majors).
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from lewm_ros.runtime.engine_cache import PRECISIONS, EngineCache, EngineKey
from lewm_ros.runtime.manifest_backend import ManifestBackend, adopt_manifest
from lewm_ros.runtime.onnx_manifest import (COST_OUTPUTS, ENCODER_FILE, ENCODER_OUTPUTS, PREDICT_OUTPUTS, OnnxManifest,
                                            cost_file, predict_file)
from lewm_ros.runtime.tensorrt_build import build_engine, import_tensorrt, trt_logger
from lewm_ros.runtime.tensorrt_io import PycudaGpu, TorchGpu, open_gpu, tensor_specs
from lewm_ros.validation import check_choice, check_int

_LOG = logging.getLogger(__name__)


def engine_key(gpu: TorchGpu | PycudaGpu, tensorrt_version: str, onnx_sha256: str, precision: str,
               max_batch: int = 0) -> EngineKey:
    """The cache key of an engine for the ONNX file with ``onnx_sha256`` on ``gpu``."""
    return EngineKey(gpu_name=gpu.name, compute_capability=gpu.compute_capability,
                     tensorrt_version=str(tensorrt_version), onnx_sha256=onnx_sha256, precision=precision,
                     max_batch=max_batch)


class TrtEngine:
    """One deserialised engine + execution context, its I/O tensors (:class:`~lewm_ros.runtime.
    tensorrt_io.TensorSpec`) and their bindings on ``gpu`` (buffers sized for ``max_batch`` where
    the batch is dynamic)."""

    def __init__(self, trt: Any, runtime: Any, data: bytes, gpu: TorchGpu | PycudaGpu, label: str,
                 max_batch: int = 0) -> None:
        self.gpu = gpu
        self.label = label
        self.engine = runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise RuntimeError(f'TensorRT could not deserialise the engine for {label}')
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise RuntimeError(f'TensorRT could not create an execution context for {label}')
        self.specs = tensor_specs(trt, self.engine)
        self.inputs = [s.name for s in self.specs if s.is_input]
        self.dynamic = {s.name for s in self.specs if s.is_input and any(d < 0 for d in s.shape)}
        self.bindings = gpu.bind(self.specs, max_batch)
        self._lock = threading.Lock()  # one execution context: one enqueue at a time

    def __call__(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Run on the named inputs (arrays of ``gpu.arrays``) -> the named outputs (torch: fresh
        tensors valid in stream order; numpy: host arrays, the run finished)."""
        missing = sorted(set(self.inputs) - set(inputs))
        if missing:
            raise ValueError(f'{self.label}: missing input tensor(s) {missing}')
        with self._lock, self.gpu.activate():
            return self.bindings.run(self.context, self.specs, self.dynamic, inputs, self.label)


class EngineBuilder:
    """Loads engines from the cache or builds (and caches) them; a corrupt or mismatched cached
    engine is rebuilt with a log line."""

    def __init__(self, device: Any = 'cuda', cache_dir: str | Path | None = None, precision: str = 'fp16',
                 workspace_bytes: int | None = None, arrays: str | None = None) -> None:
        check_choice('precision', precision, PRECISIONS)
        self.trt = import_tensorrt()
        self.gpu = open_gpu(device, arrays)
        self.device = self.gpu.device
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
        return engine_key(self.gpu, self.trt.__version__, onnx_sha256, self.precision, max_batch)

    def engine_bytes(self, stem: str, onnx_path: Path, onnx_sha256: str, max_batch: int = 0) -> bytes:
        """Cached engine bytes for the ONNX file, building and caching them when absent/invalid."""
        key = self.key(onnx_sha256, max_batch)
        data = self.cache.load(stem, key)
        if data is None:
            with self.gpu.activate():
                data = build_engine(self.trt, onnx_path, self.precision, max_batch, self.workspace_bytes,
                                    label=f'{stem} on {key.gpu_name}')
            self.cache.store(stem, key, data)
        return data

    def load(self, stem: str, onnx_path: Path, onnx_sha256: str, max_batch: int = 0) -> TrtEngine:
        """A ready engine; a cached engine TensorRT refuses is discarded and rebuilt once."""
        data = self.engine_bytes(stem, onnx_path, onnx_sha256, max_batch)
        with self.gpu.activate():
            try:
                return TrtEngine(self.trt, self.runtime, data, self.gpu, stem, max_batch)
            except RuntimeError as exc:
                self.cache.invalidate(stem, self.key(onnx_sha256, max_batch), str(exc))
            data = self.engine_bytes(stem, onnx_path, onnx_sha256, max_batch)
            return TrtEngine(self.trt, self.runtime, data, self.gpu, stem, max_batch)


def build_engines(manifest: OnnxManifest, builder: EngineBuilder, encoder_max_batch: int = 2) -> dict[str, TrtEngine]:
    """Engines for every file of an export (``builder.source(export)``): 'encoder',
    'rollout_cost_k{k}' and, when the export has them, 'predict_k{k}' -> TrtEngine."""
    engines = {'encoder': builder.load('encoder', manifest.encoder_path, manifest.files[ENCODER_FILE]['sha256'],
                                       encoder_max_batch)}
    for k in range(1, manifest.history + 1):
        name = cost_file(k)
        engines[f'rollout_cost_k{k}'] = builder.load(Path(name).stem, manifest.cost_path(k),
                                                     manifest.files[name]['sha256'])
        if manifest.predict_path(k) is not None:
            engines[f'predict_k{k}'] = builder.load(f'predict_k{k}', manifest.predict_path(k),
                                                    manifest.files[predict_file(k)]['sha256'])
    return engines


class TensorRTBackend(ManifestBackend):
    """InferenceBackend on TensorRT engines (CUDA only).

    onnx_dir: an ONNX export directory (its manifest gives the shapes and the cost terms);
    device: 'cuda[:i]'; cache_dir: engine cache (default ``$LEWM_ENGINE_CACHE`` or
    ``~/.cache/lewm_ros/engines``; it also holds the FP16 variant of the export);
    precision: 'fp16' (default; FP16 compute, FP32 normalisations and reductions) or 'fp32'; encoder_max_batch:
    largest encode batch (current + goal = 2); workspace_mb: builder scratch memory cap [MiB];
    arrays: the arrays in and out, 'torch' (CUDA tensors) or 'numpy' (host arrays through pycuda),
    None: torch when installed, else numpy (:func:`~lewm_ros.runtime.tensorrt_io.open_gpu`).
    :meth:`costs` takes the exported candidate shape (num_samples, horizon) only.
    """

    name = 'tensorrt'

    @classmethod
    def check_available(cls, device: Any, arrays: str | None = None, **_options) -> None:
        import_tensorrt()
        open_gpu(device, arrays)

    def __init__(self, onnx_dir: str | Path, device: Any = 'cuda', *,
                 cache_dir: str | Path | None = None, precision: str = 'fp16', encoder_max_batch: int = 2,
                 workspace_mb: int | None = None, arrays: str | None = None) -> None:
        check_int('encoder_max_batch', encoder_max_batch, 1)
        builder = EngineBuilder(device, cache_dir, precision,
                                None if workspace_mb is None else int(workspace_mb) << 20, arrays)
        self.device = builder.device
        self.arrays = builder.gpu.arrays
        self.max_encode_batch = self.encoder_max_batch = encoder_max_batch
        manifest = builder.source(OnnxManifest.load(onnx_dir))
        adopt_manifest(self, manifest)
        self._engines = build_engines(manifest, builder, encoder_max_batch)
        _LOG.info('tensorrt backend: %s engines on %s (%s arrays, N=%d H=%d)', precision, builder.gpu.name,
                  self.arrays.library, self.num_samples, self.horizon)

    def _encode(self, pixels: Any) -> Any:
        return self._engines['encoder']({'pixels': pixels})[ENCODER_OUTPUTS[0]]

    def _costs(self, k: int, feeds: dict[str, Any]) -> Any:
        return self._engines[f'rollout_cost_k{k}'](feeds)[COST_OUTPUTS[0]]

    def _predict(self, k: int, feeds: dict[str, Any]) -> Any:
        return self._engines[f'predict_k{k}'](feeds)[PREDICT_OUTPUTS[0]]

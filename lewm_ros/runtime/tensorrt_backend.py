"""TensorRT inference backend (NVIDIA GPUs, Jetson included), TensorRT 10+ Python API.

Engines are built from a verified ONNX export directory (:mod:`lewm_ros.runtime.onnx_manifest`;
the factory :func:`~lewm_ros.runtime.backend.make_backend` resolves it for a model) with FP16
enabled (LayerNorm and reductions pinned to FP32), cached on disk by
:class:`~lewm_ros.runtime.engine_cache.EngineCache` (keyed by GPU name, compute capability,
TensorRT version and ONNX sha256) and run with named I/O tensors: every input and output is a
torch CUDA tensor whose pointer is handed to ``set_tensor_address``, and ``execute_async_v3``
is enqueued on torch's current CUDA stream, so a plan never leaves the GPU and torch work
before and after is ordered without a host synchronisation.

The cost graphs have static shapes (no optimisation profile); the encoder has a dynamic batch
and is built with one profile for batch 1..``encoder_max_batch``.

``tensorrt`` is imported lazily: importing this module works everywhere; constructing the
backend without TensorRT >= 10 or without a CUDA GPU raises an error naming what is missing.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import torch

from lewm_ros.runtime.engine_cache import PRECISIONS, EngineCache, EngineKey
from lewm_ros.runtime.onnx_manifest import COST_OUTPUTS, ENCODER_FILE, ENCODER_OUTPUTS, ManifestBackend, OnnxManifest, \
    cost_file
from lewm_ros.validation import check_choice, check_int

_LOG = logging.getLogger(__name__)

MIN_TENSORRT_MAJOR = 10


def import_tensorrt() -> Any:
    """The ``tensorrt`` module (>= 10), or ImportError naming the missing package."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise ImportError("the tensorrt backend needs NVIDIA TensorRT >= 10 with its Python package 'tensorrt' "
                          "(pip install tensorrt on x86_64, JetPack 6+ on a Jetson); it is not installed here. "
                          "Use the 'onnxruntime' or 'torch' backend instead.") from exc
    major = int(str(trt.__version__).split('.')[0])
    if major < MIN_TENSORRT_MAJOR:
        raise ImportError(f'the tensorrt backend needs TensorRT >= {MIN_TENSORRT_MAJOR}, found {trt.__version__} '
                          '(named-tensor API: set_tensor_address / execute_async_v3)')
    return trt


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


_TRT_LOGGER: Any = None


def _trt_logger(trt: Any) -> Any:
    """A ``trt.ILogger`` forwarding TensorRT messages to Python logging (one per process)."""
    global _TRT_LOGGER
    if _TRT_LOGGER is None:
        class Logger(trt.ILogger):
            def __init__(self) -> None:
                trt.ILogger.__init__(self)

            def log(self, severity: Any, msg: str) -> None:
                if severity in (trt.ILogger.Severity.INTERNAL_ERROR, trt.ILogger.Severity.ERROR):
                    _LOG.error('TensorRT: %s', msg)
                elif severity == trt.ILogger.Severity.WARNING:
                    _LOG.warning('TensorRT: %s', msg)
                else:
                    _LOG.debug('TensorRT: %s', msg)

        _TRT_LOGGER = Logger()
    return _TRT_LOGGER


def build_engine(trt: Any, onnx_path: Path, precision: str = 'fp16', max_batch: int = 0,
                 workspace_bytes: int | None = None) -> bytes:
    """Serialised engine built from an ONNX file.

    precision 'fp16' sets the FP16 builder flag and pins LayerNorm and reductions to FP32
    (PREFER_PRECISION_CONSTRAINTS); max_batch > 0 adds one optimisation profile with batch
    1..max_batch (opt 1) for inputs with a dynamic leading axis; workspace_bytes caps the
    builder's scratch memory (None: TensorRT's default, the device memory).
    """
    logger = _trt_logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f'TensorRT could not parse {onnx_path}: {errors}')
    config = builder.create_builder_config()
    if workspace_bytes is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    if precision == 'fp16':
        config.set_flag(trt.BuilderFlag.FP16)
        config.set_flag(trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS)
        for i in range(network.num_layers):
            layer = network.get_layer(i)
            if layer.type in (trt.LayerType.NORMALIZATION, trt.LayerType.REDUCE):
                layer.precision = trt.float32
                for j in range(layer.num_outputs):
                    layer.set_output_type(j, trt.float32)
    elif precision != 'fp32':
        raise ValueError(f"precision must be 'fp16' or 'fp32', got {precision!r}")
    dynamic = [network.get_input(i) for i in range(network.num_inputs)
               if any(d < 0 for d in network.get_input(i).shape)]
    if dynamic:
        if max_batch < 1:
            raise ValueError(f'{onnx_path} has dynamic inputs {[t.name for t in dynamic]}: max_batch must be >= 1')
        profile = builder.create_optimization_profile()
        for tensor in dynamic:
            dims = list(tensor.shape)

            def at(batch: int, dims: list[int] = dims) -> tuple[int, ...]:
                return tuple(batch if d < 0 else d for d in dims)

            profile.set_shape(tensor.name, at(1), at(1), at(max_batch))
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f'TensorRT failed to build an engine from {onnx_path} (see the TensorRT log above)')
    return bytes(serialized)


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
        self.runtime = self.trt.Runtime(_trt_logger(self.trt))

    def key(self, onnx_sha256: str, max_batch: int = 0) -> EngineKey:
        return engine_key(self.device, self.trt.__version__, onnx_sha256, self.precision, max_batch)

    def engine_bytes(self, stem: str, onnx_path: Path, onnx_sha256: str, max_batch: int = 0) -> bytes:
        """Cached engine bytes for the ONNX file, building and caching them when absent/invalid."""
        key = self.key(onnx_sha256, max_batch)
        data = self.cache.load(stem, key)
        if data is None:
            with torch.cuda.device(self.device):
                _LOG.info('building TensorRT %s engine for %s on %s', self.precision, onnx_path, key.gpu_name)
                data = build_engine(self.trt, onnx_path, self.precision, max_batch, self.workspace_bytes)
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
    """Engines for every file of an export: 'encoder' and 'rollout_cost_k{k}' -> TrtEngine."""
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
    ``~/.cache/lewm_ros/engines``); precision: 'fp16' (default) or 'fp32'; encoder_max_batch:
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
        self._engines = build_engines(self._load_manifest(onnx_dir), builder, encoder_max_batch)
        _LOG.info('tensorrt backend: %s engines on %s (N=%d H=%d)', precision, torch.cuda.get_device_name(self.device),
                  self.num_samples, self.horizon)

    def _encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return self._engines['encoder']({'pixels': pixels})[ENCODER_OUTPUTS[0]]

    def _costs(self, k: int, feeds: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._engines[f'rollout_cost_k{k}'](feeds)[COST_OUTPUTS[0]]

"""TensorRT 10 / 11: the version gate and the engine build (one path for both majors).

TensorRT 11 removed weakly typed networks (``BuilderFlag.FP16``, per-layer precision and
precision constraints): a network is strongly typed and every tensor has the type its ONNX
file gives it. Both supported majors therefore build the same way, a strongly typed network
(``NetworkDefinitionCreationFlag.STRONGLY_TYPED``; TensorRT 11 accepts and ignores the flag,
strong typing being its only mode) from an ONNX file whose types say the precision:

- 'fp16': the FP16 variant of the export (:mod:`lewm_ros.runtime.fp16_export`): FP16 compute,
  normalisations and reductions in FP32, float32 inputs and outputs;
- 'fp32': the export itself, with TF32 disabled so FP32 means FP32.

TensorRT 10 could still take the old builder-flag path, but one recipe for both majors keeps the
numerics identical across a JetPack 6 robot (10.x) and an x86 workstation (11.x), puts the
precision in the file the engine cache key hashes, and leaves one code path to test.

``tensorrt`` itself is never imported here: callers pass the module (see :func:`import_tensorrt`).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from lewm_ros.runtime.build_progress import DEFAULT_INTERVAL_S, BuildProgress, progress_monitor

_LOG = logging.getLogger(__name__)

#: TensorRT majors this backend builds for (JetPack 6 ships 10.x; ``pip install tensorrt`` gives 11.x).
SUPPORTED_TENSORRT_MAJORS = (10, 11)


def tensorrt_major(version: str) -> int:
    """The major of a supported TensorRT version string ('10.3.0', '11.4.0.106'); ImportError
    naming the version found and the supported majors otherwise."""
    match = re.match(r'(\d+)(\.|$)', str(version))
    major = int(match.group(1)) if match else None
    if major not in SUPPORTED_TENSORRT_MAJORS:
        supported = ' and '.join(f'{m}.x' for m in SUPPORTED_TENSORRT_MAJORS)
        raise ImportError(f'the tensorrt backend supports TensorRT {supported}; found TensorRT {version!r}. '
                          "Install a supported release (JetPack 6 ships 10.x; 'pip install tensorrt' gives 11.x) "
                          "or use the 'onnxruntime' or 'torch' backend.")
    return major


def import_tensorrt() -> Any:
    """The ``tensorrt`` module of a supported major (:data:`SUPPORTED_TENSORRT_MAJORS`), or
    ImportError naming the missing package or the unsupported version."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise ImportError("the tensorrt backend needs NVIDIA TensorRT 10 or 11 with its Python package 'tensorrt' "
                          "(pip install tensorrt on x86_64, JetPack 6 on a Jetson); it is not installed here. "
                          "Use the 'onnxruntime' or 'torch' backend instead.") from exc
    tensorrt_major(getattr(trt, '__version__', 'unknown'))
    return trt


_TRT_LOGGER: Any = None


def trt_logger(trt: Any) -> Any:
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


def network_flags(trt: Any) -> int:
    """``create_network`` flags: strongly typed (required by 11, chosen on 10)."""
    return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)


def _add_batch_profile(trt: Any, builder: Any, network: Any, config: Any, onnx_path: Path, max_batch: int) -> None:
    """One optimisation profile, batch 1..max_batch (opt 1), for inputs with a dynamic leading axis."""
    dynamic = [network.get_input(i) for i in range(network.num_inputs)
               if any(d < 0 for d in network.get_input(i).shape)]
    if not dynamic:
        return
    if max_batch < 1:
        raise ValueError(f'{onnx_path} has dynamic inputs {[t.name for t in dynamic]}: max_batch must be >= 1')
    profile = builder.create_optimization_profile()
    for tensor in dynamic:
        dims = list(tensor.shape)

        def at(batch: int, dims: list[int] = dims) -> tuple[int, ...]:
            return tuple(batch if d < 0 else d for d in dims)

        profile.set_shape(tensor.name, at(1), at(1), at(max_batch))
    config.add_optimization_profile(profile)


def build_engine(trt: Any, onnx_path: Path, precision: str, max_batch: int = 0, workspace_bytes: int | None = None,
                 label: str = '', progress_interval_s: float = DEFAULT_INTERVAL_S) -> bytes:
    """Serialised engine of a strongly typed network parsed from ``onnx_path``.

    precision: what the file computes in ('fp16' for an FP16 variant, 'fp32' for the export;
    for the log and TF32: the types come from the file); max_batch > 0: one optimisation profile
    with batch 1..max_batch for inputs with a dynamic leading axis; workspace_bytes: cap of the
    builder's scratch memory (None: TensorRT's default, the device memory); label: the graph's
    name in the progress log (:class:`~lewm_ros.runtime.build_progress.BuildProgress`).
    """
    if precision not in ('fp16', 'fp32'):
        raise ValueError(f"precision={precision!r} is out of range; allowed: one of ['fp16', 'fp32']")
    tensorrt_major(trt.__version__)
    logger = trt_logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f'TensorRT could not parse {onnx_path}: {errors}')
    config = builder.create_builder_config()
    if workspace_bytes is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    if precision == 'fp32':
        config.clear_flag(trt.BuilderFlag.TF32)
    _add_batch_profile(trt, builder, network, config, onnx_path, max_batch)
    with BuildProgress(f'{label or Path(onnx_path).stem} ({onnx_path})', precision, progress_interval_s) as progress:
        monitor = progress_monitor(trt, progress)
        config.progress_monitor = monitor
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise RuntimeError(f'TensorRT failed to build an engine from {onnx_path} (see the TensorRT log above)')
    return bytes(serialized)

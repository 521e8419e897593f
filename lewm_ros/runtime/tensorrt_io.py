"""How TensorRT engines reach the GPU: through torch, or through pycuda without torch.

An engine reads and writes device memory whose addresses are handed to ``set_tensor_address``
and runs on a CUDA stream (``execute_async_v3``). Two ways to provide both, one interface
(:func:`open_gpu` picks one):

- :class:`TorchGpu` (arrays: torch CUDA tensors): inputs are bound by pointer, outputs are fresh
  torch tensors, the engine is enqueued on torch's current stream; a plan never leaves the GPU.
- :class:`PycudaGpu` (arrays: numpy, no torch): one device buffer and one page-locked host buffer
  per engine tensor, sized once from the engine's shapes (the export's static shapes; a dynamic
  batch axis at its largest batch), one stream; each call copies its inputs in, runs and copies
  the outputs back, then waits for the stream.

``pycuda`` and ``torch`` are imported lazily: this module imports on any machine.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from lewm_ros.runtime.arrays import ArraySpace, array_space, torch_installed
from lewm_ros.validation import check_choice

#: Array libraries an engine's I/O can use (``TensorRTBackend(arrays=...)``).
GPU_IO = ('torch', 'numpy')


def cuda_index(device: Any) -> int | None:
    """The GPU index of 'cuda' (None: the current / first GPU) or 'cuda:<i>'; ValueError for any
    other device (TensorRT runs on NVIDIA GPUs only)."""
    match = re.fullmatch(r'cuda(?::(\d+))?', str(device))
    if match is None:
        raise ValueError(f"the tensorrt backend runs on an NVIDIA GPU: device must be 'cuda[:i]', got {str(device)!r}")
    return None if match.group(1) is None else int(match.group(1))


@dataclass(frozen=True)
class TensorSpec:
    """One engine I/O tensor: name, is_input, shape (a dynamic axis is -1), numpy dtype."""
    name: str
    is_input: bool
    shape: tuple[int, ...]
    dtype: Any

    def buffer_shape(self, max_batch: int) -> tuple[int, ...]:
        """The shape of its buffer: dynamic axes at ``max_batch``."""
        return tuple(max_batch if d < 0 else d for d in self.shape)


def tensor_specs(trt: Any, engine: Any) -> list[TensorSpec]:
    """The I/O tensors of a deserialised engine, in engine order."""
    specs = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        specs.append(TensorSpec(name, engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT,
                                tuple(int(d) for d in engine.get_tensor_shape(name)),
                                np.dtype(trt.nptype(engine.get_tensor_dtype(name)))))
    return specs


class TorchGpu:
    """Engine I/O as torch CUDA tensors on torch's current stream (see the module docstring)."""
    library = 'torch'

    def __init__(self, device: Any) -> None:
        import torch
        index = cuda_index(device)
        if not torch.cuda.is_available():
            raise ValueError('the tensorrt backend needs an NVIDIA GPU visible to torch, but torch.cuda.is_available() '
                             'is False (no GPU, no driver, or a CPU-only torch build)')
        index = torch.cuda.current_device() if index is None else index
        if index >= torch.cuda.device_count():
            raise ValueError(f'device cuda:{index} requested but only {torch.cuda.device_count()} GPU(s) are visible')
        self.device = torch.device('cuda', index)
        self.arrays: ArraySpace = array_space('torch', self.device)
        self.name = torch.cuda.get_device_name(self.device)
        self.compute_capability = tuple(torch.cuda.get_device_capability(self.device))

    def activate(self) -> contextlib.AbstractContextManager:
        """Make this GPU current in the calling thread (for TensorRT's CUDA calls)."""
        import torch
        return torch.cuda.device(self.device)

    def bind(self, specs: list[TensorSpec], max_batch: int) -> 'TorchBindings':
        return TorchBindings(self.device)


class TorchBindings:
    """Per-engine I/O through torch: inputs by pointer, fresh outputs, torch's current stream."""

    def __init__(self, device: Any) -> None:
        self.device = device

    def run(self, context: Any, specs: list[TensorSpec], dynamic: set[str], inputs: dict[str, Any],
            label: str) -> dict[str, Any]:
        import torch
        stream = torch.cuda.current_stream(self.device)
        keep = []
        for spec in (s for s in specs if s.is_input):
            tensor = inputs[spec.name].to(self.device, _torch_dtype(spec.dtype)).contiguous()
            keep.append(tensor)
            if spec.name in dynamic:
                context.set_input_shape(spec.name, tuple(tensor.shape))
            context.set_tensor_address(spec.name, tensor.data_ptr())
        outputs = {}
        for spec in (s for s in specs if not s.is_input):
            shape = tuple(context.get_tensor_shape(spec.name))
            outputs[spec.name] = torch.empty(shape, dtype=_torch_dtype(spec.dtype), device=self.device)
            context.set_tensor_address(spec.name, outputs[spec.name].data_ptr())
        if not context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError(f'TensorRT execute_async_v3 failed for {label}')
        for tensor in keep:  # the caching allocator must not reuse them before the kernels ran
            tensor.record_stream(stream)
        return outputs


def _torch_dtype(dtype: np.dtype) -> Any:
    import torch
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float16): torch.float16,
            np.dtype(np.int32): torch.int32, np.dtype(np.int64): torch.int64,
            np.dtype(np.bool_): torch.bool}[np.dtype(dtype)]


class PycudaGpu:
    """Engine I/O as numpy arrays staged through pycuda buffers (see the module docstring)."""
    library = 'numpy'

    def __init__(self, device: Any) -> None:
        cuda = import_pycuda()
        index = cuda_index(device) or 0
        cuda.init()
        if index >= cuda.Device.count():
            raise ValueError(f'device cuda:{index} requested but only {cuda.Device.count()} GPU(s) are visible')
        self.cuda = cuda
        gpu = cuda.Device(index)
        self.device = f'cuda:{index}'
        self.arrays: ArraySpace = array_space('numpy')
        self.name = gpu.name()
        self.compute_capability = tuple(gpu.compute_capability())
        self._context = gpu.retain_primary_context()  # the context TensorRT's runtime calls use too

    @contextlib.contextmanager
    def activate(self):
        """Push the GPU's primary context in the calling thread (for TensorRT's CUDA calls)."""
        self._context.push()
        try:
            yield
        finally:
            self.cuda.Context.pop()

    def bind(self, specs: list[TensorSpec], max_batch: int) -> 'PycudaBindings':
        with self.activate():
            return PycudaBindings(self.cuda, specs, max_batch)


class PycudaBindings:
    """Per-engine device + page-locked host buffers (shapes: :meth:`TensorSpec.buffer_shape`) and
    one stream."""

    def __init__(self, cuda: Any, specs: list[TensorSpec], max_batch: int) -> None:
        self.cuda = cuda
        self.shapes = {s.name: s.buffer_shape(max_batch) for s in specs}
        self.host = {s.name: cuda.pagelocked_empty(self.shapes[s.name], s.dtype) for s in specs}
        self.device = {s.name: cuda.mem_alloc(max(1, self.host[s.name].nbytes)) for s in specs}
        self.stream = cuda.Stream()

    def run(self, context: Any, specs: list[TensorSpec], dynamic: set[str], inputs: dict[str, Any],
            label: str) -> dict[str, np.ndarray]:
        cuda, stream = self.cuda, self.stream
        for spec in (s for s in specs if s.is_input):
            array = np.ascontiguousarray(inputs[spec.name], dtype=spec.dtype)
            staged = self._staging(spec.name, array.shape, label)
            staged[...] = array
            cuda.memcpy_htod_async(self.device[spec.name], staged, stream)
            if spec.name in dynamic:
                context.set_input_shape(spec.name, array.shape)
            context.set_tensor_address(spec.name, int(self.device[spec.name]))
        shapes = {}
        for spec in (s for s in specs if not s.is_input):
            shapes[spec.name] = tuple(int(d) for d in context.get_tensor_shape(spec.name))
            self._staging(spec.name, shapes[spec.name], label)
            context.set_tensor_address(spec.name, int(self.device[spec.name]))
        if not context.execute_async_v3(stream.handle):
            raise RuntimeError(f'TensorRT execute_async_v3 failed for {label}')
        outputs = {}
        for name, shape in shapes.items():
            outputs[name] = self._staging(name, shape, label)
            cuda.memcpy_dtoh_async(outputs[name], self.device[name], stream)
        stream.synchronize()
        return {name: array.copy() for name, array in outputs.items()}

    def _staging(self, name: str, shape: tuple[int, ...], label: str) -> np.ndarray:
        """The leading part of the page-locked buffer of ``name`` viewed as ``shape``."""
        buffer = self.host[name].reshape(-1)
        size = int(np.prod(shape))
        if size > buffer.size:
            raise ValueError(f'{label}: tensor {name!r} of shape {shape} exceeds its buffer {self.shapes[name]}')
        return buffer[:size].reshape(shape)


def import_pycuda() -> Any:
    """``pycuda.driver``, or ImportError naming the package and the alternatives."""
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise ImportError("the tensorrt backend without torch needs the Python package 'pycuda' (pip install "
                          "lewm_ros[robot-trt]); it is not installed here. Install it, or torch with CUDA, or use "
                          "the 'onnxruntime' backend.") from exc
    return cuda


def open_gpu(device: Any, library: str | None = None) -> TorchGpu | PycudaGpu:
    """The GPU ``device`` ('cuda[:i]') with engine I/O through ``library``: 'torch', 'numpy'
    (pycuda) or None (torch when installed, else pycuda). ValueError / ImportError naming the
    missing GPU or package."""
    cuda_index(device)
    library = library or ('torch' if torch_installed() else 'numpy')
    check_choice('arrays', library, GPU_IO)
    return TorchGpu(device) if library == 'torch' else PycudaGpu(device)

"""Where a backend's arrays live: one array API namespace on one device (no ROS; torch optional).

The planner (:mod:`lewm_ros.planning`) is written once over the Python array API standard
(through ``array-api-compat``) and runs on whatever a backend hands it:

- 'numpy': host arrays. ONNX Runtime on a CPU, and the torch-free paths on an NVIDIA GPU
  (ONNX Runtime's CUDA provider, TensorRT with pycuda host staging), where the backend copies to
  and from the GPU inside each call. Needs no torch.
- 'torch': torch tensors on a torch device. The torch backend, and ONNX Runtime / TensorRT on a
  GPU when torch is installed (CUDA tensors bound by pointer: a plan never leaves the GPU).

Host data (images, executed blocks, the CEM noise) enters a space through :meth:`ArraySpace.
from_host` and results leave through :meth:`ArraySpace.to_host`, once each per plan step.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lewm_ros.validation import check_choice

ARRAY_LIBRARIES = ('numpy', 'torch')


def torch_installed() -> bool:
    """True when the torch package is importable here (it is optional on a robot)."""
    return importlib.util.find_spec('torch') is not None


@dataclass(frozen=True)
class ArraySpace:
    """library: 'numpy' or 'torch'; device: where the arrays live ('cpu' for numpy, a
    ``torch.device`` for torch); xp: the array API namespace (``array_api_compat.numpy`` or
    ``array_api_compat.torch``). Every array made here is float32 unless said otherwise."""
    library: str
    device: Any
    xp: Any = field(repr=False, compare=False)

    @property
    def on_gpu(self) -> bool:
        """True for torch CUDA tensors (the only arrays here that live off the host)."""
        return self.library == 'torch' and self.device.type == 'cuda'

    def from_host(self, array: Any) -> Any:
        """A float32 copy of a host array (numpy or anything ``np.asarray`` takes) in this space."""
        host = np.array(array, dtype=np.float32)
        return host if self.library == 'numpy' else self.xp.asarray(host, device=self.device)

    def asarray(self, array: Any) -> Any:
        """A float32 copy of an array of this space, or of a host array, in this space."""
        if self.library == 'numpy' or isinstance(array, np.ndarray):
            return self.from_host(array)
        return self.xp.asarray(array, dtype=self.xp.float32, device=self.device, copy=True)

    def to_host(self, array: Any) -> np.ndarray:
        """A numpy copy (on the host) of an array of this space."""
        if self.library == 'numpy':
            return np.array(array)
        return array.detach().to('cpu').numpy().copy()

    def zeros(self, shape: tuple[int, ...]) -> Any:
        return self.xp.zeros(shape, dtype=self.xp.float32, device=self.device)

    def empty(self, shape: tuple[int, ...]) -> Any:
        return self.xp.empty(shape, dtype=self.xp.float32, device=self.device)

    def contiguous(self, array: Any, dtype: Any = None) -> Any:
        """``array`` (of this space) C-contiguous in ``dtype`` (default float32) on this device;
        no copy when it already is."""
        if self.library == 'numpy':
            return np.ascontiguousarray(array, dtype=np.float32 if dtype is None else dtype)
        import torch
        return array.to(self.device, torch.float32 if dtype is None else dtype).contiguous()

    def synchronize(self) -> None:
        """Wait for the work queued on torch's current CUDA stream (a no-op for host arrays): before
        a runtime with streams of its own reads arrays made by torch."""
        if self.on_gpu:
            import torch
            torch.cuda.current_stream(self.device).synchronize()

    def pointer(self, array: Any) -> int:
        """Address of the first element of a contiguous array of this space (for I/O binding)."""
        return int(array.ctypes.data) if self.library == 'numpy' else int(array.data_ptr())


def array_space(library: str, device: Any = 'cpu') -> ArraySpace:
    """The ArraySpace of ``library`` ('numpy' or 'torch') on ``device`` ('cpu', 'cuda:1', a
    ``torch.device``). numpy arrays live on the host: any other device is a ValueError."""
    check_choice('array library', library, ARRAY_LIBRARIES)
    if library == 'numpy':
        if str(device) != 'cpu':
            raise ValueError(f"numpy arrays live on the host: device must be 'cpu', got {str(device)!r}")
        import array_api_compat.numpy as xp
        return ArraySpace('numpy', 'cpu', xp)
    import array_api_compat.torch as xp
    import torch
    return ArraySpace('torch', torch.device(device), xp)


def host_or_torch(device: Any) -> ArraySpace:
    """The arrays of a backend that runs on ``device`` either way (ONNX Runtime, TensorRT):
    numpy on a CPU; on a GPU torch CUDA tensors when torch is installed (no host copies), numpy
    host staging otherwise."""
    if str(device) == 'cpu' or not torch_installed():
        return array_space('numpy')
    return array_space('torch', device)

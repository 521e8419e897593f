"""The matrix-multiply kernels of the efficient rollout: portable or oneDNN (same fp32 math).

:class:`LinearKernels` is ``F.linear`` (and exact-erf GELU after it): any device, and what the
ONNX export traces. :class:`OneDnnLinearKernels` calls PyTorch's oneDNN linear with the GELU fused
into its epilogue (``torch.ops.mkldnn._linear_pointwise``, the op TorchInductor emits for CPU
linears), for the torch backend on CPU with a wide predictor (:func:`select_kernels`). Measured
in one process on a 2-core AMD EPYC CPU (x86_64, 2.6 GHz), paper predictor, paper-budget costs call
(300 candidates, H 5): 538 -> 463 ms (min of 8 alternating calls; the (900 x 192) @ (192 x 2048)
key/value product ran at 127 GFLOP/s through ``F.linear``, MKL, in the rollout); same costs (max
rel diff 1.4e-7 to the naive rollout either way). The compact preset's GEMMs are too small to
gain (:data:`ONEDNN_MIN_WIDTH`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


class LinearKernels:
    """``linear(x (..., K), weight (M, K), bias (M,) | None) -> (..., M)`` and ``linear_gelu``
    (the same followed by exact GELU): ``F.linear``, exportable, every device."""
    name = 'portable'

    @staticmethod
    def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        return F.linear(x, weight, bias)

    @staticmethod
    def linear_gelu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return F.gelu(F.linear(x, weight, bias))


class OneDnnLinearKernels(LinearKernels):
    """The same functions through oneDNN on CPU (fp32, GELU fused; not exportable)."""
    name = 'onednn'

    @staticmethod
    def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, 'none', [], '')

    @staticmethod
    def linear_gelu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, 'gelu', [], 'none')


#: Kernel sets by name (``TorchBackend(kernels=...)``).
KERNELS: dict[str, type[LinearKernels]] = {'portable': LinearKernels, 'onednn': OneDnnLinearKernels}

#: Predictor width from which oneDNN wins on CPU. Measured (alternating calls, 2 threads, one
#: process): paper (width 192) 64 candidates 181 -> 145 ms, 300 candidates 538 -> 463 ms;
#: compact (width 128) 64 candidates 16.2 -> 17.7 ms (slower), 300 candidates 53.3 -> 52.3 ms.
ONEDNN_MIN_WIDTH = 192


def onednn_available() -> bool:
    """True when this torch build has oneDNN and its fused linear op."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, '_linear_pointwise')


def select_kernels(choice: str, device: torch.device | str, width: int) -> type[LinearKernels]:
    """Kernels for a rollout of predictor width ``width`` on ``device``: 'portable', 'onednn'
    (CPU only; ValueError elsewhere or without oneDNN) or 'auto' (oneDNN on a CPU for widths
    >= :data:`ONEDNN_MIN_WIDTH`, portable otherwise)."""
    on_cpu = torch.device(device).type == 'cpu'
    if choice == 'auto':
        return OneDnnLinearKernels if on_cpu and width >= ONEDNN_MIN_WIDTH and onednn_available() else LinearKernels
    if choice not in KERNELS:
        raise ValueError(f'kernels must be one of {sorted(KERNELS) + ["auto"]}, got {choice!r}')
    if choice == 'onednn' and not (on_cpu and onednn_available()):
        raise ValueError(f'kernels=onednn needs a CPU device and a torch build with oneDNN (device {device})')
    return KERNELS[choice]

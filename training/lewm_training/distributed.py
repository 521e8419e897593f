"""Distributed data parallel helpers for ``lewm-train fit`` (torchrun, gloo on CPU / nccl on CUDA).

LeWM's two batch-coupled parts see the GLOBAL batch under DDP:
- SIGReg: ``SIGReg(gather=True, seed=...)`` all-gathers embeddings (with gradient) and draws the
  same directions on every rank;
- the projectors' BatchNorm: :class:`GlobalBatchNorm1d` all-reduces the batch moments (with
  gradient). torch's SyncBatchNorm would do this on CUDA but refuses CPU tensors, and gloo-on-CPU
  is how DDP is tested here, so one implementation serves both.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """rank / world_size / local_rank of this process; device it trains on."""
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return 'RANK' in os.environ and 'WORLD_SIZE' in os.environ


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """'auto' -> cuda:<local_rank> when available else cpu; 'cuda' without a GPU is an error."""
    if name == 'cuda' or (name == 'auto' and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ValueError("device='cuda' was requested but torch sees no CUDA device "
                             f'(torch {torch.__version__}, CUDA build: {torch.version.cuda})')
        torch.cuda.set_device(local_rank)
        return torch.device('cuda', local_rank)
    return torch.device('cpu')


def init_distributed(device_name: str) -> DistContext:
    """Join the torchrun process group when RANK/WORLD_SIZE are set; otherwise one process."""
    if not launched_by_torchrun() or int(os.environ['WORLD_SIZE']) == 1:
        return DistContext(0, 1, 0, resolve_device(device_name))
    local_rank = int(os.environ.get('LOCAL_RANK', 0))
    device = resolve_device(device_name, local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend='nccl' if device.type == 'cuda' else 'gloo')
    ctx = DistContext(dist.get_rank(), dist.get_world_size(), local_rank, device)
    LOG.info('DDP rank %d/%d on %s (%s)', ctx.rank, ctx.world_size, device, dist.get_backend())
    return ctx


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """Element-wise mean of ``values`` over ranks (identity in one process); no gradient."""
    if not is_distributed():
        return values
    out = values.detach().clone()
    dist.all_reduce(out)
    return out / dist.get_world_size()


class GlobalBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d whose training statistics are the moments of the batch over ALL ranks.

    Same parameters, buffers and state-dict keys as nn.BatchNorm1d (a model converted with
    :func:`convert_batchnorm` saves and loads like the plain one). In eval mode, or without a
    process group, it IS nn.BatchNorm1d. Input (N, C).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        if x.ndim != 2:
            raise ValueError(f'GlobalBatchNorm1d expects (N, C), got shape {tuple(x.shape)}')
        from torch.distributed.nn.functional import all_reduce
        xf = x.float()
        count = torch.tensor([float(x.shape[0])], device=x.device)
        sums = all_reduce(torch.cat([count, xf.sum(0)]))                     # (1 + C,) differentiable sum
        n, mean = sums[0], sums[1:] / sums[0]
        # Two passes (mean, then centred squares) as nn.BatchNorm: E[x^2] - E[x]^2 loses digits.
        var = all_reduce((xf - mean).square().sum(0)) / n                    # biased, for normalising
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum)
                unbiased = var.detach() * (n / (n - 1).clamp_min(1))
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        y = (xf - mean) * torch.rsqrt(var + self.eps)
        if self.affine:
            y = y * self.weight + self.bias
        return y.to(x.dtype)


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every nn.BatchNorm1d in ``module`` (in place) by a GlobalBatchNorm1d sharing its
    parameters and buffers; returns ``module``."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm1d:
            synced = GlobalBatchNorm1d(child.num_features, child.eps, child.momentum, child.affine,
                                       child.track_running_stats, device=None)
            synced.weight, synced.bias = child.weight, child.bias
            synced.running_mean, synced.running_var = child.running_mean, child.running_var
            synced.num_batches_tracked = child.num_batches_tracked
            synced.train(child.training)
            setattr(module, name, synced)
        else:
            convert_batchnorm(child)
    return module

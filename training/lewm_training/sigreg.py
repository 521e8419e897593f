"""SIGReg: sketched isotropic Gaussian regulariser (Epps-Pulley statistic on random 1-D projections).

For embeddings h (T, N, D): draw M random unit directions, project, and for each direction
compare the empirical characteristic function with exp(-t^2/2) (that of N(0, 1)):
    err(t) = (mean_n cos(t h_n) - exp(-t^2/2))^2 + (mean_n sin(t h_n))^2,
integrate over t in [0, t_max] with trapezoid weights (doubled: symmetric integral) times the
window exp(-t^2/2), multiply by N, and average over directions and time steps.

Distributed training: pass ``gather=True`` under torch.distributed and every rank sees the
GLOBAL batch (embeddings all-gathered with gradient) and the same directions (drawn from a
generator seeded by ``seed`` and the call count, identical on every rank).
"""
from __future__ import annotations

import torch
from torch import nn

from lewm_ros.validation import check_int, check_number


class SIGReg(nn.Module):
    """Callable module: sigreg(h (T, N, D)) -> scalar.

    knots: integration knots on [0, t_max] (reference: 17 on [0, 3]; the paper's appendix
    says [0.2, 4]); num_proj: directions per call (1024); calls: calls so far (with ``seed``, the
    directions of call c come from seed + c: save and restore it to resume exactly).
    """

    def __init__(self, knots: int = 17, num_proj: int = 1024, t_max: float = 3.0, t_min: float = 0.0,
                 gather: bool = False, seed: int | None = None) -> None:
        super().__init__()
        check_int('knots', knots, 2)
        check_int('num_proj', num_proj, 1)
        check_number('t_min', t_min, 0.0)
        check_number('t_max', t_max, t_min, exclusive_minimum=True)
        self.num_proj = num_proj
        self.gather = gather
        self.seed = seed
        self.calls = 0
        t = torch.linspace(t_min, t_max, knots)
        dt = (t_max - t_min) / (knots - 1)
        trapezoid = torch.full((knots,), 2 * dt)
        trapezoid[[0, -1]] = dt
        window = torch.exp(-t.square() / 2)
        self.register_buffer('t', t, persistent=False)
        self.register_buffer('phi', window, persistent=False)
        self.register_buffer('weights', trapezoid * window, persistent=False)

    def directions(self, dim: int, device: torch.device) -> torch.Tensor:
        """(dim, num_proj) unit columns; seeded per call when ``seed`` is set."""
        generator = None
        if self.seed is not None:
            generator = torch.Generator(device='cpu').manual_seed(self.seed + self.calls)
        a = torch.randn(dim, self.num_proj, generator=generator).to(device)
        self.calls += 1
        return a / a.norm(dim=0, keepdim=True)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if h.ndim != 3:
            raise ValueError(f'SIGReg expects embeddings (T, N, D), got shape {tuple(h.shape)}')
        if self.gather:
            h = gather_batch(h, dim=1)
        proj = h.float() @ self.directions(h.shape[-1], h.device)          # (T, N, M)
        x_t = proj.unsqueeze(-1) * self.t                                   # (T, N, M, K)
        err = (x_t.cos().mean(1) - self.phi).square() + x_t.sin().mean(1).square()  # (T, M, K)
        return ((err @ self.weights) * h.shape[1]).mean()


def gather_batch(x: torch.Tensor, dim: int) -> torch.Tensor:
    """All-gather x along ``dim`` across ranks, differentiably (identity without distributed)."""
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather
    return torch.cat(all_gather(x.contiguous()), dim=dim)

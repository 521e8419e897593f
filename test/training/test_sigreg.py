"""SIGReg: near zero for Gaussian batches, large for collapsed / non-Gaussian ones,
differentiable, and scaling with batch size as the Epps-Pulley statistic should."""
import math

import torch

from lewm_training.sigreg import SIGReg


def _stat(h, seed=0, num_proj=256):
    return float(SIGReg(num_proj=num_proj, seed=seed)(h))


def test_gaussian_batch_is_near_zero_and_collapse_is_large():
    g = torch.Generator().manual_seed(0)
    gaussian = torch.randn(2, 4096, 32, generator=g)
    collapsed = torch.zeros(2, 4096, 32) + 0.01 * torch.randn(2, 4096, 32, generator=g)
    rank_one = torch.randn(2, 4096, 1, generator=g).expand(2, 4096, 32) / math.sqrt(32)
    # unit variance, not Gaussian; low-dimensional, since random projections of many independent
    # coordinates are themselves near-Gaussian (CLT)
    uniform = (torch.rand(2, 4096, 2, generator=g) - 0.5) * math.sqrt(12)
    s_gauss, s_collapsed, s_rank_one, s_uniform = map(_stat, (gaussian, collapsed, rank_one, uniform))
    assert s_gauss < 2.0
    assert s_collapsed > 100 * s_gauss
    assert s_rank_one > 20 * s_gauss
    assert s_uniform > 3 * s_gauss
    two_clusters = torch.sign(torch.randn(2, 4096, 1, generator=g)) + 0.3 * torch.randn(2, 4096, 4, generator=g)
    assert _stat(two_clusters) > 20 * s_gauss


def test_scales_with_batch_size():
    """For a fixed non-Gaussian distribution the statistic grows ~linearly with N (it is N times a
    consistent divergence estimate); for Gaussian samples it stays O(1)."""
    g = torch.Generator().manual_seed(1)
    small = (torch.rand(1, 1000, 2, generator=g) - 0.5) * math.sqrt(12)
    large = (torch.rand(1, 8000, 2, generator=g) - 0.5) * math.sqrt(12)
    ratio = _stat(large) / _stat(small)
    assert 5.0 < ratio < 11.0
    gauss_small = _stat(torch.randn(1, 1000, 2, generator=g))
    gauss_large = _stat(torch.randn(1, 8000, 2, generator=g))
    assert gauss_large < 3 * gauss_small + 0.5


def test_differentiable_and_pulls_towards_gaussian():
    h = (torch.rand(1, 512, 8) * 3).requires_grad_(True)
    sigreg = SIGReg(num_proj=128, seed=3)
    loss = sigreg(h)
    loss.backward()
    assert h.grad is not None and torch.isfinite(h.grad).all() and h.grad.abs().sum() > 0
    before = float(SIGReg(num_proj=128, seed=99)(h.detach()))
    with torch.no_grad():
        h -= 0.05 * h.grad / h.grad.norm() * math.sqrt(h.numel())
    assert float(SIGReg(num_proj=128, seed=99)(h.detach())) < before


def test_seeded_directions_are_reproducible_and_reference_knots():
    a, b = SIGReg(seed=5), SIGReg(seed=5)
    assert torch.equal(a.directions(16, torch.device('cpu')), b.directions(16, torch.device('cpu')))
    s = SIGReg()
    assert s.t.shape == (17,) and float(s.t[-1]) == 3.0
    dt = 3.0 / 16
    assert math.isclose(float(s.weights[0]), dt, rel_tol=1e-6)
    assert math.isclose(float(s.weights[1]), 2 * dt * math.exp(-(dt ** 2) / 2), rel_tol=1e-6)

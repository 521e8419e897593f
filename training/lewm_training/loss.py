"""LeWM training objective: prediction MSE + lambda * SIGReg (two terms, one hyperparameter)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from lewm_ros.model.lewm import LeWM
from lewm_ros.validation import check_number
from lewm_training.sigreg import SIGReg


@dataclass(frozen=True)
class LossTerms:
    """total = pred + lam * sigreg (scalars); emb (B, T, D) for monitoring."""
    total: torch.Tensor
    pred: torch.Tensor
    sigreg: torch.Tensor
    emb: torch.Tensor


def lewm_loss(model: LeWM, pixels: torch.Tensor, blocks: torch.Tensor, sigreg: SIGReg,
              lam: float = 0.09) -> LossTerms:
    """pixels (B, T, 3, S, S) normalised, blocks (B, T, block_dim) z-scored, T = history + 1.

    Prediction: frames 0..T-2 with their blocks predict frames 1..T-1 (MSE against the encoder's
    own embeddings, no stop-gradient). SIGReg on the projector output of all frames, (T, B, D).
    lam: 0.09 in the reference code (0.1 in the paper).
    """
    check_number('lam', lam, 0.0)
    out = model(pixels, blocks)
    pred_loss = (out.pred - out.emb[:, 1:]).square().mean()
    sig = sigreg(out.emb.transpose(0, 1))
    return LossTerms(total=pred_loss + lam * sig, pred=pred_loss, sigreg=sig, emb=out.emb)

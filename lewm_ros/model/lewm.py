"""The LeWM world model: encoder + projector, action encoder, predictor + pred_proj.

Top-level module names match the reference state dict: ``encoder``, ``predictor``,
``action_encoder``, ``projector``, ``pred_proj``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lewm_ros.model.config import LeWMConfig
from lewm_ros.model.heads import ActionEncoder, Projector
from lewm_ros.model.predictor import Predictor
from lewm_ros.model.vit import ViTEncoder


@dataclass(frozen=True)
class WorldModelOutput:
    """emb: (B, T, D) latents of every frame; pred: (B, T-1, D) predictions of frames 1..T-1."""
    emb: torch.Tensor
    pred: torch.Tensor


class LeWM(nn.Module):
    """JEPA world model of arXiv 2603.19312."""

    def __init__(self, config: LeWMConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = ViTEncoder(config.encoder)
        self.predictor = Predictor(config.predictor)
        self.action_encoder = ActionEncoder(config.action_encoder)
        self.projector = Projector(config.projector)
        self.pred_proj = Projector(config.pred_proj)

    @property
    def history(self) -> int:
        """Frames the predictor attends to (learned positions)."""
        return self.config.predictor.num_frames

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (..., 3, S, S) normalised -> latents (..., D)."""
        lead = pixels.shape[:-3]
        z = self.projector(self.encoder(pixels.reshape(-1, *pixels.shape[-3:])))
        return z.reshape(*lead, -1)

    def encode_actions(self, blocks: torch.Tensor) -> torch.Tensor:
        """blocks (B, T, frameskip*action_dim) [z-scored] -> (B, T, D)."""
        return self.action_encoder(blocks)

    def predict(self, emb: torch.Tensor, act_emb: torch.Tensor) -> torch.Tensor:
        """emb, act_emb (B, T, D) -> predicted next latents (B, T, D) (output t ~ z_{t+1})."""
        return self.pred_proj(self.predictor(emb, act_emb))

    def forward(self, pixels: torch.Tensor, blocks: torch.Tensor) -> WorldModelOutput:
        """Teacher-forced training pass.

        pixels (B, T, 3, S, S), blocks (B, T, block_dim) with T = history + 1 ->
        emb (B, T, D) for all frames and pred (B, T-1, D): predictions of frames 1..T-1 from
        frames 0..T-2 and their action blocks.
        """
        emb = self.encode(pixels)
        act_emb = self.encode_actions(blocks)
        pred = self.predict(emb[:, :-1], act_emb[:, :-1])
        return WorldModelOutput(emb=emb, pred=pred)


def count_parameters(module: nn.Module) -> int:
    """Trainable + frozen parameters (buffers such as BatchNorm statistics excluded)."""
    return sum(p.numel() for p in module.parameters())

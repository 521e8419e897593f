"""Small heads of LeWM: the action-block encoder and the BatchNorm MLP projectors."""
from __future__ import annotations

import torch
from torch import nn

from lewm_ros.model.config import ActionEncoderConfig, ProjectorConfig


class ActionEncoder(nn.Module):
    """Action block -> embedding.

    forward: blocks (B, T, input_dim) [z-scored; input_dim = frameskip x action_dim]
    -> (B, T, emb_dim). Conv1d(k=1) then Linear, SiLU, Linear.
    """

    def __init__(self, cfg: ActionEncoderConfig) -> None:
        super().__init__()
        self.patch_embed = nn.Conv1d(cfg.input_dim, cfg.smoothed_dim, kernel_size=1, stride=1)
        self.embed = nn.Sequential(
            nn.Linear(cfg.smoothed_dim, cfg.mlp_scale * cfg.emb_dim),
            nn.SiLU(),
            nn.Linear(cfg.mlp_scale * cfg.emb_dim, cfg.emb_dim),
        )

    def forward(self, blocks: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(blocks.float().transpose(1, 2)).transpose(1, 2)  # (B, T, smoothed)
        return self.embed(x)


class Projector(nn.Module):
    """Linear -> BatchNorm1d (or LayerNorm / none, per config) -> GELU -> Linear,
    applied to (..., input_dim) -> (..., output_dim).

    The BatchNorm matters: the ViT ends in LayerNorm, which would otherwise fight SIGReg.
    """

    def __init__(self, cfg: ProjectorConfig) -> None:
        super().__init__()
        norm = {'batchnorm': lambda: nn.BatchNorm1d(cfg.hidden_dim), 'layernorm': lambda: nn.LayerNorm(cfg.hidden_dim),
                'none': nn.Identity}[cfg.norm]()
        self.net = nn.Sequential(
            nn.Linear(cfg.input_dim, cfg.hidden_dim),
            norm,
            nn.GELU(),
            nn.Linear(cfg.hidden_dim, cfg.output_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        return self.net(x.reshape(-1, x.shape[-1])).reshape(*lead, -1)

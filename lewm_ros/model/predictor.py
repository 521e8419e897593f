"""Causal AdaLN-zero transformer predictor (reference parameter layout).

One token per frame. Each block: x += gate_a * Attn(mod(LN(x), shift_a, scale_a)) and
x += gate_m * MLP(mod(LN(x), shift_m, scale_m)), where (shift, scale, gate) x 2 come from
SiLU -> Linear(c) of the per-frame action embedding c, zero-initialised (AdaLN-zero).
As in the reference, Attention and MLP each start with their own affine LayerNorm.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lewm_ros.model.config import PredictorConfig


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """AdaLN modulation x * (1 + scale) + shift (all (B, T, C))."""
    return x * (1 + scale) + shift


class CausalAttention(nn.Module):
    """Multi-head causal self-attention with a leading LayerNorm; (B, T, C) -> (B, T, C)."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.dropout = dropout
        self.norm = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, inner * 3, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = (y.view(b, t, self.heads, -1).transpose(1, 2)
                   for y in self.to_qkv(self.norm(x)).chunk(3, dim=-1))  # (B, h, T, d)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                             is_causal=True)
        return self.to_out(out.transpose(1, 2).reshape(b, t, -1))


class FeedForward(nn.Module):
    """LayerNorm -> Linear -> GELU -> Dropout -> Linear -> Dropout; (B, T, C) -> (B, T, C)."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConditionalBlock(nn.Module):
    """Transformer block with AdaLN-zero conditioning on c (B, T, C)."""

    def __init__(self, dim: int, heads: int, dim_head: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        self.attn = CausalAttention(dim, heads, dim_head, dropout)
        self.mlp = FeedForward(dim, mlp_dim, dropout)
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        nn.init.zeros_(self.adaLN_modulation[-1].weight)
        nn.init.zeros_(self.adaLN_modulation[-1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = self.adaLN_modulation(c).chunk(6, dim=-1)
        x = x + gate_a * self.attn(modulate(self.norm1(x), shift_a, scale_a))
        return x + gate_m * self.mlp(modulate(self.norm2(x), shift_m, scale_m))


def _maybe_linear(in_dim: int, out_dim: int) -> nn.Module:
    return nn.Linear(in_dim, out_dim) if in_dim != out_dim else nn.Identity()


class _Transformer(nn.Module):
    def __init__(self, cfg: PredictorConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(cfg.hidden_dim)
        self.layers = nn.ModuleList(
            ConditionalBlock(cfg.hidden_dim, cfg.heads, cfg.dim_head, cfg.mlp_dim, cfg.dropout)
            for _ in range(cfg.depth))
        self.input_proj = _maybe_linear(cfg.input_dim, cfg.hidden_dim)
        self.cond_proj = _maybe_linear(cfg.input_dim, cfg.hidden_dim)
        self.output_proj = _maybe_linear(cfg.hidden_dim, cfg.output_dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        x, c = self.input_proj(x), self.cond_proj(c)
        for block in self.layers:
            x = block(x, c)
        return self.output_proj(self.norm(x))


class Predictor(nn.Module):
    """Autoregressive latent predictor.

    forward: emb (B, T, D), act_emb (B, T, D) with T <= num_frames -> (B, T, output_dim);
    output t predicts the latent of frame t + 1 (before ``pred_proj``).
    """

    def __init__(self, cfg: PredictorConfig) -> None:
        super().__init__()
        self.config = cfg
        self.pos_embedding = nn.Parameter(torch.randn(1, cfg.num_frames, cfg.input_dim))
        self.dropout = nn.Dropout(cfg.emb_dropout)
        self.transformer = _Transformer(cfg)

    def forward(self, emb: torch.Tensor, act_emb: torch.Tensor) -> torch.Tensor:
        t = emb.shape[1]
        if t > self.config.num_frames:
            raise ValueError(f'predictor history is {self.config.num_frames} frames, got {t}')
        x = self.dropout(emb + self.pos_embedding[:, :t])
        return self.transformer(x, act_emb)

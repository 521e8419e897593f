"""ViT image encoder with the HuggingFace ``ViTModel`` (transformers 4.x) parameter
layout, so reference checkpoints load with strict key matching and without
depending on ``transformers`` at run time.

Pre-norm blocks: x + Attn(LN(x)); x + MLP(LN(x)) with exact GELU; a final
LayerNorm; the CLS token of the last hidden state is the image feature.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lewm_ros.model.config import EncoderConfig


class _PatchEmbeddings(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.projection = nn.Conv2d(3, cfg.hidden_size, kernel_size=cfg.patch_size, stride=cfg.patch_size)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (B, 3, H, W) -> patch tokens (B, N, C)."""
        return self.projection(pixels).flatten(2).transpose(1, 2)


class _Embeddings(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(1, 1, cfg.hidden_size) * 0.02)
        self.position_embeddings = nn.Parameter(torch.randn(1, cfg.num_patches + 1, cfg.hidden_size) * 0.02)
        self.patch_embeddings = _PatchEmbeddings(cfg)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (B, 3, S, S) -> tokens (B, 1 + N, C) with positions added."""
        tokens = self.patch_embeddings(pixels)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        return torch.cat([cls, tokens], dim=1) + self.position_embeddings


class _SelfAttention(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.num_heads = cfg.num_attention_heads
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, L, C) -> attended (B, L, C), bidirectional."""
        b, length, width = x.shape
        heads = [proj(x).view(b, length, self.num_heads, -1).transpose(1, 2)
                 for proj in (self.query, self.key, self.value)]  # each (B, h, L, C/h)
        out = F.scaled_dot_product_attention(*heads)
        return out.transpose(1, 2).reshape(b, length, width)


class _Dense(nn.Module):
    """A Linear under the attribute name ``dense`` (the HF layout)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.dense = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(x)


class _Attention(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.attention = _SelfAttention(cfg)
        self.output = _Dense(cfg.hidden_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.attention(x))


class _Layer(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.attention = _Attention(cfg)
        self.intermediate = _Dense(cfg.hidden_size, cfg.intermediate_size)
        self.output = _Dense(cfg.intermediate_size, cfg.hidden_size)
        self.layernorm_before = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.layernorm_after = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.layernorm_before(x))
        return x + self.output(F.gelu(self.intermediate(self.layernorm_after(x))))


class _LayerStack(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(cfg) for _ in range(cfg.num_hidden_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            x = layer(x)
        return x


class ViTEncoder(nn.Module):
    """ViT returning the CLS feature of the last hidden state.

    forward: pixels (B, 3, S, S) float, ImageNet-normalised -> (B, hidden_size).
    """

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.config = cfg
        self.embeddings = _Embeddings(cfg)
        self.encoder = _LayerStack(cfg)
        self.layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        size = self.config.image_size
        if pixels.shape[-3:] != (3, size, size):
            raise ValueError(f'encoder expects images (B, 3, {size}, {size}), got {tuple(pixels.shape)}')
        hidden = self.encoder(self.embeddings(pixels))
        # LayerNorm is per token: normalising only the CLS token equals the HF output's [:, 0].
        return self.layernorm(hidden[:, 0])

"""A tiny random LeWM model directory for the export / backend tests (CPU, ~60k parameters).

The AdaLN modulation is re-initialised away from zero so that costs depend on the actions
(a zero-initialised model would make every candidate cost the same and hide wiring bugs).
"""
from __future__ import annotations

from pathlib import Path

import torch

from lewm_ros.model import LeWM, save_model_dir
from lewm_ros.model.config import (ActionEncoderConfig, EncoderConfig, LeWMConfig, PredictorConfig,
                                   ProjectorConfig)

LATENT = 16
BLOCK = 4
IMAGE = 32
HISTORY = 3


def tiny_config() -> LeWMConfig:
    return LeWMConfig(
        encoder=EncoderConfig(size='test', patch_size=16, image_size=IMAGE, hidden_size=32, num_hidden_layers=1,
                              num_attention_heads=2, intermediate_size=64),
        predictor=PredictorConfig(num_frames=HISTORY, depth=2, heads=2, dim_head=8, mlp_dim=32, input_dim=LATENT,
                                  hidden_dim=24, output_dim=LATENT),
        action_encoder=ActionEncoderConfig(input_dim=BLOCK, smoothed_dim=BLOCK, emb_dim=LATENT, mlp_scale=2),
        projector=ProjectorConfig(input_dim=32, hidden_dim=32, output_dim=LATENT),
        pred_proj=ProjectorConfig(input_dim=LATENT, hidden_dim=32, output_dim=LATENT),
    )


def make_tiny_model_dir(directory: Path, seed: int = 0) -> Path:
    """Write config.json + weights.pt of a seeded tiny model; returns the directory."""
    torch.manual_seed(seed)
    model = LeWM(tiny_config())
    with torch.no_grad():
        for name, param in model.named_parameters():
            if 'adaLN_modulation' in name:
                param.normal_(0.0, 0.2)
        for module in model.modules():  # non-trivial BatchNorm statistics (eval mode uses them)
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 2.0)
    return save_model_dir(model, directory)

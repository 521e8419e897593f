"""A trained model for the analysis subcommands (probe, surprise): the torch device to load it
on and its latents of uint8 frames."""
from __future__ import annotations

import numpy as np
import torch

from lewm_ros.model import LeWM, normalize_images


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; anything else is passed to torch ('cuda'
    without a GPU is a ValueError)."""
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(name)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'device={name!r} was asked for but CUDA is not available')
    return device


@torch.inference_mode()
def encode_frames(model: LeWM, pixels: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """uint8 frames (N, S, S, 3) -> latents (N, D) float32 (model in eval mode, on its device),
    encoded ``batch_size`` frames per encoder call."""
    if pixels.ndim != 4 or pixels.shape[-1] != 3:
        raise ValueError(f'expected frames (N, S, S, 3), got {pixels.shape}')
    size = model.config.encoder.image_size
    if pixels.shape[1:3] != (size, size):
        raise ValueError(f'frames are {pixels.shape[1]}x{pixels.shape[2]} px but the model takes {size}x{size}')
    device = next(model.parameters()).device
    out = [model.encode(normalize_images(torch.from_numpy(pixels[i:i + batch_size]).to(device))).float().cpu()
           for i in range(0, len(pixels), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, model.config.latent_dim), np.float32)

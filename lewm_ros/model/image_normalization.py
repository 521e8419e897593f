"""Image normalisation for the model, shared by training and every runtime backend.

Images enter as uint8 RGB (..., S, S, 3) already at the model's size (the camera module crops and
resizes camera frames); the model sees float32 (..., 3, S, S) normalised with ImageNet mean/std.
"""
from __future__ import annotations

import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_images(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 (..., S, S, 3) RGB -> float32 (..., 3, S, S), ImageNet-normalised."""
    if isinstance(images, np.ndarray) and not images.flags.writeable:
        images = images.copy()  # e.g. a decoded ROS message buffer; torch needs writable memory
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8 or x.ndim < 3 or x.shape[-1] != 3:
        raise ValueError(f'expected uint8 RGB images (..., H, W, 3), got {x.dtype} {tuple(x.shape)}')
    x = x.movedim(-1, -3).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(3, 1, 1)
    return (x - mean) / std

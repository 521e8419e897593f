"""Image normalisation for the model, shared by training and every runtime backend.

Images enter as uint8 RGB (..., S, S, 3) already at the model's size (the camera module crops and
resizes camera frames); the model sees float32 (..., 3, S, S) normalised with ImageNet mean/std.
Written once over the array API (``array-api-compat``): a numpy array gives a numpy array (the
planner, on the host, with or without torch), a torch tensor a tensor on its device (training).
"""
from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace, device as device_of

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_images(images: Any) -> Any:
    """uint8 (..., S, S, 3) RGB -> float32 (..., 3, S, S), ImageNet-normalised, in the input's
    array namespace and on its device."""
    xp = array_namespace(images)
    if images.dtype != xp.uint8 or images.ndim < 3 or images.shape[-1] != 3:
        raise ValueError(f'expected uint8 RGB images (..., H, W, 3), got {images.dtype} {tuple(images.shape)}')
    x = xp.astype(xp.moveaxis(images, -1, -3), xp.float32) / 255.0
    mean = xp.reshape(xp.asarray(IMAGENET_MEAN, dtype=xp.float32, device=device_of(images)), (3, 1, 1))
    std = xp.reshape(xp.asarray(IMAGENET_STD, dtype=xp.float32, device=device_of(images)), (3, 1, 1))
    return (x - mean) / std


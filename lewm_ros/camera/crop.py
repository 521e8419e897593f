"""Camera frame -> model input: crop, then resize to the model's square size (no ROS imports)."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CropConfig:
    """box: () = centred square crop, or (x, y, w, h) [px] an explicit region of the frame;
    scale: for the centred crop, the square's side as a fraction of the frame's shorter side
    (1.0 = largest square, 0.5 = zoom 2x) [-]."""
    box: tuple[int, ...] = ()
    scale: float = 1.0

    def __post_init__(self) -> None:
        if len(self.box) not in (0, 4):
            raise ValueError(f'crop_box must be [] or [x, y, w, h] in px, got {list(self.box)}')
        if len(self.box) == 4 and (min(self.box[:2]) < 0 or min(self.box[2:]) < 1):
            raise ValueError(f'crop_box {list(self.box)} needs x, y >= 0 and w, h >= 1 [px]')
        if not 0.0 < self.scale <= 1.0:
            raise ValueError(f'crop_scale must be in (0, 1], got {self.scale}')


def crop_and_resize(rgb: np.ndarray, size: int, crop: CropConfig) -> np.ndarray:
    """rgb: uint8 (H, W, 3) -> uint8 (size, size, 3). Raises ValueError when an explicit crop box
    does not fit the frame."""
    height, width = rgb.shape[:2]
    if crop.box:
        x, y, w, h = crop.box
        if x + w > width or y + h > height:
            raise ValueError(f'crop_box {list(crop.box)} exceeds the {width}x{height} frame')
    else:
        side = max(1, int(round(min(height, width) * crop.scale)))
        x, y, w, h = (width - side) // 2, (height - side) // 2, side, side
    region = rgb[y:y + h, x:x + w]
    if region.shape[:2] == (size, size):
        return np.ascontiguousarray(region)
    shrinking = w >= size and h >= size
    return cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)

"""Camera message or image file -> model input: decode, crop, resize in one pass (no ROS imports)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from lewm_ros.camera.crop import CropConfig, crop_and_resize
from lewm_ros.camera.decoding import ImageDecodeError, decode_compressed, decode_image


def is_compressed(msg) -> bool:
    """True for a CompressedImage-like message (format + data, no encoding)."""
    return hasattr(msg, 'format') and not hasattr(msg, 'encoding')


def load_image_file(path: str | Path) -> np.ndarray:
    """Image file (png/jpg/...) -> RGB uint8 (H, W, 3). Raises ImageDecodeError naming the file."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageDecodeError(f'cannot read an image from {path}')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class CameraPipeline:
    """image_size: the model's square input side S [px]; crop: the part of the frame it sees.

    Every method returns uint8 RGB (S, S, 3) and raises ImageDecodeError (a ValueError) with the
    reason for a frame that cannot become a model input (undecodable data, a crop box outside
    the frame)."""

    def __init__(self, image_size: int, crop: CropConfig | None = None) -> None:
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise ValueError(f'image_size={image_size!r} is out of range; allowed: an integer >= 1')
        self.image_size = image_size
        self.crop = crop or CropConfig()

    def from_message(self, msg) -> np.ndarray:
        """sensor_msgs/Image or CompressedImage (or a rosbags message with their fields)."""
        return self.from_rgb(decode_compressed(msg) if is_compressed(msg) else decode_image(msg))

    def from_rgb(self, rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 (H, W, 3) frame at camera resolution."""
        try:
            return crop_and_resize(rgb, self.image_size, self.crop)
        except ValueError as exc:
            raise ImageDecodeError(str(exc)) from None

    def from_file(self, path: str | Path) -> np.ndarray:
        """An image file, e.g. a goal picture."""
        return self.from_rgb(load_image_file(path))

"""Camera message -> RGB uint8 (H, W, 3), for every standard sensor_msgs encoding (no ROS imports).

Messages are read by attribute (encoding, height, width, step, is_bigendian, data; or format,
data for CompressedImage), so a sensor_msgs message, a rosbags message or any object with those
fields works. cv_bridge decodes when it is importable (a ROS install); rosbags-image (PyPI) is
imported only where cv_bridge is missing.
Depth-like single-channel images (mono16, 16UC1, 32FC1, ...) become grayscale scaled by their
own min..max (NaN/inf -> 0), replicated to three channels.
"""
from __future__ import annotations

import numpy as np

import cv2

try:  # cv_bridge comes with a ROS install (apt), not from PyPI
    from cv_bridge import CvBridge, CvBridgeError
except ImportError:  # pragma: no cover - depends on the machine
    CvBridge = None

if CvBridge is None:
    from rosbags.image import ImageError as _ConversionError
    from rosbags.image import image_to_cvimage
    from rosbags.image.image import to_cvtype
else:  # pragma: no cover - needs a ROS install
    _ConversionError = CvBridgeError

#: Encodings converted by colour conversion (cv_bridge/rosbags) straight to rgb8.
COLOR_ENCODINGS = frozenset({
    'rgb8', 'bgr8', 'rgba8', 'bgra8', 'rgb16', 'bgr16', 'rgba16', 'bgra16', 'mono8', 'mono16',
    'bayer_rggb8', 'bayer_bggr8', 'bayer_gbrg8', 'bayer_grbg8',
    'bayer_rggb16', 'bayer_bggr16', 'bayer_gbrg16', 'bayer_grbg16',
    'yuv422', 'uyvy', 'yuyv', 'yuv422_yuy2',
})


class ImageDecodeError(ValueError):
    """A message that cannot become an image; str() says why (for the drop log)."""


def decoder_name() -> str:
    """'cv_bridge' or 'rosbags-image': which library decodes raw images here."""
    return 'cv_bridge' if CvBridge is not None else 'rosbags-image'


def decode_image(msg) -> np.ndarray:
    """sensor_msgs/Image -> RGB uint8 (H, W, 3). Raises ImageDecodeError with the reason."""
    encoding = str(msg.encoding)
    encoding = encoding.lower() if encoding.lower() in COLOR_ENCODINGS else encoding
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height < 1 or width < 1:
        raise ImageDecodeError(f'empty image {width}x{height}')
    try:
        dtype, channels = _dtype_channels(encoding)
    except (_ConversionError, KeyError, TypeError):
        raise ImageDecodeError(f'unknown encoding {msg.encoding!r}') from None
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ImageDecodeError(f'step {step} < width*channels*bytes = {row_bytes} for {encoding} {width}x{height}')
    data = bytes(msg.data) if not isinstance(msg.data, (bytes, bytearray, np.ndarray)) else msg.data
    buffer = np.frombuffer(data, dtype=np.uint8)
    if buffer.size != step * height:
        raise ImageDecodeError(f'data has {buffer.size} bytes, expected step*height = {step}*{height} = '
                               f'{step * height}')
    packed = buffer.reshape(height, step)[:, :row_bytes]  # drop row padding
    view = _Packed(encoding, height, width, row_bytes, bool(msg.is_bigendian), np.ascontiguousarray(packed))
    if encoding in COLOR_ENCODINGS:
        try:
            rgb = _to_rgb8(view)
        except (_ConversionError, cv2.error) as exc:
            raise ImageDecodeError(f'cannot convert {encoding} to rgb8: {exc}') from None
        return np.ascontiguousarray(rgb)
    if channels != 1:
        raise ImageDecodeError(f'unsupported encoding {msg.encoding!r} ({channels} channels, not a colour format)')
    return _gray_to_rgb(_convert(view, 'passthrough'))


def decode_compressed(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg/png) -> RGB uint8 (H, W, 3)."""
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if data.size == 0:
        raise ImageDecodeError(f'empty compressed image (format {msg.format!r})')
    try:
        image = cv2.imdecode(data, cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH)
    except cv2.error as exc:  # e.g. a header declaring more pixels than OpenCV decodes (CV_IO_MAX_IMAGE_PIXELS)
        raise ImageDecodeError(f'cannot decode {data.size} bytes of compressed image (format {msg.format!r}): '
                               f'{str(exc).strip().splitlines()[-1]}') from None
    if image is None:
        raise ImageDecodeError(f'cannot decode {data.size} bytes of compressed image (format {msg.format!r})')
    if image.ndim == 2:
        return _gray_to_rgb(image)
    if image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.dtype != np.uint8:
        image = _scale_to_uint8(image)
    return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


class _Packed:
    """The fields of an Image message whose rows carry no padding (step = row bytes)."""

    def __init__(self, encoding: str, height: int, width: int, step: int, is_bigendian: bool,
                 data: np.ndarray) -> None:
        self.encoding, self.height, self.width, self.step = encoding, height, width, step
        self.is_bigendian, self.data = is_bigendian, data


def _dtype_channels(encoding: str) -> tuple[np.dtype, int]:
    """Pixel dtype and channel count of a sensor_msgs encoding."""
    if CvBridge is not None:  # pragma: no cover - needs a ROS install
        dtype, channels = CvBridge().encoding_to_dtype_with_channels(encoding)
        return np.dtype(dtype), int(channels)
    _bits, _fmt, typestr, channels = to_cvtype(encoding)
    return np.dtype(typestr), int(channels)


def _convert(view: _Packed, desired: str) -> np.ndarray:
    """The packed image as an OpenCV array in ``desired`` encoding ('passthrough' keeps it)."""
    if CvBridge is not None:  # pragma: no cover - needs a ROS install
        return CvBridge().imgmsg_to_cv2(view, desired_encoding=desired)
    return image_to_cvimage(view, None if desired == 'passthrough' else desired)


def _to_rgb8(view: _Packed) -> np.ndarray:
    return _convert(view, 'rgb8').astype(np.uint8, copy=False)


def _scale_to_uint8(image: np.ndarray) -> np.ndarray:
    values = image.astype(np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(image.shape, np.uint8)
    lo, hi = values[finite].min(), values[finite].max()
    scaled = np.where(finite, (values - lo) / (hi - lo) * 255.0 if hi > lo else 0.0, 0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    gray = gray if gray.dtype == np.uint8 else _scale_to_uint8(gray)
    return np.ascontiguousarray(np.repeat(gray.reshape(*gray.shape[:2], 1), 3, axis=2))


__all__ = ['ImageDecodeError', 'decode_compressed', 'decode_image']

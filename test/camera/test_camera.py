"""Image decoding of every standard encoding (real sensor_msgs messages) and crop/resize."""
import os
import subprocess
import sys

import struct
import zlib

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from lewm_ros.camera.decoding import ImageDecodeError, decode_compressed, decode_image
from lewm_ros.camera.crop import CropConfig, crop_and_resize

H, W = 12, 16
RGB = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)


def image_msg(encoding: str, array: np.ndarray, pad: int = 0, bigendian: bool = False) -> Image:
    """A sensor_msgs/Image whose rows carry `pad` extra bytes (step > width * pixel bytes)."""
    rows = np.ascontiguousarray(array).reshape(array.shape[0], -1).view(np.uint8)
    rows = np.pad(rows, ((0, 0), (0, pad)))
    return Image(height=array.shape[0], width=array.shape[1], encoding=encoding, is_bigendian=bigendian,
                 step=rows.shape[1], data=rows.tobytes())


def encodings():
    """(encoding, array, expected RGB or None when only shape/dtype can be checked)."""
    gray = RGB[..., 1]
    gray3 = np.repeat(gray[..., None], 3, axis=2)
    bayer = np.zeros((H, W), np.uint8)
    return [
        ('rgb8', RGB, RGB), ('bgr8', RGB[..., ::-1], RGB),
        ('rgba8', np.dstack([RGB, np.full((H, W), 7, np.uint8)]), RGB),
        ('bgra8', np.dstack([RGB[..., ::-1], np.full((H, W), 7, np.uint8)]), RGB),
        ('mono8', gray, gray3), ('mono16', gray.astype('<u2') * 257, gray3),
        ('rgb16', RGB.astype('<u2') * 257, RGB),
        ('16UC1', np.arange(H * W, dtype='<u2').reshape(H, W) * 10, None),
        ('32FC1', np.linspace(0.2, 5.0, H * W, dtype='<f4').reshape(H, W), None),
        ('bayer_rggb8', bayer, None), ('bayer_bggr8', bayer, None), ('bayer_gbrg8', bayer, None),
        ('bayer_grbg8', bayer, None), ('yuv422', np.full((H, W, 2), 128, np.uint8), None),
        ('yuv422_yuy2', np.full((H, W, 2), 128, np.uint8), None),
    ]


@pytest.mark.parametrize('encoding, array, expected', encodings(), ids=[e[0] for e in encodings()])
@pytest.mark.parametrize('pad', [0, 3])
def test_every_encoding_decodes_to_rgb8(encoding, array, expected, pad):
    out = decode_image(image_msg(encoding, array, pad=pad))
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    if expected is not None:
        np.testing.assert_array_equal(out, expected)


def test_depth_like_is_scaled_grayscale_with_nan_as_zero():
    depth = np.linspace(0.5, 4.0, H * W, dtype='<f4').reshape(H, W)
    depth[0, 0] = np.nan
    out = decode_image(image_msg('32FC1', depth))
    assert out[0, 0].tolist() == [0, 0, 0] and out[-1, -1].tolist() == [255, 255, 255]
    assert (out[..., 0] == out[..., 2]).all()


def test_big_endian_mono16():
    gray = RGB[..., 0].astype('>u2') * 257
    np.testing.assert_array_equal(decode_image(image_msg('mono16', gray, bigendian=True))[..., 0], RGB[..., 0])


@pytest.mark.parametrize('ext', ['.jpg', '.png'])
def test_compressed_color_and_gray(ext):
    blocks = np.zeros((H, W, 3), np.uint8)
    blocks[:, :W // 2, 0] = 250  # red left half, blue right half: checks the channel order
    blocks[:, W // 2:, 2] = 250
    ok, buf = cv2.imencode(ext, blocks[..., ::-1].copy())
    out = decode_compressed(CompressedImage(format=ext[1:], data=buf.tobytes()))
    assert out.shape == (H, W, 3)
    assert np.abs(out.astype(int) - blocks).mean() < (0.5 if ext == '.png' else 12)
    ok, buf = cv2.imencode('.png', RGB[..., 0].copy())
    np.testing.assert_array_equal(decode_compressed(CompressedImage(format='png', data=buf.tobytes()))[..., 2],
                                  RGB[..., 0])


@pytest.mark.parametrize('msg, reason', [
    (Image(height=H, width=W, encoding='weird42', step=W * 3, data=bytes(H * W * 3)), 'unknown encoding'),
    (Image(height=H, width=W, encoding='rgb8', step=W * 2, data=bytes(H * W * 2)), 'step'),
    (Image(height=H, width=W, encoding='rgb8', step=W * 3, data=bytes(H * W * 3 - 5)), 'data has'),
    (Image(height=0, width=W, encoding='rgb8', step=W * 3, data=b''), 'empty image'),
])
def test_malformed_images_raise_with_reason(msg, reason):
    with pytest.raises(ImageDecodeError, match=reason):
        decode_image(msg)


def test_malformed_compressed_raises():
    with pytest.raises(ImageDecodeError, match='cannot decode'):
        decode_compressed(CompressedImage(format='jpeg', data=b'not a jpeg'))


def huge_png_header(side: int) -> bytes:
    """A PNG whose header declares side x side RGB pixels, followed by a tiny IDAT."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack('>I', len(body)) + kind + body + struct.pack('>I', zlib.crc32(kind + body))
    header = struct.pack('>IIBBBBB', side, side, 8, 2, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(bytes(4096)))
            + chunk(b'IEND', b''))


def huge_bmp_header(side: int) -> bytes:
    """A 24-bit BMP header declaring side x side pixels, followed by 64 bytes."""
    return (struct.pack('<2sIHHI', b'BM', 54 + 64, 0, 0, 54)
            + struct.pack('<IiiHHIIiiII', 40, side, side, 1, 24, 0, 0, 2835, 2835, 0, 0) + bytes(64))


@pytest.mark.parametrize('data', [huge_png_header(100000), huge_bmp_header(100000)], ids=['png', 'bmp'])
def test_compressed_header_declaring_a_huge_image_raises_decode_error(data):
    """OpenCV refuses such files with cv2.error (its pixel limit); the node must get an ImageDecodeError
    (a drop), not an exception that ends its executor (found by the reliability fuzz)."""
    with pytest.raises(ImageDecodeError, match='cannot decode'):
        decode_compressed(CompressedImage(format='png', data=data))


def test_centre_crop_and_resize():
    frame = np.zeros((40, 80, 3), np.uint8)
    frame[:, 20:60] = 255  # the centred 40x40 square is white, the sides black
    out = crop_and_resize(frame, 8, CropConfig())
    assert out.shape == (8, 8, 3) and out.min() == 255
    zoom = crop_and_resize(frame, 8, CropConfig(scale=0.5))
    assert zoom.min() == 255
    box = crop_and_resize(frame, 8, CropConfig(box=(0, 0, 20, 40)))
    assert box.max() == 0
    with pytest.raises(ValueError, match='exceeds'):
        crop_and_resize(frame, 8, CropConfig(box=(70, 0, 20, 40)))
    with pytest.raises(ValueError, match='crop_scale'):
        CropConfig(scale=1.5)


def test_rosbags_image_is_imported_only_without_cv_bridge(tmp_path):
    """With a cv_bridge on the path (as on a ROS install) decoding does not import rosbags-image.
    cv_bridge is not on the package registries: a module with its two names stands in for the
    import check only (the conversions themselves are covered above with rosbags-image)."""
    (tmp_path / 'cv_bridge.py').write_text('class CvBridge: pass\nclass CvBridgeError(Exception): pass\n')
    probe = ('import sys, lewm_ros.camera.decoding as d; '
             'print(d.decoder_name(), "rosbags.image" in sys.modules)')
    with_bridge = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True, check=True,
                                 env={**os.environ, 'PYTHONPATH': str(tmp_path)}).stdout.split()
    assert with_bridge == ['cv_bridge', 'False']
    without = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True, check=True).stdout.split()
    assert without == ['rosbags-image', 'True']

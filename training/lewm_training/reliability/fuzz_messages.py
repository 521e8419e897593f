"""Malformed and random camera messages (sensor_msgs Image / CompressedImage) for the fuzz check.

Each generator takes a numpy Generator and returns (kind, message). Raw kinds: unknown or
garbage encodings, step and size mismatches, truncated data, huge or zero dimensions,
NaN/inf-filled float images, random data in every standard encoding (odd sizes, either byte
order, row padding), extreme aspect ratios, occasional large valid frames. Compressed kinds:
random bytes, truncated and bit-flipped jpeg/png/bmp/tiff/webp, headers declaring huge images
(decompression bombs), valid odd files (16-bit, grey, RGBA, 1x1), occasional large jpegs.
"""
from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage, Image

#: encoding -> (channels, numpy dtype) for every encoding sensor_msgs names.
ENCODINGS = {
    'rgb8': (3, 'u1'), 'bgr8': (3, 'u1'), 'rgba8': (4, 'u1'), 'bgra8': (4, 'u1'), 'mono8': (1, 'u1'),
    'rgb16': (3, 'u2'), 'bgr16': (3, 'u2'), 'rgba16': (4, 'u2'), 'bgra16': (4, 'u2'), 'mono16': (1, 'u2'),
    'bayer_rggb8': (1, 'u1'), 'bayer_bggr8': (1, 'u1'), 'bayer_gbrg8': (1, 'u1'), 'bayer_grbg8': (1, 'u1'),
    'bayer_rggb16': (1, 'u2'), 'bayer_bggr16': (1, 'u2'), 'bayer_gbrg16': (1, 'u2'), 'bayer_grbg16': (1, 'u2'),
    'yuv422': (2, 'u1'), 'uyvy': (2, 'u1'), 'yuyv': (2, 'u1'), 'yuv422_yuy2': (2, 'u1'),
    '8UC1': (1, 'u1'), '8UC3': (3, 'u1'), '8UC4': (4, 'u1'), '8SC1': (1, 'i1'), '8SC2': (2, 'i1'),
    '16UC1': (1, 'u2'), '16UC3': (3, 'u2'), '16SC1': (1, 'i2'), '32SC1': (1, 'i4'), '32SC4': (4, 'i4'),
    '32FC1': (1, 'f4'), '32FC2': (2, 'f4'), '32FC3': (3, 'f4'), '64FC1': (1, 'f8'), '64FC4': (4, 'f8'),
}
FLOAT_SPECIALS = np.array([np.nan, np.inf, -np.inf, 1e38, -1e38, 1e-45, 0.0])
UINT32_MAX = 2 ** 32 - 1


def _raw(height: int, width: int, encoding: str, step: int, data: bytes, bigendian: bool = False) -> Image:
    return Image(height=height, width=width, encoding=encoding, step=step, data=data,
                 is_bigendian=bigendian)


def _dims(rng: np.random.Generator, largest: int = 300) -> tuple[int, int]:
    return int(rng.integers(1, largest)), int(rng.integers(1, largest))


def _random_valid_layout(rng) -> tuple[str, Image]:
    encoding = str(rng.choice(list(ENCODINGS)))
    channels, dtype = ENCODINGS[encoding]
    height, width = _dims(rng)
    row = width * channels * np.dtype(dtype).itemsize
    step = row + int(rng.integers(0, 3)) * int(rng.integers(0, 16))
    return 'random_layout', _raw(height, width, encoding, step, rng.bytes(step * height), bool(rng.integers(2)))


def _unknown_encoding(rng) -> tuple[str, Image]:
    choices = ['', 'RGB8', 'rgb9', 'jpeg', '8UC5', '32FC0', 'bayer', '\x00rgb8', 'ÿÿÿ', 'r' * 1000, 'mono8 ',
               '16UC', 'yuv420', 'nv12', '64UC1']
    encoding = str(rng.choice(choices))
    height, width = _dims(rng)
    return 'unknown_encoding', _raw(height, width, encoding, width * 3, rng.bytes(width * 3 * height))


def _step_mismatch(rng) -> tuple[str, Image]:
    encoding = str(rng.choice(['rgb8', 'bgr8', 'mono8', 'mono16', '32FC1', 'rgba8', 'yuv422']))
    channels, dtype = ENCODINGS[encoding]
    height, width = _dims(rng)
    row = width * channels * np.dtype(dtype).itemsize
    step = int(rng.choice([0, 1, max(row - 1, 0), row // 2, UINT32_MAX, 2 ** 31, row * 1000]))
    size = min(step * height, 1 << 20) if rng.integers(2) else row * height
    return 'step_mismatch', _raw(height, width, encoding, step, rng.bytes(size))


def _size_mismatch(rng) -> tuple[str, Image]:
    encoding = str(rng.choice(list(ENCODINGS)))
    channels, dtype = ENCODINGS[encoding]
    height, width = _dims(rng)
    step = width * channels * np.dtype(dtype).itemsize
    size = max(0, step * height + int(rng.choice([-1, 1, -step, step, -step * height, 7])))
    return 'size_mismatch', _raw(height, width, encoding, step, rng.bytes(size))


def _huge_dims(rng) -> tuple[str, Image]:
    big = [UINT32_MAX, 2 ** 31, 2 ** 31 - 1, 65536, 100000, 2 ** 20]
    height = int(rng.choice(big + [1, 48]))
    width = int(rng.choice(big + [1, 64]))
    encoding = str(rng.choice(['rgb8', 'mono8', '32FC1', 'bgra16']))
    step = int(rng.choice([UINT32_MAX, width * 3 % (UINT32_MAX + 1), 0, 192]))
    return 'huge_dims', _raw(height, width, encoding, step, rng.bytes(int(rng.integers(0, 4096))))


def _zero_dims(rng) -> tuple[str, Image]:
    height, width = [(0, 64), (48, 0), (0, 0)][int(rng.integers(3))]
    return 'zero_dims', _raw(height, width, 'rgb8', width * 3, b'' if rng.integers(2) else rng.bytes(100))


def _float_specials(rng) -> tuple[str, Image]:
    encoding = str(rng.choice(['32FC1', '64FC1', '32FC3', '32FC2']))
    channels, dtype = ENCODINGS[encoding]
    height, width = _dims(rng, 120)
    mode = int(rng.integers(3))
    if mode == 0:    # every value special (all NaN, all inf, ...)
        values = np.full((height, width, channels), rng.choice(FLOAT_SPECIALS))
    elif mode == 1:  # specials sprinkled into a ramp
        values = rng.normal(size=(height, width, channels)) * 10.0 ** float(rng.integers(-30, 30))
        mask = rng.random(values.shape) < 0.3
        values[mask] = rng.choice(FLOAT_SPECIALS, size=int(mask.sum()))
    else:            # huge dynamic range
        values = rng.choice(FLOAT_SPECIALS, size=(height, width, channels))
    array = np.ascontiguousarray(values.astype(dtype))
    bigendian = bool(rng.integers(2))
    if bigendian:
        array = array.astype(array.dtype.newbyteorder('>'))
    return 'float_specials', _raw(height, width, encoding, array.strides[0], array.tobytes(), bigendian)


def _extreme_aspect(rng) -> tuple[str, Image]:
    long = int(rng.integers(2000, 20000))
    height, width = (1, long) if rng.integers(2) else (long, 1)
    return 'extreme_aspect', _raw(height, width, 'rgb8', width * 3, rng.bytes(width * 3 * height))


def _large_valid(rng) -> tuple[str, Image]:
    height, width = (1080, 1920) if rng.integers(2) else (2160, 3840)
    return 'large_valid', _raw(height, width, 'rgb8', width * 3, rng.bytes(width * 3 * height))


RAW_KINDS = [(_random_valid_layout, 0.30), (_unknown_encoding, 0.10), (_step_mismatch, 0.12),
             (_size_mismatch, 0.14), (_huge_dims, 0.10), (_zero_dims, 0.04), (_float_specials, 0.15),
             (_extreme_aspect, 0.04), (_large_valid, 0.01)]


# ---------------------------------------------------------------------------------- compressed
def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack('>I', len(body)) + kind + body + struct.pack('>I', zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_bomb_header(width: int, height: int, bit_depth: int = 8, colour_type: int = 2) -> bytes:
    """A PNG whose header declares width x height pixels, with a tiny IDAT (a decompression bomb)."""
    ihdr = struct.pack('>IIBBBBB', width, height, bit_depth, colour_type, 0, 0, 0)
    idat = zlib.compress(b'\x00' * 4096)
    return b'\x89PNG\r\n\x1a\n' + _png_chunk(b'IHDR', ihdr) + _png_chunk(b'IDAT', idat) + _png_chunk(b'IEND', b'')


def bmp_bomb_header(width: int, height: int) -> bytes:
    """A BMP header declaring width x height 24-bit pixels followed by a few bytes."""
    header = struct.pack('<2sIHHI', b'BM', 54 + 64, 0, 0, 54)
    info = struct.pack('<IiiHHIIiiII', 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return header + info + bytes(64)


class CompressedPool:
    """Valid encoded images (several formats, depths and sizes), encoded once."""

    def __init__(self, rng: np.random.Generator) -> None:
        smooth = cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (128, 96))
        self.valid: list[tuple[str, bytes]] = []
        for ext in ('.jpg', '.png', '.bmp', '.tiff', '.webp'):
            ok, buf = cv2.imencode(ext, smooth)
            if ok:
                self.valid.append((ext[1:], buf.tobytes()))
        odd = {'png16': smooth.astype(np.uint16) * 257, 'gray': smooth[..., 0],
               'rgba': np.dstack([smooth, smooth[..., 0]]),
               'one_pixel': smooth[:1, :1], 'gray16': smooth[..., 0].astype(np.uint16) * 257}
        self.odd = [(name, cv2.imencode('.png', array)[1].tobytes()) for name, array in odd.items()]
        ok, buf = cv2.imencode('.jpg', np.zeros((6000, 6000, 3), np.uint8))
        self.big_jpeg = buf.tobytes()


def compressed_message(rng: np.random.Generator, pool: CompressedPool) -> tuple[str, CompressedImage]:
    draw = rng.random()
    fmt = str(rng.choice(['jpeg', 'png', 'rgb8; jpeg compressed bgr8', '', 'garbage', 'tiff']))
    if draw < 0.25:
        kind, data = 'random_bytes', rng.bytes(int(rng.integers(0, 50000)))
    elif draw < 0.45:
        name, valid = pool.valid[int(rng.integers(len(pool.valid)))]
        kind, data = f'truncated_{name}', valid[:int(rng.integers(0, len(valid)))]
    elif draw < 0.70:
        name, valid = pool.valid[int(rng.integers(len(pool.valid)))]
        corrupt = bytearray(valid)
        for position in rng.integers(0, len(corrupt), int(rng.integers(1, 40))):
            corrupt[int(position)] = int(rng.integers(256))
        kind, data = f'bitflip_{name}', bytes(corrupt)
    elif draw < 0.80:
        side = int(rng.choice([65535, 100000, 2 ** 31 - 1, 50000]))
        if rng.integers(2):
            kind, data = 'png_bomb', png_bomb_header(side, int(rng.choice([side, 1, 30000])),
                                                     int(rng.choice([8, 16])), int(rng.choice([0, 2, 6])))
        else:
            kind, data = 'bmp_bomb', bmp_bomb_header(side, int(rng.choice([side, -side, 1])))
    elif draw < 0.998:
        pick = rng.integers(len(pool.odd) + len(pool.valid))
        name, data = (pool.odd + pool.valid)[int(pick)]
        kind = f'valid_{name}'
    else:
        kind, data = 'big_jpeg_6000px', pool.big_jpeg
    return kind, CompressedImage(format=fmt, data=data)


def raw_message(rng: np.random.Generator) -> tuple[str, Image]:
    generators, weights = zip(*RAW_KINDS)
    weights = np.asarray(weights) / np.sum(weights)
    return generators[int(rng.choice(len(generators), p=weights))](rng)

# Copyright 2026 eigen_depth_ros contributors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""
Convert sensor_msgs images to and from numpy arrays, without rclpy or cv_bridge.

The functions read and write message objects *duck-typed*: anything with the fields of
``sensor_msgs/msg/Image`` (``height``, ``width``, ``encoding``, ``is_bigendian``, ``step``,
``data``) or ``sensor_msgs/msg/CompressedImage`` (``format``, ``data``) works, so rclpy
messages, rosbags messages and plain test objects share one code path. ``data`` may be
``bytes``, ``bytearray``, ``array.array('B')`` (rclpy), a uint8 numpy array (rosbags) or a
list of ints.

Colour input (:func:`image_to_rgb`, :func:`compressed_to_rgb`) always comes back as a
C-contiguous RGB ``uint8`` array of shape (H, W, 3). Every bad frame raises
:class:`ImageConversionError` with a one-line message and a short :attr:`~ImageConversionError.
kind` that callers can use to throttle their logs per kind of fault.

Why not ``rosbags-image``: it converts correctly, but the node runs in apt ROS 2 installs where
rosbags is not packaged; this module needs only numpy and OpenCV (``python3-numpy``,
``python3-opencv``), both declared in package.xml.
"""
from __future__ import annotations

import array
from dataclasses import dataclass
import struct
import sys
from typing import Any

import cv2
import numpy as np

DEFAULT_MAX_PIXELS = 32 * 1024 * 1024
"""Largest accepted image (width * height), a guard against corrupt or hostile headers."""

NATIVE_BIGENDIAN = int(sys.byteorder == 'big')


class ImageConversionError(ValueError):
    """
    A message cannot be turned into an image; the text says exactly why, on one line.

    :param message: the one-line explanation.
    :param kind: a short tag of the fault (``encoding``, ``layout``, ``truncated``,
        ``empty``, ``too_large``, ``decode``, ``format``, ``depth_encoding``), stable across
        frames so that callers can throttle their logs per kind.
    """

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class _Encoding:
    """Memory layout of one colour encoding: channels, bytes per channel, channel order."""

    channels: int
    depth: int   # bytes per channel
    order: str   # 'rgb', 'bgr', 'mono', 'uyvy', 'yuyv'


COLOR_ENCODINGS: dict[str, _Encoding] = {
    'rgb8': _Encoding(3, 1, 'rgb'),
    'bgr8': _Encoding(3, 1, 'bgr'),
    'rgba8': _Encoding(4, 1, 'rgb'),
    'bgra8': _Encoding(4, 1, 'bgr'),
    'mono8': _Encoding(1, 1, 'mono'),
    'mono16': _Encoding(1, 2, 'mono'),
    'rgb16': _Encoding(3, 2, 'rgb'),
    'bgr16': _Encoding(3, 2, 'bgr'),
    'rgba16': _Encoding(4, 2, 'rgb'),
    'bgra16': _Encoding(4, 2, 'bgr'),
    'yuv422': _Encoding(2, 1, 'uyvy'),
    'uyvy': _Encoding(2, 1, 'uyvy'),
    'yuv422_yuy2': _Encoding(2, 1, 'yuyv'),
    'yuyv': _Encoding(2, 1, 'yuyv'),
}
"""Encodings :func:`image_to_rgb` accepts (names as in sensor_msgs/image_encodings.hpp)."""

# Single- and multi-channel numeric encodings: OpenCV type names and the two REP 118 depths.
_NUMERIC_DTYPES = {'8U': 'u1', '8S': 'i1', '16U': 'u2', '16S': 'i2', '32S': 'i4',
                   '32F': 'f4', '64F': 'f8'}


def _numeric_layout(encoding: str) -> tuple[int, np.dtype] | None:
    """Channels and dtype of an OpenCV-style encoding such as ``32FC1``; None if not one."""
    upper = encoding.upper()
    for prefix, code in _NUMERIC_DTYPES.items():
        if upper.startswith(prefix + 'C') and upper[len(prefix) + 1:].isdigit():
            return int(upper[len(prefix) + 1:]), np.dtype(code)
    return None


def _as_uint8(data: Any) -> np.ndarray:
    """View (or, for a list, copy) a message's ``data`` field as a flat uint8 array."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    if isinstance(data, (bytes, bytearray, memoryview)) or hasattr(data, 'buffer_info'):
        return np.frombuffer(data, dtype=np.uint8)
    return np.asarray(data, dtype=np.uint8).reshape(-1)


def _check_size(width: int, height: int, max_pixels: int) -> None:
    """Reject empty images and images above ``max_pixels``."""
    if width <= 0 or height <= 0:
        raise ImageConversionError(f'image is {width}x{height} (width x height): empty',
                                   'empty')
    if width * height > max_pixels:
        raise ImageConversionError(
            f'image is {width}x{height} = {width * height} pixels, above the limit of '
            f'{max_pixels} pixels', 'too_large')


def _image_rows(msg: Any, bytes_per_pixel: int, max_pixels: int) -> np.ndarray:
    """
    Validate an Image's size, step and data length; return its pixel bytes.

    :return: uint8 (height, width * bytes_per_pixel), a view that skips any row padding.
    """
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    _check_size(width, height, max_pixels)
    row_bytes = width * bytes_per_pixel
    if step < row_bytes:
        raise ImageConversionError(
            f'step {step} is smaller than width {width} x {bytes_per_pixel} bytes per pixel '
            f'({msg.encoding}) = {row_bytes}', 'layout')
    data = _as_uint8(msg.data)
    if data.size < step * height:
        raise ImageConversionError(
            f'data holds {data.size} bytes but step {step} x height {height} needs '
            f'{step * height} (truncated frame)', 'truncated')
    return data[:step * height].reshape(height, step)[:, :row_bytes]


def image_to_array(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """
    Return the pixels of an Image in their own type, honouring ``step`` and ``is_bigendian``.

    Works for the colour encodings of :data:`COLOR_ENCODINGS` and for OpenCV-style numeric
    encodings (``32FC1``, ``16UC1``, ``8UC3``, ...).

    :param msg: a sensor_msgs/Image (duck-typed).
    :param max_pixels: the largest accepted width * height.
    :return: a new C-contiguous array (H, W) for one channel, else (H, W, C), in native
        byte order.
    :raises ImageConversionError: for an unknown encoding, a bad layout or truncated data.
    """
    encoding = str(msg.encoding)
    color = COLOR_ENCODINGS.get(encoding) or COLOR_ENCODINGS.get(encoding.lower())
    if color is not None:
        channels, dtype = color.channels, np.dtype(f'u{color.depth}')
    else:
        numeric = _numeric_layout(encoding)
        if numeric is None:
            raise ImageConversionError(f'unsupported image encoding {encoding!r}',
                                       'encoding')
        channels, dtype = numeric
    rows = _image_rows(msg, channels * dtype.itemsize, max_pixels)
    order = '>' if int(msg.is_bigendian) else '<'
    pixels = np.ascontiguousarray(rows).view(dtype.newbyteorder(order))
    pixels = pixels.reshape(int(msg.height), int(msg.width), channels)
    if channels == 1:
        pixels = pixels[:, :, 0]
    return np.array(pixels, dtype=dtype.newbyteorder('='), order='C', copy=True)


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Scale 16-bit pixels to 8 bits (0..65535 -> 0..255, rounded); pass uint8 through."""
    if pixels.dtype == np.uint8:
        return pixels
    return ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def image_to_rgb(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """
    Convert a camera Image into RGB uint8 (H, W, 3), whatever its colour encoding.

    rgb8/bgr8 and their 16-bit and alpha variants are reordered to R, G, B (alpha dropped,
    16 bits scaled to 8); mono8/mono16 are replicated into three grey channels; yuv422
    (UYVY) and yuv422_yuy2 (YUYV) are converted with OpenCV's BT.601 formulas.

    :param msg: a sensor_msgs/Image (duck-typed).
    :param max_pixels: the largest accepted width * height.
    :return: a new C-contiguous RGB uint8 array (H, W, 3).
    :raises ImageConversionError: for a depth or other non-colour encoding, an unknown
        encoding, ``step`` < width * bytes per pixel, data shorter than step * height, an
        empty image or one above ``max_pixels``.
    """
    encoding = str(msg.encoding)
    layout = COLOR_ENCODINGS.get(encoding) or COLOR_ENCODINGS.get(encoding.lower())
    if layout is None:
        if _numeric_layout(encoding) is not None:
            raise ImageConversionError(
                f'image encoding {encoding!r} holds numbers (depth or raw data), not a colour '
                'camera image: connect the colour topic of the camera', 'depth_encoding')
        if encoding.lower().startswith('bayer'):
            raise ImageConversionError(
                f'image encoding {encoding!r} is a raw Bayer mosaic: debayer it first '
                f'(image_proc) and feed the colour image', 'encoding')
        raise ImageConversionError(
            f'unsupported image encoding {encoding!r}; supported: '
            f'{", ".join(COLOR_ENCODINGS)}', 'encoding')
    if layout.order in ('uyvy', 'yuyv') and int(msg.width) % 2:
        raise ImageConversionError(f'{encoding} image width {msg.width} is odd', 'layout')
    pixels = image_to_array(msg, max_pixels)
    if layout.order == 'uyvy':
        return cv2.cvtColor(pixels, cv2.COLOR_YUV2RGB_UYVY)
    if layout.order == 'yuyv':
        return cv2.cvtColor(pixels, cv2.COLOR_YUV2RGB_YUYV)
    pixels = _to_uint8(pixels)
    if layout.order == 'mono':
        return np.ascontiguousarray(np.repeat(pixels[:, :, None], 3, axis=2))
    if layout.order == 'bgr':
        return np.ascontiguousarray(pixels[:, :, 2::-1])
    return np.ascontiguousarray(pixels[:, :, :3])


def _png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, or None when ``data`` is no PNG."""
    if len(data) >= 24 and data[:8] == b'\x89PNG\r\n\x1a\n' and data[12:16] == b'IHDR':
        return struct.unpack('>II', data[16:24])
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's start-of-frame segment, or None when not found."""
    if data[:2] != b'\xff\xd8':
        return None
    pos = 2
    while pos + 9 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        length = struct.unpack('>H', data[pos + 2:pos + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack('>HH', data[pos + 5:pos + 9])
            return width, height
        pos += 2 + length
    return None


def compressed_to_rgb(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """
    Decode a CompressedImage (JPEG, PNG or anything OpenCV reads) into RGB uint8 (H, W, 3).

    The image size is read from the PNG or JPEG header before decoding, so an oversized
    frame is refused without allocating it. Grey frames come back as three equal channels,
    16-bit PNGs scaled to 8 bits.

    :param msg: a sensor_msgs/CompressedImage (duck-typed).
    :param max_pixels: the largest accepted width * height.
    :return: a new C-contiguous RGB uint8 array (H, W, 3).
    :raises ImageConversionError: for ``compressedDepth`` frames, empty or undecodable
        data, and images above ``max_pixels``.
    """
    fmt = str(getattr(msg, 'format', ''))
    if 'compresseddepth' in fmt.lower():
        raise ImageConversionError(
            f'compressed format {fmt!r} holds depth, not a colour camera image', 'format')
    data = _as_uint8(msg.data)
    if data.size == 0:
        raise ImageConversionError(f'compressed frame (format {fmt!r}) has no data',
                                   'empty')
    head = data[:65536].tobytes()
    size = _png_size(head) or _jpeg_size(head)
    if size is not None:
        _check_size(size[0], size[1], max_pixels)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None or bgr.ndim != 3 or bgr.shape[2] != 3:
        raise ImageConversionError(
            f'could not decode the compressed frame (format {fmt!r}, {data.size} bytes): '
            f'corrupt or not an image', 'decode')
    _check_size(bgr.shape[1], bgr.shape[0], max_pixels)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def message_to_rgb(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Convert an Image or a CompressedImage (told apart by a ``format`` field) to RGB."""
    if hasattr(msg, 'format') and not hasattr(msg, 'encoding'):
        return compressed_to_rgb(msg, max_pixels)
    return image_to_rgb(msg, max_pixels)


def byte_array(values: np.ndarray) -> array.array:
    """
    Copy the bytes of a numpy array into an ``array.array('B')``, the type of a uint8[] field.

    rclpy stores ``uint8[]`` message fields as ``array.array('B')``. With field checks on
    (``ROS_PYTHON_CHECK_FIELDS=1``) it keeps an ``array.array`` as it is, but checks any other
    value element by element in Python: 100 ms for a 1.9 MB depth image given as ``bytes``,
    0.7 ms given as this. With checks off (the default) it copies either with one memcpy.
    """
    data = array.array('B')
    data.frombytes(np.ascontiguousarray(values).reshape(-1).view(np.uint8))
    return data


def array_to_image_fields(pixels: np.ndarray, encoding: str) -> dict[str, Any]:
    """
    Return the fields of a sensor_msgs/Image holding ``pixels`` (no header).

    :param pixels: (H, W) or (H, W, C) pixels whose dtype and channels fit ``encoding``.
    :param encoding: the Image encoding, e.g. ``32FC1``, ``rgb8``, ``mono16``.
    :return: ``height``, ``width``, ``encoding``, ``is_bigendian``, ``step`` and ``data``
        (see :func:`byte_array`; rows packed without padding, native byte order).
    """
    pixels = np.ascontiguousarray(pixels)
    if pixels.ndim not in (2, 3):
        raise ValueError(f'expected an (H, W) or (H, W, C) array, got shape {pixels.shape}')
    height, width = pixels.shape[:2]
    channels = pixels.shape[2] if pixels.ndim == 3 else 1
    return {'height': height, 'width': width, 'encoding': encoding,
            'is_bigendian': NATIVE_BIGENDIAN if pixels.dtype.itemsize > 1 else 0,
            'step': width * pixels.itemsize * channels, 'data': byte_array(pixels)}


def depth_to_image_fields(depth: np.ndarray) -> dict[str, Any]:
    """
    Return the fields of a REP 118 depth Image: ``32FC1`` metres, NaN where invalid.

    :param depth: (H, W) depth in metres (any float dtype; non-positive values become NaN).
    """
    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim != 2:
        raise ValueError(f'expected an (H, W) depth map, got shape {depth.shape}')
    depth = np.where(depth > 0, depth, np.float32(np.nan))  # NaN stays NaN, <= 0 invalid
    return array_to_image_fields(depth, '32FC1')


def image_to_depth(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """
    Read a depth Image as float32 metres with NaN where invalid (REP 118).

    ``32FC1`` is taken as metres (non-finite or non-positive -> NaN); ``16UC1`` as
    millimetres (0 -> NaN).

    :raises ImageConversionError: for any other encoding or a bad layout.
    """
    encoding = str(msg.encoding).upper()
    if encoding not in ('32FC1', '16UC1'):
        raise ImageConversionError(
            f'depth image encoding {msg.encoding!r} is neither 32FC1 nor 16UC1', 'encoding')
    depth = image_to_array(msg, max_pixels).astype(np.float32)
    if encoding == '16UC1':
        depth /= 1000.0
    depth[~(np.isfinite(depth) & (depth > 0))] = np.nan
    return depth


def colorize_depth(depth: np.ndarray, min_depth: float, max_depth: float,
                   colormap: int = cv2.COLORMAP_TURBO) -> np.ndarray:
    """
    Colour-map a depth image for people: near is red, far is blue, invalid is black.

    The colour follows inverse depth, ``t = (1/d - 1/max) / (1/min - 1/max)`` clipped to
    [0, 1], so nearby structure gets most of the colour range; depths outside
    [min_depth, max_depth] saturate.

    :param depth: (H, W) metres, NaN or <= 0 where invalid.
    :param min_depth: depth (m, > 0) shown in the nearest colour.
    :param max_depth: depth (m, > min_depth) shown in the farthest colour.
    :param colormap: an OpenCV colormap id.
    :return: RGB uint8 (H, W, 3).
    """
    if not 0 < min_depth < max_depth:
        raise ValueError(f'need 0 < min_depth < max_depth, got {min_depth}, {max_depth}')
    depth = np.asarray(depth, dtype=np.float32)
    valid = np.isfinite(depth) & (depth > 0)
    with np.errstate(divide='ignore', invalid='ignore'):
        t = (1.0 / depth - 1.0 / max_depth) / (1.0 / min_depth - 1.0 / max_depth)
    level = np.where(valid, np.clip(t, 0.0, 1.0) * 255.0 + 0.5, 0.0).astype(np.uint8)
    rgb = cv2.cvtColor(cv2.applyColorMap(level, colormap), cv2.COLOR_BGR2RGB)
    rgb[~valid] = 0
    return rgb


def set_fields(msg: Any, fields: dict[str, Any]) -> Any:
    """Assign ``fields`` to the attributes of ``msg`` and return ``msg``."""
    for name, value in fields.items():
        setattr(msg, name, value)
    return msg

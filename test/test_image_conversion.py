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

"""Tests of eigen_depth_ros.msg.image_conversion: Image/CompressedImage <-> numpy, no rclpy."""
from __future__ import annotations

import array
from types import SimpleNamespace

import cv2
from eigen_depth_ros.msg.image_conversion import (array_to_image_fields, colorize_depth,
                                                  compressed_to_rgb, depth_to_image_fields,
                                                  image_to_array, image_to_depth, image_to_rgb,
                                                  ImageConversionError, message_to_rgb)
from hypothesis import given, settings, strategies as st
import numpy as np
import pytest

RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


def make_image(pixels: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False,
               data_type: str = 'bytes') -> SimpleNamespace:
    """Build a duck-typed Image whose rows carry ``pad`` garbage bytes after the pixels."""
    height, width = pixels.shape[:2]
    order = '>' if bigendian else '<'
    raw = np.ascontiguousarray(pixels.astype(pixels.dtype.newbyteorder(order)))
    rows = raw.view(np.uint8).reshape(height, -1)
    padded = np.full((height, rows.shape[1] + pad), 0xAB, dtype=np.uint8)
    padded[:, :rows.shape[1]] = rows
    flat = padded.reshape(-1)
    data = {'bytes': flat.tobytes(), 'bytearray': bytearray(flat.tobytes()),
            'array': array.array('B', flat.tobytes()), 'numpy': flat.copy(),
            'list': flat.tolist()}[data_type]
    return SimpleNamespace(height=height, width=width, encoding=encoding,
                           is_bigendian=int(bigendian), step=padded.shape[1], data=data)


@pytest.mark.parametrize('data_type', ['bytes', 'bytearray', 'array', 'numpy', 'list'])
@pytest.mark.parametrize('encoding,pixels', [
    ('rgb8', RGB),
    ('bgr8', RGB[:, :, ::-1]),
    ('rgba8', np.dstack([RGB, np.full((5, 7), 9, np.uint8)])),
    ('bgra8', np.dstack([RGB[:, :, ::-1], np.full((5, 7), 9, np.uint8)])),
])
def test_colour_encodings_come_back_as_rgb(encoding: str, pixels: np.ndarray,
                                           data_type: str) -> None:
    out = image_to_rgb(make_image(pixels, encoding, pad=3, data_type=data_type))
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3) and out.flags['C_CONTIGUOUS']
    np.testing.assert_array_equal(out, RGB)


@pytest.mark.parametrize('bigendian', [False, True])
def test_sixteen_bit_encodings_honour_byte_order(bigendian: bool) -> None:
    grey = RNG.integers(0, 256, (4, 6), dtype=np.uint8)
    mono16 = make_image(grey.astype(np.uint16) * 257, 'mono16', pad=2, bigendian=bigendian)
    np.testing.assert_array_equal(image_to_rgb(mono16), np.dstack([grey] * 3))
    np.testing.assert_array_equal(image_to_array(mono16), grey.astype(np.uint16) * 257)
    bgr16 = make_image(RGB[:, :, ::-1].astype(np.uint16) * 257, 'bgr16', bigendian=bigendian)
    np.testing.assert_array_equal(image_to_rgb(bgr16), RGB)


def test_mono8_becomes_three_equal_channels() -> None:
    grey = RGB[:, :, 0]
    out = image_to_rgb(make_image(grey, 'mono8', pad=1))
    np.testing.assert_array_equal(out, np.dstack([grey] * 3))


def test_yuv422_grey() -> None:
    # UYVY with U = V = 128 is grey: video-range luma 16..235 maps to 0..255.
    data = bytes([128, 100] * 8)
    for encoding, payload in (('yuv422', data), ('yuv422_yuy2', bytes([100, 128] * 8))):
        msg = SimpleNamespace(height=2, width=4, encoding=encoding, is_bigendian=0, step=8,
                              data=payload)
        expected = round((100 - 16) * 255 / 219)
        assert np.abs(image_to_rgb(msg).astype(int) - expected).max() <= 1


def test_real_sensor_msgs_image() -> None:
    sensor_msgs = pytest.importorskip('sensor_msgs.msg')
    msg = sensor_msgs.Image(height=5, width=7, encoding='bgr8', step=7 * 3)
    msg.data = RGB[:, :, ::-1].tobytes()
    assert isinstance(msg.data, array.array)
    np.testing.assert_array_equal(message_to_rgb(msg), RGB)


@pytest.mark.parametrize('encoding,words', [
    ('32FC1', 'holds numbers'), ('16UC1', 'holds numbers'), ('8UC3', 'holds numbers'),
    ('bayer_rggb8', 'Bayer'), ('yuv420', 'unsupported image encoding'),
])
def test_non_colour_encodings_are_rejected(encoding: str, words: str) -> None:
    msg = SimpleNamespace(height=2, width=2, encoding=encoding, is_bigendian=0, step=8,
                          data=bytes(16))
    with pytest.raises(ImageConversionError, match=words) as info:
        image_to_rgb(msg)
    assert encoding in str(info.value) and '\n' not in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize('change,kind,words', [
    ({'step': 20}, 'layout', 'step 20 is smaller than width 7 x 3'),
    ({'data': bytes(5 * 21 - 1)}, 'truncated', 'truncated'),
    ({'width': 0}, 'empty', 'empty'),
    ({'height': 0}, 'empty', 'empty'),
    ({'width': 100000, 'height': 100000}, 'too_large', 'above the limit'),
])
def test_bad_layouts_are_rejected(change: dict, kind: str, words: str) -> None:
    msg = make_image(RGB, 'rgb8')
    for name, value in change.items():
        setattr(msg, name, value)
    with pytest.raises(ImageConversionError, match=words) as info:
        image_to_rgb(msg)
    assert info.value.kind == kind


def test_max_pixels_is_configurable() -> None:
    msg = make_image(RGB, 'rgb8')
    assert image_to_rgb(msg, max_pixels=35).shape == (5, 7, 3)
    with pytest.raises(ImageConversionError, match='35 pixels, above the limit of 34'):
        image_to_rgb(msg, max_pixels=34)


@settings(max_examples=40, deadline=None)
@given(height=st.integers(1, 9), width=st.integers(1, 9), pad=st.integers(0, 5),
       encoding=st.sampled_from(['rgb8', 'bgr8', 'rgba8', 'bgra8', 'rgb16', 'bgra16']),
       bigendian=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_random_layouts_round_trip(height: int, width: int, pad: int, encoding: str,
                                   bigendian: bool, seed: int) -> None:
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    pixels = rgb[:, :, ::-1] if encoding.startswith('bgr') else rgb
    if 'a' in encoding[3:4]:
        pixels = np.dstack([pixels, np.zeros((height, width), np.uint8)])
    if encoding.endswith('16'):
        pixels = pixels.astype(np.uint16) * 257
    msg = make_image(pixels, encoding, pad=pad, bigendian=bigendian)
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)


def compressed(data: bytes, fmt: str) -> SimpleNamespace:
    return SimpleNamespace(format=fmt, data=data)


def test_png_is_decoded_exactly_in_rgb_order() -> None:
    ok, png = cv2.imencode('.png', RGB[:, :, ::-1])  # OpenCV writes BGR memory
    assert ok
    np.testing.assert_array_equal(compressed_to_rgb(compressed(png.tobytes(), 'png')), RGB)
    np.testing.assert_array_equal(
        message_to_rgb(compressed(png.tobytes(), 'rgb8; png compressed bgr8')), RGB)


def test_grey_and_sixteen_bit_png() -> None:
    grey = RGB[:, :, 1]
    _, png8 = cv2.imencode('.png', grey)
    np.testing.assert_array_equal(compressed_to_rgb(compressed(png8.tobytes(), 'png')),
                                  np.dstack([grey] * 3))
    _, png16 = cv2.imencode('.png', grey.astype(np.uint16) * 257)
    out = compressed_to_rgb(compressed(png16.tobytes(), 'png'))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.dstack([grey] * 3))


def test_jpeg_is_decoded() -> None:
    flat = np.zeros((16, 24, 3), np.uint8)
    flat[:] = (200, 40, 10)
    _, jpg = cv2.imencode('.jpg', flat[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    out = compressed_to_rgb(compressed(jpg.tobytes(), 'jpeg'))
    assert out.shape == (16, 24, 3)
    assert np.abs(out.astype(int) - (200, 40, 10)).max() <= 4


@pytest.mark.parametrize('data,fmt,kind,words', [
    (b'', 'jpeg', 'empty', 'no data'),
    (bytes(range(256)) * 4, 'jpeg', 'decode', 'could not decode'),
    (b'\xff\xd8\xff\xe0' + bytes(300), 'jpeg', 'decode', 'could not decode'),
    (b'abc', '16UC1; compressedDepth png', 'format', 'holds depth'),
])
def test_bad_compressed_frames(data: bytes, fmt: str, kind: str, words: str) -> None:
    with pytest.raises(ImageConversionError, match=words) as info:
        compressed_to_rgb(compressed(data, fmt))
    assert info.value.kind == kind


def test_truncated_png_is_refused() -> None:
    _, png = cv2.imencode('.png', RNG.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    with pytest.raises(ImageConversionError, match='could not decode') as info:
        compressed_to_rgb(compressed(png.tobytes()[:len(png) // 2], 'png'))
    assert info.value.kind == 'decode'


@pytest.mark.parametrize('ext', ['.png', '.jpg'])
def test_huge_compressed_frame_refused_from_its_header(ext: str) -> None:
    _, blob = cv2.imencode(ext, np.zeros((50, 60, 3), np.uint8))
    with pytest.raises(ImageConversionError, match='60x50 = 3000 pixels') as info:
        compressed_to_rgb(compressed(blob.tobytes(), ext[1:]), max_pixels=2999)
    assert info.value.kind == 'too_large'
    # A PNG header claiming 100000 x 100000 is refused before any decoding.
    fake = bytearray(blob.tobytes()) if ext == '.png' else None
    if fake is not None:
        fake[16:24] = (100000).to_bytes(4, 'big') * 2
        with pytest.raises(ImageConversionError, match='above the limit'):
            compressed_to_rgb(compressed(bytes(fake), 'png'))


def test_depth_image_round_trip_with_nan() -> None:
    depth = np.array([[1.5, np.nan, 0.0], [-2.0, 80.0, np.inf]], dtype=np.float32)
    fields = depth_to_image_fields(depth)
    assert fields['encoding'] == '32FC1'
    assert (fields['height'], fields['width'], fields['step']) == (2, 3, 12)
    assert len(fields['data']) == 24
    back = image_to_depth(SimpleNamespace(**fields))
    np.testing.assert_array_equal(back, np.array([[1.5, np.nan, np.nan],
                                                  [np.nan, 80.0, np.nan]], np.float32))


def test_sixteen_bit_depth_is_millimetres() -> None:
    mm = np.array([[0, 1000], [2500, 65535]], dtype=np.uint16)
    msg = SimpleNamespace(**array_to_image_fields(mm, '16UC1'))
    np.testing.assert_allclose(image_to_depth(msg), [[np.nan, 1.0], [2.5, 65.535]])
    with pytest.raises(ImageConversionError, match='neither 32FC1 nor 16UC1'):
        image_to_depth(make_image(RGB, 'rgb8'))


def test_colorize_depth_near_red_far_blue_invalid_black() -> None:
    depth = np.array([[1.0, 50.0, np.nan, 0.0]], dtype=np.float32)
    rgb = colorize_depth(depth, 1.0, 50.0)
    assert rgb.shape == (1, 4, 3) and rgb.dtype == np.uint8
    near, far = rgb[0, 0].astype(int), rgb[0, 1].astype(int)
    assert near[0] > near[2] and far[2] > far[0]
    np.testing.assert_array_equal(rgb[0, 2:], 0)
    with pytest.raises(ValueError):
        colorize_depth(depth, 0.0, 10.0)

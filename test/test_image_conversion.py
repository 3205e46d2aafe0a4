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
import warnings

import cv2
from eigen_depth_ros.msg.image_conversion import (array_to_image_fields, colorize_depth,
                                                  compressed_to_rgb, depth_to_image_fields,
                                                  image_to_array, image_to_depth, image_to_rgb,
                                                  ImageConversionError, message_to_rgb,
                                                  set_fields)
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


# ---------------------------------------------------------------- exact values (mutants)

def test_upper_case_encodings_are_accepted() -> None:
    np.testing.assert_array_equal(image_to_rgb(make_image(RGB, 'RGB8')), RGB)
    np.testing.assert_array_equal(image_to_rgb(make_image(RGB[:, :, ::-1], 'BGR8')), RGB)
    mono16 = make_image(np.array([[1, 258]], np.uint16), 'MONO16')
    assert image_to_array(mono16).tolist() == [[1, 258]]


@pytest.mark.parametrize('encoding,kind,message', [
    ('32FC1', 'depth_encoding', "image encoding '32FC1' holds numbers (depth or raw data), not "
     'a colour camera image: connect the colour topic of the camera'),
    ('bayer_rggb8', 'encoding', "image encoding 'bayer_rggb8' is a raw Bayer mosaic: debayer it "
     'first (image_proc) and feed the colour image'),
    ('yuv420', 'encoding', "unsupported image encoding 'yuv420'; supported: rgb8, bgr8, rgba8, "
     'bgra8, mono8, mono16, rgb16, bgr16, rgba16, bgra16, yuv422, uyvy, yuv422_yuy2, yuyv'),
])
def test_rejected_encodings_say_what_to_do(encoding: str, kind: str, message: str) -> None:
    msg = SimpleNamespace(height=2, width=2, encoding=encoding, is_bigendian=0, step=8,
                          data=bytes(16))
    with pytest.raises(ImageConversionError) as info:
        image_to_rgb(msg)
    assert (info.value.kind, str(info.value)) == (kind, message)


def test_image_to_array_names_an_unknown_encoding() -> None:
    msg = SimpleNamespace(height=2, width=2, encoding='yuv420', is_bigendian=0, step=8,
                          data=bytes(16))
    with pytest.raises(ImageConversionError) as info:
        image_to_array(msg)
    assert info.value.kind == 'encoding'
    assert str(info.value) == "unsupported image encoding 'yuv420'"


@pytest.mark.parametrize('encoding', ['yuv422', 'yuv422_yuy2'])
def test_yuv422_needs_an_even_width(encoding: str) -> None:
    msg = SimpleNamespace(height=2, width=3, encoding=encoding, is_bigendian=0, step=6,
                          data=bytes(12))
    with pytest.raises(ImageConversionError) as info:
        image_to_rgb(msg)
    assert (info.value.kind, str(info.value)) == ('layout', f'{encoding} image width 3 is odd')


def test_a_truncated_frame_says_how_many_bytes_it_needs() -> None:
    msg = make_image(RGB, 'rgb8')
    msg.data = msg.data[:-1]
    with pytest.raises(ImageConversionError) as info:
        image_to_rgb(msg)
    assert str(info.value) == \
        'data holds 104 bytes but step 21 x height 5 needs 105 (truncated frame)'


def test_big_endian_numeric_images_come_back_native_and_new() -> None:
    depth = np.array([[1.5, 2.25], [-3.0, 80.0]], np.float32)
    msg = make_image(depth, '32FC1', bigendian=True)
    pixels = image_to_array(msg)
    assert pixels.dtype == np.dtype('=f4') and pixels.flags['C_CONTIGUOUS']
    assert pixels.tolist() == depth.tolist()
    # a new array, also where it could be a view of the (read-only) message bytes
    native = image_to_array(make_image(depth, '32FC1'))
    assert native.flags['WRITEABLE'] and native.tolist() == depth.tolist()
    millimetres = np.array([[1000, 2500], [0, 513]], np.uint16)   # 513 = 0x0201
    back = image_to_depth(make_image(millimetres, '16UC1', bigendian=True))
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, np.array([[1.0, 2.5], [np.nan, 0.513]], np.float32))


def test_every_sixteen_bit_value_is_rounded_to_eight_bits() -> None:
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    rgb = image_to_rgb(make_image(values, 'mono16'))
    assert rgb.dtype == np.uint8
    # 0..65535 -> 0..255 is v / 257, rounded (no ties: v / 257 is never k + 1/2)
    np.testing.assert_array_equal(rgb[:, :, 0], np.rint(values / 257.0).astype(np.uint8))


def test_numpy_data_of_any_shape_and_nested_lists_are_read_as_bytes() -> None:
    flat = make_image(RGB, 'rgb8', pad=3, data_type='numpy')
    rows = SimpleNamespace(**{**vars(flat), 'data': flat.data.reshape(5, 24)})
    np.testing.assert_array_equal(image_to_rgb(rows), RGB)
    nested = SimpleNamespace(**{**vars(flat), 'data': flat.data.reshape(5, 24).tolist()})
    np.testing.assert_array_equal(image_to_rgb(nested), RGB)


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    """Return one JPEG marker segment: FF, marker, big-endian length + 2, payload."""
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, 'big') + payload


def start_of_frame(marker: int, width: int, height: int) -> bytes:
    """Return a start-of-frame segment: precision 8, height, width, one component."""
    return jpeg_segment(marker, bytes([8]) + height.to_bytes(2, 'big') +
                        width.to_bytes(2, 'big') + bytes([1, 1, 0x11, 0]))


@pytest.mark.parametrize('sof', [0xC0, 0xC2, 0xC5, 0xC9, 0xCD, 0xCF])
def test_jpeg_size_is_read_past_every_other_marker(sof: int) -> None:
    from eigen_depth_ros.msg.image_conversion import _jpeg_size
    # Segments that look like a size of 1x1 if read as a frame: DHT (C4), JPG (C8), DAC (CC).
    decoy = bytes([8, 0, 1, 0, 1, 1, 1, 0x11, 0])
    stream = (b'\xff\xd8' + jpeg_segment(0xE0, b'JFIF\x00' + bytes(9))
              + b'\xff' + jpeg_segment(0xC4, decoy)             # a fill byte before DHT
              + b'\xff\x01\xff\xd0\xff\xd7\xff\xd8'             # markers without a length
              + jpeg_segment(0xC8, decoy) + jpeg_segment(0xCC, decoy)
              + start_of_frame(sof, 40000, 300))
    assert _jpeg_size(stream) == (40000, 300)


def test_jpeg_size_edge_cases() -> None:
    from eigen_depth_ros.msg.image_conversion import _jpeg_size
    frame = start_of_frame(0xC0, 640, 480)
    # the frame header may end the data: its first 9 bytes hold the size
    assert _jpeg_size(b'\xff\xd8' + frame[:9]) == (640, 480)
    assert _jpeg_size(b'\xff\xd8' + frame[:8]) is None
    # an application segment of 32 KiB and more (its length has the top bit set)
    assert _jpeg_size(b'\xff\xd8' + jpeg_segment(0xE1, bytes(0x8000)) + frame) == (640, 480)
    # no frame header, a frame header without its FF, and no JPEG at all
    assert _jpeg_size(b'\xff\xd8' + jpeg_segment(0xE0, bytes(14))) is None
    assert _jpeg_size(b'\xff\xd8\x00' + frame[1:]) is None
    assert _jpeg_size(b'\xff\xd9' + frame) is None


def test_png_size_from_the_first_24_bytes() -> None:
    from eigen_depth_ros.msg.image_conversion import _png_size
    header = b'\x89PNG\r\n\x1a\n' + b'\x00\x00\x00\x0d' + b'IHDR'
    assert _png_size(header + (2 ** 31).to_bytes(4, 'big') + (7).to_bytes(4, 'big')) == \
        (2 ** 31, 7)
    assert _png_size(header + bytes(7)) is None                      # cut short
    assert _png_size(b'GIF89a' + bytes(6) + b'IHDR' + bytes(8)) is None  # not a PNG


def test_compressed_sizes_are_checked_as_width_by_height() -> None:
    # A PNG header claiming 100000 x 10 is refused before decoding (the data is no image).
    header = (b'\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR' + (100000).to_bytes(4, 'big')
              + (10).to_bytes(4, 'big') + bytes(20))
    with pytest.raises(ImageConversionError) as info:
        compressed_to_rgb(compressed(header, 'png'), max_pixels=999_999)
    assert (info.value.kind, str(info.value)) == (
        'too_large', 'image is 100000x10 = 1000000 pixels, above the limit of 999999 pixels')
    # A BMP has no header this module reads: checked after decoding, width by height.
    _, bmp = cv2.imencode('.bmp', np.zeros((50, 60, 3), np.uint8))
    with pytest.raises(ImageConversionError) as info:
        compressed_to_rgb(compressed(bmp.tobytes(), 'bmp'), max_pixels=2999)
    assert str(info.value) == 'image is 60x50 = 3000 pixels, above the limit of 2999 pixels'
    assert compressed_to_rgb(compressed(bmp.tobytes(), 'bmp'), max_pixels=3000).shape == \
        (50, 60, 3)


def test_a_compressed_message_without_a_format_field() -> None:
    _, png = cv2.imencode('.png', RGB[:, :, ::-1])
    np.testing.assert_array_equal(compressed_to_rgb(SimpleNamespace(data=png.tobytes())), RGB)
    with pytest.raises(ImageConversionError) as info:
        compressed_to_rgb(SimpleNamespace(data=b''))
    assert str(info.value) == "compressed frame (format '') has no data"


def test_message_to_rgb_tells_the_types_apart_and_passes_the_limit() -> None:
    image = make_image(RGB, 'rgb8')
    image.format = 'not a compressed image'       # an Image with an extra field is an Image
    np.testing.assert_array_equal(message_to_rgb(image), RGB)
    with pytest.raises(ImageConversionError, match='above the limit of 34'):
        message_to_rgb(make_image(RGB, 'rgb8'), max_pixels=34)
    _, png = cv2.imencode('.png', RGB[:, :, ::-1])
    with pytest.raises(ImageConversionError, match='above the limit of 34'):
        message_to_rgb(compressed(png.tobytes(), 'png'), max_pixels=34)


def test_array_to_image_fields_of_a_colour_image() -> None:
    fields = array_to_image_fields(RGB, 'rgb8')
    assert {k: v for k, v in fields.items() if k != 'data'} == {
        'height': 5, 'width': 7, 'encoding': 'rgb8', 'is_bigendian': 0, 'step': 21}
    assert bytes(fields['data']) == RGB.tobytes()
    np.testing.assert_array_equal(image_to_rgb(SimpleNamespace(**fields)), RGB)
    with pytest.raises(ValueError) as info:
        array_to_image_fields(np.zeros((1, 2, 3, 4), np.uint8), '8UC4')
    assert str(info.value) == 'expected an (H, W) or (H, W, C) array, got shape (1, 2, 3, 4)'


def test_is_bigendian_is_the_hosts_for_multi_byte_pixels_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from eigen_depth_ros.msg import image_conversion
    monkeypatch.setattr(image_conversion, 'NATIVE_BIGENDIAN', 1)     # as on a big-endian host
    assert array_to_image_fields(RGB, 'rgb8')['is_bigendian'] == 0
    assert array_to_image_fields(np.zeros((2, 2), np.uint16), '16UC1')['is_bigendian'] == 1
    assert array_to_image_fields(np.zeros((2, 2), np.float32), '32FC1')['is_bigendian'] == 1


def test_depth_fields_are_float32_with_nan_where_not_positive() -> None:
    depth = np.array([[0.5, 0.0, -2.0, np.nan, np.inf]])       # float64 in
    fields = depth_to_image_fields(depth)
    assert fields['step'] == 20 and len(fields['data']) == 20
    np.testing.assert_array_equal(np.frombuffer(fields['data'], np.float32),
                                  [0.5, np.nan, np.nan, np.nan, np.inf])
    with pytest.raises(ValueError) as info:
        depth_to_image_fields(np.zeros((2, 3, 1)))
    assert str(info.value) == 'expected an (H, W) depth map, got shape (2, 3, 1)'


def test_image_to_depth_kind_and_limit() -> None:
    with pytest.raises(ImageConversionError) as info:
        image_to_depth(make_image(RGB, 'rgb8'))
    assert info.value.kind == 'encoding'
    msg = SimpleNamespace(**array_to_image_fields(np.ones((5, 7), np.float32), '32FC1'))
    with pytest.raises(ImageConversionError, match='above the limit of 34'):
        image_to_depth(msg, max_pixels=34)


def test_colorize_depth_follows_inverse_depth() -> None:
    # min 2 m, max 8 m: t = (1/d - 1/8) / (3/8), so 2 m -> 1, 8/3 m -> 2/3, 4 m -> 1/3,
    # 8 m -> 0; nearer and farther saturate. Level = t * 255 + 0.5, truncated.
    depth = np.array([[2.0, 8.0 / 3.0, 4.0, 8.0, 16.0, 1.0]], np.float32)
    levels = np.array([[255, 170, 85, 0, 0, 255]], np.uint8)
    expected = cv2.cvtColor(cv2.applyColorMap(levels, cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(colorize_depth(depth, 2.0, 8.0), expected)


def test_colorize_depth_is_quiet_about_invalid_pixels_and_needs_a_range() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        rgb = colorize_depth(np.array([[0.0, -0.0, -1.0, np.nan]], np.float32), 1.0, 4.0)
    np.testing.assert_array_equal(rgb, 0)
    with pytest.raises(ValueError) as info:
        colorize_depth(np.ones((1, 1)), 5.0, 5.0)
    assert str(info.value) == 'need 0 < min_depth < max_depth, got 5.0, 5.0'


def test_set_fields_assigns_and_returns_the_message() -> None:
    msg = SimpleNamespace(width=1)
    assert set_fields(msg, {'width': 7, 'encoding': 'rgb8'}) is msg
    assert (msg.width, msg.encoding) == (7, 'rgb8')

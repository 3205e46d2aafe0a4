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
Property tests (hypothesis) of everything the node reads from or writes to the wire.

Inputs stay inside what a real message can carry (``uint32`` sizes, ``uint8`` flags,
``float64`` calibration, any bytes), and are otherwise hostile: random encodings, sizes,
steps and byte lengths, NaN and infinities, truncated and bit-flipped PNG/JPEG. Contract:

* the reader raises nothing but its documented error (:class:`ImageConversionError`,
  :class:`CameraInfoError`, ``ValueError``);
* what it returns, and every message built from it, is well-formed (shapes, dtypes, steps,
  PointCloud2 ``row_step == point_step * width``, ``len(data) == row_step * height``).

A property whose reader may refuse an input also counts the inputs that converted
(``TRIED['<name> ok']``) and fails when fewer than its share did (:func:`converts`): a
reader that refuses everything would otherwise pass every "raises only its error"
property. The shares are a quarter to a half of the least measured (200 examples, three
runs), and at least one input; inputs a reader must accept are given as explicit examples.

``EIGEN_DEPTH_PROPERTY_EXAMPLES`` (default 200) sets the examples per property;
``EIGEN_DEPTH_PROPERTY_STATS=file.json`` records how many inputs each property tried.
"""
from __future__ import annotations

from collections import Counter
import json
import math
import os
from types import SimpleNamespace
from typing import Any, Callable

import cv2
from eigen_depth_ros.msg.camera_info import (CameraInfoError, depth_camera_info_fields,
                                             fallback_intrinsics, Intrinsics,
                                             intrinsics_from_camera_info)
from eigen_depth_ros.msg.image_conversion import (COLOR_ENCODINGS, compressed_to_rgb,
                                                  depth_to_image_fields, image_to_array,
                                                  image_to_depth, image_to_rgb,
                                                  ImageConversionError, message_to_rgb,
                                                  NATIVE_BIGENDIAN, set_fields)
from eigen_depth_ros.msg.point_cloud import (build_point_cloud2, depth_to_points,
                                             point_cloud2_to_array)
from hypothesis import example, given, HealthCheck, settings, strategies as st
from hypothesis.extra import numpy as hnp
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField

EXAMPLES = int(os.environ.get('EIGEN_DEPTH_PROPERTY_EXAMPLES', '200'))
PROFILE = settings(max_examples=EXAMPLES, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                          HealthCheck.filter_too_much])
KINDS = {'encoding', 'layout', 'truncated', 'empty', 'too_large', 'decode', 'format',
         'depth_encoding'}
UINT32 = 2 ** 32 - 1
TRIED: Counter = Counter()   # inputs tried per property ('... ok': those that converted)

pytestmark = pytest.mark.filterwarnings('ignore:overflow encountered:RuntimeWarning')


@pytest.fixture(scope='module', autouse=True)
def record_statistics() -> Any:
    """After the module: print (``-s``) and optionally save the inputs tried per property."""
    yield
    path = os.environ.get('EIGEN_DEPTH_PROPERTY_STATS')
    summary = {'examples_per_property': EXAMPLES, 'tried': dict(TRIED),
               'total': sum(TRIED.values())}
    print(f'\nproperty inputs tried: {json.dumps(summary)}')
    if path:
        with open(path, 'w', encoding='utf-8') as out:
            json.dump(summary, out, indent=2)


def converts(name: str, least: float) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """
    Make a property test also check that its reader converted some of the inputs.

    The decorated test (a hypothesis test, already given its inputs) runs as before; then
    ``TRIED[f'{name} ok']`` must have grown by at least ``least`` times ``TRIED[name]``'s
    growth, and by at least one.

    :param name: the property's key in :data:`TRIED`.
    :param least: the smallest share of inputs that must convert, 0..1.
    """
    def decorate(prop: Callable[[], None]) -> Callable[[], None]:
        def test() -> None:
            tried, ok = TRIED[name], TRIED[f'{name} ok']
            prop()
            tried, ok = TRIED[name] - tried, TRIED[f'{name} ok'] - ok
            assert ok >= max(1, int(least * tried)), \
                f'{name}: only {ok} of {tried} inputs converted (expected {least:.0%} or more)'
        test.__name__, test.__qualname__, test.__doc__ = \
            prop.__name__, prop.__qualname__, prop.__doc__
        return test
    return decorate


# ------------------------------------------------------------------------- strategies

ENCODINGS = sorted(COLOR_ENCODINGS) + [
    'RGB8', 'Mono16', '32FC1', '16UC1', '32FC3', '64FC1', '8UC3', '8SC4', '16SC2', '8UC0',
    '8UC99999999999', '32FC', 'bayer_rggb8', 'bayer_grbg16', 'jpeg', '', ' rgb8', 'rgb8\x00']
FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)
SMALL_OR_HUGE = st.one_of(st.integers(0, 24), st.sampled_from([2 ** 16, 2 ** 31, UINT32]))


@st.composite
def images(draw: st.DrawFn, encodings: Any = None) -> SimpleNamespace:
    """Draw a sensor_msgs/Image-shaped object: half consistent, half subtly not."""
    encoding = draw(encodings if encodings is not None else
                    st.one_of(st.sampled_from(sorted(COLOR_ENCODINGS)),
                              st.sampled_from(ENCODINGS), st.text(max_size=10)))
    layout = COLOR_ENCODINGS.get(encoding)
    bpp = layout.channels * layout.depth if layout else draw(st.sampled_from([1, 2, 3, 4, 8]))
    if draw(st.booleans()):   # consistent: size, step >= row, enough data
        width, height = draw(st.integers(1, 24)), draw(st.integers(1, 24))
        step = width * bpp + draw(st.integers(0, 7))
        length = step * height + draw(st.integers(0, 8))
    else:
        width, height = draw(SMALL_OR_HUGE), draw(SMALL_OR_HUGE)
        row = min(width, 64) * bpp
        step = draw(st.one_of(st.just(row), st.integers(row, row + 7), SMALL_OR_HUGE))
        exact = min(step, 4096) * min(height, 64)
        length = draw(st.one_of(st.just(exact), st.integers(0, exact + 16)))
    data = draw(st.binary(min_size=length, max_size=length))
    kind = draw(st.sampled_from(['bytes', 'array', 'numpy', 'bytearray']))
    if kind == 'array':
        import array
        data = array.array('B', data)
    elif kind == 'numpy':
        data = np.frombuffer(data, np.uint8).copy()
    elif kind == 'bytearray':
        data = bytearray(data)
    return SimpleNamespace(width=width, height=height, step=step, encoding=encoding,
                           is_bigendian=draw(st.sampled_from([0, 1, 255])), data=data)


def check_rgb(rgb: np.ndarray, width: int, height: int) -> None:
    """Check a colour image as the node uses it: RGB uint8 (H, W, 3), C-contiguous."""
    assert rgb.dtype == np.uint8 and rgb.shape == (height, width, 3)
    assert rgb.flags['C_CONTIGUOUS']


def png_or_jpeg(ext: str, seed: int) -> bytes:
    """Encode a small real PNG or JPEG of random content."""
    rng = np.random.default_rng(seed)
    ok, encoded = cv2.imencode(ext, rng.integers(0, 256, (12, 20, 3), dtype=np.uint8))
    assert ok
    return encoded.tobytes()


REAL_COMPRESSED = {ext: png_or_jpeg(ext, 1) for ext in ('.png', '.jpg')}


# ------------------------------------------------------------------------- images


@converts('image_to_rgb', 0.08)
@PROFILE
@given(images())
def test_image_to_rgb_raises_only_its_error(msg: SimpleNamespace) -> None:
    TRIED['image_to_rgb'] += 1
    try:
        rgb = image_to_rgb(msg)
    except ImageConversionError as exc:
        assert exc.kind in KINDS and '\n' not in str(exc)
        return
    TRIED['image_to_rgb ok'] += 1
    check_rgb(rgb, msg.width, msg.height)
    # message_to_rgb dispatches an Image the same way
    assert np.array_equal(message_to_rgb(msg), rgb)


@converts('image_to_array', 0.12)
@PROFILE
@given(images(st.sampled_from(['32FC1', '16UC1', '8UC3', '16SC2', '64FC1', 'mono16',
                               'bgra16', '8UC0'])))
def test_image_to_array_native_and_shaped(msg: SimpleNamespace) -> None:
    TRIED['image_to_array'] += 1
    try:
        pixels = image_to_array(msg)
    except ImageConversionError as exc:
        assert exc.kind in KINDS
        return
    TRIED['image_to_array ok'] += 1
    assert pixels.shape[:2] == (msg.height, msg.width)
    assert pixels.dtype.isnative and pixels.flags['C_CONTIGUOUS']


@st.composite
def float_depths(draw: st.DrawFn, infinity: bool) -> np.ndarray:
    """(H, W) float32 depth maps with NaN, negatives, zeros, subnormals (and infinities)."""
    shape = (draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    elements = st.floats(width=32, allow_nan=True, allow_infinity=infinity)
    return draw(hnp.arrays(np.float32, shape, elements=elements))


def depth_message(depth: np.ndarray) -> Image:
    """Build a real rclpy Image with the node's own converter, checking its layout."""
    fields = depth_to_image_fields(depth)
    height, width = depth.shape
    assert fields['encoding'] == '32FC1' and fields['step'] == width * 4
    assert len(fields['data']) == fields['step'] * height
    assert fields['is_bigendian'] == NATIVE_BIGENDIAN
    return set_fields(Image(), fields)   # rclpy checks every field's type and range


@PROFILE
@given(float_depths(infinity=False), st.sampled_from([0, 3]))
def test_published_depth_is_well_formed_and_round_trips(depth: np.ndarray, pad: int) -> None:
    TRIED['depth_round_trip'] += 1
    msg = depth_message(depth)
    if pad:  # a reader must honour a padded step too
        rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, -1)
        msg.data = np.pad(rows, ((0, 0), (0, pad))).tobytes()
        msg.step += pad
    back = image_to_depth(msg)
    valid = depth > 0
    assert back.dtype == np.float32 and back.shape == depth.shape
    assert np.array_equal(back[valid], depth[valid])
    assert np.isnan(back[~valid]).all()


@PROFILE
@given(float_depths(infinity=True))
@example(np.array([[np.inf, 1.0]], np.float32))
def test_depth_reader_gives_finite_or_nan(depth: np.ndarray) -> None:
    TRIED['depth_reader_infinity'] += 1
    back = image_to_depth(depth_message(depth))
    assert np.all(np.isnan(back) | (np.isfinite(back) & (back > 0)))


@converts('compressed_random', 0.0)
@PROFILE
@given(st.binary(max_size=300),
       st.sampled_from(['jpeg', 'png', 'rgb8; jpeg compressed bgr8', '', '16UC1; '
                        'compressedDepth png', 'tiff', 'x' * 300]))
@example(REAL_COMPRESSED['.png'], 'png')
@example(REAL_COMPRESSED['.jpg'], 'rgb8; jpeg compressed bgr8')
def test_random_compressed_bytes(data: bytes, fmt: str) -> None:
    TRIED['compressed_random'] += 1
    msg = SimpleNamespace(format=fmt, data=data)
    try:
        rgb = compressed_to_rgb(msg)
    except ImageConversionError as exc:
        assert exc.kind in KINDS
        return
    TRIED['compressed_random ok'] += 1
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3


@converts('compressed_damaged', 0.05)
@PROFILE
@given(st.sampled_from(sorted(REAL_COMPRESSED)), st.data())
def test_truncated_and_bit_flipped_png_jpeg(ext: str, data: st.DataObject) -> None:
    TRIED['compressed_damaged'] += 1
    raw = bytearray(REAL_COMPRESSED[ext])
    # whole files half the time (flipped bits in a JPEG's pixels still decode)
    cut = data.draw(st.one_of(st.just(len(raw)), st.integers(0, len(raw))), label='cut')
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 7)),
                               max_size=4), label='flips')
    for index, bit in flips:
        raw[index] ^= 1 << bit
    msg = SimpleNamespace(format='png' if ext == '.png' else 'jpeg', data=bytes(raw[:cut]))
    try:
        rgb = message_to_rgb(msg)
    except ImageConversionError as exc:
        assert exc.kind in KINDS
        return
    TRIED['compressed_damaged ok'] += 1
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    assert rgb.shape[0] * rgb.shape[1] <= 2 ** 25


@converts('compressed_header_size', 0.0)
@PROFILE
@given(st.integers(1, UINT32), st.integers(1, UINT32))
@example(20, 12)   # the file's own size: it decodes
def test_compressed_header_size_guard(width: int, height: int) -> None:
    TRIED['compressed_header_size'] += 1
    png = bytearray(REAL_COMPRESSED['.png'])
    png[16:24] = width.to_bytes(4, 'big') + height.to_bytes(4, 'big')
    try:
        rgb = compressed_to_rgb(SimpleNamespace(format='png', data=bytes(png)), 4096)
    except ImageConversionError as exc:
        assert exc.kind in ('too_large', 'decode')
        assert width * height > 4096 or exc.kind == 'decode'
        return
    TRIED['compressed_header_size ok'] += 1
    assert rgb.shape == (height, width, 3) and width * height <= 4096


# ------------------------------------------------------------------------- camera_info


@st.composite
def camera_infos(draw: st.DrawFn) -> SimpleNamespace:
    """Draw a CameraInfo-shaped object: fixed-size K and P, any doubles, uint32 sizes."""
    plausible = draw(st.booleans())   # half the time a camera, to reach the arithmetic
    sizes = st.integers(0, 3000) if plausible else SMALL_OR_HUGE
    small = st.integers(0, 4) if plausible else SMALL_OR_HUGE
    k = draw(st.one_of(st.lists(FLOATS, min_size=9, max_size=9), st.just([0.0] * 9)))
    if plausible:
        fx, fy = draw(st.floats(1e-6, 1e6)), draw(st.floats(1e-6, 1e6))
        k = [fx, 0.0, draw(st.floats(-1e4, 1e4)), 0.0, fy, draw(st.floats(-1e4, 1e4)),
             0.0, 0.0, 1.0]
    p = draw(st.one_of(st.just([0.0] * 12), st.lists(FLOATS, min_size=12, max_size=12),
                       st.just([k[0], 0.0, k[2], 0.0, 0.0, k[4], k[5], 0.0, 0.0, 0.0, 1.0,
                                0.0])))
    roi_size = st.one_of(st.just(0), sizes)
    roi = SimpleNamespace(x_offset=draw(small), y_offset=draw(small), width=draw(roi_size),
                          height=draw(roi_size), do_rectify=draw(st.booleans()))
    return SimpleNamespace(width=draw(sizes), height=draw(sizes), k=k, p=p,
                           d=draw(st.lists(FLOATS, max_size=8)),
                           binning_x=draw(small), binning_y=draw(small), roi=roi)


def check_intrinsics(intrinsics: Intrinsics) -> None:
    """Finite, positive focal lengths, finite principal point, non-empty size."""
    assert all(math.isfinite(v) for v in intrinsics.pinhole)
    assert intrinsics.fx > 0 and intrinsics.fy > 0
    assert intrinsics.width >= 1 and intrinsics.height >= 1


@converts('camera_info', 0.05)
@PROFILE
@given(camera_infos())
def test_camera_info_raises_only_its_error(msg: SimpleNamespace) -> None:
    TRIED['camera_info'] += 1
    try:
        intrinsics = intrinsics_from_camera_info(msg)
    except CameraInfoError as exc:
        assert '\n' not in str(exc)
        return
    TRIED['camera_info ok'] += 1
    check_intrinsics(intrinsics)
    # the depth camera_info the node would publish for it is a valid message
    info = set_fields(CameraInfo(), depth_camera_info_fields(*intrinsics.pinhole,
                                                             intrinsics.width,
                                                             intrinsics.height))
    assert len(info.k) == 9 and len(info.p) == 12 and info.width == intrinsics.width


@converts('fallback_intrinsics', 0.1)
@PROFILE
@given(st.integers(0, 5000), st.integers(0, 5000), FLOATS, FLOATS, FLOATS, FLOATS)
@example(640, 480, 500.0, 500.0, 320.0, 240.0)
def test_fallback_intrinsics(width: int, height: int, fx: float, fy: float, cx: float,
                             cy: float) -> None:
    TRIED['fallback_intrinsics'] += 1
    try:
        intrinsics = fallback_intrinsics(width, height, fx, fy, cx, cy)
    except CameraInfoError:
        return
    TRIED['fallback_intrinsics ok'] += 1
    check_intrinsics(intrinsics)
    assert (intrinsics.width, intrinsics.height) == (width, height)


# ------------------------------------------------------------------------- point clouds


@st.composite
def cloud_inputs(draw: st.DrawFn) -> dict[str, Any]:
    """depth_to_points arguments: hostile depth, stride, intrinsics and range gate."""
    depth = draw(float_depths(infinity=True))
    plausible = st.floats(1e-3, 1e4)
    intrinsic = st.one_of(plausible, FLOATS, st.sampled_from([0.0, -1.0, 1e-300]))
    args = {'depth': depth, 'fx': draw(intrinsic), 'fy': draw(intrinsic),
            'cx': draw(st.one_of(plausible, FLOATS)), 'cy': draw(st.one_of(plausible, FLOATS)),
            'stride': draw(st.one_of(st.integers(1, 4), st.integers(-2, 0),
                                     st.sampled_from([1.5, 2.0]))),
            'min_depth': draw(st.one_of(st.just(0.0), st.floats(0, 50), FLOATS)),
            'max_depth': draw(st.one_of(st.just(math.inf), st.floats(0, 100), FLOATS))}
    if draw(st.booleans()):
        args['colors'] = draw(hnp.arrays(np.uint8, depth.shape + (3,)))
    return args


def check_cloud(cloud: PointCloud2, points: np.ndarray) -> None:
    """Check the PointCloud2 invariants a subscriber relies on."""
    assert cloud.height == 1 and cloud.width == points.size
    assert cloud.point_step == points.dtype.itemsize
    assert cloud.row_step == cloud.point_step * cloud.width
    assert len(cloud.data) == cloud.row_step * cloud.height
    for field in cloud.fields:
        assert field.offset + 4 <= cloud.point_step and field.datatype == PointField.FLOAT32
    assert [f.name for f in cloud.fields][:3] == ['x', 'y', 'z']


@converts('depth_to_points', 0.1)
@PROFILE
@given(cloud_inputs())
def test_depth_to_points_and_cloud_are_well_formed(args: dict[str, Any]) -> None:
    TRIED['depth_to_points'] += 1
    try:
        points = depth_to_points(**args)
    except ValueError as exc:
        assert '\n' not in str(exc)
        return
    TRIED['depth_to_points ok'] += 1
    z = points['z']
    with np.errstate(over='ignore'):   # the gate compares in float32, as the depth is
        low, high = np.float32(args['min_depth']), np.float32(args['max_depth'])
    assert np.all(np.isfinite(z)) and np.all((z > 0) & (z >= low) & (z <= high))
    cloud = build_point_cloud2(points, SimpleNamespace(), PointCloud2, PointField)
    check_cloud(cloud, points)
    back = point_cloud2_to_array(cloud)
    assert back.size == points.size
    assert np.array_equal(back['z'], points['z'])


@converts('dense_cloud_finite', 0.1)
@PROFILE
@given(cloud_inputs())
@example({'depth': np.array([[5.0, 5.0]], np.float32), 'fx': 1e-300, 'fy': 1.0, 'cx': 0.0,
          'cy': 0.0, 'stride': 1, 'min_depth': 0.0, 'max_depth': math.inf})
def test_dense_cloud_holds_only_finite_points(args: dict[str, Any]) -> None:
    TRIED['dense_cloud_finite'] += 1
    try:
        points = depth_to_points(**args)
    except ValueError:
        return
    TRIED['dense_cloud_finite ok'] += 1
    cloud = build_point_cloud2(points, SimpleNamespace(), PointCloud2, PointField)
    back = point_cloud2_to_array(cloud)
    if cloud.is_dense:
        for name in ('x', 'y', 'z'):
            assert np.all(np.isfinite(back[name]))


@st.composite
def hostile_clouds(draw: st.DrawFn) -> SimpleNamespace:
    """Draw a PointCloud2-shaped object: random fields, steps, sizes and data length."""
    if draw(st.booleans()):   # a plausible xyz(+rgb) float32 cloud, maybe padded
        names = ['x', 'y', 'z'] + (['rgb'] if draw(st.booleans()) else [])
        fields = [SimpleNamespace(name=n, offset=4 * i, datatype=7, count=1)
                  for i, n in enumerate(names)]
        width, height = draw(st.integers(0, 6)), draw(st.integers(1, 4))
        point_step = 4 * len(names) + draw(st.integers(0, 4))
        row_step = point_step * width + draw(st.integers(0, 5))
        size = row_step * height + draw(st.integers(-3, 3))
        return SimpleNamespace(fields=fields, width=width, height=height,
                               point_step=point_step, row_step=row_step,
                               is_bigendian=draw(st.booleans()),
                               data=draw(st.binary(min_size=max(size, 0),
                                                   max_size=max(size, 0))))
    fields = [SimpleNamespace(name=draw(st.sampled_from(['x', 'y', 'z', 'rgb', 'i', ''])),
                              offset=draw(st.integers(0, 40)),
                              datatype=draw(st.integers(0, 10)),
                              count=draw(st.integers(0, 3)))
              for _ in range(draw(st.integers(0, 5)))]
    width, height = draw(st.integers(0, 6)), draw(st.integers(0, 4))
    point_step = draw(st.integers(0, 48))
    row_step = draw(st.one_of(st.just(point_step * width), st.integers(0, 300)))
    size = draw(st.one_of(st.just(row_step * height), st.integers(0, 400)))
    return SimpleNamespace(fields=fields, width=width, height=height, point_step=point_step,
                           row_step=row_step, is_bigendian=draw(st.booleans()),
                           data=draw(st.binary(min_size=size, max_size=size)))


@converts('point_cloud2_to_array', 0.15)
@PROFILE
@given(hostile_clouds())
def test_cloud_reader_raises_only_value_error(cloud: SimpleNamespace) -> None:
    TRIED['point_cloud2_to_array'] += 1
    try:
        points = point_cloud2_to_array(cloud)
    except ValueError:
        return
    TRIED['point_cloud2_to_array ok'] += 1
    assert points.size == cloud.width * cloud.height
    assert all(points.dtype[name].isnative for name in points.dtype.names or ())

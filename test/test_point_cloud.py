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

"""Tests of eigen_depth_ros.msg.point_cloud (no rclpy needed); camera_info: test_camera_info."""
from __future__ import annotations

import math
from types import SimpleNamespace
import warnings

from eigen_depth_ros.core.geometry import InputGeometry
from eigen_depth_ros.core.model import KITTI
from eigen_depth_ros.msg import point_cloud
from eigen_depth_ros.msg.camera_info import Intrinsics
from eigen_depth_ros.msg.point_cloud import (build_point_cloud2, depth_to_points, pack_rgb,
                                             point_cloud2_to_array, points_to_pixels,
                                             resample_to_grid, unpack_rgb, XYZ_DTYPE, XYZRGB_DTYPE)
from hypothesis import given, settings, strategies as st
import numpy as np
import pytest

FX, FY, CX, CY = 120.0, 110.0, 31.5, 11.25
H, W = 24, 64


def pixel_grid(height: int = H, width: int = W) -> tuple[np.ndarray, np.ndarray]:
    v, u = np.mgrid[0:height, 0:width]
    return u.astype(np.float64), v.astype(np.float64)


def test_fronto_parallel_plane_is_exact() -> None:
    depth = np.full((H, W), 7.5, np.float32)
    points = depth_to_points(depth, FX, FY, CX, CY)
    assert points.dtype == XYZ_DTYPE and points.shape == (H * W,)
    u, v = pixel_grid()
    np.testing.assert_allclose(points['z'], 7.5)
    np.testing.assert_allclose(points['x'], ((u - CX) * 7.5 / FX).ravel(), rtol=1e-6)
    np.testing.assert_allclose(points['y'], ((v - CY) * 7.5 / FY).ravel(), rtol=1e-6)


def test_ground_plane_comes_back_flat() -> None:
    # A camera 1.6 m above flat ground, looking along it: the ground is y = +1.6 (y down),
    # seen at rows below the horizon cy with depth z = fy * 1.6 / (v - cy).
    u, v = pixel_grid()
    with np.errstate(divide='ignore'):
        depth = np.where(v > CY, FY * 1.6 / (v - CY), np.nan).astype(np.float32)
    points = depth_to_points(depth, FX, FY, CX, CY)
    assert points.size == int((v > CY).sum())
    np.testing.assert_allclose(points['y'], 1.6, rtol=1e-5)
    assert np.all(points['z'] > 0)


def test_nan_range_gate_and_stride() -> None:
    depth = np.linspace(0.5, 30.0, H * W, dtype=np.float32).reshape(H, W)
    depth[3, 4] = np.nan
    depth[6, 8] = np.inf
    depth[9, 10] = -1.0
    points = depth_to_points(depth, FX, FY, CX, CY, stride=2, min_depth=2.0, max_depth=20.0)
    grid = depth[::2, ::2]
    with np.errstate(invalid='ignore'):
        expected = np.isfinite(grid) & (grid >= 2.0) & (grid <= 20.0)
    assert points.size == int(expected.sum())
    assert points['z'].min() >= 2.0 and points['z'].max() <= 20.0
    assert np.all(np.isfinite(points['x'])) and np.all(np.isfinite(points['y']))
    u, v = points_to_pixels(points, FX, FY, CX, CY)
    np.testing.assert_allclose(u, np.rint(u), atol=1e-3)
    np.testing.assert_allclose(v, np.rint(v), atol=1e-3)
    ui, vi = np.rint(u).astype(int), np.rint(v).astype(int)
    assert np.all(ui % 2 == 0) and np.all(vi % 2 == 0)
    np.testing.assert_array_equal(depth[vi, ui], points['z'])


@settings(max_examples=30, deadline=None)
@given(stride=st.integers(1, 5), seed=st.integers(0, 1000),
       fx=st.floats(10, 2000), cx=st.floats(-50, 100))
def test_every_point_reprojects_onto_its_pixel(stride: int, seed: int, fx: float,
                                               cx: float) -> None:
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.2, 90.0, (H, W)).astype(np.float32)
    depth[rng.random((H, W)) < 0.2] = np.nan
    points = depth_to_points(depth, fx, fx * 0.9, cx, CY, stride=stride, max_depth=80.0)
    u, v = points_to_pixels(points, fx, fx * 0.9, cx, CY)
    ui, vi = np.rint(u).astype(int), np.rint(v).astype(int)
    assert np.abs(u - ui).max(initial=0) < 1e-3 and np.abs(v - vi).max(initial=0) < 1e-3
    np.testing.assert_array_equal(depth[vi, ui], points['z'])
    grid = depth[::stride, ::stride]
    with np.errstate(invalid='ignore'):
        assert points.size == int((np.isfinite(grid) & (grid <= 80.0)).sum())


def test_colours_follow_their_pixels() -> None:
    depth = np.full((H, W), 3.0, np.float32)
    depth[0, 0] = np.nan
    colors = np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)
    points = depth_to_points(depth, FX, FY, CX, CY, colors=colors)
    assert points.dtype == XYZRGB_DTYPE
    np.testing.assert_array_equal(unpack_rgb(points['rgb']), colors.reshape(-1, 3)[1:])


def test_pack_rgb_bits() -> None:
    packed = pack_rgb(np.array([[255, 0, 0], [1, 2, 3]], np.uint8))
    assert packed.dtype == np.float32
    assert packed.view(np.uint32).tolist() == [0xFF0000, 0x010203]
    np.testing.assert_array_equal(unpack_rgb(packed), [[255, 0, 0], [1, 2, 3]])


@pytest.mark.parametrize('kwargs,words', [
    ({'fx': 0.0}, 'focal'), ({'fy': -1.0}, 'focal'), ({'cx': math.nan}, 'principal'),
    ({'stride': 0}, 'stride'), ({'min_depth': 5.0, 'max_depth': 1.0}, 'above'),
])
def test_bad_arguments_raise_value_error(kwargs: dict, words: str) -> None:
    args = {'fx': FX, 'fy': FY, 'cx': CX, 'cy': CY}
    args.update(kwargs)
    with pytest.raises(ValueError, match=words):
        depth_to_points(np.ones((2, 2), np.float32), **args)


def fake_classes() -> tuple[type, type]:
    """Stand-ins for sensor_msgs PointCloud2 and PointField (duck typing)."""
    class Cloud(SimpleNamespace):
        pass

    class Field(SimpleNamespace):
        pass
    return Cloud, Field


@pytest.mark.parametrize('real', [False, True])
def test_point_cloud2_round_trip(real: bool) -> None:
    if real:
        msgs = pytest.importorskip('sensor_msgs.msg')
        cloud_cls, field_cls = msgs.PointCloud2, msgs.PointField
        header = pytest.importorskip('std_msgs.msg').Header(frame_id='cam')
    else:
        cloud_cls, field_cls = fake_classes()
        header = SimpleNamespace(frame_id='cam')
    points = np.zeros(4, XYZRGB_DTYPE)
    points['x'] = [1.0, -2.0, np.nan, 4.0]
    points['z'] = [1.0, 2.0, 3.0, 4.0]
    points['rgb'] = pack_rgb(np.array([[1, 2, 3]] * 4, np.uint8))
    cloud = build_point_cloud2(points, header, cloud_cls, field_cls)
    assert (cloud.height, cloud.width, cloud.point_step, cloud.row_step) == (1, 4, 16, 64)
    assert [f.name for f in cloud.fields] == ['x', 'y', 'z', 'rgb']
    assert [f.offset for f in cloud.fields] == [0, 4, 8, 12]
    assert all(f.datatype == 7 and f.count == 1 for f in cloud.fields)
    assert cloud.header.frame_id == 'cam' and cloud.is_dense
    back = point_cloud2_to_array(cloud)
    for name in ('x', 'y', 'z', 'rgb'):
        np.testing.assert_array_equal(back[name].view(np.uint32), points[name].view(np.uint32))


def test_reader_honours_padding_and_byte_order() -> None:
    # Big-endian cloud, 2 rows of 2 points, point_step 20 (4 bytes padding), row_step 48.
    dtype = np.dtype({'names': ['x', 'y', 'z', 'i'], 'formats': ['>f4', '>f4', '>f4', '>u2'],
                      'offsets': [0, 4, 8, 12], 'itemsize': 20})
    rows = np.zeros((2, 48), np.uint8)
    values = np.zeros((2, 2), dtype)
    values['x'] = [[1, 2], [3, 4]]
    values['i'] = [[7, 8], [9, 10]]
    rows[:, :40] = values.view(np.uint8).reshape(2, 40)
    field = SimpleNamespace
    cloud = SimpleNamespace(
        height=2, width=2, is_bigendian=True, point_step=20, row_step=48,
        fields=[field(name='x', offset=0, datatype=7, count=1),
                field(name='y', offset=4, datatype=7, count=1),
                field(name='z', offset=8, datatype=7, count=1),
                field(name='i', offset=12, datatype=4, count=1)],
        data=rows.tobytes())
    back = point_cloud2_to_array(cloud)
    assert back['x'].tolist() == [1, 2, 3, 4] and back['i'].tolist() == [7, 8, 9, 10]
    cloud.data = rows.tobytes()[:-10]
    with pytest.raises(ValueError, match='bytes'):
        point_cloud2_to_array(cloud)


def test_resample_to_grid_follows_the_affine() -> None:
    # A horizontal ramp: the colour at column x is x; grid column j samples x = 4 j + 2.5.
    image = np.tile(np.arange(100, dtype=np.float32), (50, 1))
    grid = resample_to_grid(image, (4.0, 2.5, 2.0, 1.0), 20, 10)
    assert grid.shape == (10, 20)
    np.testing.assert_allclose(grid[3], 4.0 * np.arange(20) + 2.5, atol=1e-3)


def test_network_resolution_cloud_lands_on_the_camera_rays() -> None:
    """
    A depth map at the network's output resolution, with the intrinsics the node publishes.

    Each output pixel must back-project onto the camera ray of the camera pixel that the
    geometry says it sees: projecting the point with the camera's own intrinsics gives the
    camera pixel ``(a_x j + b_x, a_y i + b_y)``.
    """
    camera = Intrinsics(721.5, 721.5, 609.6, 172.9, 1242, 375)
    geometry = InputGeometry.fit(camera.width, camera.height, KITTI)
    pinhole = geometry.output_intrinsics(*camera.pinhole)
    w_out, h_out = geometry.output_size
    depth = np.full((h_out, w_out), 12.0, np.float32)
    points = depth_to_points(depth, *pinhole)
    u, v = points_to_pixels(points, *camera.pinhole)
    a_x, b_x, a_y, b_y = geometry.output_to_image_affine()
    i, j = np.divmod(np.arange(h_out * w_out), w_out)
    np.testing.assert_allclose(u, a_x * j + b_x, atol=1e-3)
    np.testing.assert_allclose(v, a_y * i + b_y, atol=1e-3)


# ------------------------------------------------------------ clearing points (issue 14)

def test_clearing_points_lie_on_their_rays_at_the_range_and_never_inside_max_depth():
    rng = np.random.default_rng(3)
    depth = rng.uniform(0.5, 30.0, (H, W)).astype(np.float32)
    depth[0, :8] = np.inf                     # REP 118: no return
    depth[1, :8] = np.nan                     # unknown: never clears
    depth[2, :8] = -np.inf                    # too near: never clears
    depth[3, :8] = 0.2                        # below min_depth: never clears
    max_depth, clearing = 10.0, 12.5
    points = depth_to_points(depth, FX, FY, CX, CY, min_depth=0.4, max_depth=max_depth,
                             clearing_range=clearing)
    plain = depth_to_points(depth, FX, FY, CX, CY, min_depth=0.4, max_depth=max_depth)
    xyz = np.stack([points['x'], points['y'], points['z']], axis=1).astype(np.float64)
    distance = np.linalg.norm(xyz, axis=1)
    is_clearing = np.isclose(distance, clearing, rtol=1e-5)
    # the plain cloud is kept as it was; the rest is exactly the pixels beyond max_depth
    assert np.array_equal(points[~is_clearing], plain)
    beyond = (depth > max_depth) | (depth == np.inf)
    assert is_clearing.sum() == beyond.sum()
    # on their own ray: each projects back onto its pixel, in row-major pixel order
    u, v = points_to_pixels(points[is_clearing], FX, FY, CX, CY)
    rows, cols = np.nonzero(beyond)
    assert np.allclose(u, cols, atol=1e-3) and np.allclose(v, rows, atol=1e-3)
    # never inside max_depth: every clearing point is farther than any real one can be
    assert (distance[is_clearing] > max_depth).all()
    assert (points['z'][~is_clearing] <= max_depth).all()


def test_clearing_follows_the_stride_and_the_colours():
    depth = np.full((H, W), 50.0, np.float32)
    colors = np.zeros((H, W, 3), np.uint8)
    colors[..., 1] = 200
    points = depth_to_points(depth, FX, FY, CX, CY, stride=4, max_depth=20.0, colors=colors,
                             clearing_range=25.0)
    assert points.size == (H // 4) * (W // 4) and points.dtype == XYZRGB_DTYPE
    assert (unpack_rgb(points['rgb'])[:, 1] == 200).all()
    assert depth_to_points(depth, FX, FY, CX, CY, max_depth=20.0).size == 0


@pytest.mark.parametrize('clearing', [5.0, 20.0, math.inf, math.nan])
def test_clearing_range_must_lie_beyond_max_depth(clearing):
    with pytest.raises(ValueError, match='clearing_range'):
        depth_to_points(np.ones((2, 2)), FX, FY, CX, CY, max_depth=20.0,
                        clearing_range=clearing)


# ------------------------------------------------------------ values at the edges (mutants)

def test_depth_gates_are_inclusive_and_zero_is_no_point() -> None:
    depth = np.array([[0.0, 0.5, 2.0, 5.0, 5.5]], np.float32)
    # default gate: every positive depth, 0 is "no point" (REP 118)
    assert depth_to_points(depth, 1.0, 1.0, 0.0, 0.0)['z'].tolist() == [0.5, 2.0, 5.0, 5.5]
    # min_depth and max_depth themselves are kept, and they may be equal
    assert depth_to_points(depth, 1.0, 1.0, 0.0, 0.0, min_depth=2.0,
                           max_depth=5.0)['z'].tolist() == [2.0, 5.0]
    assert depth_to_points(depth, 1.0, 1.0, 0.0, 0.0, min_depth=5.0,
                           max_depth=5.0)['z'].tolist() == [5.0]


def test_a_pixel_at_max_depth_is_a_point_not_a_clearing_ray() -> None:
    depth = np.array([[5.0, 6.0]], np.float32)
    points = depth_to_points(depth, 1.0, 1.0, 0.0, 0.0, max_depth=5.0, clearing_range=8.0)
    # (0, 0) at 5 m stays where it is; (1, 0) beyond 5 m clears to 8 m along (1, 0, 1)
    np.testing.assert_allclose(points['x'], [0.0, 8.0 / math.sqrt(2)], rtol=1e-6)
    np.testing.assert_allclose(points['z'], [5.0, 8.0 / math.sqrt(2)], rtol=1e-6)


def test_sub_pixel_focal_lengths_are_valid() -> None:
    points = depth_to_points(np.full((1, 2), 2.0, np.float32), 0.5, 0.25, 0.0, -1.0)
    assert points['x'].tolist() == [0.0, 4.0] and points['y'].tolist() == [8.0, 8.0]
    with pytest.raises(ValueError, match='focal lengths must be finite and positive, got '
                       'fx=0.5, fy=0.0'):
        depth_to_points(np.ones((2, 2), np.float32), 0.5, 0.0, 0.0, 0.0)


def test_absurd_intrinsics_drop_their_points_without_a_warning() -> None:
    """Rays that overflow float32 give no point, and say nothing per frame (the node's log)."""
    depth = np.full((4, 5), 100.0, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        # fx = 1e-37: x = (u - 2) 1e37 * 100 overflows except in column u = cx = 2
        tiny_fx = depth_to_points(depth, 1e-37, 1.0, 2.0, 1.0)
        # fy = 1e-40: the ray (v - 1) / fy is inf except in row v = cy = 1
        tiny_fy = depth_to_points(depth, 1.0, 1e-40, 2.0, 1.0)
        # clearing along infinite rays: z = R / inf = 0 and x = inf * 0 (NaN): dropped too
        clearing = depth_to_points(depth, 1e-40, 1.0, 2.0, 1.0, max_depth=50.0,
                                   clearing_range=60.0)
    assert tiny_fx['x'].tolist() == [0.0] * 4
    assert tiny_fx['y'].tolist() == [-100.0, 0.0, 100.0, 200.0]
    assert tiny_fy['x'].tolist() == [-200.0, -100.0, 0.0, 100.0, 200.0]
    assert tiny_fy['y'].tolist() == [0.0] * 5
    xyz = np.stack([clearing[name] for name in ('x', 'y', 'z')], axis=1).astype(np.float64)
    assert clearing['x'].tolist() == [0.0] * 4
    np.testing.assert_allclose(np.linalg.norm(xyz, axis=1), 60.0, rtol=1e-6)


@pytest.mark.parametrize('depth,kwargs,message', [
    (np.ones((2, 2, 1)), {}, 'expected an (H, W) depth image, got shape (2, 2, 1)'),
    (np.ones((2, 2)), {'colors': np.zeros((2, 2), np.uint8)},
     'colors (2, 2) do not match depth (2, 2) x 3'),
    (np.ones((2, 2)), {'colors': np.zeros((2, 2, 4), np.uint8)},
     'colors (2, 2, 4) do not match depth (2, 2) x 3'),
    (np.ones((2, 2)), {'colors': np.zeros((3, 2, 3), np.uint8)},
     'colors (3, 2, 3) do not match depth (2, 2) x 3'),
])
def test_bad_shapes_are_named(depth: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        depth_to_points(depth, FX, FY, CX, CY, **kwargs)
    assert str(info.value) == message


def test_rgb_packing_on_both_byte_orders(monkeypatch: pytest.MonkeyPatch) -> None:
    colors = np.array([[[255, 0, 0], [1, 2, 3]], [[0, 128, 0], [9, 8, 7]]], np.uint8)
    packed = pack_rgb(colors)
    assert packed.shape == (2, 2)
    # a 2-D field unpacks to (2, 2, 3), from float32 or from a list of floats
    unpacked = unpack_rgb(packed)
    assert unpacked.dtype == np.uint8
    np.testing.assert_array_equal(unpacked, colors)
    np.testing.assert_array_equal(unpack_rgb(packed.tolist()), colors)
    # A big-endian host writes the uint32 0x00RRGGBB as the bytes 0, r, g, b.
    monkeypatch.setattr(point_cloud, 'NATIVE_BIGENDIAN', 1)
    big = pack_rgb(colors[0])
    assert big.view('>u4').tolist() == [0xFF0000, 0x010203]


def test_resample_to_grid_rows_and_border() -> None:
    # a vertical ramp: grid row i samples image row y = 2 i + 1, whatever the column
    image = np.tile(np.arange(50, dtype=np.float32)[:, None], (1, 100))
    grid = resample_to_grid(image, (4.0, 2.5, 2.0, 1.0), 20, 10)
    np.testing.assert_allclose(grid, np.tile((2.0 * np.arange(10) + 1.0)[:, None], (1, 20)),
                               atol=1e-3)
    # samples beyond the image take the value of its nearest border pixel
    ramp = np.tile(np.arange(10, dtype=np.float32), (5, 1))
    beyond = resample_to_grid(ramp, (1.0, 5.0, 1.0, 0.0), 10, 5)
    np.testing.assert_allclose(beyond[0], [5, 6, 7, 8, 9, 9, 9, 9, 9, 9], atol=1e-3)


def test_only_float32_fields_are_written() -> None:
    points = np.zeros(2, [('x', np.float32), ('i', np.uint16)])
    with pytest.raises(ValueError) as info:
        build_point_cloud2(points, SimpleNamespace(), *fake_classes())
    assert str(info.value) == "field 'i' is uint16, only float32 is written"


def test_the_cloud_says_the_hosts_byte_order(monkeypatch: pytest.MonkeyPatch) -> None:
    points = np.zeros(1, XYZ_DTYPE)
    assert build_point_cloud2(points, SimpleNamespace(), *fake_classes()).is_bigendian is False
    monkeypatch.setattr(point_cloud, 'NATIVE_BIGENDIAN', 1)
    assert build_point_cloud2(points, SimpleNamespace(), *fake_classes()).is_bigendian is True


def field(name: str, offset: int, datatype: int = 7, count: int = 1) -> SimpleNamespace:
    """Return a duck-typed sensor_msgs/PointField."""
    return SimpleNamespace(name=name, offset=offset, datatype=datatype, count=count)


def test_reader_honours_offset_gaps_counts_and_numpy_data() -> None:
    # 20-byte points: x at 0, a 2-float 'pair' at 8 (bytes 4..7 unused), 'n' 3 bytes at 16
    dtype = np.dtype({'names': ['x', 'pair', 'n'], 'formats': ['<f4', ('<f4', (2,)), ('u1', (3,))],
                      'offsets': [0, 8, 16], 'itemsize': 20})
    values = np.zeros(2, dtype)
    values['x'] = [1.5, -2.5]
    values['pair'] = [[1, 2], [3, 4]]
    values['n'] = [[1, 2, 3], [4, 5, 6]]
    raw = values.view(np.uint8).reshape(2, 20)        # rosbags gives data as a uint8 array
    cloud = SimpleNamespace(height=1, width=2, is_bigendian=False, point_step=20, row_step=40,
                            fields=[field('x', 0), field('pair', 8, count=2),
                                    field('n', 16, datatype=2, count=3)], data=raw)
    back = point_cloud2_to_array(cloud)
    assert back['x'].tolist() == [1.5, -2.5]
    assert back['pair'].tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert back['n'].tolist() == [[1, 2, 3], [4, 5, 6]]
    cloud.data = values                               # any numpy array: its bytes are read
    assert point_cloud2_to_array(cloud)['pair'].tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_reader_of_empty_one_point_and_bad_clouds() -> None:
    def cloud(**change: object) -> SimpleNamespace:
        base = SimpleNamespace(height=1, width=1, is_bigendian=False, point_step=12,
                               row_step=12, fields=[field('x', 0), field('y', 4), field('z', 8)],
                               data=np.array([1.0, 2.0, 3.0], np.float32).tobytes())
        return SimpleNamespace(**{**vars(base), **change})
    one = point_cloud2_to_array(cloud())
    assert one.tolist() == [(1.0, 2.0, 3.0)]
    for empty in (cloud(width=0, row_step=0, data=b''), cloud(height=0, data=b'')):
        points = point_cloud2_to_array(empty)
        assert points.shape == (0,) and points.dtype.names == ('x', 'y', 'z')
        assert points.dtype['x'] == np.dtype('=f4')
    for change, message in (
            ({'fields': [field('x', 0, datatype=9)]}, "field 'x' has unknown datatype 9"),
            ({'row_step': 11}, 'row_step 11 is below width 1 x point_step 12'),
            ({'data': bytes(11)}, 'cloud data holds 11 bytes, the header needs 12')):
        with pytest.raises(ValueError) as info:
            point_cloud2_to_array(cloud(**change))
        assert str(info.value) == message

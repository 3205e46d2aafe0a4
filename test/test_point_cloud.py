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

"""Tests of eigen_depth_ros.msg.point_cloud and .camera_info (no rclpy needed)."""
from __future__ import annotations

import math
from types import SimpleNamespace

from eigen_depth_ros.core.geometry import InputGeometry
from eigen_depth_ros.core.model import KITTI
from eigen_depth_ros.msg.camera_info import (CameraInfoError, depth_camera_info_fields,
                                             fallback_intrinsics, Intrinsics,
                                             intrinsics_from_camera_info)
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


def camera_info(**overrides: object) -> SimpleNamespace:
    info = SimpleNamespace(width=640, height=480, binning_x=0, binning_y=0,
                           roi=SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0),
                           k=[500.0, 0, 320.0, 0, 505.0, 240.0, 0, 0, 1],
                           p=[490.0, 0, 318.0, 0, 0, 495.0, 238.0, 0, 0, 0, 1, 0])
    for name, value in overrides.items():
        setattr(info, name, value)
    return info


def test_intrinsics_come_from_p_then_k() -> None:
    assert intrinsics_from_camera_info(camera_info()).pinhole == (490.0, 495.0, 318.0, 238.0)
    k_only = intrinsics_from_camera_info(camera_info(p=[0.0] * 12))
    assert k_only.pinhole == (500.0, 505.0, 320.0, 240.0)
    assert k_only.matches(640, 480) and not k_only.matches(480, 640)


def test_binning_and_roi() -> None:
    info = camera_info(binning_x=2, binning_y=2, p=[0.0] * 12,
                       roi=SimpleNamespace(x_offset=100, y_offset=40, width=400, height=300))
    intrinsics = intrinsics_from_camera_info(info)
    assert (intrinsics.width, intrinsics.height) == (200, 150)
    assert intrinsics.fx == 250.0 and intrinsics.cx == (320.0 - 100 + 0.5) / 2 - 0.5


@pytest.mark.parametrize('overrides,words', [
    ({'k': [0.0] * 9, 'p': [0.0] * 12}, 'focal length'),
    ({'p': [math.nan] + [0.0] * 11, 'k': [math.nan] * 9}, 'focal length'),
    ({'width': 0}, 'empty'),
])
def test_bad_camera_info_is_rejected(overrides: dict, words: str) -> None:
    with pytest.raises(CameraInfoError, match=words):
        intrinsics_from_camera_info(camera_info(**overrides))


def test_fallback_intrinsics_default_to_the_centre() -> None:
    intrinsics = fallback_intrinsics(641, 480, 300.0)
    assert intrinsics.pinhole == (300.0, 300.0, 320.0, 239.5)
    assert fallback_intrinsics(10, 10, 5.0, 6.0, 1.0, 2.0).pinhole == (5.0, 6.0, 1.0, 2.0)
    with pytest.raises(CameraInfoError):
        fallback_intrinsics(10, 10, 0.0)


def test_depth_camera_info_fields() -> None:
    fields = depth_camera_info_fields(50.0, 51.0, 20.5, 10.25, 142, 27)
    assert (fields['width'], fields['height']) == (142, 27)
    assert fields['k'] == [50.0, 0.0, 20.5, 0.0, 51.0, 10.25, 0.0, 0.0, 1.0]
    assert fields['p'][:3] == [50.0, 0.0, 20.5] and fields['p'][3] == 0.0
    assert fields['d'] == [0.0] * 5 and fields['distortion_model'] == 'plumb_bob'
    # What the node publishes is read back as the same intrinsics.
    back = intrinsics_from_camera_info(SimpleNamespace(**fields))
    assert back.pinhole == (50.0, 51.0, 20.5, 10.25)


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

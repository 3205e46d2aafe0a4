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

"""Camera <-> network geometry: sizes, the affine map, intrinsics and resampling."""
import math
import warnings

from eigen_depth_ros.core.geometry import InputGeometry
from eigen_depth_ros.core.model import KITTI, NYU
import numpy as np
import pytest


def test_kitti_centre_crop_sizes():
    g = InputGeometry.fit(1242, 375, KITTI)
    assert (g.resized_width, g.resized_height) == (576, 174)
    assert (g.crop_x, g.crop_y) == (0, 1)
    window = g.crop_input(np.zeros((375, 1242, 3), np.uint8))
    assert window.shape == (172, 576, 3)


def test_resize_follows_the_pixel_centre_convention():
    # A linear ramp I(u) = u comes out as the camera coordinate (u_r + 0.5) / s - 0.5 of each
    # resized pixel (away from the borders, where the filter is cut), as the geometry says,
    # to within the 0.05 px that PyTorch's discretised filter support leaves.
    g = InputGeometry.fit(1242, 375, KITTI)
    ramp = np.broadcast_to(np.arange(1242, dtype=np.float32)[None, :, None], (375, 1242, 3))
    window = g.crop_input(ramp)
    s = g.resized_width / g.image_width
    expected = (np.arange(g.crop_x, g.crop_x + 576) + 0.5) / s - 0.5
    np.testing.assert_allclose(window[80, 5:-5, 1], expected[5:-5], atol=0.05)


def test_resize_does_not_alias_when_shrinking():
    # One-pixel stripes shrunk 2.16x must average out to grey, not beat into bands.
    g = InputGeometry.fit(1242, 375, KITTI)
    stripes = np.zeros((375, 1242, 3), np.uint8)
    stripes[:, ::2] = 255
    window = g.crop_input(stripes).astype(np.float32)
    assert window.dtype == np.float32 and window.shape == (172, 576, 3)
    assert abs(window[:, 2:-2].mean() - 127.5) < 2
    assert window[:, 2:-2].std() < 25  # plain bilinear sampling gives about 100


def test_uint8_and_float_resizes_differ_by_the_rounding():
    # Off the CPU uint8 images are resized as float32: the same filter, but without the
    # uint8 path's fixed-point weights and rounding.
    g = InputGeometry.fit(640, 480, NYU)
    rgb = np.random.default_rng(3).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    as_uint8 = g.crop_input(rgb).astype(np.float32)
    as_float = g.crop_input(rgb.astype(np.float32))
    difference = np.abs(as_uint8 - as_float)
    assert difference.max() < 1.0 and difference.mean() < 0.3


def test_affine_map_of_output_pixels():
    g = InputGeometry.fit(1242, 375, KITTI)
    a_x, b_x, a_y, b_y = g.output_to_image_affine()
    sx, sy = 576 / 1242, 174 / 375
    assert a_x == pytest.approx(4 / sx) and a_y == pytest.approx(4 / sy)
    # output pixel 0 is the centre of input column 5 / row 57 + 5 (+ crop row 1)
    assert b_x == pytest.approx(5.5 / sx - 0.5)
    assert b_y == pytest.approx((5 + 57 + 1 + 0.5) / sy - 0.5)


def test_output_intrinsics_project_points_consistently():
    g = InputGeometry.fit(640, 480, NYU)
    fx, fy, cx, cy = 500.0, 510.0, 320.0, 240.0
    fx2, fy2, cx2, cy2 = g.output_intrinsics(fx, fy, cx, cy)
    a_x, b_x, a_y, b_y = g.output_to_image_affine()
    point = np.array([0.7, -0.4, 3.0])
    u, v = fx * point[0] / point[2] + cx, fy * point[1] / point[2] + cy
    j, i = fx2 * point[0] / point[2] + cx2, fy2 * point[1] / point[2] + cy2
    assert (a_x * j + b_x, a_y * i + b_y) == pytest.approx((u, v))


def test_output_to_image_is_nan_outside_and_linear_inside():
    g = InputGeometry.fit(1242, 375, KITTI)
    w_out, h_out = g.output_size
    ramp = np.tile(np.arange(w_out, dtype=np.float32), (h_out, 1))  # value = column j
    full = g.output_to_image(ramp)
    assert full.shape == (375, 1242)
    a_x, b_x, _, b_y = g.output_to_image_affine()
    assert np.isnan(full[0]).all() and np.isnan(full[:, 0]).all()  # above/left of the map
    row = int(np.ceil(b_y)) + 5
    cols = np.arange(int(np.ceil(b_x)), int((w_out - 1) * a_x + b_x))
    assert np.allclose(full[row, cols], (cols - b_x) / a_x, atol=1e-3)
    filled = g.output_to_image(ramp, fill_outside=True)
    assert np.isfinite(filled).all() and filled[0, 0] == 0.0
    # the border columns are extended: the last one holds the map's last column, w_out - 1
    assert (filled[:, -1] == w_out - 1).all()


def test_sparse_depth_binning_keeps_the_nearest():
    g = InputGeometry.fit(1242, 375, KITTI)
    a_x, b_x, a_y, b_y = g.output_to_image_affine()
    depth = np.zeros((375, 1242), np.float32)
    u, v = int(round(10 * a_x + b_x)), int(round(5 * a_y + b_y))
    depth[v, u] = 12.0
    depth[v, u + 1] = 9.0       # same cell, nearer
    depth[2, 2] = 30.0          # outside the output map
    out = g.sparse_depth_to_output(depth)
    assert out.shape == (27, 142)
    assert out[5, 10] == 9.0 and np.count_nonzero(out) == 1


def test_bad_sizes():
    with pytest.raises(ValueError, match='empty'):
        InputGeometry.fit(0, 375, KITTI)
    g = InputGeometry.fit(640, 480, KITTI)
    with pytest.raises(ValueError, match='geometry is for 640x480'):
        g.crop_input(np.zeros((10, 10, 3), np.uint8))


def test_flipped_and_read_only_images_are_accepted():
    # BGR -> RGB by a negative-stride view, and a read-only buffer (np.frombuffer of a
    # message) both resize like the same pixels in an ordinary array.
    g = InputGeometry.fit(64, 48, NYU)
    bgr = np.random.default_rng(5).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    expected = g.crop_input(np.ascontiguousarray(bgr[..., ::-1]))
    np.testing.assert_array_equal(g.crop_input(bgr[..., ::-1]), expected)
    read_only = np.frombuffer(bgr.tobytes(), np.uint8).reshape(bgr.shape)
    np.testing.assert_array_equal(g.crop_input(read_only), g.crop_input(bgr))


def test_input_focal_and_focal_scale_follow_the_canonical_focal_rule():
    from eigen_depth_ros.core.geometry import focal_scale, kitti_train_focal
    kitti = InputGeometry.fit(1242, 375, KITTI)
    # KITTI's 721.5 px at 1242 wide is about 334.7 px at the 576-px network input.
    assert kitti.input_focal(721.5377, 721.5377) == pytest.approx(334.7, abs=0.1)
    assert kitti_train_focal(KITTI) == kitti.input_focal(721.5377, 721.5377)
    # The example: 640x480 with fx = 525 is 472.5 px at the input (576 / 640 = 0.9).
    robot = InputGeometry.fit(640, 480, KITTI)
    assert (robot.resized_width, robot.resized_height) == (576, 432)  # isotropic resize
    assert robot.input_focal(525.0, 525.0) == pytest.approx(472.5)
    assert focal_scale(472.5, 334.7) == pytest.approx(1.4117, abs=1e-4)
    # fx and fy are averaged after the per-axis resize; the rule is linear in f_in.
    assert robot.input_focal(500.0, 550.0) == pytest.approx(0.5 * (500 + 550) * 0.9)
    assert focal_scale(2 * 300.0, 300.0) == 2.0
    for bad in (0.0, -1.0, float('nan'), float('inf')):
        with pytest.raises(ValueError):
            focal_scale(bad, 334.7)
        with pytest.raises(ValueError):
            focal_scale(334.7, bad)


def test_image_tensor_views_ordinary_images_and_copies_the_others():
    from eigen_depth_ros.core.geometry import image_tensor
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    tensor = image_tensor(rgb)
    assert tuple(tensor.shape) == (1, 3, 4, 5)
    rgb[1, 2, 0] = 200                      # a view: the tensor sees the change
    assert tensor[0, 0, 1, 2].item() == 200
    read_only = np.frombuffer(rgb.tobytes(), np.uint8).reshape(rgb.shape)
    with warnings.catch_warnings():
        warnings.simplefilter('error')      # PyTorch warns when it views read-only memory
        copied = image_tensor(read_only)
    np.testing.assert_array_equal(copied[0].permute(1, 2, 0).numpy(), rgb)


def test_uint8_stays_uint8_on_the_cpu_and_becomes_float_elsewhere():
    import torch
    g = InputGeometry.fit(1242, 375, KITTI)
    assert g.crop_input(np.zeros((375, 1242, 3), np.uint8)).dtype == np.uint8
    # the 'meta' device stands in for a GPU: shapes and dtypes, no data
    off_cpu = g.resize_crop(torch.zeros((1, 3, 375, 1242), dtype=torch.uint8, device='meta'))
    assert off_cpu.dtype == torch.float32 and tuple(off_cpu.shape) == (1, 3, 172, 576)


def test_a_crop_window_off_the_left_edge_moves_the_affine_map():
    # 700x172 needs no resize (s = 1); the 576-wide window is centred: crop_x = 62, so output
    # column 0 is camera column 5 + 62 and output row 0 is camera row 5 + 57.
    g = InputGeometry.fit(700, 172, KITTI)
    assert (g.resized_width, g.resized_height, g.crop_x, g.crop_y) == (700, 172, 62, 0)
    assert g.output_to_image_affine() == (4.0, 67.0, 4.0, 62.0)
    assert g.output_intrinsics(500.0, 500.0, 350.0, 86.0) == (125.0, 125.0, 70.75, 6.0)


@pytest.mark.parametrize('size', [(1242, 375), (576, 172)])
def test_output_to_image_is_finite_exactly_where_the_map_reaches(size):
    # 576x172 is the network input itself: the affine is integer, so camera pixels fall
    # exactly on the first and last output pixel centres, which are inside.
    g = InputGeometry.fit(*size, KITTI)
    a_x, b_x, a_y, b_y = g.output_to_image_affine()
    w_out, h_out = g.output_size
    u = (np.arange(size[0]) - b_x) / a_x
    v = (np.arange(size[1]) - b_y) / a_y
    reach = ((v >= 0) & (v <= h_out - 1))[:, None] & ((u >= 0) & (u <= w_out - 1))[None, :]
    rows = np.tile(np.arange(h_out, dtype=np.float64)[:, None], (1, w_out))  # value = row i
    full = g.output_to_image(rows)
    assert full.dtype == np.float32
    np.testing.assert_array_equal(np.isfinite(full), reach)
    np.testing.assert_allclose(full[reach], np.broadcast_to(v[:, None], full.shape)[reach],
                               atol=1e-3)


def test_sparse_points_nearer_than_a_metre_are_kept():
    g = InputGeometry.fit(1242, 375, KITTI)
    a_x, b_x, a_y, b_y = g.output_to_image_affine()
    depth = np.zeros((375, 1242), np.float32)
    depth[int(round(5 * a_y + b_y)), int(round(10 * a_x + b_x))] = 0.5
    out = g.sparse_depth_to_output(depth)
    assert out[5, 10] == 0.5 and np.count_nonzero(out) == 1


def test_focal_lengths_below_one_pixel_are_valid_and_bad_ones_are_named():
    from eigen_depth_ros.core.geometry import focal_scale
    g = InputGeometry.fit(1242, 375, KITTI)
    s = 576 / 1242
    assert g.input_focal(0.5, 0.5) == pytest.approx(0.5 * (0.5 * s + 0.5 * 174 / 375))
    assert focal_scale(0.5, 0.25) == 2.0
    for fx, fy in ((math.inf, 700.0), (700.0, 0.0), (-1.0, 700.0), (math.nan, 700.0)):
        with pytest.raises(ValueError) as info:
            g.input_focal(fx, fy)
        assert str(info.value) == \
            f'focal lengths must be positive and finite, got fx={fx}, fy={fy}'
    with pytest.raises(ValueError) as info:
        focal_scale(0.0, 334.7)
    assert str(info.value) == 'focal lengths must be positive and finite, got f_in=0.0, ' \
        'f_train=334.7'


def test_crop_input_needs_a_colour_image():
    g = InputGeometry.fit(64, 48, NYU)
    with pytest.raises(ValueError) as info:
        g.crop_input(np.zeros((48, 64), np.uint8))
    assert str(info.value) == 'expected an (H, W, C) image, got shape (48, 64)'


def test_one_pixel_images_fit_and_extra_scale_below_one_is_named():
    # a 1-pixel-wide or -high camera image is odd but not empty: scaled up to fit the input
    # (x576 and x172), the window centred: (216000 - 172) / 2 and (213624 - 576) / 2
    tall = InputGeometry.fit(1, 375, KITTI)
    assert (tall.resized_width, tall.resized_height, tall.crop_x, tall.crop_y) == \
        (576, 216000, 0, 107914)
    wide = InputGeometry.fit(1242, 1, KITTI)
    assert (wide.resized_width, wide.resized_height, wide.crop_x, wide.crop_y) == \
        (213624, 172, 106524, 0)
    with pytest.raises(ValueError) as info:
        InputGeometry.fit(1242, 375, KITTI, extra_scale=0.5)
    assert str(info.value) == 'extra_scale must be >= 1, got 0.5'

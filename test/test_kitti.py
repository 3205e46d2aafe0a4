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
KITTI raw readers and the Velodyne-to-image ground truth.

Tested on hand-made files and on the synthetic world (whose dense true depth the projected
scans must agree with).
"""
import shutil

import cv2
from eigen_depth_training import kitti, synth
from hypothesis import assume, given, settings, strategies as st
import numpy as np
import pytest

DATE = '2011_09_26'
DRIVE = '2011_09_26/2011_09_26_drive_0002_sync'


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    """One drive of three frames at the full KITTI size."""
    root = tmp_path_factory.mktemp('kitti')
    synth.write_synthetic_kitti(root, drive_names=[DRIVE], frames=3, seed=7)
    return root


def _calib_dir(tmp_path, p_rect, size, velo_r=((0, -1, 0), (0, 0, -1), (1, 0, 0)),
               velo_t=(0, 0, 0)):
    """Write a hand-made date folder: camera 2 with ``p_rect``, R_rect_00 = I."""
    def fmt(values):
        return ' '.join(f'{v:.9e}' for v in np.ravel(values))
    (tmp_path / 'calib_cam_to_cam.txt').write_text(
        'calib_time: 09-Jan-2012 13:57:47\n'
        f'S_rect_02: {fmt(size)}\nR_rect_00: {fmt(np.eye(3))}\nP_rect_02: {fmt(p_rect)}\n')
    (tmp_path / 'calib_velo_to_cam.txt').write_text(
        f'calib_time: 15-Mar-2012 11:37:16\nR: {fmt(velo_r)}\nT: {fmt(velo_t)}\n'
        'delta_f: 0 0\ndelta_c: 0 0\n')
    return tmp_path


SIMPLE_P = [[100.0, 0.0, 50.0, 0.0], [0.0, 100.0, 20.0, 0.0], [0.0, 0.0, 1.0, 0.0]]


def _simple_calib(tmp_path):
    return kitti.load_calibration(_calib_dir(tmp_path, SIMPLE_P, (80, 40)))


def _velo_point(u, v, depth):
    """Velodyne point that SIMPLE_P projects to (u, v) (1-based) at forward distance depth."""
    x_cam, y_cam = (u - 50.0) / 100.0 * depth, (v - 20.0) / 100.0 * depth
    return [depth, -x_cam, -y_cam, 0.5]


def test_read_calib_file(tmp_path):
    path = tmp_path / 'calib.txt'
    path.write_text('calib_time: 09-Jan-2012 13:57:47\nP: 1 2.5e+00 -3\n\nS: 1.242e+03 375\n'
                    'empty:\n')
    values = kitti.read_calib_file(path)
    assert set(values) == {'P', 'S', 'empty'}
    assert values['P'].dtype == np.float64 and values['P'].tolist() == [1.0, 2.5, -3.0]
    assert values['S'].tolist() == [1242.0, 375.0] and values['empty'].size == 0
    path.write_text('P: 1 2\nK: 1 2 abc\n')
    with pytest.raises(kitti.KittiFormatError, match=r'calib\.txt:2: .*K'):
        kitti.read_calib_file(path)
    path.write_text('P 1 2\n')
    with pytest.raises(kitti.KittiFormatError, match=r'calib\.txt:1'):
        kitti.read_calib_file(path)
    with pytest.raises(kitti.KittiFormatError, match='nowhere.txt'):
        kitti.read_calib_file(tmp_path / 'nowhere.txt')


def test_load_calibration_of_the_synthetic_rig(world):
    values = synth.calibration_values()['calib_cam_to_cam.txt']
    left = kitti.load_calibration(world / DATE)
    np.testing.assert_array_equal(left.P_rect, values['P_rect_02'].reshape(3, 4))
    np.testing.assert_array_equal(left.R_rect_00, values['R_rect_00'].reshape(3, 3))
    assert left.image_size == (1242, 375) and left.cam == 2
    assert left.velo_to_cam[3].tolist() == [0, 0, 0, 1]
    np.testing.assert_allclose(left.velo_to_cam[:3, 3], [-0.0041, -0.0763, -0.2718])
    right = kitti.load_calibration(world / DATE, cam=3)
    np.testing.assert_array_equal(right.P_rect, values['P_rect_03'].reshape(3, 4))
    # the x offsets P[0, 3] / P[0, 0] of the two colour cameras: KITTI's 0.54 m baseline
    offsets = [cal.P_rect[0, 3] / cal.P_rect[0, 0] for cal in (left, right)]
    assert offsets == pytest.approx([0.06, -0.47], abs=0.01)
    with pytest.raises(ValueError):
        kitti.load_calibration(world / DATE, cam=4)


def test_missing_or_bad_key_names_file_and_key(tmp_path, world):
    date = tmp_path / DATE
    shutil.copytree(world / DATE, date, ignore=shutil.ignore_patterns('*_sync'))
    cam_file = date / 'calib_cam_to_cam.txt'
    text = cam_file.read_text()
    cam_file.write_text(''.join(line + '\n' for line in text.splitlines()
                                if not line.startswith('P_rect_02')))
    with pytest.raises(kitti.KittiFormatError) as info:
        kitti.load_calibration(date)
    assert 'calib_cam_to_cam.txt' in str(info.value) and "'P_rect_02'" in str(info.value)
    kitti.load_calibration(date, cam=3)                  # other cameras still load
    cam_file.write_text(text.replace('S_rect_02: 1.242000e+03 3.750000e+02',
                                     'S_rect_02: 1.242000e+03'))
    with pytest.raises(kitti.KittiFormatError, match='S_rect_02.* needs 2'):
        kitti.load_calibration(date)
    cam_file.write_text(text)
    velo_file = date / 'calib_velo_to_cam.txt'
    velo_file.write_text(''.join(line + '\n' for line in velo_file.read_text().splitlines()
                                 if not line.startswith('R:')))
    with pytest.raises(kitti.KittiFormatError) as info:
        kitti.load_calibration(date)
    assert 'calib_velo_to_cam.txt' in str(info.value) and "'R'" in str(info.value)


def test_pixel_convention_round_minus_one(tmp_path):
    calib = _simple_calib(tmp_path)
    points = np.array([_velo_point(53.3, 21.2, 10.0),     # -> column 52, row 20
                       _velo_point(0.4, 5.0, 8.0),        # round(0.4) - 1 = -1: outside
                       _velo_point(0.6, 6.0, 8.0),        # column 0
                       _velo_point(80.4, 7.0, 9.0),       # column 79
                       _velo_point(80.6, 8.0, 9.0),       # column 80: outside
                       _velo_point(30.0, 40.4, 7.0),      # row 39
                       _velo_point(30.0, 40.6, 7.0),      # row 40: outside
                       [-5.0, 0.0, 0.0, 0.5]])            # behind the Velodyne
    depth = kitti.velodyne_depth_map(points, calib)
    assert depth.shape == (40, 80) and depth.dtype == np.float32
    expected = np.zeros((40, 80), np.float32)
    expected[20, 52], expected[5, 0], expected[6, 79], expected[39, 29] = 10.0, 8.0, 9.0, 7.0
    np.testing.assert_allclose(depth, expected, rtol=1e-6)


def test_depth_is_the_velodyne_forward_distance(tmp_path):
    """
    Check that depth is the Velodyne x, not the camera depth.

    With the Velodyne 0.27 m behind the camera, a point 10 m ahead of it reports 10 m
    (its x), not its camera depth 9.73 m.
    """
    calib = kitti.load_calibration(_calib_dir(tmp_path, SIMPLE_P, (80, 40),
                                              velo_t=(0.0, 0.0, -0.27)))
    depth = kitti.velodyne_depth_map(np.array([[10.0, 0.0, 0.0, 1.0]]), calib)
    assert depth[19, 49] == pytest.approx(10.0) and np.count_nonzero(depth) == 1


def test_points_with_x_not_positive_are_dropped(tmp_path):
    """Even where a camera 0.5 m behind the Velodyne would see them."""
    calib = kitti.load_calibration(_calib_dir(tmp_path, SIMPLE_P, (80, 40),
                                              velo_t=(0.0, 0.0, 0.5)))
    points = np.array([[-0.2, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0], [0.1, 0.0, 0.0, 1.0]])
    depth = kitti.velodyne_depth_map(points, calib)
    assert np.count_nonzero(depth) == 1 and depth[19, 49] == pytest.approx(0.1)


def test_nearest_point_wins(tmp_path):
    calib = _simple_calib(tmp_path)
    near, far = _velo_point(25.1, 10.2, 5.0), _velo_point(25.3, 9.9, 12.0)
    for points in ([near, far], [far, near]):
        depth = kitti.velodyne_depth_map(np.array(points), calib)
        assert depth[9, 24] == 5.0 and np.count_nonzero(depth) == 1


@pytest.fixture(scope='module')
def simple_calib(tmp_path_factory):
    return _simple_calib(tmp_path_factory.mktemp('calib'))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-2.0, 82.0), st.floats(-2.0, 42.0), st.floats(-3.0, 60.0)),
                max_size=60))
def test_matches_a_per_point_reference(simple_calib, samples):
    points = np.array([_velo_point(u, v, d) for u, v, d in samples] or np.zeros((0, 4)),
                      dtype=np.float32)
    reference = np.zeros((40, 80), np.float32)
    matrix = simple_calib.velo_to_image
    for x, y, z, _ in points:
        if x <= 0:
            continue
        u, v, w = matrix @ [x, y, z, 1.0]
        # Exact halves may round either way after a last-bit difference in the product.
        assume(min(abs(u / w % 1 - 0.5), abs(v / w % 1 - 0.5)) > 1e-6)
        col, row = int(np.round(u / w)) - 1, int(np.round(v / w)) - 1
        inside = 0 <= col < 80 and 0 <= row < 40
        if inside and (reference[row, col] == 0 or x < reference[row, col]):
            reference[row, col] = x
    np.testing.assert_array_equal(kitti.velodyne_depth_map(points, simple_calib), reference)


def test_projected_scan_agrees_with_dense_depth(world):
    """
    Check the projected scan against the dense true depth.

    Each ground-truth pixel equals the Velodyne x of the point that the dense true depth
    puts at the pixel centre, away from depth edges.
    """
    calib = kitti.load_calibration(world / DATE)
    k, offset = calib.P_rect[:, :3], calib.P_rect[:, 3]
    rect = np.eye(4)
    rect[:3, :3] = calib.R_rect_00
    to_velo = np.linalg.inv(rect @ calib.velo_to_cam)
    rows, cols = np.mgrid[0:375, 0:1242]
    rays = np.stack([cols + 1.0, rows + 1.0, np.ones_like(cols, float)], -1) @ np.linalg.inv(k).T
    centre = -np.linalg.solve(k, offset)
    folder = world / DRIVE
    for frame in range(3):
        gt = kitti.generate_depth_map(world / DATE,
                                      folder / 'velodyne_points' / 'data' / f'{frame:010d}.bin')
        dense = np.load(folder / synth.SYNTHETIC_DEPTH_DIR / f'{frame:010d}.npy')
        assert gt.shape == dense.shape and gt.dtype == np.float32
        hits = gt > 0
        assert hits.sum() > 8000 and gt.max() < 125.0
        assert np.mean(np.isfinite(dense[hits])) > 0.99      # no LiDAR hit in the sky
        padded = np.pad(np.where(np.isfinite(dense), dense, 1e6), 1, mode='edge')
        windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3))
        smooth = windows.max(axis=(2, 3)) < 1.05 * windows.min(axis=(2, 3))
        compare = hits & smooth
        with np.errstate(invalid='ignore'):
            points = centre + np.where(compare, dense, 0.0)[..., None] * rays
        x_velo = (points @ to_velo[:3, :3].T + to_velo[:3, 3])[..., 0]
        rel = np.abs(gt[compare] - x_velo[compare]) / x_velo[compare]
        assert compare.sum() > 0.8 * hits.sum()
        assert np.mean(rel < 0.02) > 0.98 and np.median(rel) < 0.005


def test_velodyne_file_errors(tmp_path):
    points = np.arange(32, dtype=np.float32).reshape(8, 4)
    good = tmp_path / 'good.bin'
    points.tofile(good)
    np.testing.assert_array_equal(kitti.load_velodyne_points(good), points)
    for name, data in (('odd.bin', b'\0' * 17), ('empty.bin', b'')):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(kitti.KittiFormatError, match=name):
            kitti.load_velodyne_points(tmp_path / name)
    with pytest.raises(kitti.KittiFormatError, match='missing.bin'):
        kitti.generate_depth_map(tmp_path, tmp_path / 'missing.bin')


def test_read_image(tmp_path, world):
    bgr = np.zeros((4, 6, 3), np.uint8)
    bgr[..., 2] = 255                                       # red, in OpenCV's order
    cv2.imwrite(str(tmp_path / 'red.png'), bgr)
    rgb = kitti.read_image(tmp_path / 'red.png')
    assert rgb.shape == (4, 6, 3) and rgb.dtype == np.uint8 and rgb[0, 0].tolist() == [255, 0, 0]
    image = kitti.read_image(kitti.frame_path(world, DRIVE, 'image_02', 1))
    assert image.shape == (375, 1242, 3)
    (tmp_path / 'bad.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'garbage' * 10)
    with pytest.raises(kitti.KittiFormatError, match='bad.png'):
        kitti.read_image(tmp_path / 'bad.png')
    with pytest.raises(kitti.KittiFormatError, match='none.png'):
        kitti.read_image(tmp_path / 'none.png')


def test_oxts(tmp_path):
    values = np.zeros(30)
    values[6:9] = (3.0, 4.0, 5.0)                            # vn, ve, vf
    path = tmp_path / 'oxts.txt'
    path.write_text(' '.join(str(v) for v in values))
    assert kitti.read_oxts_packet(path)['vf'] == 5.0
    assert kitti.read_oxts_speed(path) == pytest.approx(5.0)
    assert not kitti.is_stationary(path) and kitti.is_stationary(path, threshold=6.0)
    values[6:9] = (0.3, 0.0, 0.3)
    path.write_text(' '.join(str(v) for v in values))
    assert kitti.is_stationary(path)                         # below 0.5 m/s
    path.write_text(' '.join(str(v) for v in values[:29]))
    with pytest.raises(kitti.KittiFormatError, match='oxts.txt.*30'):
        kitti.read_oxts_packet(path)


def test_drive_names_and_paths():
    for spelling in ('2011_09_26_drive_0002_sync', '2011_09_26_drive_0002', DRIVE, DRIVE + '/'):
        assert kitti.normalise_drive(spelling) == DRIVE
    for bad in ('2011_09_27/2011_09_26_drive_0002_sync', 'drive_0002', '2011_09_26_drive_2'):
        with pytest.raises(ValueError):
            kitti.normalise_drive(bad)
    assert kitti.frame_path('/r', '2011_09_26_drive_0002', 'velodyne_points', 7).as_posix() == \
        f'/r/{DRIVE}/velodyne_points/data/0000000007.bin'


def test_list_drive_frames_reports_what_it_skips(tmp_path):
    synth.write_synthetic_kitti(tmp_path, drive_names=[DRIVE], frames=6, stationary=2,
                                size=(64, 32))
    kitti.frame_path(tmp_path, DRIVE, 'image_02', 1).unlink()
    kitti.frame_path(tmp_path, DRIVE, 'velodyne_points', 3).unlink()
    kitti.frame_path(tmp_path, DRIVE, 'oxts', 5).unlink()
    index = kitti.list_drive_frames(tmp_path, DRIVE)
    assert index.frames == (0, 2, 4, 5)
    assert index.missing_image == (1,) and index.missing_velodyne == (3,)
    assert index.stationary == () and index.missing_oxts == ()
    index = kitti.list_drive_frames(tmp_path, '2011_09_26_drive_0002_sync', skip_stationary=True)
    assert index.frames == (2, 4, 5) and index.stationary == (0,) and index.missing_oxts == (5,)
    assert index.summary() == (f'{DRIVE} image_02: 3 frames, 1 without an image, '
                               '1 without a scan, 1 stationary skipped, 1 without OXTS')
    assert kitti.list_drive_frames(tmp_path, DRIVE, cam=3).frames == (0, 1, 2, 4, 5)
    with pytest.raises(kitti.KittiFormatError, match='drive_0009'):
        kitti.list_drive_frames(tmp_path, '2011_09_26_drive_0009')

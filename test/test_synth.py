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

"""The synthetic KITTI world: layout and formats, geometry, variety, determinism, CLI."""
import re
import subprocess
import sys

import cv2
from eigen_depth_training import kitti, synth
from eigen_depth_training.splits import EIGEN_TEST_DRIVES
from eigen_depth_training.synth import world as synth_world
import numpy as np
import pytest

STAMP = re.compile(r'^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{9}$')


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    """Two drives of three frames at the full KITTI size (about 2 s)."""
    root = tmp_path_factory.mktemp('kitti')
    return root, synth.write_synthetic_kitti(root, drives=2, frames=3, seed=0)


def _stamps(path):
    lines = path.read_text().splitlines()
    assert all(STAMP.match(line) for line in lines), lines
    clock = [line.split()[1].split(':') for line in lines]
    return np.array([int(h) * 3600 + int(m) * 60 + float(s) for h, m, s in clock])


def test_default_names_mix_test_and_train_drives():
    names = synth.default_drive_names(5)
    assert names[:2] == ['2011_09_26/2011_09_26_drive_0002_sync',
                         '2011_09_26/2011_09_26_drive_0001_sync']
    assert names[3] == '2011_09_26/2011_09_26_drive_0009_sync'
    assert [n in EIGEN_TEST_DRIVES for n in names] == [True, False, False, True, False]
    assert len(set(synth.default_drive_names(40))) == 40


def test_layout_and_formats(world):
    root, infos = world
    assert [i.name for i in infos] == synth.default_drive_names(2)
    date = root / '2011_09_26'
    for name in ('calib_cam_to_cam.txt', 'calib_velo_to_cam.txt', 'calib_imu_to_velo.txt'):
        assert (date / name).read_text().startswith('calib_time: 26-Sep-2011 ')
    for info in infos:
        assert info.path == date / info.drive and info.frames == 3
        for cam in ('image_02', 'image_03'):
            files = sorted(p.name for p in (info.path / cam / 'data').iterdir())
            assert files == [f'{i:010d}.png' for i in range(3)]
            image = cv2.imread(str(info.path / cam / 'data' / files[0]), cv2.IMREAD_UNCHANGED)
            assert image.shape == (375, 1242, 3) and image.dtype == np.uint8
            assert image.std() > 20           # textured, not flat
        camera = _stamps(info.path / 'image_02' / 'timestamps.txt')
        assert np.allclose(np.diff(camera), 0.1036, atol=2e-3)
        velo = info.path / 'velodyne_points'
        start, mid, end = (_stamps(velo / f'timestamps{s}.txt') for s in ('_start', '', '_end'))
        assert np.all(start < mid) and np.all(mid < end)
        for frame in range(3):
            assert (velo / 'data' / f'{frame:010d}.bin').stat().st_size % 16 == 0
            packet = (info.path / 'oxts' / 'data' / f'{frame:010d}.txt').read_text().split()
            assert len(packet) == 30
            depth = np.load(info.path / synth.SYNTHETIC_DEPTH_DIR / f'{frame:010d}.npy')
            assert depth.shape == (375, 1242) and depth.dtype == np.float32
        keys = [line.split(':')[0] for line in
                (info.path / 'oxts' / 'dataformat.txt').read_text().splitlines()]
        assert tuple(keys) == kitti.OXTS_FIELDS
        assert not (info.path / 'image_00').exists()


def test_calibration_is_written_exactly_and_kitti_like(world):
    root, _ = world
    expected = synth.calibration_values()
    for name, values in expected.items():
        read = kitti.read_calib_file(root / '2011_09_26' / name)
        assert set(read) == set(values)                  # calib_time is text, left out
        for key, value in values.items():
            np.testing.assert_array_equal(read[key], value, err_msg=f'{name} {key}')
    cam = expected['calib_cam_to_cam.txt']
    p2, p3 = cam['P_rect_02'].reshape(3, 4), cam['P_rect_03'].reshape(3, 4)
    assert p2[0, 0] == pytest.approx(721.5377)
    assert p2[0, 3] / p2[0, 0] == pytest.approx(0.06, abs=0.005)
    assert p3[0, 3] / p3[0, 0] == pytest.approx(-0.47, abs=0.01)
    rect = cam['R_rect_00'].reshape(3, 3)
    assert np.abs(rect - np.eye(3)).max() < 0.02
    np.testing.assert_allclose(rect @ rect.T, np.eye(3), atol=1e-6)
    assert cam['S_rect_02'].tolist() == [1242.0, 375.0]
    velo = expected['calib_velo_to_cam.txt']
    r = velo['R'].reshape(3, 3)
    # Velodyne x (forward) is camera z, y (left) is camera -x, z (up) is camera -y.
    np.testing.assert_allclose(r, [[0, -1, 0], [0, 0, -1], [1, 0, 0]], atol=0.02)
    np.testing.assert_allclose(velo['T'], [0.0, -0.08, -0.27], atol=0.01)


def test_road_depth_matches_the_camera_geometry(world):
    """The bottom-centre pixel sees the road: z = f h / (v - c_y) with v = row + 1."""
    _, infos = world
    p2 = synth.calibration_values()['calib_cam_to_cam.txt']['P_rect_02'].reshape(3, 4)
    centre = -np.linalg.solve(p2[:, :3], p2[:, 3])
    depth = np.load(infos[0].path / synth.SYNTHETIC_DEPTH_DIR / '0000000000.npy')
    expected = p2[1, 1] * (synth.CAMERA_HEIGHT - centre[1]) / (375 - p2[1, 2])
    assert depth[374, 609] == pytest.approx(expected, rel=1e-4)
    finite = np.isfinite(depth)
    assert 0.01 < 1 - finite.mean() < 0.4                 # some sky, at infinity
    assert not finite[0].all() and finite[-1].all()       # sky on top, ground at the bottom
    assert 5.0 < np.median(depth[finite]) < 40.0
    assert depth[finite].min() > 1.0 and depth[finite].max() < 200.0


def test_lidar_sees_the_rendered_world(world):
    """
    Check each LiDAR point against the dense depth map.

    Each LiDAR point projected into camera 2 has the camera depth of the dense map at its
    sub-pixel position (bilinear), wherever the dense depth is smooth. A few percent are
    parallax: the Velodyne sits 0.27 m behind and 8 cm above camera 2, so next to posts,
    pedestrians and wheels it sees background that the camera sees hidden (and vice versa).
    """
    root, infos = world
    calib = kitti.load_calibration(root / '2011_09_26', cam=2)
    for info in infos:
        points = kitti.load_velodyne_points(info.path / 'velodyne_points' / 'data'
                                            / '0000000001.bin')
        dense = np.load(info.path / synth.SYNTHETIC_DEPTH_DIR / '0000000001.npy')
        proj = np.column_stack([points[:, :3], np.ones(len(points))]) @ calib.velo_to_image.T
        ahead = proj[:, 2] > 0.5
        col = proj[ahead, 0] / proj[ahead, 2] - 1          # 0-based pixel coordinates
        row = proj[ahead, 1] / proj[ahead, 2] - 1
        z = proj[ahead, 2]
        inside = (col >= 0) & (row >= 0) & (col < 1241) & (row < 374)
        c0, r0 = np.floor(col[inside]).astype(int), np.floor(row[inside]).astype(int)
        fc, fr = col[inside] - c0, row[inside] - r0
        corners = np.stack([dense[r0, c0], dense[r0, c0 + 1], dense[r0 + 1, c0],
                            dense[r0 + 1, c0 + 1]])
        smooth = np.isfinite(corners).all(0) & (corners.max(0) < 1.02 * corners.min(0))
        interp = ((1 - fr) * (1 - fc) * corners[0] + (1 - fr) * fc * corners[1]
                  + fr * (1 - fc) * corners[2] + fr * fc * corners[3])
        rel = np.abs(interp - z[inside]) / z[inside]
        assert smooth.sum() > 5000
        assert np.median(rel[smooth]) < 1e-3
        assert np.mean(rel[smooth] < 0.01) > 0.97


def test_lidar_scan_is_an_hdl64_sweep(world):
    _, infos = world
    points = kitti.load_velodyne_points(infos[1].path / 'velodyne_points' / 'data'
                                        / '0000000000.bin')
    distance = np.linalg.norm(points[:, :3], axis=1)
    assert distance.max() <= synth.LIDAR_RANGE + 1e-3 and distance.min() > 2.0
    elevation = np.degrees(np.arcsin(points[:, 2] / distance))
    assert len(np.unique(np.round(elevation, 2))) <= 64
    assert elevation.min() > -24.81 and elevation.max() < 2.01
    assert (points[:, 0] < -5).any() and (points[:, 1] > 5).any() and (points[:, 1] < -5).any()
    assert 0.0 <= points[:, 3].min() and points[:, 3].max() <= 1.0
    assert points[:, 3].std() > 0.05


def test_stationary_frames_at_the_start(world):
    _, infos = world
    for info in infos:
        assert info.stationary_frames == (0,)
        oxts = [info.path / 'oxts' / 'data' / f'{i:010d}.txt' for i in range(3)]
        assert kitti.read_oxts_speed(oxts[0]) == 0.0 and kitti.is_stationary(oxts[0])
        assert kitti.read_oxts_speed(oxts[2]) > 2.0 and not kitti.is_stationary(oxts[2])
        packet = kitti.read_oxts_packet(oxts[2])
        assert packet['vf'] == pytest.approx(np.hypot(packet['vn'], packet['ve']))


def _tree_bytes(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob('*')) if p.is_file()}


def test_same_seed_same_bytes(tmp_path):
    kwargs = {'drives': 1, 'frames': 2, 'size': (160, 48)}
    synth.write_synthetic_kitti(tmp_path / 'a', seed=3, **kwargs)
    synth.write_synthetic_kitti(tmp_path / 'b', seed=3, **kwargs)
    synth.write_synthetic_kitti(tmp_path / 'c', seed=4, **kwargs)
    a, b, c = (_tree_bytes(tmp_path / x) for x in 'abc')
    assert len(a) == 20 and a == b
    png = next(k for k in a if k.suffix == '.png')
    assert a[png] != c[png]


def test_drives_in_parallel_processes_are_the_same_bytes(tmp_path):
    kwargs = {'drives': 2, 'frames': 2, 'size': (96, 32), 'seed': 5}
    infos = synth.write_synthetic_kitti(tmp_path / 'serial', workers=1, **kwargs)
    assert synth.main([str(tmp_path / 'parallel'), '--drives', '2', '--frames', '2', '--width',
                       '96', '--height', '32', '--seed', '5', '--workers', '2']) == 0
    serial, parallel = _tree_bytes(tmp_path / 'serial'), _tree_bytes(tmp_path / 'parallel')
    assert len(serial) == 2 * 17 + 3 and serial == parallel
    with pytest.raises(synth.SynthError, match='workers'):
        synth.write_synthetic_kitti(tmp_path / 'bad', workers=0, **kwargs)
    assert [i.name for i in infos] == synth.default_drive_names(2)


def test_the_world_imports_without_torch():
    # Worker processes import the package: torch (options.py) is for the command line only.
    script = ('import sys\nimport eigen_depth_training.synth\n'
              "assert 'torch' not in sys.modules, 'torch imported'\n")
    proc = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.fixture(scope='module')
def drives():
    """Motion and world of the first eight default drives, seed 0, 20 frames (no rendering)."""
    return [synth_world._drive(name, 20, 0, 3)[0] for name in synth.default_drive_names(8)]


def _footprint_gaps(world, drive, boxes):
    """Distance (m) from camera 0 ahead to the rear of each box, per frame (frames x boxes)."""
    rear = world.lo[boxes, 2][None, :] + world.velocity[boxes][None, :] * drive.times[:, None]
    return rear - drive.positions[:, None]


def test_worlds_are_deterministic_per_seed_and_name():
    name = synth.default_drive_names(2)[1]
    a, b = (synth_world._drive(name, 5, 1, 1)[0].world for _ in range(2))
    for field in ('lo', 'hi', 'velocity', 'material', 'colour', 'style', 'pitch', 'kind'):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    assert a.street.road == b.street.road and a.light.exposure == b.light.exposure
    other = synth_world._drive(name, 5, 2, 1)[0].world
    assert other.street.road != a.street.road


def test_street_geometry_varies_between_drives(drives):
    streets = [d.world.street for d in drives]
    widths = [s.road[1] - s.road[0] for s in streets]
    assert len(set(np.round(widths, 2))) == len(widths) and max(widths) - min(widths) > 4.0
    assert all(4.9 < w < 20.0 for w in widths)
    lanes = [s.lanes[s.rig_lane] for s in streets]
    offsets = [(lo + hi) / 2 for lo, hi, _ in lanes]            # rig's offset from its lane centre
    assert max(np.abs(offsets)) <= 0.3 and np.ptp(offsets) > 0.2
    corridor_lo, corridor_hi = synth_world._RIG_CORRIDOR
    assert all(lo < corridor_lo and hi > corridor_hi for lo, hi, _ in lanes)
    assert len({len(s.lanes) for s in streets}) > 1
    assert {'town', 'suburb', 'open'} <= {s.setting[side] for s in streets for side in (-1, 1)}
    assert any(s.junctions for s in streets) and not all(s.junctions for s in streets)
    for s in streets:
        starts = [z_lo for z_lo, *_ in s.junctions]
        assert all(40.0 < b - a < 135.0 for a, b in zip(starts, starts[1:]))
    exposures = [d.world.light.exposure for d in drives]
    assert min(exposures) >= 0.7 and max(exposures) <= 1.3 and np.ptp(exposures) > 0.2
    assert len({tuple(d.world.light.sun) for d in drives}) == len(drives)


def test_road_users_at_all_distances(drives):
    """Cars ahead 4..30 m, parked cars within 10 m, pedestrians, cyclists, vans, posts."""
    lead_gaps, parked_near, crossing = [], 0, 0
    for drive in drives:
        world, street = drive.world, drive.world.street
        body = (world.kind == synth_world._VEHICLE) & (world.material == synth_world._CAR)
        lead = body & (world.velocity > 0) & (world.lo[:, 0] < 0) & (world.hi[:, 0] > 0)
        if lead.any():
            gaps = _footprint_gaps(world, drive, lead).min(axis=1)   # nearest car ahead
            assert gaps.min() >= 4.0 - 1e-9                       # never closer than 4 m
            lead_gaps.append(gaps)
        parked = np.nonzero(body & (world.velocity == 0))[0]
        gaps = _footprint_gaps(world, drive, parked)
        lateral = np.maximum(np.maximum(world.lo[parked, 0], -world.hi[parked, 0]), 0.0)
        parked_near += int(((gaps > 0) & (np.hypot(gaps, lateral) < 10.0)).any(axis=0).sum())
        people = world.kind == synth_world._PEDESTRIAN
        inside = (world.lo[:, 0] > street.road[0]) & (world.hi[:, 0] < street.road[1])
        crossing += int((people & inside & (world.material == synth_world._CLOTH)).sum())
    lead_gaps = np.concatenate(lead_gaps)
    assert len(lead_gaps) > 40 and np.mean((lead_gaps >= 4.0) & (lead_gaps <= 30.0)) > 0.8
    assert lead_gaps.min() < 12.0
    assert parked_near >= 5 and crossing >= 1
    kinds = np.concatenate([d.world.kind for d in drives])
    materials = np.concatenate([d.world.material for d in drives])
    height = synth.CAMERA_HEIGHT - np.concatenate([d.world.lo[:, 1] for d in drives])
    base = synth.CAMERA_HEIGHT - np.concatenate([d.world.hi[:, 1] for d in drives])
    size = np.concatenate([d.world.hi - d.world.lo for d in drives])
    bodies = (kinds == synth_world._PEDESTRIAN) & (materials == synth_world._CLOTH)
    heads = (kinds == synth_world._PEDESTRIAN) & (materials == synth_world._SKIN)
    assert bodies.sum() >= 20 and bodies.sum() == heads.sum()
    assert np.all(base[bodies] < 0.3) and np.all((height[heads] > 1.5) & (height[heads] < 2.1))
    bikes = (kinds == synth_world._CYCLIST) & (materials == synth_world._TYRE)
    assert bikes.sum() >= 3 and np.allclose(size[bikes, 2], 1.7) and np.all(size[bikes, 0] < 0.2)
    riders = (kinds == synth_world._CYCLIST) & (materials == synth_world._SKIN)
    assert np.allclose(height[riders], 1.7)
    vans = (kinds == synth_world._VEHICLE) & (materials == synth_world._CAR) & (height > 2.4)
    assert vans.any() and np.all((size[vans, 2] >= 6.0) & (size[vans, 2] <= 9.0))
    posts = (kinds == synth_world._FURNITURE) & (base < 0.3)
    assert posts.sum() > 50 and np.all(height[posts] > 0.8)


def test_the_rig_never_meets_anything(drives):
    """
    Check that no box enters the rig's car at any frame.

    The car spans the corridor's x range, 2.5 m behind to 2.5 m ahead of camera 0, and
    0.2 m (above kerbs) to 2 m above the road.
    """
    low, high = synth_world._RIG_CORRIDOR
    for drive in drives:
        world = drive.world
        for time, position in zip(drive.times, drive.positions):
            lo, hi = world.boxes_at(time)
            meets = ((lo[:, 0] < high) & (hi[:, 0] > low) & (lo[:, 2] < position + 2.5)
                     & (hi[:, 2] > position - 2.5) & (hi[:, 1] > synth.CAMERA_HEIGHT - 2.0)
                     & (lo[:, 1] < synth.CAMERA_HEIGHT - 0.2))
            assert not meets.any(), world.kind[meets]


def test_frames_vary_more_than_a_mean_depth_map_explains(tmp_path):
    """
    Check the variety of true depth and of lighting over 16 drives (one frame each).

    The per-pixel standard deviation of log depth in the lower half of the image was
    0.21..0.26 (seeds 0..5) for the former single-layout street and is 0.28..0.36 now; the
    mean image brightness varied by 5..9 grey levels across drives (one sun, one exposure)
    and now by 16..22.
    """
    infos = synth.write_synthetic_kitti(tmp_path, drives=16, frames=1, seed=0, size=(310, 94))
    depth = np.stack([np.load(info.path / synth.SYNTHETIC_DEPTH_DIR / '0000000000.npy')
                      for info in infos])
    assert np.isfinite(depth[:, 47:]).all()
    log_depth = np.log(np.minimum(depth[:, 47:], 200.0))
    assert log_depth.std(axis=0).mean() > 0.27
    brightness = [cv2.imread(str(info.path / 'image_02' / 'data' / '0000000000.png')).mean()
                  for info in infos]
    assert np.std(brightness) > 12.0


def test_refuses_to_clobber_and_checks_arguments(tmp_path):
    kwargs = {'drive_names': ['2011_09_26_drive_0005'], 'frames': 1, 'size': (64, 32)}
    synth.write_synthetic_kitti(tmp_path, **kwargs)
    with pytest.raises(synth.SynthError, match='already exists'):
        synth.write_synthetic_kitti(tmp_path, **kwargs)
    synth.write_synthetic_kitti(tmp_path, overwrite=True, **kwargs)
    with pytest.raises(synth.SynthError, match='another calibration'):
        synth.write_synthetic_kitti(tmp_path, drive_names=['2011_09_26_drive_0011'], frames=1,
                                    size=(96, 32))
    bad = [{'frames': 0}, {'drives': 0}, {'size': (8, 8)}, {'stationary': 5, 'frames': 2},
           {'drive_names': ['drive_0005']}, {'drive_names': ['2011_02_30_drive_0001']},
           {'drive_names': ['2011_09_26_drive_0001', '2011_09_26/2011_09_26_drive_0001_sync']},
           {'drives': 3, 'drive_names': ['2011_09_26_drive_0001']}, {'seed': -1}]
    for arguments in bad:
        with pytest.raises(synth.SynthError):
            synth.write_synthetic_kitti(tmp_path / 'bad', **arguments)
    assert not (tmp_path / 'bad').exists()


def test_command_line(tmp_path, capsys):
    out = tmp_path / 'out'
    assert synth.main([str(out), '--drive-names', '2011_09_28_drive_0002', '--frames', '2',
                       '--width', '64', '--height', '32', '--seed', '1']) == 0
    assert 'wrote 2011_09_28/2011_09_28_drive_0002_sync: 2 frames' in capsys.readouterr().out
    assert len(list((out / '2011_09_28' / '2011_09_28_drive_0002_sync' / 'image_02' / 'data')
                    .iterdir())) == 2
    assert synth.main([str(out), '--drive-names', '2011_09_28_drive_0002']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'already exists' in err
    with pytest.raises(SystemExit) as exit_info:
        synth.main([str(out), '--frames', '0'])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('eigen-depth synth: error:')
    with pytest.raises(SystemExit) as exit_info:
        synth.main(['--help'])
    assert exit_info.value.code == 0
    assert '--drive-names' in capsys.readouterr().out


def test_focal_option_writes_the_camera_into_the_calibration(tmp_path):
    assert synth.default_focal(1242) == pytest.approx(721.5377)
    values = synth.calibration_values((640, 480), focal=525.0)['calib_cam_to_cam.txt']
    p_rect = values['P_rect_02'].reshape(3, 4)
    assert p_rect[0, 0] == pytest.approx(525.0) and p_rect[1, 1] == pytest.approx(525.0)
    assert np.allclose(values['S_rect_02'], (640, 480))
    narrow = synth.calibration_values(focal=synth.default_focal(1242) / 0.6)
    assert narrow['calib_cam_to_cam.txt']['P_rect_02'][0] == pytest.approx(1202.56, abs=0.01)
    root = tmp_path / 'raw'
    assert synth.main([str(root), '--drives', '1', '--frames', '1', '--width', '64',
                       '--height', '48', '--focal', '52.5']) == 0
    calib = kitti.read_calib_file(next(root.glob('*/calib_cam_to_cam.txt')))
    assert calib['P_rect_02'][0] == pytest.approx(52.5)
    assert synth.main([str(tmp_path / 'fov'), '--drives', '1', '--frames', '1', '--width',
                       '64', '--height', '48', '--fov-scale', '0.5']) == 0
    calib = kitti.read_calib_file(next((tmp_path / 'fov').glob('*/calib_cam_to_cam.txt')))
    assert calib['P_rect_02'][0] == pytest.approx(synth.default_focal(64) / 0.5, rel=1e-6)
    with pytest.raises(synth.SynthError, match='focal length'):
        synth.write_synthetic_kitti(tmp_path / 'bad', drives=1, frames=1, size=(64, 48),
                                    focal=0.0)
    assert synth.main([str(tmp_path / 'neg'), '--fov-scale', '-1']) == 2

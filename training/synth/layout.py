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
The KITTI raw writer of the synthetic world: calibration, OXTS, folders, timestamps.

:func:`write_synthetic_kitti` writes drives in the exact KITTI raw layout: per date the
calibration files (``calib_cam_to_cam.txt``, ``calib_velo_to_cam.txt``,
``calib_imu_to_velo.txt``), per drive ``image_02``/``image_03`` PNGs,
``velodyne_points`` scans, ``oxts`` packets and every folder's timestamps. Each drive's
street and motion come from :mod:`.world`, its images and scans from :mod:`.render`;
drives are independent, so they may be rendered in parallel processes with the same bytes.

Beyond the KITTI layout each drive gets ``synthetic_depth_02/%010d.npy``: the dense true
depth of every ``image_02`` pixel (float32 metres along the optical axis of rectified
camera 2, ``inf`` for sky). Real KITTI has no such folder. See ``docs/kitti.md``.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import as_completed, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
import math
import multiprocessing
from pathlib import Path
import shutil
import sys

import cv2
import numpy as np
from tqdm import tqdm

from .render import _camera_rays, _lidar_rays, _render, _scan
from .world import _drive
from ..kitti import normalise_drive, OXTS_FIELDS, PathLike
from ..splits import EIGEN_TEST_DRIVES

#: Default image size (width, height), that of the 2011_09_26 drives.
DEFAULT_SIZE = (1242, 375)
#: Per-drive folder with the dense true depth of image_02 (not part of KITTI).
SYNTHETIC_DEPTH_DIR = 'synthetic_depth_02'

# Intrinsics at the reference size 1242x375 (scaled for other sizes).
_REF_FOCAL = 721.5377
_REF_CENTRE = (609.5593, 172.854)
# Translation t of each rectified camera, P_rect_0c = K [I | t]: camera 2 sits about 6 cm
# left of camera 0 (t_x = +0.06 m), camera 3 about 47 cm right, camera 1 54 cm right.
_CAM_OFFSETS = ((0.0, 0.0, 0.0), (-0.5372, 0.0, 0.0), (0.0599, -0.0004, 0.0027),
                (-0.4730, 0.0024, 0.0027))
# Small rotation vectors (rad) of the rig: rectification of camera 0 and the Velodyne mount.
_R_RECT_00_ROTVEC = (0.0043, -0.0074, -0.0099)
_VELO_ROTVEC = (0.0148, -0.0006, 0.0075)
# Velodyne origin in camera-0 coordinates: 0.27 m behind, 0.076 m above camera 0.
_VELO_T = (-0.0041, -0.0763, -0.2718)
# Velodyne axes (x forward, y left, z up) in camera axes (x right, y down, z forward).
_VELO_AXES = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])

_OXTS_DESCRIPTIONS = (
    'latitude of the oxts-unit (deg)', 'longitude of the oxts-unit (deg)',
    'altitude of the oxts-unit (m)', 'roll angle (rad), 0 = level, positive = left side up',
    'pitch angle (rad), 0 = level, positive = front down',
    'heading (rad), 0 = east, positive = counter clockwise',
    'velocity towards north (m/s)', 'velocity towards east (m/s)',
    'forward velocity, parallel to earth surface (m/s)',
    'leftward velocity, parallel to earth surface (m/s)',
    'upward velocity, perpendicular to earth surface (m/s)',
    'acceleration in x, the vehicle front direction (m/s^2)',
    'acceleration in y, the vehicle left direction (m/s^2)',
    'acceleration in z, the vehicle top direction (m/s^2)',
    'forward acceleration (m/s^2)', 'leftward acceleration (m/s^2)',
    'upward acceleration (m/s^2)', 'angular rate around x (rad/s)',
    'angular rate around y (rad/s)', 'angular rate around z (rad/s)',
    'angular rate around forward axis (rad/s)', 'angular rate around leftward axis (rad/s)',
    'angular rate around upward axis (rad/s)', 'position accuracy (north/east in m)',
    'velocity accuracy (north/east in m/s)', 'navigation status',
    'number of satellites tracked by primary GPS receiver',
    'position mode of primary GPS receiver', 'velocity mode of primary GPS receiver',
    'orientation mode of primary GPS receiver')


class SynthError(ValueError):
    """Bad arguments for the synthetic world, or an output that would be clobbered."""


@dataclass(frozen=True)
class DriveInfo:
    """
    One written synthetic drive.

    :ivar date: date folder, e.g. ``2011_09_26``.
    :ivar drive: drive folder, e.g. ``2011_09_26_drive_0002_sync``.
    :ivar path: ``<out_dir>/<date>/<drive>``.
    :ivar frames: number of frames.
    :ivar stationary_frames: ids of the frames at standstill (speed 0) at the start.
    """

    date: str
    drive: str
    path: Path
    frames: int
    stationary_frames: tuple[int, ...]

    @property
    def name(self) -> str:
        """``<date>/<drive>``, the drive's name in split files."""
        return f'{self.date}/{self.drive}'


# ----------------------------------------------------------------------------- calibration

def _rotation(rotvec: tuple[float, float, float]) -> np.ndarray:
    r"""
    Return the rotation matrix of a rotation vector (Rodrigues).

    :math:`R = I + \sin\theta K + (1 - \cos\theta) K^2` for the unit axis
    :math:`k = r / \theta`, :math:`\theta = |r|` and :math:`K = [k]_\times`.
    """
    r = np.asarray(rotvec, dtype=np.float64)
    theta = float(np.linalg.norm(r))
    k = r / theta
    skew = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(theta) * skew + (1.0 - np.cos(theta)) * skew @ skew


def _written(values: np.ndarray | tuple | list) -> np.ndarray:
    """``values`` rounded as the calibration files store them (``%.6e``)."""
    a = np.asarray(values, dtype=np.float64)
    return np.array([float(f'{v:.6e}') for v in a.ravel()]).reshape(a.shape)


def default_focal(width: int) -> float:
    """Return the synthetic camera's default focal length: KITTI's 721.5377 px at 1242 wide."""
    return _REF_FOCAL * width / DEFAULT_SIZE[0]


def calibration_values(size: tuple[int, int] = DEFAULT_SIZE, focal: float | None = None
                       ) -> dict[str, dict[str, np.ndarray]]:
    r"""
    Return the numeric calibration written for image size ``size = (width, height)``.

    ``focal`` is the rectified cameras' focal length in pixels (fx = fy); None means
    :func:`default_focal` (KITTI's field of view at any size).

    It is keyed by file name (``calib_cam_to_cam.txt``, ``calib_velo_to_cam.txt``,
    ``calib_imu_to_velo.txt``) and then by key, rounded exactly as written.

    Rectified cameras share :math:`K` (focal 721.5377 px and principal point
    (609.5593, 172.854) at 1242x375, scaled with the size); ``P_rect_0c = K [I | t_c]`` with
    :math:`t_2 \approx (0.06, 0, 0)` m and :math:`t_3 \approx (-0.47, 0, 0)` m.
    """
    width, height = size
    focal = default_focal(width) if focal is None else float(focal)
    k_rect = np.array([[focal, 0.0, _REF_CENTRE[0] * width / DEFAULT_SIZE[0]],
                       [0.0, focal, _REF_CENTRE[1] * height / DEFAULT_SIZE[1]],
                       [0.0, 0.0, 1.0]])
    raw = (round(width * 1392 / DEFAULT_SIZE[0]), round(height * 512 / DEFAULT_SIZE[1]))
    cam: dict[str, np.ndarray] = {'corner_dist': _written([9.95e-02])}
    for c, offset in enumerate(_CAM_OFFSETS):
        k_raw = np.array([[focal * 1.364 - 3.1 * c, 0.0, raw[0] * (0.4957 + 0.0021 * c)],
                          [0.0, focal * 1.359 - 2.3 * c, raw[1] * (0.4554 - 0.0017 * c)],
                          [0.0, 0.0, 1.0]])
        rect_rot = _rotation(_R_RECT_00_ROTVEC) if c == 0 else \
            _rotation((0.0021 * c, -0.0037 * c, 0.0011 * (c - 2.5)))
        cam_rot = np.eye(3) if c == 0 else _rotation((-0.0016 * c, 0.0031, 0.0009 * c))
        cam[f'S_0{c}'] = _written(raw)
        cam[f'K_0{c}'] = _written(k_raw.ravel())
        cam[f'D_0{c}'] = _written([-0.3728 + 0.0021 * c, 0.2037 - 0.0013 * c, 0.0022,
                                   0.0014, -0.0723 + 0.0008 * c])
        cam[f'R_0{c}'] = _written(cam_rot.ravel())
        cam[f'T_0{c}'] = _written(np.asarray(offset) + [0.0, 0.0012 * c, -0.0009 * c])
        cam[f'S_rect_0{c}'] = _written(size)
        cam[f'R_rect_0{c}'] = _written(rect_rot.ravel())
        cam[f'P_rect_0{c}'] = _written(np.column_stack([k_rect, k_rect @ offset]).ravel())
    velo = {'R': _written((_rotation(_VELO_ROTVEC) @ _VELO_AXES).ravel()),
            'T': _written(_VELO_T), 'delta_f': _written([0.0, 0.0]),
            'delta_c': _written([0.0, 0.0])}
    imu = {'R': _written(_rotation((0.0148, -0.0020, 0.0008)).ravel()),
           'T': _written((-0.8087, 0.3196, -0.7997))}
    return {'calib_cam_to_cam.txt': cam, 'calib_velo_to_cam.txt': velo,
            'calib_imu_to_velo.txt': imu}


def _calibration_texts(date: str, size: tuple[int, int], focal: float | None = None
                       ) -> dict[str, str]:
    """Return the text of each calibration file of ``date`` (file name -> text)."""
    day = datetime.strptime(date, '%Y_%m_%d')
    times = {'calib_cam_to_cam.txt': '13:57:47', 'calib_velo_to_cam.txt': '11:37:16',
             'calib_imu_to_velo.txt': '16:47:16'}
    texts = {}
    for name, values in calibration_values(size, focal).items():
        lines = [f'calib_time: {day:%d-%b-%Y} {times[name]}']
        lines += [f'{key}: ' + ' '.join(f'{v:.6e}' for v in value)
                  for key, value in values.items()]
        texts[name] = '\n'.join(lines) + '\n'
    return texts


@dataclass(frozen=True)
class _Rig:
    """Render geometry derived from the calibration exactly as written."""

    K: dict[int, np.ndarray]            # 3x3 intrinsics of rectified cameras 2 and 3
    centre: dict[int, np.ndarray]       # camera centres in rectified camera-0 coordinates
    velo_origin: np.ndarray             # Velodyne origin in rectified camera-0 coordinates
    velo_rotation: np.ndarray           # Velodyne axes to rectified camera-0 axes


def _rig(size: tuple[int, int], focal: float | None = None) -> _Rig:
    """Return the render geometry of the calibration written for ``size`` and ``focal``."""
    values = calibration_values(size, focal)
    cam, velo = values['calib_cam_to_cam.txt'], values['calib_velo_to_cam.txt']
    rect = cam['R_rect_00'].reshape(3, 3)
    k, centre = {}, {}
    for c in (2, 3):
        p = cam[f'P_rect_0{c}'].reshape(3, 4)
        k[c] = p[:, :3]
        centre[c] = -np.linalg.solve(p[:, :3], p[:, 3])
    return _Rig(K=k, centre=centre, velo_origin=rect @ velo['T'],
                velo_rotation=rect @ velo['R'].reshape(3, 3))


# ----------------------------------------------------------------------------- drives

def default_drive_names(count: int) -> list[str]:
    """
    Return ``count`` drive names on 2011_09_26.

    Every third one (starting with the first) is an Eigen test drive
    (``..._drive_0002_sync``, ``0009``, ...), the others drive numbers outside the test
    split (``0001``, ``0003``, ...).
    """
    test = [d for d in EIGEN_TEST_DRIVES if d.startswith('2011_09_26/')]
    numbers = {int(d[-9:-5]) for d in test}
    train = (f'2011_09_26/2011_09_26_drive_{n:04d}_sync' for n in range(1, 10000)
             if n not in numbers)
    names = []
    for i in range(count):
        names.append(test[i // 3] if i % 3 == 0 and i // 3 < len(test) else next(train))
    return names


def training_drive_names(count: int, date: str = '2011_09_28') -> list[str]:
    """
    Return ``count`` drive names on ``date`` outside the Eigen test split.

    Drive numbers count up from 1, skipping the test drives of that date (for 2011_09_28,
    ``..._drive_0002_sync``).
    """
    numbers = (n for n in range(1, 10000)
               if f'{date}/{date}_drive_{n:04d}_sync' not in EIGEN_TEST_DRIVES)
    return [f'{date}/{date}_drive_{next(numbers):04d}_sync' for _ in range(count)]


def _timestamp(date: str, nanoseconds: int) -> str:
    """KITTI timestamp ``YYYY-MM-DD HH:MM:SS.nnnnnnnnn`` of a time of day in ns."""
    seconds, fraction = divmod(nanoseconds, 10 ** 9)
    minutes, sec = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f'{date.replace("_", "-")} {hours:02d}:{minutes:02d}:{sec:02d}.{fraction:09d}'


def _oxts_lines(rng: np.random.Generator, times: np.ndarray, positions: np.ndarray,
                speeds: np.ndarray) -> list[str]:
    """
    Return OXTS packets consistent with the straight drive.

    They hold position, heading, velocities and forward acceleration; angular rates zero.
    """
    lat0, lon0 = 49.0 + rng.uniform(0, 0.03), 8.39 + rng.uniform(0, 0.05)
    alt, yaw = 110.0 + rng.uniform(0, 10), rng.uniform(-np.pi, np.pi)
    roll, pitch = rng.uniform(-0.02, 0.02), rng.uniform(-0.02, 0.02)
    accel = np.gradient(speeds, times) if len(times) > 1 else np.zeros(1)
    radius = 6378137.0
    lines = []
    for s, v, a in zip(positions, speeds, accel):
        lat = lat0 + np.degrees(s * np.sin(yaw) / radius)
        lon = lon0 + np.degrees(s * np.cos(yaw) / (radius * np.cos(np.radians(lat0))))
        values = [lat, lon, alt, roll, pitch, yaw, v * np.sin(yaw), v * np.cos(yaw), v, 0.0,
                  0.0, a, 0.0, 9.81, a, 0.0, 9.81, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.25, 0.03]
        lines.append(' '.join(f'{x:.12g}' for x in values) + ' 4 10 5 5 6')
    return lines


def _write_lines(path: Path, lines: list[str]) -> None:
    """Write ``lines``, each ended by a newline, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(line + '\n' for line in lines), encoding='utf-8')


def _write_png(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB uint8 image as PNG, creating the folder; OSError if it cannot."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1])):
        raise OSError(f'{path}: cannot write PNG')


def _write_drive(root: Path, name: str, frames: int, seed: int, size: tuple[int, int],
                 stationary: int, rig: _Rig,
                 on_frame: Callable[[], object] | None = None) -> DriveInfo:
    """
    Render and write drive ``name`` (normalised) under ``root``; return what was written.

    The files depend on the arguments only, so any process writes the same bytes.
    ``on_frame`` is called after each frame is written (progress).
    """
    date, folder = name.split('/')
    drive, rng = _drive(name, frames, seed, stationary)
    times, positions, speeds, world = drive.times, drive.positions, drive.speeds, drive.world
    oxts = _oxts_lines(rng, times, positions, speeds)
    start = int(round((13 * 3600 + rng.uniform(0, 3000)) * 1e9))
    stamps = [start + int(round(t * 1e9)) for t in times]
    path = root / date / folder
    cameras = {c: _camera_rays(rig.K[c], size) for c in (2, 3)}
    lidar, local = _lidar_rays(rig.velo_rotation)
    column_azimuth = np.arctan2(lidar.dirs[32, :, 0], lidar.dirs[32, :, 2])
    for frame, (time, position) in enumerate(zip(times, positions)):
        lo, hi = world.boxes_at(time)
        rig_position = np.array([0.0, 0.0, position])
        for c, rays in cameras.items():
            image, depth = _render(world, lo, hi, rig_position + rig.centre[c], rays, rig.K[c],
                                   size)
            _write_png(path / f'image_0{c}' / 'data' / f'{frame:010d}.png', image)
            if c == 2:
                (path / SYNTHETIC_DEPTH_DIR).mkdir(parents=True, exist_ok=True)
                np.save(path / SYNTHETIC_DEPTH_DIR / f'{frame:010d}.npy', depth)
        points = _scan(world, lo, hi, rig_position + rig.velo_origin, lidar, local,
                       column_azimuth)
        velo_file = path / 'velodyne_points' / 'data' / f'{frame:010d}.bin'
        velo_file.parent.mkdir(parents=True, exist_ok=True)
        points.astype('<f4').tofile(velo_file)
        _write_lines(path / 'oxts' / 'data' / f'{frame:010d}.txt', [oxts[frame]])
        if on_frame is not None:
            on_frame()
    for c, offset in ((2, 0), (3, 4_000)):
        _write_lines(path / f'image_0{c}' / 'timestamps.txt',
                     [_timestamp(date, s + offset) for s in stamps])
    for suffix, offset in (('', -2_800_000), ('_start', -52_100_000), ('_end', 49_300_000)):
        _write_lines(path / 'velodyne_points' / f'timestamps{suffix}.txt',
                     [_timestamp(date, s + offset) for s in stamps])
    _write_lines(path / 'oxts' / 'timestamps.txt',
                 [_timestamp(date, s - 1_000_000) for s in stamps])
    _write_lines(path / 'oxts' / 'dataformat.txt',
                 [f'{key}: {text}' for key, text in zip(OXTS_FIELDS, _OXTS_DESCRIPTIONS)])
    return DriveInfo(date=date, drive=folder, path=path, frames=frames,
                     stationary_frames=tuple(range(stationary)))


def write_synthetic_kitti(out_dir: PathLike, drives: int | None = None, frames: int = 3,
                          seed: int = 0, drive_names: list[str] | None = None,
                          size: tuple[int, int] = DEFAULT_SIZE, stationary: int | None = None,
                          overwrite: bool = False, progress: bool = False,
                          focal: float | None = None, workers: int = 1) -> list[DriveInfo]:
    """
    Write synthetic drives in the KITTI raw layout under ``out_dir``.

    Deterministic: the same arguments give the same bytes, whatever ``workers``. Each
    drive's world and motion depend on ``seed`` and the drive's name only.

    :param drives: number of drives; default ``len(drive_names)`` or 2.
    :param frames: frames per drive (10 Hz).
    :param drive_names: names in any spelling :func:`~eigen_depth_training.kitti.normalise_drive`
        accepts; default :func:`default_drive_names`.
    :param size: image ``(width, height)``; intrinsics scale with it.
    :param focal: focal length of the rectified cameras in pixels (fx = fy), which the
        calibration files state; None keeps KITTI's field of view (:func:`default_focal`).
        A larger focal length is a narrower field of view (e.g. ``default_focal(w) / 0.6``).
    :param stationary: frames at standstill at the start of every drive; default
        ``min(3, frames // 3)``.
    :param overwrite: replace existing drive folders (and calibration files that differ)
        instead of refusing.
    :param progress: show a progress bar on stderr.
    :param workers: drives rendered at once, each in a process of its own (1: all in this
        process, one after the other). The processes are spawned, so a script calling this
        with more than one must start from ``if __name__ == '__main__':``.
    :raises SynthError: bad arguments, or existing output without ``overwrite``.
    """
    if drive_names is not None:
        try:
            names = [normalise_drive(n) for n in drive_names]
        except ValueError as exc:
            raise SynthError(str(exc)) from exc
        if len(set(names)) != len(names):
            raise SynthError(f'duplicate drive names in {drive_names}')
        if drives is not None and drives != len(names):
            raise SynthError(f'{drives} drives requested but {len(names)} drive names given')
    else:
        if drives is None:
            drives = 2
        if not 1 <= drives <= 1000:
            raise SynthError(f'drives must be 1..1000, got {drives}')
        names = default_drive_names(drives)
    if not names:
        raise SynthError('no drive to write')
    if not 1 <= frames <= 100_000:
        raise SynthError(f'frames must be 1..100000, got {frames}')
    if seed < 0:
        raise SynthError(f'seed must be non-negative, got {seed}')
    if workers < 1:
        raise SynthError(f'workers must be at least 1, got {workers}')
    width, height = size
    if not (32 <= width <= 8192 and 16 <= height <= 4096):
        raise SynthError(f'image size must be 32..8192 x 16..4096, got {width}x{height}')
    if focal is not None and not (math.isfinite(focal) and 0.05 * width <= focal <= 50 * width):
        raise SynthError(f'focal length must be {0.05 * width:g}..{50 * width:g} px for a '
                         f'{width} px wide image, got {focal}')
    if stationary is None:
        stationary = min(3, frames // 3)
    if not 0 <= stationary <= frames:
        raise SynthError(f'stationary must be 0..{frames} (frames), got {stationary}')
    for name in names:
        try:
            datetime.strptime(name.split('/')[0], '%Y_%m_%d')
        except ValueError as exc:
            raise SynthError(f'drive {name}: the date is not a calendar date') from exc
    root = Path(out_dir)
    calib_texts = {date: _calibration_texts(date, (width, height), focal)
                   for date in sorted({n.split('/')[0] for n in names})}
    if not overwrite:
        for name in names:
            if (root / name).exists():
                raise SynthError(f'{root / name} already exists (--overwrite replaces it)')
        for date, texts in calib_texts.items():
            for file, text in texts.items():
                existing = root / date / file
                if existing.exists() and existing.read_text(encoding='utf-8') != text:
                    raise SynthError(f'{existing} exists with another calibration (other image '
                                     'size?); --overwrite replaces it')
    for date, texts in calib_texts.items():
        for file, text in texts.items():
            _write_lines(root / date / file, text.splitlines())
    for name in names:
        if (root / name).exists():
            shutil.rmtree(root / name)
    rig = _rig((width, height), focal)
    jobs = [(root, name, frames, seed, (width, height), stationary, rig) for name in names]
    with tqdm(total=len(names) * frames, unit='frame', desc='synth',
              disable=None if progress else True, file=sys.stderr) as bar:
        if workers == 1 or len(jobs) == 1:
            return [_write_drive(*job, on_frame=bar.update) for job in jobs]
        return _write_drives_in_processes(jobs, min(workers, len(jobs)), bar)


def _write_drives_in_processes(jobs: list[tuple], workers: int, bar: tqdm) -> list[DriveInfo]:
    """
    Run :func:`_write_drive` on each of ``jobs`` in ``workers`` processes.

    Returns the drives' infos in the order of ``jobs``; the bar advances by a drive's frames
    when it is done. The processes are spawned, not forked, so that threads of the caller
    (torch's, tqdm's monitor) cannot leave a lock held in them. The first failure cancels
    the drives not started yet and is raised.
    """
    done: dict[int, DriveInfo] = {}
    context = multiprocessing.get_context('spawn')
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(_write_drive, *job): index for index, job in enumerate(jobs)}
        try:
            for future in as_completed(futures):
                info = future.result()
                done[futures[future]] = info
                bar.update(info.frames)
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    return [done[index] for index in range(len(jobs))]

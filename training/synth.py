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
A procedural driving world written in the exact KITTI raw layout (``eigen-depth synth``).

A camera rig drives along a straight street: asphalt road with lane markings, kerbs and
paved pavements, building facades (blocks, plaster or siding, with windows) set back at
varied distances, front-garden fences, hedges and trees, street lamps, sign posts,
bollards, parked cars, vans, moving traffic, pedestrians, cyclists, a distant skyline and a
sky with clouds. Every object is an axis-aligned box over the ground plane, so rays of all
pixels (and all LiDAR beams) are intersected at once with numpy. Surfaces carry procedural
textures (value noise, blocks, tiles, windows, slats, clothes), Lambert shading and
distance haze, so the usual monocular cues exist.

Every drive draws its own world from its seed, so that no per-pixel mean depth map
predicts it well: the street has one to four lanes, cycle strips and parking lanes (about
5 to 18 m from kerb to kerb) with the rig 0..0.3 m off its lane's centre; each side is
town (facades close to the pavement), suburb (set back up to 15 m behind gardens) or open
(fields behind fences or hedges); about half of the drives have cross streets every
40..120 m (gaps in the building rows, asphalt running sideways, some zebra crossings).
Parked cars fill 20..90 % of a parking lane; on three drives in four cars (and sometimes a
van or lorry) drive ahead in the rig's lane at about its speed, 4..30 m ahead; other lanes
carry oncoming or overtaking traffic at their own speed, cycle strips carry cyclists.
Pedestrians stand or walk on the pavements and some stand in the road (on zebra crossings,
in cross streets), never in the rig's path; moving objects never meet anything. Vehicle
sizes and colours (palette or any RGB), facade colours, the asphalt, grass and paving
tints, the sun's direction and strength, ambient light, haze, sky colour, cloud cover and
the exposure (0.7..1.3) vary too. The street stays straight (no curves).

The world frame is the rectified camera-0 frame of the first frame (x right, y down,
z forward along the road, the road plane at ``y = CAMERA_HEIGHT``); the rig translates
along z. The images are rendered in the rectified frames of cameras 2 and 3 defined by the
written ``P_rect_02``/``P_rect_03``, with the convention the KITTI devkit's ``round() - 1``
implies: ``P_rect`` maps to 1-based pixel coordinates, so the pixel in row ``r`` and column
``c`` of a PNG is the ray through ``(u, v) = (c + 1, r + 1)``. The Velodyne scan is cast
from the Velodyne origin of ``calib_velo_to_cam.txt``, so projecting it with the written
calibration lands every point on the pixel that sees it.

Beyond the KITTI layout each drive gets ``synthetic_depth_02/%010d.npy``: the dense true
depth of every ``image_02`` pixel (float32 metres along the optical axis of rectified
camera 2, ``inf`` for sky). Real KITTI has no such folder. See ``docs/kitti.md``.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import datetime
import math
from pathlib import Path
import shutil
import sys
import zlib

import cv2
import numpy as np
from tqdm import tqdm

from .kitti import normalise_drive, OXTS_FIELDS, PathLike
from .splits import EIGEN_TEST_DRIVES

#: Default image size (width, height), that of the 2011_09_26 drives.
DEFAULT_SIZE = (1242, 375)
#: Height (m) of rectified camera 0 above the road.
CAMERA_HEIGHT = 1.65
#: Nominal time (s) between frames (KITTI records at about 10 Hz).
FRAME_PERIOD = 0.1036
#: Elevation (deg) of the 64 beams: HDL-64E-like upper block +2 .. -8.33 and lower block
#: -8.83 .. -24.8.
LIDAR_ELEVATIONS_DEG = np.concatenate([np.linspace(2.0, -8.33, 32), np.linspace(-8.83, -24.8, 32)])
#: Horizontal step (deg) between LiDAR firings over the 360 degree sweep.
LIDAR_AZIMUTH_STEP_DEG = 0.3
#: LiDAR returns farther than this (m) are dropped.
LIDAR_RANGE = 120.0
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

# Materials of the world's surfaces.
_GROUND, _PAVEMENT, _BUILDING, _CAR, _GLASS, _TYRE, _POLE, _TRUNK, _FOLIAGE, _FENCE, \
    _BACKDROP, _CLOTH, _SKIN = range(13)
_SKY = -2
_JEANS = np.array([0.12, 0.16, 0.28], dtype=np.float32)
_HAIR = np.array([0.09, 0.07, 0.05], dtype=np.float32)
# What each box belongs to (``_World.kind``).
_SCENERY, _VEHICLE, _PEDESTRIAN, _CYCLIST, _FURNITURE = range(5)
_CAR_COLOURS = np.array([[0.85, 0.85, 0.83], [0.55, 0.56, 0.58], [0.08, 0.08, 0.09],
                         [0.55, 0.08, 0.07], [0.10, 0.18, 0.45], [0.25, 0.27, 0.28],
                         [0.72, 0.66, 0.50]], dtype=np.float32)
_FACADE_COLOURS = np.array([[0.62, 0.36, 0.26], [0.80, 0.74, 0.62], [0.70, 0.70, 0.68],
                            [0.85, 0.80, 0.55], [0.55, 0.50, 0.45], [0.90, 0.88, 0.84],
                            [0.60, 0.66, 0.70]], dtype=np.float32)
_SIGN_COLOURS = np.array([[0.75, 0.08, 0.08], [0.08, 0.25, 0.65], [0.90, 0.75, 0.10],
                          [0.92, 0.92, 0.90]], dtype=np.float32)
_SKIN_COLOURS = np.array([[0.88, 0.70, 0.58], [0.75, 0.55, 0.42], [0.55, 0.38, 0.27],
                          [0.35, 0.24, 0.17]], dtype=np.float32)
# Footprint (x range) kept clear along the rig's path: the car carrying it is about 1.8 m wide
# and centred under the Velodyne, which is at about x = 0.
_RIG_CORRIDOR = (-1.1, 1.1)

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


# ----------------------------------------------------------------------------- noise

def _hash01(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """Deterministic pseudo-random values in [0, 1) for integer lattice points."""
    salt = np.uint32((seed * 0x9E3779B1) & 0xFFFFFFFF)
    h = (ix.astype(np.uint32) * np.uint32(0x8DA6B343)) ^ \
        (iy.astype(np.uint32) * np.uint32(0xD8163841)) ^ salt
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x2C1B3C6D)
    h ^= h >> np.uint32(12)
    h *= np.uint32(0x297A2D39)
    h ^= h >> np.uint32(15)
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / (1 << 24))


def _value_noise(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Smooth value noise in [0, 1): lattice values blended with a smoothstep."""
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0).astype(np.float32), (y - y0).astype(np.float32)
    ix, iy = x0.astype(np.int64), y0.astype(np.int64)
    sx, sy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    a, b = _hash01(ix, iy, seed), _hash01(ix + 1, iy, seed)
    c, d = _hash01(ix, iy + 1, seed), _hash01(ix + 1, iy + 1, seed)
    return a + (b - a) * sx + (c - a) * sy + (a - b - c + d) * sx * sy


def _fbm(x: np.ndarray, y: np.ndarray, seed: int, octaves: int = 3) -> np.ndarray:
    """
    Return the fractal sum of ``octaves`` value-noise layers, normalised to [0, 1).

    Each layer has twice the frequency and half the weight of the previous one.
    """
    total = np.zeros(np.shape(x), dtype=np.float32)
    for octave in range(octaves):
        scale = 2.0 ** octave
        total += _value_noise(x * scale, y * scale, seed + 101 * octave) / np.float32(scale)
    return total / np.float32(2.0 - 2.0 ** (1 - octaves))


def _frac(x: np.ndarray) -> np.ndarray:
    return x - np.floor(x)


# ----------------------------------------------------------------------------- the world

@dataclass(frozen=True)
class _Light:
    """
    A drive's lighting and sky.

    :ivar sun: unit vector towards the sun (world axes, float32).
    :ivar sun_strength: Lambert weight of the sun.
    :ivar ambient: light that every face receives.
    :ivar exposure: overall gain of the image, sky included.
    :ivar haze: colour that distant surfaces fade to.
    :ivar haze_distance: distance (m) over which a surface keeps ``1/e`` of its own colour.
    :ivar horizon: sky colour at the horizon.
    :ivar zenith: sky colour overhead.
    :ivar cloud_cover: 0 (a few clouds) .. 1 (overcast).
    """

    sun: np.ndarray
    sun_strength: float
    ambient: float
    exposure: float
    haze: np.ndarray
    haze_distance: float
    horizon: np.ndarray
    zenith: np.ndarray
    cloud_cover: float


def _lighting(rng: np.random.Generator) -> _Light:
    """
    Draw a drive's lighting.

    The sun is 12..65 deg high in any direction; an overcast drive has a weak sun, more
    ambient light, a grey sky and thicker haze; some drives have a warm, low-sun sky.
    """
    overcast = rng.uniform(0.0, 1.0) ** 2
    elevation, azimuth = np.radians(rng.uniform(12.0, 65.0)), rng.uniform(-np.pi, np.pi)
    sun = np.array([np.cos(elevation) * np.sin(azimuth), -np.sin(elevation),
                    np.cos(elevation) * np.cos(azimuth)], dtype=np.float32)
    warm = rng.uniform(0.0, 1.0) ** 3 * np.array([0.15, 0.02, -0.15])
    horizon = ((1 - overcast) * np.array([0.80, 0.86, 0.93]) + overcast * np.array(
        [0.78, 0.79, 0.80]) + warm + rng.uniform(-0.04, 0.04, 3)).clip(0.0, 1.0)
    zenith = ((1 - overcast) * np.array([0.36, 0.56, 0.86]) + overcast * np.array(
        [0.60, 0.62, 0.66]) + 0.5 * warm + rng.uniform(-0.05, 0.05, 3)).clip(0.0, 1.0)
    return _Light(sun=sun, sun_strength=rng.uniform(0.45, 0.85) * (1.0 - 0.6 * overcast),
                  ambient=rng.uniform(0.38, 0.6) + 0.15 * overcast,
                  exposure=rng.uniform(0.7, 1.3), haze=(0.95 * horizon).astype(np.float32),
                  haze_distance=rng.uniform(150.0, 900.0) * (1.0 - 0.5 * overcast),
                  horizon=horizon.astype(np.float32), zenith=zenith.astype(np.float32),
                  cloud_cover=float(np.clip(overcast + rng.uniform(-0.2, 0.4), 0.0, 1.0)))


@dataclass(frozen=True)
class _Street:
    """
    A drive's street: its cross-section (x in metres, the rig at x = 0) and its junctions.

    Per-side values are keyed by side, -1 (left) and 1 (right).

    :ivar road: x of the left and the right kerb; asphalt lies between them.
    :ivar lanes: ``(x_lo, x_hi, direction)`` of each traffic lane, left to right; direction 1
        drives along +z as the rig does, -1 towards the rig.
    :ivar rig_lane: index of the rig's lane in ``lanes``.
    :ivar strips: per side, ``(x_lo, x_hi, direction)`` of a cycle strip, or None.
    :ivar parking: per side, ``(x_lo, x_hi)`` of a parking lane, or None.
    :ivar pavement: per side, the pavement width (0: none, grass meets the road).
    :ivar kerb: per side, the kerb (pavement) height.
    :ivar setting: per side, ``town`` (facades close to the pavement), ``suburb`` (set back
        behind gardens) or ``open`` (fields, fences, hedges and trees only).
    :ivar avenue: per side, whether trees line the kerb.
    :ivar dashed: x of the dashed lane lines.
    :ivar solid: x of the solid lines.
    :ivar dash_phase: offset (m) of the dash pattern along z.
    :ivar junctions: ``(z_lo, z_hi, opens, corner)`` of each cross street: its asphalt spans
        ``z_lo..z_hi``; it opens to both sides (``opens`` 0) or to one (-1, 1, a T junction);
        ``corner`` is the width of its pavements.
    :ivar crossings: ``(z_lo, z_hi)`` of zebra crossings over the road.
    :ivar asphalt: albedo of the asphalt.
    :ivar grass: albedo of grass.
    :ivar paving: albedo of the pavement tiles.
    """

    road: tuple[float, float]
    lanes: tuple[tuple[float, float, int], ...]
    rig_lane: int
    strips: dict[int, tuple[float, float, int] | None]
    parking: dict[int, tuple[float, float] | None]
    pavement: dict[int, float]
    kerb: dict[int, float]
    setting: dict[int, str]
    avenue: dict[int, bool]
    dashed: tuple[float, ...]
    solid: tuple[float, ...]
    dash_phase: float
    junctions: tuple[tuple[float, float, int, float], ...]
    crossings: tuple[tuple[float, float], ...]
    asphalt: np.ndarray
    grass: np.ndarray
    paving: np.ndarray

    def edge(self, side: int) -> float:
        """Return the x of the kerb on ``side``."""
        return self.road[(side + 1) // 2]

    def gaps(self, side: int, margin: float = 0.0) -> list[tuple[float, float]]:
        """Return the z ranges of the cross streets opening on ``side``, widened by ``margin``."""
        return [(z_lo - margin, z_hi + margin) for z_lo, z_hi, opens, _ in self.junctions
                if opens in (0, side)]


def _segments(z_min: float, z_max: float,
              gaps: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Return the parts of ``z_min..z_max`` outside the (possibly overlapping) ``gaps``."""
    out, z = [], z_min
    for lo, hi in sorted(gaps):
        if lo > z:
            out.append((z, min(lo, z_max)))
        z = max(z, hi)
    if z < z_max:
        out.append((z, z_max))
    return [(a, b) for a, b in out if b > a]


def _cross_section(rng: np.random.Generator) -> dict:
    """
    Draw the lanes, cycle strips and parking lanes of a street.

    One to four lanes 3.0..3.6 m wide (one-way with one lane, else the left ones oncoming),
    the rig in one of its direction's lanes and 0.3 m either side of that lane's centre;
    outwards on each side possibly a cycle strip and a parking lane. A one-lane street
    always has parking on the right, so the narrowest street is about 5 m wide.
    """
    count = int(rng.choice(4, p=[0.15, 0.5, 0.15, 0.2])) + 1
    oncoming = (0, 1, int(rng.integers(1, 3)), 2)[count - 1]
    width = rng.uniform(3.0, 3.6)
    rig_lane = int(rng.integers(oncoming, count))
    left = rng.uniform(-0.3, 0.3) - width / 2 - rig_lane * width
    lanes = tuple((left + i * width, left + (i + 1) * width, -1 if i < oncoming else 1)
                  for i in range(count))
    dashed = [left + i * width for i in range(1, count)]
    solid = [left, left + count * width]
    if 0 < oncoming < count and rng.random() < 0.4:
        dashed.remove(lanes[oncoming][0])
        solid.append(lanes[oncoming][0])
    edges = {-1: left, 1: left + count * width}
    strips: dict[int, tuple[float, float, int] | None] = {}
    parking: dict[int, tuple[float, float] | None] = {}
    for side in (1, -1):
        strips[side] = parking[side] = None
        if count < 4 and rng.random() < 0.45:
            inner, edges[side] = edges[side], edges[side] + side * rng.uniform(1.2, 1.6)
            direction = 1 if side == 1 or oncoming == 0 else -1
            strips[side] = (min(inner, edges[side]), max(inner, edges[side]), direction)
        if (count == 1 and side == 1) or rng.random() < (0.65 if count < 3 else 0.3):
            inner, edges[side] = edges[side], edges[side] + side * rng.uniform(2.0, 2.4)
            parking[side] = (min(inner, edges[side]), max(inner, edges[side]))
    return {'road': (edges[-1], edges[1]), 'lanes': lanes, 'rig_lane': rig_lane,
            'strips': strips, 'parking': parking, 'dashed': tuple(dashed),
            'solid': tuple(solid)}


def _street(rng: np.random.Generator, z_min: float, z_max: float) -> _Street:
    """
    Draw a drive's street between ``z_min`` and ``z_max``.

    Besides the cross-section (:func:`_cross_section`): per side a setting (town, suburb or
    open), a pavement width and kerb height, street trees; on about half of the drives cross
    streets every 40..120 m, some with a zebra crossing; the asphalt, grass and paving tints.
    """
    section = _cross_section(rng)
    setting, pavement, kerb, avenue = {}, {}, {}, {}
    for side in (-1, 1):
        setting[side] = str(rng.choice(['town', 'suburb', 'open'], p=[0.45, 0.4, 0.15]))
        if setting[side] == 'town':
            pavement[side] = rng.uniform(2.5, 4.5)
        elif setting[side] == 'suburb':
            pavement[side] = rng.uniform(1.5, 3.0)
        else:
            pavement[side] = rng.uniform(1.0, 2.0) if rng.random() < 0.5 else 0.0
        kerb[side] = rng.uniform(0.10, 0.16)
        avenue[side] = bool(pavement[side] >= 2.0 and rng.random() < 0.3)
    junctions, crossings = [], []
    if rng.random() < 0.55:
        z = z_min + rng.uniform(20.0, 100.0)
        while z < z_max - 25.0:
            width = rng.uniform(6.0, 12.0)
            junctions.append((z, z + width, int(rng.choice([-1, 0, 0, 1])),
                              rng.uniform(1.5, 3.0)))
            if rng.random() < 0.5:
                crossings.append((z - 4.0, z - 1.0))
            z += width + rng.uniform(40.0, 120.0)
    dry = rng.uniform(0.0, 0.7)
    grass = ((1 - dry) * np.array([0.22, 0.36, 0.13]) + dry * np.array([0.42, 0.38, 0.20])) \
        * rng.uniform(0.8, 1.2)
    return _Street(**section, pavement=pavement, kerb=kerb, setting=setting, avenue=avenue,
                   dash_phase=rng.uniform(0.0, 9.0), junctions=tuple(junctions),
                   crossings=tuple(crossings),
                   asphalt=(rng.uniform(0.20, 0.36) * (1 + rng.uniform(-0.05, 0.05, 3)))
                   .astype(np.float32),
                   grass=grass.astype(np.float32),
                   paving=(rng.uniform(0.45, 0.70) * (1 + rng.uniform(-0.06, 0.06, 3)))
                   .astype(np.float32))


@dataclass(frozen=True)
class _World:
    """
    Boxes over the ground plane.

    Box ``b`` spans ``lo[b]``..``hi[b]`` at time 0 and moves along z at ``velocity[b]`` m/s;
    ``kind[b]`` says what it belongs to (``_SCENERY``, ``_VEHICLE``, ``_PEDESTRIAN``,
    ``_CYCLIST`` or ``_FURNITURE``).
    """

    lo: np.ndarray
    hi: np.ndarray
    velocity: np.ndarray
    material: np.ndarray
    colour: np.ndarray
    style: np.ndarray
    pitch: np.ndarray
    kind: np.ndarray
    street: _Street
    light: _Light
    seed: int

    def boxes_at(self, time: float) -> tuple[np.ndarray, np.ndarray]:
        """Box corners at ``time`` seconds after the first frame."""
        shift = np.zeros_like(self.lo)
        shift[:, 2] = self.velocity * time
        return self.lo + shift, self.hi + shift


class _Builder:
    """
    The world's box table under construction.

    It also keeps the footprints taken on the ground so far, each ``(x_lo, x_hi, z_lo,
    z_hi, velocity)`` at time 0, so that an object placed later meets none of them during
    the drive (``duration`` seconds).
    """

    def __init__(self, rng: np.random.Generator, duration: float) -> None:
        self.rng = rng
        self.duration = duration
        self.rows: list[tuple] = []
        self.taken: list[tuple[float, float, float, float, float]] = []

    def box(self, x: tuple[float, float], height: tuple[float, float],
            z: tuple[float, float], material: int, colour: np.ndarray | tuple,
            kind: int = _SCENERY, style: int = 0, pitch: float = 1.0,
            velocity: float = 0.0) -> None:
        """Add a box over ``x`` and ``z`` (at time 0) and ``height`` above the road."""
        top_y, bottom_y = CAMERA_HEIGHT - max(height), CAMERA_HEIGHT - min(height)
        self.rows.append((min(x), top_y, min(z), max(x), bottom_y, max(z), velocity,
                          material, *np.asarray(colour, dtype=np.float32), style, pitch,
                          kind))

    def take(self, x: tuple[float, float], z: tuple[float, float], velocity: float = 0.0,
             force: bool = False) -> bool:
        """
        Take a footprint moving along z at ``velocity`` if it stays clear of all taken ones.

        Two footprints meet when their x ranges overlap and the z range of one, swept over
        the drive at the velocity relative to the other, overlaps the other. ``force``
        takes it unchecked. Returns whether it was taken.
        """
        if self.taken and not force:
            t = np.array(self.taken)
            shift = (velocity - t[:, 4]) * self.duration
            meets = ((min(x) < t[:, 1]) & (max(x) > t[:, 0])
                     & (min(z) + np.minimum(shift, 0.0) < t[:, 3])
                     & (max(z) + np.maximum(shift, 0.0) > t[:, 2]))
            if meets.any():
                return False
        self.taken.append((min(x), max(x), min(z), max(z), velocity))
        return True

    def world(self, street: _Street, light: _Light, seed: int) -> _World:
        """Return the finished world."""
        table = np.array(self.rows, dtype=np.float64)
        return _World(lo=table[:, 0:3], hi=table[:, 3:6], velocity=table[:, 6],
                      material=table[:, 7].astype(np.int64),
                      colour=table[:, 8:11].astype(np.float32),
                      style=table[:, 11].astype(np.int64),
                      pitch=table[:, 12].astype(np.float32),
                      kind=table[:, 13].astype(np.int64), street=street, light=light,
                      seed=seed)


def _random_colour(rng: np.random.Generator, palette: np.ndarray, chance: float,
                   low: float, high: float) -> np.ndarray:
    """Draw a colour of ``palette`` (probability ``chance``) or a random RGB in low..high."""
    if rng.random() < chance:
        return palette[rng.integers(len(palette))]
    return rng.uniform(low, high, 3).astype(np.float32)


def _tree(b: _Builder, x: float, z: float, base: float = 0.0,
          trunk_height: tuple[float, float] = (2.0, 3.2)) -> None:
    """Add a tree where its footprint is free: a trunk (``trunk_height`` m) and a box crown."""
    rng = b.rng
    trunk, radius = rng.uniform(*trunk_height), rng.uniform(1.2, 2.2)
    if not b.take((x - 0.3, x + 0.3), (z - 0.3, z + 0.3)):
        return
    top = base + trunk
    b.box((x - 0.15, x + 0.15), (base, top), (z - 0.15, z + 0.15), _TRUNK, (0.33, 0.24, 0.16))
    b.box((x - radius, x + radius), (top - 0.3, top + 1.8 * radius), (z - radius, z + radius),
          _FOLIAGE, (rng.uniform(0.12, 0.25), rng.uniform(0.30, 0.45), rng.uniform(0.08, 0.15)))


def _car(b: _Builder, x: float, z: float, velocity: float = 0.0, large: bool = False,
         facing: int = 1, force: bool = False) -> float:
    """
    Add a car (3.6..5 m long, 1.6..1.95 m wide, 1.35..1.7 m tall) spanning ``z..z + length``.

    ``large``: a van or lorry instead, 6..9 m long, 2.2 m wide, 2.5..3.2 m tall, with a
    windscreen on its front. ``facing`` is 1 when the front is towards +z. Returns the
    length, or 0.0 (adding nothing) when the footprint is not free (see
    :meth:`_Builder.take`).
    """
    rng = b.rng
    if large:
        length, half, height = rng.uniform(6.0, 9.0), 1.1, rng.uniform(2.5, 3.2)
    else:
        length, half, height = rng.uniform(3.6, 5.0), rng.uniform(0.8, 0.98), \
            rng.uniform(1.35, 1.7)
    if not b.take((x - half, x + half), (z, z + length), velocity, force):
        return 0.0
    colour = _random_colour(rng, _CAR_COLOURS, 0.5, 0.03, 0.9)
    front = z + length if facing > 0 else z
    if large:
        shoulder, floor, wheel = height, 0.35, 0.8
        glass_z = (front - facing * 0.5, front + facing * 0.03)
        glass_height = (1.2, min(2.1, height - 0.2))
    else:
        shoulder, floor, wheel = min(rng.uniform(0.85, 1.1), height - 0.35), 0.25, 0.62
        cabin = rng.uniform(0.45, 0.6) * length
        glass_z = (front - facing * 0.3 * length, front - facing * (0.3 * length + cabin))
        glass_height = (shoulder, height)
    b.box((x - half, x + half), (floor, shoulder), (z, z + length), _CAR, colour,
          kind=_VEHICLE, velocity=velocity)
    b.box((x - half + 0.1, x + half - 0.1), glass_height, glass_z, _GLASS, colour,
          kind=_VEHICLE, velocity=velocity)
    for axle in (0.18 * length, 0.82 * length):
        b.box((x - half + 0.05, x + half - 0.05), (0.0, wheel),
              (z + axle - wheel / 2, z + axle + wheel / 2), _TYRE, (0.05, 0.05, 0.05),
              kind=_VEHICLE, velocity=velocity)
    return length


def _head(b: _Builder, x: float, z: float, height: tuple[float, float], kind: int,
          velocity: float) -> None:
    """Add a head box (skin, hair on top) centred at ``(x, z)``."""
    b.box((x - 0.1, x + 0.1), height, (z - 0.11, z + 0.11), _SKIN,
          _SKIN_COLOURS[b.rng.integers(len(_SKIN_COLOURS))], kind=kind, velocity=velocity)


def _cloth(b: _Builder, x: tuple[float, float], height: tuple[float, float],
           z: tuple[float, float], kind: int, velocity: float) -> None:
    """Add a body box in clothes: a random top and (by style) dark, jeans or same legs."""
    rng = b.rng
    colour = rng.uniform(0.05, 0.85, 3) if rng.random() < 0.6 else \
        np.full(3, rng.uniform(0.05, 0.25))
    b.box(x, height, z, _CLOTH, colour, kind=kind, style=int(rng.integers(3)),
          velocity=velocity)


def _pedestrian(b: _Builder, x: float, z: float, velocity: float = 0.0,
                crossing: bool = False, base: float = 0.0) -> bool:
    """
    Add a pedestrian at ``(x, z)`` on a surface ``base`` m above the road.

    A body box 0.5 m across and 0.35 m deep (turned for one ``crossing`` the road) with a
    head box on top, 1.5..1.9 m tall in all; it stands, or walks along z at ``velocity``.
    Returns False (adding nothing) when the footprint is not free.
    """
    across, along = (0.35, 0.5) if crossing else (0.5, 0.35)
    if not b.take((x - across / 2 - 0.15, x + across / 2 + 0.15),
                  (z - along / 2 - 0.15, z + along / 2 + 0.15), velocity):
        return False
    top = base + b.rng.uniform(1.5, 1.9)
    _cloth(b, (x - across / 2, x + across / 2), (base, top - 0.25),
           (z - along / 2, z + along / 2), _PEDESTRIAN, velocity)
    _head(b, x, z, (top - 0.25, top), _PEDESTRIAN, velocity)
    return True


def _cyclist(b: _Builder, x: float, z: float, velocity: float) -> bool:
    """
    Add a cyclist riding along z at ``velocity`` from ``z`` (1.7 m long, 1.7 m tall).

    The bicycle is a narrow box (0.16 m wide, 0.95 m tall), the rider a body box and a head.
    Returns False (adding nothing) when the footprint is not free.
    """
    if not b.take((x - 0.35, x + 0.35), (z - 0.2, z + 1.9), velocity):
        return False
    rng = b.rng
    b.box((x - 0.08, x + 0.08), (0.0, 0.95), (z, z + 1.7), _TYRE,
          rng.uniform(0.05, 0.6, 3), kind=_CYCLIST, velocity=velocity)
    rider = z + (0.45 if velocity >= 0 else 0.75)
    _cloth(b, (x - 0.22, x + 0.22), (0.75, 1.45), (rider, rider + 0.5), _CYCLIST, velocity)
    _head(b, x, rider + 0.25, (1.45, 1.7), _CYCLIST, velocity)
    return True


def _post(b: _Builder, x: float, z: float, height: tuple[float, float], half: float,
          colour: tuple | np.ndarray) -> bool:
    """Add a post (lamp, sign, bollard, signal) of square section; False if not free."""
    if not b.take((x - half - 0.1, x + half + 0.1), (z - half - 0.1, z + half + 0.1)):
        return False
    b.box((x - half, x + half), height, (z - half, z + half), _POLE, colour, kind=_FURNITURE)
    return True


def _kerb_furniture(b: _Builder, street: _Street, side: int, z0: float, z1: float) -> None:
    """
    Line the kerb on ``side`` between ``z0`` and ``z1``.

    Street lamps every 20..35 m, street trees on an avenue side (crowns 2.7 m up or more, as
    they reach over the road), and every 6..25 m a sign post, a group of bollards or a
    cabinet.
    """
    rng = b.rng
    edge = street.edge(side)
    base = street.kerb[side] if street.pavement[side] > 0 else 0.0
    grey = (0.46, 0.47, 0.49)
    z = z0 + rng.uniform(0.0, 20.0)
    while z < z1:
        height = rng.uniform(6.0, 8.0)
        if _post(b, edge + side * 0.5, z, (base, height), 0.08, grey):
            b.box((edge + side * 0.5, edge - side * 1.1), (height - 0.15, height),
                  (z - 0.08, z + 0.08), _POLE, grey, kind=_FURNITURE)
        z += rng.uniform(20.0, 35.0)
    z = z0 + rng.uniform(2.0, 10.0)
    while street.avenue[side] and z < z1:
        _tree(b, edge + side * rng.uniform(0.8, 1.2), z, base, (3.0, 4.0))
        z += rng.uniform(7.0, 14.0)
    z = z0 + rng.uniform(2.0, 12.0)
    while z < z1:
        choice, x = rng.random(), edge + side * rng.uniform(0.3, 0.6)
        if choice < 0.4:
            top = rng.uniform(2.2, 3.0)
            if _post(b, x, z, (base, top), 0.035, grey):
                b.box((x - 0.3, x + 0.3), (top - 0.6, top), (z - 0.02, z + 0.02), _POLE,
                      _random_colour(rng, _SIGN_COLOURS, 0.8, 0.1, 0.9), kind=_FURNITURE)
        elif choice < 0.7:
            for k in range(int(rng.integers(2, 6))):
                _post(b, x, z + 1.5 * k, (base, base + rng.uniform(0.8, 1.1)), 0.08,
                      (0.25, 0.26, 0.27))
        else:
            half = rng.uniform(0.2, 0.4)
            _post(b, x + side * half, z, (base, base + rng.uniform(0.9, 1.4)), half,
                  rng.uniform(0.2, 0.6, 3))
        z += rng.uniform(6.0, 25.0)


def _facade(b: _Builder, x: tuple[float, float], z: tuple[float, float],
            top: float) -> None:
    """Add a building box with a random facade colour, wall style and window pitch."""
    rng = b.rng
    b.box(x, (0.0, top), z, _BUILDING, _random_colour(rng, _FACADE_COLOURS, 0.4, 0.3, 0.92),
          style=int(rng.integers(3)), pitch=rng.uniform(2.4, 3.6))


def _fence(b: _Builder, x: float, z: tuple[float, float]) -> None:
    """Add a slatted fence 0.9..1.5 m tall along z at ``x``."""
    rng = b.rng
    b.box((x, x + 0.05), (0.0, rng.uniform(0.9, 1.5)), z, _FENCE,
          np.array([0.45, 0.36, 0.26]) * rng.uniform(0.7, 1.3), pitch=rng.uniform(0.12, 0.2))


def _lot(b: _Builder, street: _Street, side: int, outer: float, z: float,
         length: float) -> None:
    """
    Fill the lot ``z..z + length`` beyond the pavement (outer edge at ``outer``).

    Town: mostly a facade 0..1 m behind the pavement; suburb: mostly set back 3..15 m behind
    a fence with a tree in the front garden; open: a field, often behind a fence or a
    hedge, with a few trees. Otherwise a clump of trees.
    """
    rng = b.rng
    setting = street.setting[side]
    if setting != 'open' and rng.random() < (0.9 if setting == 'town' else 0.75):
        close = 0.75 if setting == 'town' else 0.2
        setback = rng.uniform(0.0, 1.0) if rng.random() < close else rng.uniform(3.0, 15.0)
        front = outer + side * setback
        _facade(b, (front, front + side * rng.uniform(8.0, 16.0)), (z, z + length),
                rng.uniform(5.0, 14.0))
        if setback > 3.0 and rng.random() < 0.6:
            _fence(b, outer + side * 0.2, (z, z + length))
        if setback > 5.0 and rng.random() < 0.7:
            _tree(b, outer + side * setback / 2, z + length * rng.uniform(0.3, 0.7))
    elif setting == 'open' and rng.random() < 0.6:
        x = outer + side * rng.uniform(0.3, 4.0)
        if rng.random() < 0.6:
            _fence(b, x, (z, z + length))
        else:
            depth = rng.uniform(0.6, 1.2)
            b.box((x, x + side * depth), (0.0, rng.uniform(1.0, 1.8)), (z, z + length),
                  _FOLIAGE, (rng.uniform(0.10, 0.2), rng.uniform(0.25, 0.4), 0.08))
        for _ in range(int(rng.integers(0, 3))):
            _tree(b, outer + side * rng.uniform(5.0, 30.0), z + rng.uniform(0.0, length))
    else:
        for _ in range(int(rng.integers(1, 4))):
            _tree(b, outer + side * rng.uniform(2.5, 12.0), z + rng.uniform(0.0, length))


def _backdrop(b: _Builder, side: int, z_min: float, z_max: float) -> None:
    """Add a skyline of distant buildings and tree lines 45..60 m to the ``side``."""
    rng = b.rng
    colour = np.array([0.30, 0.34, 0.30]) * rng.uniform(0.8, 1.2)
    z = z_min - 20.0
    while z < z_max + 20.0:
        length, x = rng.uniform(15.0, 40.0), side * rng.uniform(45.0, 60.0)
        b.box((x, x + side * 20.0), (0.0, rng.uniform(6.0, 16.0)), (z, z + length), _BACKDROP,
              colour, style=int(rng.integers(2)), pitch=rng.uniform(2.0, 4.0))
        z += length


def _roadside(b: _Builder, street: _Street, side: int, z_min: float, z_max: float) -> None:
    """
    One side of the street: pavement, kerb furniture, lots, pedestrians and the backdrop.

    Pavement and kerb furniture stop at the cross streets, the lots 1 m further.
    Pedestrians (0..0.12 per metre) stand or walk (0.8..1.7 m/s) along the pavement.
    """
    rng = b.rng
    edge, width = street.edge(side), street.pavement[side]
    outer = edge + side * width
    for z0, z1 in _segments(z_min, z_max, street.gaps(side)):
        if width > 0:
            b.box((edge, outer), (0.0, street.kerb[side]), (z0, z1), _PAVEMENT, street.paving)
        _kerb_furniture(b, street, side, z0, z1)
    margin = max([corner for *_, corner in street.junctions], default=0.0) + 1.0
    for z0, z1 in _segments(z_min, z_max, street.gaps(side, margin)):
        z = z0
        while z < z1 - 2.0:
            length = min(rng.uniform(8.0, 30.0), z1 - z)
            _lot(b, street, side, outer, z, length)
            z += length + rng.uniform(0.0, 2.0 if street.setting[side] == 'town' else 6.0)
    if width >= 1.0:
        for _ in range(int(rng.uniform(0.0, 0.12) * (z_max - z_min))):
            x, z = edge + side * rng.uniform(0.6, width - 0.4), rng.uniform(z_min, z_max)
            walking = rng.random() < 0.6
            if not any(lo - 0.5 < z < hi + 0.5 for lo, hi in street.gaps(side)):
                _pedestrian(b, x, z, rng.choice([-1.0, 1.0]) * rng.uniform(0.8, 1.7)
                            if walking else 0.0, base=street.kerb[side])
    _backdrop(b, side, z_min, z_max)


def _junction(b: _Builder, street: _Street, junction: tuple[float, float, int, float]) -> None:
    """
    Add the corners of a cross street: its pavements, buildings lining it, a signal post.

    Its asphalt is ground (see :func:`_ground_albedo`); the main street's lots stop short of
    it (see :func:`_roadside`).
    """
    rng = b.rng
    z_lo, z_hi, opens, corner = junction
    for side in (-1, 1):
        if opens not in (0, side):
            continue
        edge, kerb = street.edge(side), street.kerb[side]
        for z0, sign in ((z_lo, -1), (z_hi, 1)):
            b.box((edge, side * 60.0), (0.0, kerb), (z0, z0 + sign * corner), _PAVEMENT,
                  street.paving)
            x = edge + side * rng.uniform(16.0, 24.0)
            front = z0 + sign * (corner + rng.uniform(0.0, 3.0))
            _facade(b, (x, x + side * rng.uniform(8.0, 20.0)),
                    (front, front + sign * rng.uniform(8.0, 14.0)), rng.uniform(5.0, 14.0))
        x, z = edge + side * 0.4, z_lo - 0.6
        if _post(b, x, z, (kerb, 3.6), 0.06, (0.2, 0.2, 0.2)):
            b.box((x - 0.15, x + 0.15), (2.7, 3.6), (z - 0.15, z + 0.15), _POLE,
                  (0.1, 0.1, 0.1), kind=_FURNITURE)


def _leading_cars(b: _Builder, street: _Street, times: np.ndarray, positions: np.ndarray,
                  speeds: np.ndarray) -> None:
    """
    Cars ahead in the rig's lane (on 3 drives in 4), about as fast as the rig.

    The first one's rear is 4..30 m ahead of camera 0 where the rig comes closest; up to two
    more follow it 4..25 m apart at the same speed.
    """
    rng = b.rng
    if rng.random() >= 0.75:
        return
    lo, hi, _ = street.lanes[street.rig_lane]
    velocity = float(np.max(speeds)) * rng.uniform(0.95, 1.03)
    z = rng.uniform(4.0, 30.0) + float(np.max(positions - velocity * times))
    x = (lo + hi) / 2 + rng.uniform(-0.2, 0.2)
    for _ in range(int(rng.integers(1, 4))):
        z += _car(b, x, z, velocity, large=rng.random() < 0.12, force=True) + \
            rng.uniform(4.0, 25.0)


def _crossing_pedestrians(b: _Builder, street: _Street, positions: np.ndarray) -> None:
    """
    Up to four pedestrians standing in the road, 3..40 m ahead of the rig at some frame.

    Some stand on a zebra crossing or in the mouth of a cross street; none in the rig's path.
    """
    rng = b.rng
    for _ in range(int(rng.integers(0, 5))):
        for _attempt in range(10):
            z = positions[rng.integers(len(positions))] + rng.uniform(3.0, 40.0)
            x = rng.uniform(*street.road)
            if street.crossings and rng.random() < 0.4:
                z = rng.uniform(*street.crossings[rng.integers(len(street.crossings))])
            elif street.junctions and rng.random() < 0.3:
                z_lo, z_hi, opens, _ = street.junctions[rng.integers(len(street.junctions))]
                side = opens or int(rng.choice([-1, 1]))
                x = street.edge(side) + side * rng.uniform(1.0, 10.0)
                z = rng.uniform(z_lo + 0.5, z_hi - 0.5)
            if _pedestrian(b, x, z, crossing=True):
                break


def _parked_cars(b: _Builder, street: _Street, side: int, z_min: float, z_max: float) -> None:
    """
    Parked cars (and a few vans) in the parking lane on ``side``, 20..90 % occupied.

    None in the mouths of cross streets or on zebra crossings.
    """
    lane = street.parking[side]
    if lane is None:
        return
    rng = b.rng
    occupancy = rng.uniform(0.2, 0.9)
    keep_clear = street.gaps(side, 4.0) + [(z0 - 2.0, z1 + 2.0) for z0, z1 in street.crossings]
    for z0, z1 in _segments(z_min, z_max, keep_clear):
        z = z0 + rng.uniform(0.0, 3.0)
        while z < z1 - 9.0:
            length = 0.0
            if rng.random() < occupancy:
                length = _car(b, sum(lane) / 2 + rng.uniform(-0.2, 0.2), z,
                              large=rng.random() < 0.06, facing=int(rng.choice([-1, 1])))
            z += (length or 4.5) + rng.uniform(0.6, 2.5)


def _traffic(b: _Builder, street: _Street, speeds: np.ndarray, z_min: float,
             z_max: float) -> None:
    """
    Add the moving traffic besides the cars ahead of the rig.

    Each other lane has its own speed (oncoming 6..14 m/s, same direction 0.6..1.3 times
    the rig's) and up to five cars and vans anywhere on it; each cycle strip has cyclists
    at 3..7 m/s. Nothing leaves the street during the drive or meets anything else.
    """
    rng = b.rng
    cruise = max(float(np.max(speeds)), 4.0)
    movers = [(lane, -rng.uniform(6.0, 14.0) if lane[2] < 0 else cruise * rng.uniform(0.6, 1.3),
               False) for i, lane in enumerate(street.lanes) if i != street.rig_lane]
    movers += [(strip, strip[2] * rng.uniform(3.0, 7.0), True)
               for strip in street.strips.values() if strip is not None]
    for (lo, hi, direction), velocity, cycle in movers:
        sweep = velocity * b.duration
        first, last = z_min + 1.0 - min(sweep, 0.0), z_max - 10.0 - max(sweep, 0.0)
        for _ in range(int(rng.integers(1, 6))):
            for _attempt in range(8):
                if last <= first:
                    break
                x, z = (lo + hi) / 2 + rng.uniform(-0.2, 0.2), rng.uniform(first, last)
                if cycle:
                    placed = _cyclist(b, x, z, velocity)
                else:
                    placed = _car(b, x, z, velocity, large=rng.random() < 0.15,
                                  facing=direction) > 0.0
                if placed:
                    break


def _build_world(rng: np.random.Generator, z_min: float, z_max: float, times: np.ndarray,
                 positions: np.ndarray, speeds: np.ndarray, seed: int) -> _World:
    """
    Lay out a drive's street between ``z_min`` and ``z_max``.

    ``times``, ``positions`` and ``speeds`` are the rig's (see :func:`_trajectory`): cars
    ahead keep pace with it, and nothing stands or moves into its path. A transverse
    building closes each end.
    """
    light = _lighting(rng)
    street = _street(rng, z_min, z_max)
    b = _Builder(rng, float(times[-1]))
    b.take(_RIG_CORRIDOR, (-3.0, float(positions[-1]) + 8.0), force=True)
    _leading_cars(b, street, times, positions, speeds)
    _crossing_pedestrians(b, street, positions)
    for side in (-1, 1):
        _roadside(b, street, side, z_min, z_max)
        _parked_cars(b, street, side, z_min, z_max)
    for junction in street.junctions:
        _junction(b, street, junction)
    _traffic(b, street, speeds, z_min, z_max)
    for z, sign in ((z_max, 1), (z_min, -1)):
        _facade(b, (-80.0, 80.0), (z, z + sign * 12.0), rng.uniform(6.0, 12.0))
    return b.world(street, light, seed)


# ----------------------------------------------------------------------------- ray casting

@dataclass(frozen=True)
class _Rays:
    """
    Grid of rays from one origin.

    The fields are the directions (R, C, 3), their reciprocals and their lengths.
    """

    dirs: np.ndarray
    inv: tuple[np.ndarray, np.ndarray, np.ndarray]
    length: np.ndarray


def _rays(dirs: np.ndarray) -> _Rays:
    dirs = dirs.astype(np.float32)
    with np.errstate(divide='ignore'):
        inv = tuple(np.float32(1.0) / dirs[..., i] for i in range(3))
    return _Rays(dirs=dirs, inv=inv, length=np.linalg.norm(dirs, axis=-1))


def _camera_rays(k: np.ndarray, size: tuple[int, int]) -> _Rays:
    r"""
    Return the ray :math:`K^{-1} (c + 1, r + 1, 1)^T` of each pixel (row r, column c).

    Its z is 1, so the ray parameter of a hit is the depth along the optical axis.
    """
    width, height = size
    u, v = np.meshgrid(np.arange(1, width + 1), np.arange(1, height + 1))
    pixels = np.stack([u, v, np.ones_like(u)], axis=-1).astype(np.float64)
    return _rays(pixels @ np.linalg.inv(k).T)


def _lidar_rays(rotation: np.ndarray) -> tuple[_Rays, np.ndarray]:
    """Beam directions (64, n_azimuth) in the Velodyne frame and rotated to the world."""
    elevation = np.radians(LIDAR_ELEVATIONS_DEG)[:, None]
    azimuth = np.radians(np.arange(0.0, 360.0, LIDAR_AZIMUTH_STEP_DEG))[None, :]
    local = np.stack(np.broadcast_arrays(np.cos(elevation) * np.cos(azimuth),
                                         np.cos(elevation) * np.sin(azimuth),
                                         np.sin(elevation)), axis=-1)
    return _rays(local @ rotation.T), local


def _slab(origin: np.ndarray, inv: tuple[np.ndarray, ...], lo: np.ndarray,
          hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""
    Intersect rays with a box (slab method).

    With :math:`t^{\pm}_i = (b^{\pm}_i - o_i) / d_i` the entry is
    :math:`t = \max_i \min(t^-_i, t^+_i)` and the exit :math:`\min_i \max(t^-_i, t^+_i)`;
    a hit needs entry <= exit and entry > 0.

    :returns: entry distance (inf on a miss) and the axis of the face entered.
    """
    near, far = [], []
    with np.errstate(invalid='ignore'):
        for i in range(3):
            a = (np.float32(lo[i] - origin[i])) * inv[i]
            b = (np.float32(hi[i] - origin[i])) * inv[i]
            near.append(np.fmin(a, b))
            far.append(np.fmax(a, b))
    entry = np.maximum(np.maximum(near[0], near[1]), near[2])
    leave = np.minimum(np.minimum(far[0], far[1]), far[2])
    axis = np.where(entry == near[0], 0, np.where(entry == near[1], 1, 2)).astype(np.int8)
    return np.where((entry <= leave) & (entry > 1e-4), entry, np.float32(np.inf)), axis


def _trace(origin: np.ndarray, rays: _Rays, lo: np.ndarray, hi: np.ndarray,
           regions: list[tuple[int, tuple]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Find the nearest hit of every ray against the ground plane and the boxes.

    ``regions`` pairs a box with the index expression of the rays that may hit it.

    :returns: distance parameter ``t`` (inf for sky), hit id (box index, -1 ground,
        -2 sky) and the axis of the face hit (1 for the ground).
    """
    dy = rays.dirs[..., 1]
    with np.errstate(divide='ignore'):
        t = np.where(dy > 0, np.float32(CAMERA_HEIGHT - origin[1]) / dy, np.float32(np.inf))
    hit = np.where(np.isfinite(t), -1, _SKY).astype(np.int32)
    axis = np.ones(t.shape, dtype=np.int8)
    for b, region in regions:
        tb, ab = _slab(origin, tuple(inv[region] for inv in rays.inv), lo[b], hi[b])
        closer = tb < t[region]
        if closer.any():
            t[region] = np.where(closer, tb, t[region])
            hit[region] = np.where(closer, b, hit[region])
            axis[region] = np.where(closer, ab, axis[region])
    return t, hit, axis


def _camera_regions(lo: np.ndarray, hi: np.ndarray, centre: np.ndarray, k: np.ndarray,
                    size: tuple[int, int]) -> list[tuple[int, tuple]]:
    """
    Return the pixel rectangle of each box in front of the camera.

    The rectangle bounds its corners' projections after clipping the box to z >= 5 cm in
    front of the camera centre.
    """
    width, height = size
    rel_lo, rel_hi = lo - centre, hi - centre
    z_lo = np.maximum(rel_lo[:, 2], 0.05)
    front = rel_hi[:, 2] > 0.05
    xs = np.stack([rel_lo[:, 0], rel_hi[:, 0]], axis=1)[:, :, None, None]
    ys = np.stack([rel_lo[:, 1], rel_hi[:, 1]], axis=1)[:, None, :, None]
    zs = np.stack([z_lo, np.maximum(rel_hi[:, 2], 0.05)], axis=1)[:, None, None, :]
    cols = (k[0, 0] * xs / zs + k[0, 1] * ys / zs + k[0, 2] - 1).reshape(len(lo), -1)
    rows = np.broadcast_to(k[1, 1] * ys / zs + k[1, 2] - 1,
                           (len(lo), 2, 2, 2)).reshape(len(lo), -1)
    c0 = np.clip(np.floor(cols.min(1)), 0, width).astype(int)
    c1 = np.clip(np.ceil(cols.max(1)) + 1, 0, width).astype(int)
    r0 = np.clip(np.floor(rows.min(1)), 0, height).astype(int)
    r1 = np.clip(np.ceil(rows.max(1)) + 1, 0, height).astype(int)
    keep = front & (c1 > c0) & (r1 > r0)
    return [(b, (slice(r0[b], r1[b]), slice(c0[b], c1[b]))) for b in np.nonzero(keep)[0]]


def _lidar_regions(lo: np.ndarray, hi: np.ndarray, origin: np.ndarray,
                   column_azimuth: np.ndarray) -> list[tuple[int, tuple]]:
    """
    Return the LiDAR columns that may hit each box within range.

    These are the columns whose azimuth (about the vertical axis, 0 = forward) lies within
    the box footprint's angular span plus 2 deg.
    """
    gap = np.maximum(np.maximum(lo - origin, origin - hi), 0.0)
    in_range = np.linalg.norm(gap, axis=1) <= LIDAR_RANGE
    rel_lo, rel_hi = lo - origin, hi - origin
    around = (rel_lo[:, 0] <= 0) & (rel_hi[:, 0] >= 0) & (rel_lo[:, 2] <= 0) & (rel_hi[:, 2] >= 0)
    regions = []
    every = np.arange(len(column_azimuth))
    for b in np.nonzero(in_range)[0]:
        if around[b]:
            regions.append((b, (slice(None), every)))
            continue
        corners = np.arctan2([rel_lo[b, 0], rel_lo[b, 0], rel_hi[b, 0], rel_hi[b, 0]],
                             [rel_lo[b, 2], rel_hi[b, 2], rel_lo[b, 2], rel_hi[b, 2]])
        mid = np.arctan2(rel_lo[b, 0] + rel_hi[b, 0], rel_lo[b, 2] + rel_hi[b, 2])
        spread = np.angle(np.exp(1j * (corners - mid)))
        centre = mid + (spread.max() + spread.min()) / 2
        half = (spread.max() - spread.min()) / 2 + np.radians(2.0)
        cols = np.nonzero(np.abs(np.angle(np.exp(1j * (column_azimuth - centre)))) <= half)[0]
        if cols.size:
            regions.append((b, (slice(None), cols)))
    return regions


# ----------------------------------------------------------------------------- shading

def _face_coords(p: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    Return the 2-D surface coordinates of hit points.

    They are (z, height) on x faces, (x, z) on y faces, (x, height) on z faces; height is
    above the road.
    """
    height = CAMERA_HEIGHT - p[:, 1]
    s = np.where(axis == 0, p[:, 2], p[:, 0])
    t = np.where(axis == 1, p[:, 2], height)
    return s, t


def _ground_albedo(world: _World, p: np.ndarray, seed: int) -> np.ndarray:
    """
    Albedo of the ground: asphalt on the road and in cross streets, grass elsewhere.

    The road carries dashed and solid lines (solid ones stop at cross streets) and zebra
    crossings.
    """
    street = world.street
    x, z = p[:, 0], p[:, 2]
    out = np.empty((len(p), 3), dtype=np.float32)
    main = (x >= street.road[0]) & (x <= street.road[1])
    junction = np.zeros(len(p), dtype=bool)
    cross = np.zeros(len(p), dtype=bool)
    for z_lo, z_hi, opens, _ in street.junctions:
        inside = (z >= z_lo) & (z <= z_hi)
        junction |= inside
        cross |= inside & ((opens >= 0) & (x > street.road[1]) | (opens <= 0)
                           & (x < street.road[0]))
    road = main | cross
    g = ~road
    grass = _fbm(x[g] * 1.5, z[g] * 1.5, seed + 1)
    out[g] = street.grass * (0.55 + 0.8 * grass)[:, None]
    xr, zr, on_main = x[road], z[road], main[road]
    grain = 0.6 * _value_noise(xr * 8.0, zr * 8.0, seed + 2) + 0.4 * _value_noise(
        xr * 0.5, zr * 0.5, seed + 3)
    paint = np.zeros(len(xr), dtype=bool)
    for line in street.dashed:
        paint |= (np.abs(xr - line) < 0.06) & (_frac((zr - street.dash_phase) / 9.0) < 1 / 3)
    for line in street.solid:
        paint |= (np.abs(xr - line) < 0.06) & ~junction[road]
    for z_lo, z_hi in street.crossings:
        paint |= on_main & (zr >= z_lo) & (zr <= z_hi) & (_frac(xr - street.road[0]) < 0.5)
    asphalt = street.asphalt * (0.8 + 0.45 * grain)[:, None]
    white = (0.78 + 0.06 * grain)[:, None] * np.array([1.0, 0.99, 0.97], dtype=np.float32)
    out[road] = np.where(paint[:, None], white, asphalt)
    return out


def _box_albedo(world: _World, lo: np.ndarray, hi: np.ndarray, p: np.ndarray, box: np.ndarray,
                axis: np.ndarray, material: int, seed: int) -> np.ndarray:
    """Albedo of hit points on boxes of one material."""
    colour = world.colour[box]
    s, t = _face_coords(p, axis)
    if material == _PAVEMENT:
        tile = _hash01(np.floor(s / 0.5).astype(np.int64), np.floor(t / 0.5).astype(np.int64),
                       seed + 4)
        joint = (_frac(s / 0.5) < 0.05) | (_frac(t / 0.5) < 0.05)
        shade = np.where(axis == 1, np.where(joint, 0.6, 0.9 + 0.2 * tile), 1.05)
        return colour * shade[:, None].astype(np.float32)
    if material in (_BUILDING, _BACKDROP):
        return _facade_albedo(world, lo, hi, s, t, box, axis, colour, material, seed)
    if material == _CAR:
        return colour * (0.8 + 0.25 * np.clip(t - 0.25, 0.0, 1.0))[:, None].astype(np.float32)
    if material == _GLASS:
        glass = np.array([0.07, 0.09, 0.11], dtype=np.float32) + \
            0.12 * _frac(t * 2.0)[:, None].astype(np.float32)
        return np.where((axis == 1)[:, None], colour, glass)
    if material == _CLOTH:
        bottom, top = CAMERA_HEIGHT - hi[box, 1], CAMERA_HEIGHT - lo[box, 1]
        style = world.style[box][:, None]
        legs = np.select([style == 0, style == 1], [0.3 * colour, _JEANS], colour)
        wear = np.where((t < bottom + 0.45 * (top - bottom))[:, None], legs, colour)
        return wear * (0.85 + 0.3 * _value_noise(s * 4.0, t * 4.0, seed + 16))[:, None]
    if material == _SKIN:
        return np.where((axis == 1)[:, None], _HAIR, colour)
    if material in (_TYRE, _POLE):
        return colour * (0.9 + 0.2 * _value_noise(s * 3.0, t * 3.0, seed + 5))[:, None]
    if material == _TRUNK:
        return colour * (0.6 + 0.6 * _fbm(s * 20.0, t * 2.0, seed + 6, 2))[:, None]
    if material == _FOLIAGE:
        leaves = _fbm(s * 2.5, t * 2.5 + 7.0 * axis, seed + 7)
        return colour * (0.3 + 1.2 * leaves)[:, None]
    slat = _frac(s / world.pitch[box]) < 0.75
    return colour * np.where(slat, 0.85 + 0.3 * _value_noise(s * 30.0, t * 2.0, seed + 8),
                             0.3)[:, None].astype(np.float32)


def _facade_albedo(world: _World, lo: np.ndarray, hi: np.ndarray, s: np.ndarray,
                   t: np.ndarray, box: np.ndarray, axis: np.ndarray, colour: np.ndarray,
                   material: int, seed: int) -> np.ndarray:
    """
    Walls (blocks, plaster or siding by style) with a grid of windows; roofs are grey.

    Backdrop boxes are either tree lines (style 0) or distant buildings.
    """
    style = world.style[box]
    start = np.where(axis == 0, lo[box, 2], lo[box, 0])
    extent = np.where(axis == 0, hi[box, 2], hi[box, 0]) - start
    local = s - start
    top = CAMERA_HEIGHT - lo[box, 1]
    if material == _BACKDROP:
        trees = _fbm(s * 0.6, t * 0.6, seed + 9)
        wall = np.where(style == 0, 0.5 + 0.9 * trees,
                        0.9 + 0.2 * _value_noise(s * 0.3, t * 0.3, seed + 10))
        return colour * wall[:, None].astype(np.float32)
    row = np.floor(t / 0.3)
    shifted = s + 0.3 * (row % 2)
    block = 0.85 + 0.3 * _hash01(np.floor(shifted / 0.6).astype(np.int64), row.astype(np.int64),
                                 seed + 11)
    block = np.where((_frac(t / 0.3) < 0.1) | (_frac(shifted / 0.6) < 0.05), 1.15, block)
    plaster = 0.75 + 0.45 * _fbm(s * 1.5, t * 1.5, seed + 12)
    siding = np.where(_frac(t / 0.22) < 0.2, 0.7, 0.95) + 0.1 * _value_noise(s, t, seed + 13)
    wall = np.select([style == 0, style == 1], [block, plaster], siding)
    out = colour * wall[:, None].astype(np.float32)
    floor_phase = _frac(t / 3.0)
    bay = _frac(local / world.pitch[box])
    window = ((axis != 1) & (bay > 0.28) & (bay < 0.72) & (floor_phase > 0.3)
              & (floor_phase < 0.8) & (t > 0.8) & (t < top - 0.8) & (local > 0.6)
              & (local < extent - 0.6))
    glass = np.array([0.09, 0.11, 0.14], dtype=np.float32) + \
        (0.35 * (floor_phase - 0.3))[:, None].astype(np.float32) * \
        np.array([0.8, 0.9, 1.0], dtype=np.float32)
    out = np.where(window[:, None], glass, out)
    roof = np.float32(0.28) + 0.08 * _value_noise(s, t, seed + 14)[:, None]
    return np.where((axis == 1)[:, None], roof, out)


def _albedo(world: _World, lo: np.ndarray, hi: np.ndarray, p: np.ndarray, hit: np.ndarray,
            axis: np.ndarray) -> np.ndarray:
    """Surface colour (linear, 0..1) of hit points ``p`` (hit >= -1)."""
    material = np.where(hit >= 0, world.material[np.maximum(hit, 0)], _GROUND)
    out = np.empty((len(p), 3), dtype=np.float32)
    for m in np.nonzero(np.bincount(material))[0]:
        sel = np.nonzero(material == m)[0]
        if m == _GROUND:
            out[sel] = _ground_albedo(world, p[sel], world.seed)
        else:
            out[sel] = _box_albedo(world, lo, hi, p[sel], hit[sel], axis[sel], int(m),
                                   world.seed)
    return out


def _sky(dirs: np.ndarray, light: _Light, seed: int) -> np.ndarray:
    """
    Return the sky colour by elevation, with clouds on a plane at infinity.

    The clouds are a function of the direction only; ``light.cloud_cover`` sets how much of
    the sky they cover.
    """
    norm = np.linalg.norm(dirs, axis=1)
    elevation = np.clip(-dirs[:, 1] / norm, 0.0, 1.0)
    blend = np.clip(elevation * 2.5, 0.0, 1.0)[:, None]
    colour = light.horizon * (1 - blend) + light.zenith * blend
    lift = np.maximum(-dirs[:, 1], 1e-3)
    cloud = _fbm(dirs[:, 0] / lift * 1.5, dirs[:, 2] / lift * 1.5, seed + 15)
    threshold = np.float32(0.65 - 0.4 * light.cloud_cover)
    amount = (np.clip((cloud - threshold) * 3.0, 0.0, 1.0)
              * np.clip(elevation * 10.0, 0.0, 1.0))[:, None]
    white = np.float32(0.8 * 0.96 * (1.0 - 0.35 * light.cloud_cover))
    return colour * (1 - 0.8 * amount) + white * amount


def _render(world: _World, lo: np.ndarray, hi: np.ndarray, origin: np.ndarray, rays: _Rays,
            k: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Render one camera: RGB uint8 image and depth along the optical axis (inf for sky)."""
    t, hit, axis = _trace(origin, rays, lo, hi, _camera_regions(lo, hi, origin, k, size))
    dirs = rays.dirs.reshape(-1, 3)
    flat_hit = hit.ravel()
    solid = np.nonzero(flat_hit != _SKY)[0]
    sky = np.nonzero(flat_hit == _SKY)[0]
    d, dist, face = dirs[solid], t.ravel()[solid], axis.ravel()[solid].astype(np.intp)
    colour = _albedo(world, lo, hi, origin.astype(np.float32) + dist[:, None] * d,
                     flat_hit[solid], face)
    # Lambert: the face normal points against the ray along the face's axis.
    sun = world.light
    towards_sun = sun.sun[face]
    lit = np.where(np.take_along_axis(d, face[:, None], axis=1)[:, 0] > 0, -towards_sun,
                   towards_sun)
    light = np.float32(sun.ambient) + np.float32(sun.sun_strength) * np.maximum(lit, 0.0)
    keep = np.exp(-dist * rays.length.ravel()[solid]
                  / np.float32(sun.haze_distance))[:, None]
    rgb = np.empty((len(flat_hit), 3), dtype=np.float32)
    rgb[solid] = (colour * light[:, None]) * keep + sun.haze * (1 - keep)
    rgb[sky] = _sky(dirs[sky], sun, world.seed)
    image = np.clip(rgb * np.float32(255.0 * sun.exposure) + 0.5, 0, 255)
    image = image.astype(np.uint8).reshape(*t.shape, 3)
    return image, t


def _scan(world: _World, lo: np.ndarray, hi: np.ndarray, origin: np.ndarray, rays: _Rays,
          local: np.ndarray, column_azimuth: np.ndarray) -> np.ndarray:
    """
    Cast the 64 beams.

    Returns (N, 4) float32 points ``x y z reflectance`` in the Velodyne frame, reflectance
    being the albedo's luminance.
    """
    t, hit, axis = _trace(origin, rays, lo, hi, _lidar_regions(lo, hi, origin, column_azimuth))
    returned = np.nonzero((hit.ravel() != _SKY) & (t.ravel() <= LIDAR_RANGE))[0]
    dist = t.ravel()[returned]
    world_points = origin.astype(np.float32) + dist[:, None] * rays.dirs.reshape(-1, 3)[returned]
    colour = _albedo(world, lo, hi, world_points, hit.ravel()[returned], axis.ravel()[returned])
    reflectance = colour @ np.array([0.30, 0.59, 0.11], dtype=np.float32)
    # The hit in Velodyne coordinates is the beam's own direction scaled by the distance.
    xyz = dist[:, None].astype(np.float64) * local.reshape(-1, 3)[returned]
    return np.column_stack([xyz, np.clip(reflectance, 0.0, 1.0)]).astype(np.float32)


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


def _trajectory(rng: np.random.Generator, frames: int,
                stationary: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Return frame times (s from the first frame), positions along the road (m) and speeds (m/s).

    ``stationary`` frames at standstill, then cruising at 6..12 m/s with a gentle speed
    wobble (ramping up over 4 frames after a standstill).
    """
    cruise = rng.uniform(6.0, 12.0)
    gaps = FRAME_PERIOD + rng.uniform(-5e-4, 5e-4, frames)
    times = np.concatenate([[0.0], np.cumsum(gaps[1:])])
    k = np.arange(frames)
    ramp = np.clip((k - stationary + 1) / 4.0, 0.0, 1.0) if stationary else np.ones(frames)
    speeds = cruise * ramp * (1.0 + 0.04 * np.sin(0.3 * k + rng.uniform(0, 2 * np.pi)))
    speeds[:stationary] = 0.0
    steps = 0.5 * (speeds[1:] + speeds[:-1]) * np.diff(times)
    return times, np.concatenate([[0.0], np.cumsum(steps)]), speeds


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
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(line + '\n' for line in lines), encoding='utf-8')


def _write_png(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1])):
        raise OSError(f'{path}: cannot write PNG')


@dataclass(frozen=True)
class _Drive:
    """A drive's motion (frame times, positions along the road, speeds) and its world."""

    times: np.ndarray
    positions: np.ndarray
    speeds: np.ndarray
    world: _World


def _drive(name: str, frames: int, seed: int,
           stationary: int) -> tuple[_Drive, np.random.Generator]:
    """
    Return the motion and world of drive ``name`` (normalised) for ``seed``.

    Also returns the drive's random generator, ready for the OXTS packets and timestamps.
    """
    drive_seed = np.random.SeedSequence([seed, zlib.crc32(name.encode())])
    rng = np.random.default_rng(drive_seed)
    times, positions, speeds = _trajectory(rng, frames, stationary)
    world = _build_world(rng, -40.0, positions[-1] + rng.uniform(60.0, 90.0), times,
                         positions, speeds, int(drive_seed.generate_state(1)[0] & 0xFFFF))
    return _Drive(times=times, positions=positions, speeds=speeds, world=world), rng


def _write_drive(root: Path, name: str, frames: int, seed: int, size: tuple[int, int],
                 stationary: int, rig: _Rig, bar: tqdm) -> DriveInfo:
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
        bar.update(1)
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
                          focal: float | None = None) -> list[DriveInfo]:
    """
    Write synthetic drives in the KITTI raw layout under ``out_dir``.

    Deterministic: the same arguments give the same bytes. Each drive's world and motion
    depend on ``seed`` and the drive's name only.

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
    with tqdm(total=len(names) * frames, unit='frame', desc='synth',
              disable=None if progress else True, file=sys.stderr) as bar:
        return [_write_drive(root, name, frames, seed, (width, height), stationary, rig, bar)
                for name in names]


# ----------------------------------------------------------------------------- command line

class _Parser(argparse.ArgumentParser):
    """Argument parser whose errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> None:
        """Print ``<prog>: error: <message>`` as one line and exit with status 2."""
        self.exit(2, f'{self.prog}: error: {message}\n')


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'not an integer: {text!r}') from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be at least 1, got {value}')
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'not an integer: {text!r}') from None
    if value < 0:
        raise argparse.ArgumentTypeError(f'must be at least 0, got {value}')
    return value


def build_parser() -> argparse.ArgumentParser:
    """Build the parser of ``eigen-depth synth``."""
    parser = _Parser(prog='eigen-depth synth',
                     description='Write a synthetic driving world in the exact KITTI raw layout '
                                 '(calibration, image_02/03, velodyne_points, oxts) plus the '
                                 'dense true depth of image_02 (synthetic_depth_02/*.npy).')
    parser.add_argument('out_dir', metavar='OUT_DIR', help='KITTI raw root to write into')
    parser.add_argument('--drives', type=_positive, default=None,
                        help='number of drives (default: 2, or the number of --drive-names); '
                             'the first, fourth, ... are named like Eigen test drives')
    parser.add_argument('--frames', type=_positive, default=3,
                        help='frames per drive, at 10 Hz (default: %(default)s)')
    parser.add_argument('--seed', type=_non_negative, default=0,
                        help='random seed; same seed, same bytes (default: %(default)s)')
    parser.add_argument('--drive-names', nargs='+', metavar='NAME', default=None,
                        help='drive names such as 2011_09_26_drive_0002 or '
                             '2011_09_26/2011_09_26_drive_0002_sync')
    parser.add_argument('--width', type=_positive, default=DEFAULT_SIZE[0],
                        help='image width in pixels (default: %(default)s)')
    parser.add_argument('--height', type=_positive, default=DEFAULT_SIZE[1],
                        help='image height in pixels (default: %(default)s)')
    camera = parser.add_mutually_exclusive_group()
    camera.add_argument('--focal', type=float, default=None, metavar='PX',
                        help='focal length fx = fy of the cameras in pixels (default: '
                             "KITTI's field of view, 721.5377 x width / 1242); e.g. "
                             '--width 640 --height 480 --focal 525')
    camera.add_argument('--fov-scale', type=float, default=None, metavar='S',
                        help="field of view as a multiple of KITTI's: the focal length is "
                             'the default divided by S (0.6: a narrow camera)')
    parser.add_argument('--stationary', type=_non_negative, default=None,
                        help='frames at standstill at the start of each drive '
                             '(default: frames // 3, at most 3)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace existing drive folders instead of refusing')
    return parser


def main(argv: list[str] | None = None) -> int:
    """
    Run ``eigen-depth synth`` (the entry point).

    Returns the exit status (0 ok, 1 failure, 2 bad arguments).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    focal = args.focal
    if args.fov_scale is not None:
        if not (math.isfinite(args.fov_scale) and args.fov_scale > 0):
            print(f'{parser.prog}: error: --fov-scale must be positive, got {args.fov_scale}',
                  file=sys.stderr)
            return 2
        focal = default_focal(args.width) / args.fov_scale
    try:
        infos = write_synthetic_kitti(args.out_dir, drives=args.drives, frames=args.frames,
                                      seed=args.seed, drive_names=args.drive_names,
                                      size=(args.width, args.height),
                                      stationary=args.stationary, overwrite=args.overwrite,
                                      progress=True, focal=focal)
    except SynthError as exc:
        print(f'{parser.prog}: error: {exc}', file=sys.stderr)
        return 2
    except OSError as exc:
        print(f'{parser.prog}: error: {exc}', file=sys.stderr)
        return 1
    for info in infos:
        print(f'wrote {info.name}: {info.frames} frames '
              f'({len(info.stationary_frames)} stationary) in {info.path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

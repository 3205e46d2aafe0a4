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
Readers for the KITTI raw layout and the Velodyne-to-image ground truth of the Eigen protocol.

Everything here works on a KITTI raw root as downloaded (see ``docs/kitti.md``)::

    <root>/<date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt
    <root>/<date>/<date>_drive_NNNN_sync/image_02/data/%010d.png
    <root>/<date>/<date>_drive_NNNN_sync/velodyne_points/data/%010d.bin
    <root>/<date>/<date>_drive_NNNN_sync/oxts/data/%010d.txt

Malformed or missing files raise :class:`KittiFormatError` (a :class:`ValueError`) whose
message names the file (and, for calibration, the key).
"""
from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path
import re

import cv2
import numpy as np

PathLike = str | os.PathLike

#: Below this ground speed (m/s) a frame counts as stationary: at KITTI's 10 Hz the camera
#: then moves less than 5 cm between frames, so the frame repeats its neighbour.
STATIONARY_SPEED = 0.5

#: The 30 values of one OXTS packet, in file order (``oxts/dataformat.txt``).
OXTS_FIELDS: tuple[str, ...] = (
    'lat', 'lon', 'alt', 'roll', 'pitch', 'yaw', 'vn', 've', 'vf', 'vl', 'vu',
    'ax', 'ay', 'az', 'af', 'al', 'au', 'wx', 'wy', 'wz', 'wf', 'wl', 'wu',
    'pos_accuracy', 'vel_accuracy', 'navstat', 'numsats', 'posmode', 'velmode', 'orimode')

_DRIVE_RE = re.compile(r'^(?:(\d{4}_\d{2}_\d{2})/)?((\d{4}_\d{2}_\d{2})_drive_\d{4})(_sync)?$')
_FRAME_RE = re.compile(r'^\d{10}$')


class KittiFormatError(ValueError):
    """A KITTI file or folder is missing, unreadable or malformed; the message names it."""


def normalise_drive(drive: str) -> str:
    """
    Return the canonical ``<date>/<date>_drive_NNNN_sync`` name of a drive.

    Accepted spellings: ``2011_09_26_drive_0002_sync``, ``2011_09_26_drive_0002`` and
    ``2011_09_26/2011_09_26_drive_0002_sync`` (the form of the split files).

    :raises ValueError: the name is none of these, or its date prefix disagrees.
    """
    match = _DRIVE_RE.match(drive.strip().strip('/'))
    if match is None or (match[1] is not None and match[1] != match[3]):
        raise ValueError(f'bad drive name {drive!r}: expected e.g. '
                         "'2011_09_26/2011_09_26_drive_0002_sync'")
    return f'{match[3]}/{match[2]}_sync'


def drive_dir(root: PathLike, drive: str) -> Path:
    """Folder of ``drive`` (any spelling :func:`normalise_drive` accepts) under ``root``."""
    return Path(root) / normalise_drive(drive)


def frame_path(root: PathLike, drive: str, sensor: str, frame: int) -> Path:
    """
    Return the path of one frame's file.

    ``sensor`` is ``image_00`` .. ``image_03`` (``.png``), ``velodyne_points`` (``.bin``) or
    ``oxts`` (``.txt``).
    """
    suffix = {'velodyne_points': '.bin', 'oxts': '.txt'}.get(sensor, '.png')
    return drive_dir(root, drive) / sensor / 'data' / f'{frame:010d}{suffix}'


def read_calib_file(path: PathLike) -> dict[str, np.ndarray]:
    """
    Read a KITTI calibration file of ``key: v1 v2 ...`` lines.

    Numeric values come back as flat float64 arrays. Values that are text (``calib_time:
    09-Jan-2012 13:57:47``) are left out, so every value of the result is numeric. Blank
    lines are ignored.

    :raises KittiFormatError: the file is missing or unreadable, a line has no ``:``, or a
        value mixes numbers and text (a damaged line); the message names the file and line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding='utf-8')
    except (OSError, UnicodeDecodeError) as exc:
        raise KittiFormatError(f'{path}: cannot read calibration file ({exc})') from exc
    values: dict[str, np.ndarray] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, rest = line.partition(':')
        if not sep or not key.strip():
            raise KittiFormatError(f'{path}:{lineno}: expected "key: values", got {line!r}')
        tokens = rest.split()
        numbers = [_to_float(t) for t in tokens]
        if tokens and all(n is None for n in numbers):
            continue
        if any(n is None for n in numbers):
            raise KittiFormatError(f'{path}:{lineno}: value of {key.strip()!r} mixes numbers '
                                   f'and text: {rest.strip()!r}')
        values[key.strip()] = np.array(numbers, dtype=np.float64)
    return values


def _to_float(token: str) -> float | None:
    try:
        return float(token)
    except ValueError:
        return None


def _calib_value(values: dict[str, np.ndarray], path: Path, key: str,
                 shape: tuple[int, ...]) -> np.ndarray:
    if key not in values:
        raise KittiFormatError(f'{path}: missing key {key!r}')
    value = values[key]
    if value.size != int(np.prod(shape)) or not np.all(np.isfinite(value)):
        raise KittiFormatError(f'{path}: key {key!r} needs {int(np.prod(shape))} finite '
                               f'numbers, got {value.size}')
    return value.reshape(shape)


@dataclass(frozen=True, eq=False)
class Calibration:
    """
    Everything needed to project a Velodyne scan into rectified camera ``cam``.

    :ivar cam: camera index 0..3 (2 is the left colour camera, 3 the right one).
    :ivar P_rect: ``P_rect_0<cam>`` (3x4), rectified camera matrix; for ``cam == 2`` this is
        the ``P_rect_02`` of the protocol.
    :ivar R_rect_00: rectifying rotation of camera 0 (3x3).
    :ivar velo_to_cam: ``[R|T]`` of ``calib_velo_to_cam.txt`` as a 4x4 matrix (Velodyne to
        unrectified camera 0).
    :ivar image_size: ``(width, height)`` of the rectified image, from ``S_rect_0<cam>``.
    """

    cam: int
    P_rect: np.ndarray
    R_rect_00: np.ndarray
    velo_to_cam: np.ndarray
    image_size: tuple[int, int]

    @property
    def velo_to_image(self) -> np.ndarray:
        r"""
        Return the 3x4 Velodyne-to-image projection matrix.

        :math:`M = P_{rect} \, R_{rect,00} \, [R|T]_{velo \to cam}` (``R_rect_00`` padded to
        4x4); a Velodyne point :math:`X` lands at :math:`(u, v) = (M X)_{0,1} / (M X)_2` in
        1-based pixel coordinates.
        """
        rect = np.eye(4)
        rect[:3, :3] = self.R_rect_00
        return self.P_rect @ rect @ self.velo_to_cam


def load_calibration(calib_dir: PathLike, cam: int = 2) -> Calibration:
    """
    Read ``calib_cam_to_cam.txt`` and ``calib_velo_to_cam.txt`` of a date folder.

    :param calib_dir: the ``<root>/<date>`` folder holding both files.
    :param cam: rectified camera to project into, 0..3.
    :raises KittiFormatError: a file or key is missing or malformed; the message names the
        file and the key.
    :raises ValueError: ``cam`` is not 0..3.
    """
    if cam not in (0, 1, 2, 3):
        raise ValueError(f'camera index must be 0..3, got {cam!r}')
    cam_file = Path(calib_dir) / 'calib_cam_to_cam.txt'
    velo_file = Path(calib_dir) / 'calib_velo_to_cam.txt'
    cam_values = read_calib_file(cam_file)
    velo_values = read_calib_file(velo_file)
    size = _calib_value(cam_values, cam_file, f'S_rect_0{cam}', (2,))
    if np.any(size < 1) or np.any(size != np.round(size)):
        raise KittiFormatError(f'{cam_file}: key S_rect_0{cam} must hold two positive '
                               f'integers, got {size.tolist()}')
    velo_to_cam = np.eye(4)
    velo_to_cam[:3, :3] = _calib_value(velo_values, velo_file, 'R', (3, 3))
    velo_to_cam[:3, 3] = _calib_value(velo_values, velo_file, 'T', (3,))
    return Calibration(cam=cam,
                       P_rect=_calib_value(cam_values, cam_file, f'P_rect_0{cam}', (3, 4)),
                       R_rect_00=_calib_value(cam_values, cam_file, 'R_rect_00', (3, 3)),
                       velo_to_cam=velo_to_cam,
                       image_size=(int(size[0]), int(size[1])))


def load_velodyne_points(path: PathLike) -> np.ndarray:
    """
    Read a Velodyne scan.

    The file holds float32 records of ``x y z reflectance`` (x forward, y left, z up,
    metres).

    :returns: (N, 4) float32 array.
    :raises KittiFormatError: the file is missing, empty, or its size is not a multiple of
        16 bytes.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise KittiFormatError(f'{path}: cannot read Velodyne scan ({exc})') from exc
    if not raw or len(raw) % 16:
        raise KittiFormatError(f'{path}: corrupt Velodyne scan: {len(raw)} bytes is not a '
                               'positive multiple of 16 (4 float32 per point)')
    return np.frombuffer(raw, dtype='<f4').reshape(-1, 4).astype(np.float32)


def velodyne_depth_map(points: np.ndarray, calib: Calibration) -> np.ndarray:
    r"""
    Project a Velodyne scan into a sparse depth map following the Eigen protocol.

    Points with :math:`x > 0` are projected with
    :math:`M = P_{rect} \, R_{rect,00} \, [R|T]_{velo \to cam}`; point :math:`X` goes to
    column :math:`\mathrm{round}(u) - 1` and row :math:`\mathrm{round}(v) - 1` where
    :math:`(u, v, 1) \propto M X` (KITTI devkit convention; ``np.round``, so exact halves go
    to the even integer). Points outside the ``S_rect`` image are dropped, and so are points
    behind the camera (:math:`(M X)_2 \le 0`; a guard that never fires on real scans since
    the camera is only 0.27 m ahead of the Velodyne). Where several points land on one pixel
    the nearest is kept. The depth is the Velodyne forward distance :math:`x`.

    :param points: (N, 3+) array, columns x y z [reflectance ...].
    :returns: (height, width) float32 metres, 0 where no point lands.
    """
    width, height = calib.image_size
    points = np.asarray(points)
    xyz = points[points[:, 0] > 0, :3].astype(np.float64)
    proj = np.column_stack([xyz, np.ones(len(xyz))]) @ calib.velo_to_image.T
    ahead = proj[:, 2] > 0
    proj, depth = proj[ahead], xyz[ahead, 0]
    col = np.round(proj[:, 0] / proj[:, 2]) - 1
    row = np.round(proj[:, 1] / proj[:, 2]) - 1
    inside = (col >= 0) & (row >= 0) & (col < width) & (row < height)
    index = row[inside].astype(np.int64) * width + col[inside].astype(np.int64)
    depth = depth[inside]
    order = np.lexsort((depth, index))
    index, depth = index[order], depth[order]
    first = np.ones(len(index), dtype=bool)
    first[1:] = index[1:] != index[:-1]
    out = np.zeros(height * width, dtype=np.float32)
    out[index[first]] = depth[first]
    return out.reshape(height, width)


def generate_depth_map(calib_dir: PathLike, velo_path: PathLike, cam: int = 2) -> np.ndarray:
    """
    Return the ground-truth depth of one frame.

    This is the scan ``velo_path`` projected into camera ``cam`` with the calibration of
    ``calib_dir`` (see :func:`velodyne_depth_map`).

    :returns: (height, width) float32 metres (Velodyne forward distance), 0 where no point
        lands; the size comes from ``S_rect_0<cam>``.
    :raises KittiFormatError: a calibration file, key or the scan is missing or malformed.
    """
    return velodyne_depth_map(load_velodyne_points(velo_path), load_calibration(calib_dir, cam))


def read_image(path: PathLike) -> np.ndarray:
    """
    Read a KITTI image as RGB uint8 (H, W, 3); grey images are repeated to 3 channels.

    :raises KittiFormatError: the file is missing or cannot be decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise KittiFormatError(f'{path}: image not found')
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise KittiFormatError(f'{path}: cannot decode image (corrupt or not an image)')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_oxts_packet(path: PathLike) -> dict[str, float]:
    """
    Read one ``oxts/data/%010d.txt`` file: its 30 numbers keyed by :data:`OXTS_FIELDS`.

    :raises KittiFormatError: the file is missing or does not hold exactly 30 numbers.
    """
    path = Path(path)
    try:
        tokens = path.read_text(encoding='utf-8').split()
        numbers = [float(t) for t in tokens]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise KittiFormatError(f'{path}: cannot read OXTS packet ({exc})') from exc
    if len(numbers) != len(OXTS_FIELDS):
        raise KittiFormatError(f'{path}: an OXTS packet has {len(OXTS_FIELDS)} values, '
                               f'found {len(numbers)}')
    return dict(zip(OXTS_FIELDS, numbers))


def read_oxts_speed(path: PathLike) -> float:
    r"""
    Return the ground speed (m/s) of one OXTS packet.

    The speed is :math:`\sqrt{v_n^2 + v_e^2}` (north and east velocity), which equals
    :math:`|v_f|` when the car drives without side slip and, unlike ``vf``, is never
    negative when reversing.

    :raises KittiFormatError: see :func:`read_oxts_packet`.
    """
    packet = read_oxts_packet(path)
    return float(np.hypot(packet['vn'], packet['ve']))


def is_stationary(oxts_path: PathLike, threshold: float = STATIONARY_SPEED) -> bool:
    """
    Return whether the car stands still in this frame.

    That is, whether its ground speed is below ``threshold`` m/s (default
    :data:`STATIONARY_SPEED`, 0.5 m/s).

    :raises KittiFormatError: see :func:`read_oxts_packet`.
    """
    return read_oxts_speed(oxts_path) < threshold


@dataclass(frozen=True)
class DriveFrameIndex:
    """
    The usable frames of one drive for one camera, and what was left out and why.

    :ivar drive: canonical ``<date>/<date>_drive_NNNN_sync`` name.
    :ivar cam: the camera whose images were listed (2 left, 3 right).
    :ivar frames: ids with both an image and a Velodyne scan (minus stationary frames when
        these were skipped), ascending.
    :ivar missing_image: ids with a scan but no image.
    :ivar missing_velodyne: ids with an image but no scan.
    :ivar stationary: ids skipped because the car stood still.
    :ivar missing_oxts: ids kept although their OXTS packet is missing (stationarity unknown).
    """

    drive: str
    cam: int
    frames: tuple[int, ...]
    missing_image: tuple[int, ...] = ()
    missing_velodyne: tuple[int, ...] = ()
    stationary: tuple[int, ...] = ()
    missing_oxts: tuple[int, ...] = ()

    def summary(self) -> str:
        """One line for logs, e.g. ``<drive> image_02: 95 frames, 2 without a scan``."""
        parts = [f'{len(self.frames)} frames']
        for count, what in ((len(self.missing_image), 'without an image'),
                            (len(self.missing_velodyne), 'without a scan'),
                            (len(self.stationary), 'stationary skipped'),
                            (len(self.missing_oxts), 'without OXTS')):
            if count:
                parts.append(f'{count} {what}')
        return f'{self.drive} image_0{self.cam}: ' + ', '.join(parts)


def _frame_ids(folder: Path, suffix: str) -> set[int]:
    if not folder.is_dir():
        return set()
    return {int(p.stem) for p in folder.iterdir()
            if p.suffix == suffix and _FRAME_RE.match(p.stem)}


def list_drive_frames(root: PathLike, drive: str, cam: int = 2,
                      skip_stationary: bool = False,
                      threshold: float = STATIONARY_SPEED) -> DriveFrameIndex:
    """
    Index the frames of one drive that have both an ``image_0<cam>`` PNG and a scan.

    The scan is the Velodyne scan; frames lacking either are left out and reported.

    :param root: KITTI raw root.
    :param drive: drive name in any spelling :func:`normalise_drive` accepts.
    :param cam: camera whose images are required (2 or 3 for the colour cameras).
    :param skip_stationary: also leave out frames whose OXTS ground speed is below
        ``threshold`` (frames without an OXTS packet are kept and reported).
    :raises KittiFormatError: the drive folder does not exist.
    :raises ValueError: bad drive name or camera index.
    """
    if cam not in (0, 1, 2, 3):
        raise ValueError(f'camera index must be 0..3, got {cam!r}')
    name = normalise_drive(drive)
    folder = Path(root) / name
    if not folder.is_dir():
        raise KittiFormatError(f'{folder}: drive folder not found')
    images = _frame_ids(folder / f'image_0{cam}' / 'data', '.png')
    scans = _frame_ids(folder / 'velodyne_points' / 'data', '.bin')
    both = sorted(images & scans)
    stationary: list[int] = []
    missing_oxts: list[int] = []
    if skip_stationary:
        for frame in both:
            oxts = frame_path(root, name, 'oxts', frame)
            if not oxts.is_file():
                missing_oxts.append(frame)
            elif is_stationary(oxts, threshold):
                stationary.append(frame)
    skipped = set(stationary)
    return DriveFrameIndex(drive=name, cam=cam,
                           frames=tuple(f for f in both if f not in skipped),
                           missing_image=tuple(sorted(scans - images)),
                           missing_velodyne=tuple(sorted(images - scans)),
                           stationary=tuple(stationary), missing_oxts=tuple(missing_oxts))

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
The scene-level Eigen split of KITTI raw: test drives, split files, and train/val/test lists.

A split file holds one frame per line, ``<date>/<drive> <frame> <side>``, e.g.::

    2011_09_26/2011_09_26_drive_0002_sync 0000000069 l

where side ``l`` is the left colour camera (``image_02``) and ``r`` the right one
(``image_03``). Frames of the 28 Eigen test drives (:data:`EIGEN_TEST_DRIVES`) never enter
the training or validation lists, and validation holds out whole drives as well.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
import random
import re
import sys

import numpy as np

from .kitti import DriveFrameIndex, frame_path, list_drive_frames, normalise_drive, PathLike

_TEST_DRIVE_NUMBERS = {
    '2011_09_26': (2, 9, 13, 20, 23, 27, 29, 36, 46, 48, 52, 56, 59, 64, 84, 86, 93, 96, 101,
                   106, 117),
    '2011_09_28': (2,),
    '2011_09_29': (71,),
    '2011_09_30': (16, 18, 27),
    '2011_10_03': (27, 47),
}

#: The 28 drives of the Eigen test split, as ``<date>/<date>_drive_NNNN_sync``.
EIGEN_TEST_DRIVES: tuple[str, ...] = tuple(
    f'{date}/{date}_drive_{number:04d}_sync'
    for date, numbers in _TEST_DRIVE_NUMBERS.items() for number in numbers)

#: Camera index of each side letter of a split line.
SIDE_CAMERA = {'l': 2, 'r': 3}

_DATE_DIR_RE = re.compile(r'^\d{4}_\d{2}_\d{2}$')
_FRAME_TOKEN_RE = re.compile(r'^\d{1,10}$')


class SplitError(ValueError):
    """A split cannot be read, written or built; the message says which file, line or drives."""


@dataclass(frozen=True, order=True)
class SplitEntry:
    """
    One frame of a split.

    :ivar drive: canonical ``<date>/<date>_drive_NNNN_sync`` name.
    :ivar frame: frame index (the number in ``data/%010d.png``).
    :ivar side: ``'l'`` (``image_02``) or ``'r'`` (``image_03``).
    """

    drive: str
    frame: int
    side: str = 'l'

    def __post_init__(self) -> None:
        try:
            canonical = normalise_drive(self.drive)
        except ValueError as exc:
            raise SplitError(str(exc)) from exc
        if canonical != self.drive:
            object.__setattr__(self, 'drive', canonical)
        if not 0 <= self.frame < 10 ** 10:
            raise SplitError(f'frame index must be 0..9999999999, got {self.frame}')
        if self.side not in SIDE_CAMERA:
            raise SplitError(f"side must be 'l' or 'r', got {self.side!r}")

    @property
    def date(self) -> str:
        """Return the date folder, e.g. ``2011_09_26``."""
        return self.drive.split('/')[0]

    @property
    def cam(self) -> int:
        """Camera index of the side: 2 for ``l``, 3 for ``r``."""
        return SIDE_CAMERA[self.side]

    def line(self) -> str:
        """
        Return the split-file line.

        E.g. ``2011_09_26/2011_09_26_drive_0002_sync 0000000069 l``.
        """
        return f'{self.drive} {self.frame:010d} {self.side}'

    def image_path(self, root: PathLike) -> Path:
        """Return the frame's PNG under the KITTI root ``root``."""
        return frame_path(root, self.drive, f'image_0{self.cam}', self.frame)

    def velodyne_path(self, root: PathLike) -> Path:
        """Return the frame's Velodyne scan under ``root``."""
        return frame_path(root, self.drive, 'velodyne_points', self.frame)

    def calib_dir(self, root: PathLike) -> Path:
        """Return the date folder holding the calibration files of the frame."""
        return Path(root) / self.date


def parse_split_line(line: str, source: str = '<split>', lineno: int = 1) -> SplitEntry:
    """
    Parse one ``<date>/<drive> <frame> <side>`` line.

    :raises SplitError: the line is malformed; the message names ``source`` and ``lineno``.
    """
    tokens = line.split()
    if len(tokens) != 3 or not _FRAME_TOKEN_RE.match(tokens[1]):
        raise SplitError(f'{source}:{lineno}: expected "<date>/<drive> <frame> <l|r>", '
                         f'got {line.strip()!r}')
    try:
        return SplitEntry(tokens[0], int(tokens[1]), tokens[2])
    except SplitError as exc:
        raise SplitError(f'{source}:{lineno}: {exc}') from exc


def read_split_file(path: PathLike) -> list[SplitEntry]:
    """
    Read a split file; blank lines are ignored.

    :raises SplitError: the file is missing, a line is malformed, or it lists no frame.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding='utf-8')
    except (OSError, UnicodeDecodeError) as exc:
        raise SplitError(f'{path}: cannot read split file ({exc})') from exc
    entries = [parse_split_line(line, str(path), lineno)
               for lineno, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not entries:
        raise SplitError(f'{path}: split file lists no frame')
    return entries


def evenly_spread(count: int, limit: int) -> list[int]:
    """
    Return the indices of at most ``limit`` of ``count`` items, evenly spread and sorted.

    All of ``range(count)`` when ``limit <= 0`` or ``limit >= count``; else the rounded
    points of ``linspace(0, count - 1, limit)``, first and last item included.
    """
    if limit <= 0 or limit >= count:
        return list(range(count))
    return sorted({int(i) for i in np.linspace(0, count - 1, limit).round()})


def write_split_file(path: PathLike, entries: list[SplitEntry] | tuple[SplitEntry, ...]) -> Path:
    """
    Write ``entries`` one line each, in the given order; parent folders are created.

    :raises SplitError: ``entries`` is empty.
    """
    path = Path(path)
    if not entries:
        raise SplitError(f'{path}: refusing to write an empty split')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(entry.line() + '\n' for entry in entries), encoding='utf-8')
    return path


def discover_drives(root: PathLike) -> list[str]:
    """
    All ``<date>/<date>_drive_NNNN_sync`` folders under a KITTI raw root, sorted.

    :raises SplitError: ``root`` is not a folder or holds no drive.
    """
    root = Path(root)
    if not root.is_dir():
        raise SplitError(f'{root}: KITTI root not found')
    drives = []
    for date_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if not _DATE_DIR_RE.match(date_dir.name):
            continue
        for folder in sorted(p for p in date_dir.iterdir() if p.is_dir()):
            try:
                name = normalise_drive(f'{date_dir.name}/{folder.name}')
            except ValueError:
                continue
            if name == f'{date_dir.name}/{folder.name}':
                drives.append(name)
    if not drives:
        raise SplitError(f'{root}: no <date>/<date>_drive_NNNN_sync folder found')
    return drives


def check_drives_present(root: PathLike, drives: list[str] | tuple[str, ...]) -> None:
    """
    Check that every drive folder exists under ``root``.

    :raises SplitError: listing every absent drive.
    """
    names = {normalise_drive(d) for d in drives}
    absent = sorted(d for d in names if not (Path(root) / d).is_dir())
    if absent:
        raise SplitError(f'{root}: {len(absent)} drive(s) absent: {", ".join(absent)}')


def check_scene_separation(train: list[SplitEntry] | tuple[SplitEntry, ...],
                           test: list[SplitEntry] | tuple[SplitEntry, ...] = ()) -> None:
    """
    Check that no training frame comes from a test drive.

    A test drive is an Eigen test drive or a drive of ``test``.

    :raises SplitError: listing the offending drives.
    """
    forbidden = set(EIGEN_TEST_DRIVES) | {e.drive for e in test}
    shared = sorted({e.drive for e in train} & forbidden)
    if shared:
        raise SplitError(f'training frames from test drive(s): {", ".join(shared)}')


@dataclass(frozen=True)
class EigenSplit:
    """
    Train, validation and test frames of a KITTI root, separated by drive.

    :ivar train: frames of non-test drives minus the validation drives (sides as requested).
    :ivar val: left-camera frames of the validation drives.
    :ivar test: left-camera frames of the Eigen test drives present under the root.
    :ivar val_drives: the drives held out for validation.
    :ivar indexes: one :class:`DriveFrameIndex` per drive and camera listed, with the frames
        left out (missing image or scan, stationary) for reporting.
    """

    train: tuple[SplitEntry, ...]
    val: tuple[SplitEntry, ...]
    test: tuple[SplitEntry, ...]
    val_drives: tuple[str, ...]
    indexes: tuple[DriveFrameIndex, ...]

    def write(self, out_dir: PathLike) -> list[Path]:
        """
        Write the split files into ``out_dir`` and return the paths written.

        The files are ``train_files.txt``, ``val_files.txt`` (only when validation is not
        empty) and ``test_files.txt``.
        """
        out_dir = Path(out_dir)
        return [write_split_file(out_dir / f'{name}_files.txt', entries)
                for name, entries in (('train', self.train), ('val', self.val),
                                      ('test', self.test)) if entries]


def _entries(index: DriveFrameIndex, side: str) -> list[SplitEntry]:
    return [SplitEntry(index.drive, frame, side) for frame in index.frames]


def build_eigen_split(root: PathLike, drives: list[str] | tuple[str, ...] | None = None,
                      val_fraction: float = 0.1, seed: int = 0, skip_stationary: bool = True,
                      train_sides: tuple[str, ...] = ('l', 'r')) -> EigenSplit:
    """
    Build scene-separated train/val/test lists from the drives of a KITTI raw root.

    The test list is every usable left frame (image_02 and a scan present, not stationary
    when ``skip_stationary``) of the Eigen test drives among ``drives``. The other drives are
    shuffled with ``seed`` and ``round(val_fraction * n)`` of them (at least one when
    ``val_fraction > 0`` and at least two drives are available; none when only one is) go to
    validation; the rest are training drives, used with every side of ``train_sides``.

    :param drives: drives to use (any spelling); default every drive under ``root``.
    :raises SplitError: a requested drive is absent (all absent ones are listed), or the
        training or test list comes out empty.
    :raises ValueError: ``val_fraction`` outside [0, 1) or an unknown side.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f'val_fraction must be in [0, 1), got {val_fraction}')
    unknown = sorted(set(train_sides) - set(SIDE_CAMERA))
    if unknown or not train_sides:
        raise ValueError(f"train_sides must be a non-empty subset of ('l', 'r'), got "
                         f'{train_sides!r}')
    if drives is None:
        names = discover_drives(root)
    else:
        names = sorted({normalise_drive(d) for d in drives})
        check_drives_present(root, names)
    test_drives = [d for d in names if d in EIGEN_TEST_DRIVES]
    pool = [d for d in names if d not in EIGEN_TEST_DRIVES]
    n_val = round(val_fraction * len(pool))
    if val_fraction > 0 and len(pool) >= 2:
        n_val = min(max(n_val, 1), len(pool) - 1)
    else:
        n_val = 0
    shuffled = list(pool)
    random.Random(seed).shuffle(shuffled)
    val_drives = sorted(shuffled[:n_val])
    train_drives = sorted(shuffled[n_val:])

    indexes: list[DriveFrameIndex] = []

    def collect(drive_list: list[str], sides: tuple[str, ...]) -> tuple[SplitEntry, ...]:
        entries: list[SplitEntry] = []
        for drive in drive_list:
            for side in sides:
                index = list_drive_frames(root, drive, SIDE_CAMERA[side], skip_stationary)
                indexes.append(index)
                entries.extend(_entries(index, side))
        return tuple(sorted(entries))

    train = collect(train_drives, tuple(train_sides))
    val = collect(val_drives, ('l',))
    test = collect(test_drives, ('l',))
    if not test:
        raise SplitError(f'{root}: no usable test frame: none of the drives '
                         f'({len(names)}) is an Eigen test drive with images and scans')
    if not train:
        raise SplitError(f'{root}: no usable training frame among the non-test drives '
                         f'{train_drives or "(none)"}')
    check_scene_separation(train + val, test)
    return EigenSplit(train=train, val=val, test=test, val_drives=tuple(val_drives),
                      indexes=tuple(indexes))


def build_parser() -> argparse.ArgumentParser:
    """Build the parser of ``eigen-depth splits``."""
    parser = argparse.ArgumentParser(
        prog='eigen-depth splits',
        description='Write scene-separated train/val/test split files (Eigen split) for the '
                    'drives of a KITTI raw root.')
    parser.add_argument('root', type=Path, help='KITTI raw root')
    parser.add_argument('--out', type=Path, required=True,
                        help='folder for train_files.txt, val_files.txt, test_files.txt')
    parser.add_argument('--drives', nargs='+', default=None,
                        help='drives to use (default: every drive under the root)')
    parser.add_argument('--val-fraction', type=float, default=0.1,
                        help='share of the non-test drives held out (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the validation draw (default: %(default)s)')
    parser.add_argument('--keep-stationary', action='store_true',
                        help='keep frames where the car stands still')
    parser.add_argument('--left-only', action='store_true',
                        help='train on the left colour camera only (default: both)')
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``eigen-depth splits``: write the split files and say what was left out."""
    args = build_parser().parse_args(argv)
    try:
        split = build_eigen_split(args.root, args.drives, args.val_fraction, args.seed,
                                  skip_stationary=not args.keep_stationary,
                                  train_sides=('l',) if args.left_only else ('l', 'r'))
        paths = split.write(args.out)
    except (ValueError, OSError) as exc:
        print(f'eigen-depth splits: error: {exc}', file=sys.stderr)
        return 1
    for index in split.indexes:
        print(index.summary())
    print(f'{len(split.train)} train, {len(split.val)} val, {len(split.test)} test frames; '
          f'wrote {", ".join(str(p) for p in paths)}')
    return 0

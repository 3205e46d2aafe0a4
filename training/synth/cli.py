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

"""The ``eigen-depth synth`` command line."""
from __future__ import annotations

import argparse
import math
import sys

from .layout import default_focal, DEFAULT_SIZE, SynthError, write_synthetic_kitti


class _Parser(argparse.ArgumentParser):
    """Argument parser whose errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> None:
        """Print ``<prog>: error: <message>`` as one line and exit with status 2."""
        self.exit(2, f'{self.prog}: error: {message}\n')


def build_parser() -> argparse.ArgumentParser:
    """Build the parser of ``eigen-depth synth``."""
    # Imported here, not with the module: ..options imports torch (seconds), which neither
    # the world's writer nor its worker processes need.
    from ..options import _non_negative_int, _positive_int

    parser = _Parser(prog='eigen-depth synth',
                     description='Write a synthetic driving world in the exact KITTI raw layout '
                                 '(calibration, image_02/03, velodyne_points, oxts) plus the '
                                 'dense true depth of image_02 (synthetic_depth_02/*.npy).')
    parser.add_argument('out_dir', metavar='OUT_DIR', help='KITTI raw root to write into')
    parser.add_argument('--drives', type=_positive_int, default=None,
                        help='number of drives (default: 2, or the number of --drive-names); '
                             'the first, fourth, ... are named like Eigen test drives')
    parser.add_argument('--frames', type=_positive_int, default=3,
                        help='frames per drive, at 10 Hz (default: %(default)s)')
    parser.add_argument('--seed', type=_non_negative_int, default=0,
                        help='random seed; same seed, same bytes (default: %(default)s)')
    parser.add_argument('--drive-names', nargs='+', metavar='NAME', default=None,
                        help='drive names such as 2011_09_26_drive_0002 or '
                             '2011_09_26/2011_09_26_drive_0002_sync')
    parser.add_argument('--width', type=_positive_int, default=DEFAULT_SIZE[0],
                        help='image width in pixels (default: %(default)s)')
    parser.add_argument('--height', type=_positive_int, default=DEFAULT_SIZE[1],
                        help='image height in pixels (default: %(default)s)')
    camera = parser.add_mutually_exclusive_group()
    camera.add_argument('--focal', type=float, default=None, metavar='PX',
                        help='focal length fx = fy of the cameras in pixels (default: '
                             "KITTI's field of view, 721.5377 x width / 1242); e.g. "
                             '--width 640 --height 480 --focal 525')
    camera.add_argument('--fov-scale', type=float, default=None, metavar='S',
                        help="field of view as a multiple of KITTI's: the focal length is "
                             'the default divided by S (0.6: a narrow camera)')
    parser.add_argument('--stationary', type=_non_negative_int, default=None,
                        help='frames at standstill at the start of each drive '
                             '(default: frames // 3, at most 3)')
    parser.add_argument('--workers', type=_positive_int, default=1,
                        help='drives rendered at once, each in a process of its own; the '
                             'files are the same for any number (default: %(default)s)')
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
                                      progress=True, focal=focal, workers=args.workers)
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

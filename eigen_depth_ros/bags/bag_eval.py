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
``eigen-depth bag-eval``: evaluate depth predictions on a recorded ROS 2 bag.

Ground truth comes either from a LiDAR ``PointCloud2`` projected into the camera (through the
bag's TF tree, ``/tf_static`` and ``/tf`` at the image's stamp, or ``--lidar-to-camera``, and
the camera's ``CameraInfo``) or from a depth image topic (32FC1 metres or 16UC1 millimetres),
paired with each image by header stamp within ``--tolerance`` seconds; a bag cut off
mid-write is evaluated on the messages it still holds. Reading the bag and pairing are
:mod:`eigen_depth_ros.bags.ground_truth`; this module scores predictions against it and is
the command line.

Offline, the network runs in this process
(:class:`~eigen_depth_ros.core.inference.DepthEstimator`);
with ``--live`` the bag's images and camera infos are played over DDS into a real
``depth_node`` process (see :mod:`eigen_depth_ros.bags.live_playback`) and what it publishes is
evaluated the same way, adding end-to-end latency and dropped frames.

Both resample the network's output map to the camera image (border values extended, as the
KITTI protocol resizes predictions to the ground-truth size) and compute the Eigen metrics
per frame, averaged over frames, overall and per distance band.

Both also score obstacles the way a Nav2 obstacle layer uses a cloud
(:mod:`eigen_depth_ros.core.obstacles`): the bird's-eye cells holding points 0.3 to 2.5 m above
the road, within 10 and 20 m, summed over frames. The predicted cloud is the output map
back-projected one point per output pixel, as the node publishes it (offline), or the node's
own ``points`` (live); the true cloud is every LiDAR point in front of the camera, or the
ground-truth depth image back-projected, in the same image area.
"""
from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
import json
import math
from pathlib import Path
import sys
from typing import TYPE_CHECKING
import warnings

from eigen_depth_ros.core.checkpoint import CheckpointError
from eigen_depth_ros.core.geometry import InputGeometry
from eigen_depth_ros.core.metrics import (compute_depth_metrics, evaluate_depth, json_safe,
                                          mean_metrics, METRIC_NAMES)
from eigen_depth_ros.core.obstacles import (add_counts, DEFAULT_SPEC, flat_scores,
                                            KITTI_CAMERA_HEIGHT, match_cells, occupied_cells,
                                            points_from_depth, points_in_image_area,
                                            scores_from_counts, zero_counts)
from eigen_depth_ros.node.harness import HarnessError
import numpy as np
from tqdm import tqdm

from .bag_reader import first_line
from .ground_truth import BagEvalError, BagGroundTruth, Frame, parse_transform
from .live_playback import LiveRun

if TYPE_CHECKING:
    from eigen_depth_ros.core.inference import DepthEstimator

DISTANCE_BANDS = ((0.0, 10.0), (10.0, 20.0), (20.0, 40.0), (40.0, 80.0))
# A camera image must be at least this fraction of the network input in both directions:
# below it the resize would invent more than half of the pixels the network sees.
MIN_IMAGE_FRACTION = 0.5
MIN_POINT_DEPTH = 1e-3  # m; nearer LiDAR points are not projected (as project_to_depth_image)


@dataclass
class EvalReport:
    """What an evaluation found: per-frame metrics and what was skipped, and why."""

    frames: list[dict] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    bands: dict[str, list[dict]] = field(default_factory=dict)
    samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    obstacle_counts: dict[str, dict[str, int]] = field(default_factory=zero_counts)
    obstacle_frames: int = 0
    obstacle_skipped: Counter[str] = field(default_factory=Counter)

    def skip(self, reason: str) -> None:
        """Count a frame left out for ``reason``."""
        self.skipped[reason] += 1

    def add_obstacles(self, counts: dict[str, dict[str, int]]) -> None:
        """Add one frame's obstacle counts (``match_cells`` of :mod:`.core.obstacles`)."""
        self.obstacle_counts = add_counts(self.obstacle_counts, counts)
        self.obstacle_frames += 1

    def skip_obstacles(self, reason: str) -> None:
        """Count a frame with depth metrics but no obstacle counts, for ``reason``."""
        self.obstacle_skipped[reason] += 1

    def summary(self) -> dict:
        """JSON-ready aggregate (mean over frames), per band and per frame results."""
        if not self.frames:
            raise BagEvalError('no frame could be evaluated: ' + (
                ', '.join(f'{n} {why}' for why, n in self.skipped.items()) or 'bag is empty'))
        scores = scores_from_counts(self.obstacle_counts)
        return {
            'aggregate': {**mean_metrics(self.frames),
                          **json_safe(flat_scores(scores), digits=None)},
            'by_distance': {band: mean_metrics(rows) for band, rows in self.bands.items()
                            if rows},
            'frames_evaluated': len(self.frames),
            'skipped': dict(self.skipped),
            'obstacles': {
                'frames': self.obstacle_frames, 'skipped': dict(self.obstacle_skipped),
                'rule': asdict(DEFAULT_SPEC),
                'by_range': json_safe(scores, digits=None)},
            'per_frame': self.frames,
        }


def frame_metrics(pred_map: np.ndarray, geometry: InputGeometry, gt: np.ndarray,
                  report: EvalReport, stamp: int, args: argparse.Namespace,
                  rgb: np.ndarray, extra: dict | None = None) -> bool:
    """
    Metrics of one frame (overall and per distance band) added to ``report``.

    :return: False when the frame was skipped (no ground truth in range).
    """
    pred = geometry.output_to_image(pred_map, fill_outside=True)
    crop = None if args.crop == 'none' else args.crop
    try:
        metrics = evaluate_depth(pred, gt, args.min_depth, args.max_depth, crop,
                                 args.median_scaling)
    except ValueError:
        report.skip('no ground-truth pixel in range')
        return False
    metrics.update(stamp=stamp, **(extra or {}))
    report.frames.append(metrics)
    scaled = np.clip(pred * metrics['scale'], args.min_depth, args.max_depth)
    for low, high in DISTANCE_BANDS:
        band = (gt > low) & (gt <= min(high, args.max_depth))
        if band.any():
            report.bands.setdefault(f'{low:g}-{high:g} m', []).append(
                compute_depth_metrics(scaled, gt, band))
    if len(report.samples) < 3:
        report.samples.append((rgb, pred, gt))
    return True


def truth_points(frame: Frame, covered: np.ndarray) -> np.ndarray:
    """
    Return the true cloud of a frame inside the image area ``covered`` ((H, W) bool).

    For a LiDAR ground truth, every point in front of the camera whose nearest pixel is
    covered (not only the nearest point of each pixel); for a depth image, its covered
    pixels back-projected.

    :return: (N, 3) points in the camera optical frame, metres.
    """
    intrinsics = frame.intrinsics.pinhole
    if frame.lidar_points is None:
        return points_from_depth(np.where(covered, frame.depth, np.nan), *intrinsics)
    return points_in_image_area(frame.lidar_points, *intrinsics, covered, MIN_POINT_DEPTH)


def frame_obstacles(pred_map: np.ndarray, geometry: InputGeometry, frame: Frame,
                    report: EvalReport, camera_height: float,
                    pred_cells: np.ndarray | None) -> None:
    """
    Obstacle counts of one frame added to ``report``.

    Both clouds are limited to the image area the output map reaches (never the border
    extension the depth metrics use).

    :param pred_cells: the occupied cells of the node's own cloud (live), or None to take
        those of ``pred_map`` back-projected as the node's cloud is, one point per output
        pixel with the output map's intrinsics (offline). Not resampled to the camera size:
        bilinear interpolation across an object's edge invents floating points.
    """
    covered = np.isfinite(geometry.output_to_image(np.ones_like(pred_map)))
    if pred_cells is None:
        pred_points = points_from_depth(
            pred_map, *geometry.output_intrinsics(*frame.intrinsics.pinhole))
        pred_cells = occupied_cells(pred_points, camera_height, DEFAULT_SPEC)
    truth_cells = occupied_cells(truth_points(frame, covered), camera_height, DEFAULT_SPEC)
    report.add_obstacles(match_cells(pred_cells, truth_cells, DEFAULT_SPEC))


def evaluate_frames(source: BagGroundTruth, predict: Callable[[int, np.ndarray], tuple],
                    args: argparse.Namespace,
                    predicted_cells: Callable[[int], np.ndarray | None] | None = None
                    ) -> EvalReport:
    """
    Score ``predict(stamp, rgb) -> (output map in metres, geometry)`` on every frame.

    A predictor raising :class:`BagEvalError` has the frame skipped for that reason.

    :param args: bag-eval options (``crop``, ``min_depth``, ``max_depth``,
        ``median_scaling``, ``camera_height``).
    :param predicted_cells: ``predicted_cells(stamp)`` gives the occupied obstacle cells of
        the node's own cloud for that frame (live), None where it sent none; without it the
        cells come from the predicted depth (see :func:`frame_obstacles`).
    """
    report = EvalReport()
    for item in tqdm(source.frames(), total=source.image_count, desc='bag-eval', unit='frame'):
        if not isinstance(item, Frame):
            report.skip(item[1])
            continue
        try:
            pred_map, geometry = predict(item.stamp, item.rgb)
        except BagEvalError as exc:
            report.skip(str(exc).split(':')[0])
            continue
        if not frame_metrics(pred_map, geometry, item.depth, report, item.stamp, args,
                             item.rgb):
            continue
        pred_cells = predicted_cells(item.stamp) if predicted_cells else None
        if item.intrinsics is None:
            report.skip_obstacles('no camera_info')
        elif predicted_cells and pred_cells is None:
            report.skip_obstacles('no points from the node')
        else:
            frame_obstacles(pred_map, geometry, item, report, args.camera_height, pred_cells)
    return report


def live_predictor(live: LiveRun, estimator) -> Callable[[int, np.ndarray], tuple]:
    """
    Return a ``predict(stamp, rgb)`` that gives the node's depth for that frame.

    It returns the depth the node published and the geometry it used, for
    :func:`evaluate_frames`; a frame the node dropped raises :class:`BagEvalError`.
    """
    def predict(stamp: int, rgb: np.ndarray) -> tuple:
        if stamp not in live.depth:
            raise BagEvalError('dropped by the node')
        geometry = estimator.geometry(rgb.shape[1], rgb.shape[0])
        depth = live.depth[stamp]
        if depth.shape != tuple(reversed(geometry.output_size)):
            raise BagEvalError('node depth is not at the network resolution')
        return depth, geometry
    return predict


def check_image_size(width: int, height: int, geometry: InputGeometry) -> None:
    """Refuse images far smaller than the network input (see MIN_IMAGE_FRACTION)."""
    cfg = geometry.config
    if width < MIN_IMAGE_FRACTION * cfg.input_width or \
            height < MIN_IMAGE_FRACTION * cfg.input_height:
        raise BagEvalError(f'image too small for the network input '
                           f'{cfg.input_width}x{cfg.input_height}: {width}x{height}')


def build_parser() -> argparse.ArgumentParser:
    """Options of ``eigen-depth bag-eval``."""
    parser = argparse.ArgumentParser(
        prog='eigen-depth bag-eval',
        description='Evaluate a checkpoint on a recorded ROS 2 bag against LiDAR or depth '
                    'ground truth (Eigen metrics, JSON + PNG report).')
    parser.add_argument('bag', type=Path, help='bag folder or file (mcap, sqlite3, ROS 1)')
    parser.add_argument('--checkpoint', type=Path, required=True, help='model checkpoint')
    parser.add_argument('--image-topic', required=True,
                        help='sensor_msgs/Image or CompressedImage topic')
    parser.add_argument('--camera-info-topic', default=None,
                        help='sensor_msgs/CameraInfo topic (needed with --lidar-topic)')
    gt = parser.add_mutually_exclusive_group(required=True)
    gt.add_argument('--lidar-topic', help='PointCloud2 ground truth (projected into the camera)')
    gt.add_argument('--depth-topic', help='depth Image ground truth (32FC1 m or 16UC1 mm)')
    parser.add_argument('--lidar-to-camera', default=None, metavar='"x y z qx qy qz qw"',
                        help="camera <- LiDAR transform; default: the bag's TF tree "
                             '(/tf_static, and /tf at the image stamp)')
    parser.add_argument('--tolerance', type=float, default=0.05,
                        help='largest image / ground-truth / camera_info stamp difference, '
                             's; also how far /tf may be extrapolated '
                             '(default: %(default)s)')
    parser.add_argument('--min-depth', type=float, default=1e-3, help='m (default: %(default)s)')
    parser.add_argument('--max-depth', type=float, default=80.0,
                        help='cap of prediction and ground truth, m (default: %(default)s)')
    parser.add_argument('--crop', choices=('none', 'garg', 'eigen'), default='none',
                        help='evaluation crop (default: %(default)s)')
    parser.add_argument('--median-scaling', action='store_true',
                        help='scale each prediction by median(gt) / median(pred)')
    parser.add_argument('--camera-height', type=float, default=KITTI_CAMERA_HEIGHT,
                        help='camera height above the road for the obstacle metrics, m '
                             '(default: %(default)s, KITTI)')
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N')
    parser.add_argument('--backend', default='eager',
                        help="how the network's forward pass runs, offline and in the node "
                             '--live starts (its backend parameter): eager, int8, bf16_int8, '
                             "auto, ... (eigen_depth_ros.core.backends); 'auto' is resolved "
                             'once here and the node gets the resolved name, so both '
                             'evaluate the same network (default: %(default)s, float32)')
    parser.add_argument('--no-scale-by-focal', action='store_true',
                        help="offline: do not scale the network's depth by f_in / f_train "
                             '(the canonical-focal rule, on by default as in depth_node; '
                             "f_in from the frame's camera_info). --live: started as "
                             'scale_by_focal:=false')
    parser.add_argument('--live', action='store_true',
                        help='play the bag into a real depth_node over DDS and evaluate what '
                             'it publishes')
    parser.add_argument('--rate', type=float, default=1.0,
                        help='--live playback speed factor (default: %(default)s)')
    parser.add_argument('--record', type=Path, default=None,
                        help='--live: also record the node outputs into this bag (mcap)')
    parser.add_argument('--out', type=Path, required=True, help='output folder')
    return parser


def load_estimator(args: argparse.Namespace) -> DepthEstimator:
    """
    Load ``args.checkpoint`` on ``args.device`` with backend ``args.backend``.

    :return: the :class:`~eigen_depth_ros.core.inference.DepthEstimator`; its
        ``backend.name`` is the resolved backend (``auto`` made concrete), which ``--live``
        hands to the node.
    :raises BagEvalError: for a backend name the device cannot run.
    """
    from eigen_depth_ros.core.inference import DepthEstimator
    try:
        return DepthEstimator.from_checkpoint(args.checkpoint, device=args.device,
                                              backend=args.backend)
    except CheckpointError:
        raise
    except ValueError as exc:
        raise BagEvalError(f'--backend {args.backend!r}: {first_line(exc)}') from None


def run(args: argparse.Namespace) -> tuple[dict, LiveRun | None]:
    """
    Evaluate as ``args`` say; write ``metrics.json`` and ``report.png`` into ``args.out``.

    :return: the result written to ``metrics.json``, and with ``--live`` what the node
        published (:class:`~eigen_depth_ros.bags.live_playback.LiveRun`, else None).
    """
    from eigen_depth_ros.core.report import write_bag_report

    transform = parse_transform(args.lidar_to_camera) if args.lidar_to_camera else None
    for name in ('tolerance', 'rate'):
        if not getattr(args, name) > 0:
            raise BagEvalError(f'--{name} must be positive, got {getattr(args, name)}')
    if not (math.isfinite(args.camera_height) and args.camera_height > 0):
        raise BagEvalError(f'--camera-height must be a finite height above the road in '
                           f'metres, got {args.camera_height}')
    source = BagGroundTruth(args.bag, args.image_topic, args.camera_info_topic,
                            args.lidar_topic, args.depth_topic, transform, args.tolerance)
    scale_by_focal = not getattr(args, 'no_scale_by_focal', False)
    focal: dict = {'scale_by_focal': scale_by_focal, 'frames_scaled': 0}
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', '.*f_train', UserWarning)  # in the report
            estimator = load_estimator(args)
        focal.update(f_train=estimator.train_focal, f_train_note=estimator.train_focal_note)
        live, predicted_cells = None, None
        if args.live:
            from .live_playback import play_into_node
            live = play_into_node(source, args, backend=estimator.backend.name)
            predict, predicted_cells = live_predictor(live, estimator), live.obstacle_cells.get
        else:
            def predict(stamp: int, rgb: np.ndarray):
                check_image_size(rgb.shape[1], rgb.shape[0],
                                 estimator.geometry(rgb.shape[1], rgb.shape[0]))
                log_depth, geometry = estimator.predict_log(rgb)
                depth = np.exp(log_depth)
                # The node's rule: f_in from this frame's camera_info, none -> unscaled.
                info = (source.infos.for_image(stamp, source.tolerance_ns)[0]
                        if scale_by_focal and source.info_topic else None)
                if info is not None:
                    depth = depth * estimator.focal_scale(geometry, info.fx, info.fy)[0]
                    focal['frames_scaled'] += 1
                return depth, geometry
        report = evaluate_frames(source, predict, args, predicted_cells)
    finally:
        source.close()
    try:
        result = report.summary()
    except BagEvalError as exc:
        if source.reader.truncated:
            raise BagEvalError(f'{exc}; {"; ".join(source.notes)}') from None
        raise
    result['bag'] = source.bag_report()
    result['mode'] = 'live' if args.live else 'offline'
    result['backend'] = {'requested': args.backend, 'resolved': estimator.backend.name}
    result['focal'] = focal
    result['options'] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    if live is not None:
        result['live'] = live.statistics()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'metrics.json').write_text(json.dumps(result, indent=2))
    write_bag_report(args.out / 'report.png', report.samples, result)
    return result, live


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``eigen-depth bag-eval``."""
    args = build_parser().parse_args(argv)
    try:
        result, _ = run(args)
    except (BagEvalError, CheckpointError, HarnessError, OSError) as exc:
        print(f'eigen-depth bag-eval: error: {exc}', file=sys.stderr)
        return 1
    for note in result['bag']['notes']:
        print(f'eigen-depth bag-eval: warning: {note}', file=sys.stderr)
    focal = result['focal']
    print('canonical-focal rule: ' + (
        f'on (depth x f_in / f_train, f_train {focal["f_train"]:.1f} px, f_in from camera_info'
        + ('' if result['mode'] == 'live' else f', {focal["frames_scaled"]} frames scaled')
        + ')' if focal['scale_by_focal'] else 'off (--no-scale-by-focal)')
        + (f'; warning: {focal["f_train_note"]}' if focal['f_train_note'] else ''))
    backend = result['backend']
    print(f"backend: {backend['resolved']}" + (
        f" (--backend {backend['requested']})"
        if backend['requested'] != backend['resolved'] else '')
        + (', offline and in the node' if result['mode'] == 'live' else ''))
    agg = result['aggregate']
    print(' '.join(f'{k}={agg[k]:.4f}' for k in METRIC_NAMES))
    print(f'obstacles ({result["obstacles"]["frames"]} frames): ' + ' '.join(
        f'{k.removeprefix("obstacle_")}=' + ('n/a' if v is None else f'{v:.4f}')
        for k, v in agg.items() if k.startswith('obstacle_')))
    print(f'{result["frames_evaluated"]} frames evaluated, skipped: {result["skipped"] or 0}; '
          f'wrote {args.out / "metrics.json"} and {args.out / "report.png"}')
    return 0

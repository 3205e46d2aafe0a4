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
``eigen-depth eval``: a checkpoint (or a baseline) on KITTI raw, Eigen protocol, Table 2 layout.

For every frame of the split (``<date>/<drive> <frame> <l|r>`` lines, usually the 697-frame
Eigen test list):

1. the ground truth is the Velodyne scan projected into the frame's camera
   (:func:`~eigen_depth_training.kitti.velodyne_depth_map`, camera-image size);
2. the prediction is made on the single centre crop
   (:meth:`~eigen_depth_ros.core.inference.DepthEstimator.predict_log`), exponentiated, and
   resampled to the ground-truth size over the **whole** image, its border values
   extended (:meth:`~eigen_depth_ros.core.geometry.InputGeometry.output_to_image` with
   ``fill_outside=True``);
3. the metrics (:func:`~eigen_depth_ros.core.metrics.evaluate_depth`) are taken on ground-truth
   pixels in ``[min_depth, max_depth]`` (1e-3 .. 80 m, or 50 m) inside the Garg or Eigen
   crop, the prediction clipped to the same range, optionally median-scaled per image;
4. the per-image metrics are averaged over images;
5. the obstacle metrics (:mod:`eigen_depth_ros.core.obstacles`: the bird's-eye cells 0.3 to 2.5 m
   above the road that a Nav2 obstacle layer would mark, F1, recall and precision within
   10 m and 20 m) compare the prediction resampled **without** the border extension
   (``fill_outside=False``), back-projected with the frame's ``P_rect``, with the true
   cloud in the same image area: the synthetic world's dense true depth
   (``synthetic_depth_02``, left camera) where the drive has it, else every Velodyne point
   in front of the camera; the counts are summed over frames (micro-average).

A NaN in a prediction ends the evaluation with a one-line :class:`ValueError` before
anything is written.

Baselines, evaluated the same way: ``mean`` predicts for every image the per-pixel mean
depth map of the training frames on the output grid (cells never hit by LiDAR: the overall
mean), the paper's "mean" row; ``constant`` predicts the overall mean training depth
everywhere.

Written to ``--out``: ``metrics.json`` (every metric, aggregate and per image, the obstacle
counts and scores, the skipped frames and the options), ``examples.png`` (image, prediction,
ground truth and error of a few frames) and, printed, the paper's Table 2 rows beside ours
and the obstacle table.
"""
from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
import sys
from typing import Any, Callable

from eigen_depth_ros.core.checkpoint import CheckpointError
from eigen_depth_ros.core.geometry import InputGeometry
from eigen_depth_ros.core.metrics import (evaluate_depth, format_metric_table, json_safe,
                                          mean_metrics)
from eigen_depth_ros.core.model import EigenDepthConfig, resolve_config
from eigen_depth_ros.core.obstacles import (add_counts, cloud_obstacle_counts, flat_scores,
                                            KITTI_CAMERA_HEIGHT, points_from_depth,
                                            points_in_image_area, scores_from_counts, zero_counts)
import numpy as np

from .dataset import KittiDepthDataset, mean_depth_map
from .kitti import Calibration, drive_dir, KittiFormatError, load_velodyne_points, read_image
from .splits import evenly_spread, read_split_file, SplitEntry, SplitError
from .synth import SYNTHETIC_DEPTH_DIR

PathLike = str | os.PathLike

#: The paper's KITTI results (Table 2); the mean baseline row only reports two numbers.
PAPER_KITTI: dict[str, dict[str, float]] = {
    'paper: mean': {'a1': 0.556, 'a2': float('nan'), 'a3': float('nan'),
                    'abs_rel': float('nan'), 'sq_rel': float('nan'), 'rmse': 9.635,
                    'rmse_log': float('nan'), 'si_rmse_log': float('nan')},
    'paper: coarse': {'a1': 0.679, 'a2': 0.897, 'a3': 0.967, 'abs_rel': 0.194,
                      'sq_rel': 1.531, 'rmse': 7.216, 'rmse_log': 0.273,
                      'si_rmse_log': 0.248},
    'paper: coarse + fine': {'a1': 0.692, 'a2': 0.899, 'a3': 0.967, 'abs_rel': 0.190,
                             'sq_rel': 1.515, 'rmse': 7.156, 'rmse_log': 0.270,
                             'si_rmse_log': 0.246},
}

# A predictor maps an RGB image to (depth on the output grid in metres, its geometry).
Predictor = Callable[[np.ndarray], tuple[np.ndarray, InputGeometry]]


def network_predictors(checkpoint: PathLike, stages: tuple[str, ...] = ('fine',),
                       device: str = 'auto', scale_by_focal: bool = True,
                       focal: dict[str, Any] | None = None
                       ) -> tuple[dict[str, Predictor], EigenDepthConfig]:
    """
    Build predictors of a checkpoint's network (single centre crop), one per stage.

    A predictor takes ``(rgb, camera_focal)``: with ``scale_by_focal`` and a camera
    ``(fx, fy)``, the depth follows the canonical-focal rule as in the node
    (:meth:`~eigen_depth_ros.core.inference.DepthEstimator.focal_scale`).

    :param focal: filled with ``f_train`` and the checkpoint's ``f_train_note`` (None, or
        the warning of a checkpoint that records no f_train).
    :return: ``({stage: predictor}, the network's configuration)``.
    """
    import warnings

    from eigen_depth_ros.core.inference import DepthEstimator

    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', '.*f_train', UserWarning)  # in ``focal``
        estimator = DepthEstimator.from_checkpoint(checkpoint, device=device)
    if focal is not None:
        focal.update(f_train=estimator.train_focal, f_train_note=estimator.train_focal_note)

    def predictor(stage: str) -> Predictor:
        def predict(rgb: np.ndarray, camera_focal: tuple[float, float] | None = None
                    ) -> tuple[np.ndarray, InputGeometry]:
            log_depth, geometry = estimator.predict_log(rgb, stage=stage)  # (H_out, W_out)
            depth = np.exp(log_depth)
            if scale_by_focal and camera_focal is not None:
                depth = depth * estimator.focal_scale(geometry, *camera_focal)[0]
            return depth, geometry
        return predict

    return {stage: predictor(stage) for stage in stages}, estimator.config


def map_predictor(depth_map: np.ndarray, config: EigenDepthConfig) -> Predictor:
    """
    Build a predictor that returns ``depth_map`` (H_out, W_out, metres) for every image.

    The map is placed by the centre-crop geometry (the mean and constant baselines).
    """
    depth_map = np.asarray(depth_map, dtype=np.float32)
    if depth_map.shape != config.output_size[::-1]:
        raise ValueError(f'depth map {depth_map.shape} is not the output grid '
                         f'{config.output_size[::-1]}')

    def predict(rgb: np.ndarray, camera_focal: tuple[float, float] | None = None
                ) -> tuple[np.ndarray, InputGeometry]:
        return depth_map, InputGeometry.fit(rgb.shape[1], rgb.shape[0], config)

    return predict


def baseline_map(kind: str, data_root: PathLike, train_split: PathLike,
                 config: EigenDepthConfig, min_depth: float = 1e-3, max_depth: float = 80.0,
                 cache_dir: PathLike | None = None, progress: bool = False) -> np.ndarray:
    """
    Compute a baseline's output-grid depth map from the training frames' targets.

    The targets are the centre-crop ones, as at test time.

    :param kind: ``'mean'`` (per-pixel mean depth map) or ``'constant'`` (the overall
        mean depth everywhere).
    """
    if kind not in ('mean', 'constant'):
        raise ValueError(f"baseline must be 'mean' or 'constant', got {kind!r}")
    train_set = KittiDepthDataset(data_root, read_split_file(train_split), config,
                                  cache_dir=cache_dir, min_depth=min_depth,
                                  max_depth=max_depth, progress=progress)
    mean_map = mean_depth_map(train_set, progress=progress)
    if kind == 'mean':
        return mean_map
    total = count = 0.0
    for entry in train_set.entries:  # the pixel-weighted overall mean
        target, valid = train_set.centre_target(entry)
        total += float(target[valid].sum())
        count += float(valid.sum())
    return np.full_like(mean_map, total / count)


def frame_truth(entry: SplitEntry, root: PathLike, calib: Calibration
                ) -> tuple[str, np.ndarray]:
    """
    Return the true 3-D scene of a frame for the obstacle metrics.

    :param calib: the calibration of the frame's camera.
    :return: ``('dense', (H, W) depth)`` where the drive has the synthetic world's dense true
        depth of the frame (``synthetic_depth_02``, left camera only; camera z in metres, inf
        for sky), else ``('lidar', (N, 3) points)``: the whole Velodyne scan in the frame's
        rectified camera optical frame, metres.
    :raises KittiFormatError: the scan cannot be read.
    """
    dense = drive_dir(root, entry.drive) / SYNTHETIC_DEPTH_DIR / f'{entry.frame:010d}.npy'
    if entry.side == 'l' and dense.is_file():
        return 'dense', np.load(dense)
    scan = load_velodyne_points(entry.velodyne_path(root))[:, :3].astype(np.float64)
    to_cam0 = calib.R_rect_00 @ calib.velo_to_cam[:3]  # Velodyne -> rectified camera 0
    # P_rect = K [I | t]: t is this camera's offset from camera 0
    offset = np.linalg.solve(calib.P_rect[:, :3], calib.P_rect[:, 3])
    return 'lidar', scan @ to_cam0[:, :3].T + to_cam0[:, 3] + offset


def frame_obstacle_counts(pred_map: np.ndarray, geometry: InputGeometry,
                          truth: tuple[str, np.ndarray], calib: Calibration,
                          camera_height: float = KITTI_CAMERA_HEIGHT
                          ) -> dict[str, dict[str, int]]:
    """
    Return the obstacle counts of one prediction (:func:`.match_cells` of core.obstacles).

    The predicted cloud is what ``depth_node`` publishes: one point per output-map pixel,
    back-projected with the output map's intrinsics
    (:meth:`~eigen_depth_ros.core.geometry.InputGeometry.output_intrinsics`). Upsampling the map
    to the camera size first would not do: bilinear interpolation across an object's edge
    invents depths between object and background, points that float above the road (with
    the true depth sampled on the output grid, F1 within 10 m drops from 1.0 to 0.72).

    The truth is limited to the image area the output map covers: the dense truth to those
    pixels, the LiDAR truth to the points in front of the camera whose pixel (KITTI devkit
    rounding) is covered. The intrinsics are ``P_rect``'s, the principal point made 0-based
    (KITTI counts pixels from 1).

    :param pred_map: (H_out, W_out) predicted depth on the output grid, metres.
    :param geometry: the geometry that placed the output map in the camera image.
    :param truth: :func:`frame_truth` of the frame.
    :param calib: the calibration of the frame's camera.
    :param camera_height: height of the camera above the road, metres.
    """
    p_rect = calib.P_rect
    intrinsics = (p_rect[0, 0], p_rect[1, 1], p_rect[0, 2] - 1, p_rect[1, 2] - 1)
    predicted = points_from_depth(pred_map, *geometry.output_intrinsics(*intrinsics))
    covered = np.isfinite(geometry.output_to_image(np.ones_like(pred_map)))  # (H, W)
    kind, data = truth
    if kind == 'dense':
        true_points = points_from_depth(np.where(covered, data, np.nan), *intrinsics)
    else:
        true_points = points_in_image_area(data, *intrinsics, covered)
    return cloud_obstacle_counts(predicted, true_points, camera_height)


def obstacle_table(results: dict[str, dict[str, Any]]) -> str:
    """
    Format the obstacle scores of each method's ``aggregate``, one row per method.

    The columns are F1, recall and precision within 10 m and 20 m (the
    :func:`~eigen_depth_ros.core.obstacles.flat_scores` keys); ``-`` where a score is NaN or
    None (no true or no predicted cell in range).

    :param results: ``{method: {'aggregate': {...}, ...}}``, e.g. ``report['results']`` of
        :func:`evaluate` or of a loaded ``metrics.json``.
    """
    keys = list(flat_scores(scores_from_counts(zero_counts())))
    width = max([len('method')] + [len(name) for name in results])
    titles = [key.removeprefix('obstacle_').replace('_', ' ') for key in keys]
    header = f'{"method":<{width}} | ' + ' | '.join(f'{t:>13}' for t in titles)
    rows = [header, '-' * len(header)]
    for name, result in results.items():
        values = [result['aggregate'].get(key) for key in keys]
        rows.append(f'{name:<{width}} | ' + ' | '.join(
            f'{"-":>13}' if v is None or math.isnan(v) else f'{v:>13.3f}' for v in values))
    return '\n'.join(rows)


def comparison_table(rows: dict[str, dict[str, float]]) -> str:
    """
    Format the paper's Table 2 rows followed by ``rows`` in the Table 2 layout.

    Cells where the paper gives no number show ``-``.
    """
    table = format_metric_table({**PAPER_KITTI, **rows})
    return table.replace('      nan', '        -')


def evaluate(data_root: PathLike, split: PathLike, checkpoint: PathLike | None = None,
             stages: tuple[str, ...] = ('fine',), baseline: str | None = None,
             train_split: PathLike | None = None, config: str | EigenDepthConfig = 'kitti',
             crop: str | None = 'garg', min_depth: float = 1e-3, max_depth: float = 80.0,
             median_scaling: bool = False, out: PathLike | None = None,
             device: str = 'auto', cache_dir: PathLike | None = None, max_images: int = 0,
             examples: int = 4, progress: bool = False,
             camera_height: float = KITTI_CAMERA_HEIGHT,
             scale_by_focal: bool = True) -> dict[str, Any]:
    """
    Evaluate a checkpoint's stages and/or a baseline on a split (Eigen protocol).

    :param data_root: KITTI raw root.
    :param split: split file of the frames to evaluate.
    :param checkpoint: network checkpoint (None to evaluate only a baseline).
    :param stages: which outputs of the network: ``'coarse'`` and/or ``'fine'``.
    :param baseline: ``'mean'`` or ``'constant'`` (needs ``train_split``), or None.
    :param train_split: training split the baselines average over.
    :param config: network configuration of the baselines' geometry (ignored for a
        checkpoint, which carries its own).
    :param crop: ``'garg'``, ``'eigen'`` or None.
    :param min_depth: smallest evaluated depth (m).
    :param max_depth: largest evaluated depth (m): 80, or 50 for the second variant.
    :param median_scaling: scale each prediction by median(gt) / median(pred).
    :param out: folder for ``metrics.json`` and ``examples.png`` (nothing written if None).
    :param device: where the network runs.
    :param cache_dir: depth cache folder shared with training (None: in memory).
    :param max_images: evaluate at most this many frames, evenly spread (0: all).
    :param examples: frames shown in ``examples.png``.
    :param camera_height: height of the camera above the road (m) for the obstacle metrics.
    :param scale_by_focal: apply the canonical-focal rule to the network's depth, with each
        frame's ``P_rect`` focal length as f_in (as the node does with camera_info); the
        report's ``focal`` entry says whether it was on, with f_train.
    :return: ``{'results': {method: {'aggregate': {...}, 'per_image': [...]}}, 'table':
        str, 'obstacles': {...}, 'skipped': {...}, 'images': int, 'options': {...},
        'paper': {...}}``; the methods are ``'coarse'``, ``'fine'`` and
        ``'baseline: <kind>'``. Each aggregate also holds the six ``obstacle_*`` scores;
        ``obstacles`` is ``{'truth': 'dense' | 'lidar' | 'mixed', 'camera_height': m,
        'by_method': {method: scores_from_counts(summed counts)}}``.
    :raises ValueError: bad arguments, an empty split, drives absent from the root (listed),
        no frame with ground truth, a NaN in a prediction (before anything is written);
        :class:`~eigen_depth_ros.core.checkpoint.CheckpointError` for a bad checkpoint.
    """
    if crop not in ('garg', 'eigen', None):
        raise ValueError(f"crop must be 'garg', 'eigen' or None, got {crop!r}")
    if checkpoint is None and baseline is None:
        raise ValueError('nothing to evaluate: give a checkpoint or a baseline')
    if baseline is not None and train_split is None:
        raise ValueError(f'the {baseline} baseline needs the training split (--train-split)')
    for stage in stages:
        if stage not in ('coarse', 'fine'):
            raise ValueError(f"stage must be 'coarse' or 'fine', got {stage!r}")
    if not (math.isfinite(camera_height) and camera_height > 0):
        raise ValueError(f'camera height must be a finite height above the road in metres, '
                         f'got {camera_height}')
    options = {'data_root': str(data_root), 'split': str(split),
               'checkpoint': None if checkpoint is None else str(checkpoint),
               'stages': list(stages) if checkpoint is not None else [],
               'baseline': baseline, 'train_split': None if train_split is None
               else str(train_split), 'crop': crop, 'min_depth': min_depth,
               'max_depth': max_depth, 'median_scaling': median_scaling,
               'max_images': max_images, 'camera_height': camera_height,
               'scale_by_focal': scale_by_focal}
    predictors: dict[str, Predictor] = {}
    focal: dict[str, Any] = {'scale_by_focal': scale_by_focal and checkpoint is not None,
                             'f_train': None, 'f_train_note': None}
    if checkpoint is not None:
        predictors, config = network_predictors(checkpoint, stages, device, scale_by_focal,
                                                focal)
    config = resolve_config(config)
    if baseline is not None:
        depth_map = baseline_map(baseline, data_root, train_split, config, min_depth,
                                 max_depth, cache_dir, progress)
        predictors[f'baseline: {baseline}'] = map_predictor(depth_map, config)

    test_set = KittiDepthDataset(data_root, read_split_file(split), config,
                                 cache_dir=cache_dir, progress=progress)
    entries = list(test_set.entries)
    entries = [entries[i] for i in evenly_spread(len(entries), max_images)]
    shown = set(evenly_spread(len(entries), examples)) if examples else set()
    # examples.png shows the network's last stage, else the baseline
    drawn = stages[-1] if checkpoint is not None else list(predictors)[-1]
    per_image: dict[str, list[dict[str, Any]]] = {name: [] for name in predictors}
    obstacle_counts = {name: zero_counts() for name in predictors}
    truth_kinds: set[str] = set()
    skipped = {'unreadable_image': 0, 'no_ground_truth': 0, 'examples': []}
    panels: list[dict[str, Any]] = []

    from tqdm import tqdm
    for k, entry in enumerate(tqdm(entries, desc='evaluating', unit='frame',
                                   disable=not progress)):
        try:
            rgb = read_image(entry.image_path(data_root))  # (H, W, 3) uint8
        except KittiFormatError as exc:
            skipped['unreadable_image'] += 1
            skipped['examples'].append(f'{entry.line()}: {exc}')
            continue
        gt = test_set.cache.load(entry)                         # (H, W) metres, 0 = none
        calib = test_set.cache.calibration(entry)
        camera_focal = (float(calib.P_rect[0, 0]), float(calib.P_rect[1, 1]))
        predictions, output_maps = {}, {}
        for name, predict in predictors.items():
            depth, geometry = predict(rgb, camera_focal)         # (H_out, W_out)
            if np.isnan(depth).any():
                raise ValueError(f'{entry.line()}: the {name} prediction has NaN depth '
                                 f'({int(np.isnan(depth).sum())} of {depth.size} pixels)')
            predictions[name] = geometry.output_to_image(depth, fill_outside=True)  # (H, W)
            output_maps[name] = (depth, geometry)
        try:
            metrics = {name: evaluate_depth(pred, gt, min_depth, max_depth, crop,
                                            median_scaling)
                       for name, pred in predictions.items()}
        except ValueError:  # no ground-truth pixel in range and crop
            skipped['no_ground_truth'] += 1
            skipped['examples'].append(f'{entry.line()}: no ground truth in range')
            continue
        for name, values in metrics.items():
            per_image[name].append({'frame': entry.line(), **values})
        truth = frame_truth(entry, data_root, calib)
        truth_kinds.add(truth[0])
        for name, (depth, geometry) in output_maps.items():
            obstacle_counts[name] = add_counts(obstacle_counts[name], frame_obstacle_counts(
                depth, geometry, truth, calib, camera_height))
        if k in shown:
            panels.append({'name': entry.line(), 'rgb': rgb, 'gt': gt,
                           'pred': predictions[drawn], 'scale': metrics[drawn]['scale']})
    if not any(per_image.values()):
        raise ValueError(f'{split}: no frame with ground truth to evaluate '
                         f'({test_set.report.summary()})')
    scores = {name: scores_from_counts(counts) for name, counts in obstacle_counts.items()}
    results = {name: {'aggregate': {**mean_metrics(rows), **flat_scores(scores[name])},
                      'per_image': rows}
               for name, rows in per_image.items()}
    table = comparison_table({f'ours: {name}': r['aggregate'] for name, r in results.items()})
    obstacles = {'truth': truth_kinds.pop() if len(truth_kinds) == 1 else 'mixed',
                 'camera_height': camera_height, 'by_method': scores}
    report = {'options': options, 'images': len(next(iter(per_image.values()))),
              'results': results, 'obstacles': obstacles,
              'skipped': {**skipped, **test_set.report.as_dict()},
              'paper': PAPER_KITTI, 'table': table, 'model_name': config.name,
              'focal': focal}
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / 'metrics.json').write_text(json.dumps(json_safe(report), indent=2) + '\n',
                                          encoding='utf-8')
        if panels:
            write_examples_png(out / 'examples.png', panels, min_depth, max_depth, crop,
                               title=f'{drawn} ({config.name})')
    return report


def write_examples_png(path: PathLike, panels: list[dict[str, Any]], min_depth: float,
                       max_depth: float, crop: str | None, title: str = '') -> Path:
    """
    Draw one row per frame: image, prediction, ground truth, error.

    The rows are drawn by :func:`eigen_depth_ros.core.report.show_depth_rows`. The prediction is
    the scaled one, clipped to ``[min_depth, max_depth]``; the ground truth shows the LiDAR
    points inside the evaluated crop and range (as dots when sparse), the error the absolute
    relative error at those points (colours 0 .. 0.5). Depths share one colour scale,
    0 .. ``max_depth`` metres (magma, near is bright).

    :param panels: one dict per frame: ``name``, ``rgb`` (H, W, 3), ``gt`` (H, W, metres,
        0 = none), ``pred`` (H, W, metres, unscaled) and ``scale`` (the median scale or 1).
    """
    from eigen_depth_ros.core.metrics import valid_depth_mask
    from eigen_depth_ros.core.report import show_depth_rows
    from matplotlib.figure import Figure

    samples = []
    for panel in panels:
        gt = panel['gt']
        valid = valid_depth_mask(gt, min_depth, max_depth, crop)
        pred = np.clip(panel['pred'] * panel['scale'], min_depth, max_depth)
        samples.append((panel['rgb'], pred, np.where(valid, gt, 0.0)))
    rows = len(samples)
    fig = Figure(figsize=(20, 1.7 * rows + 0.6))
    grid = fig.add_gridspec(rows, 4)
    axes_rows = [[fig.add_subplot(grid[r, c]) for c in range(4)] for r in range(rows)]
    show_depth_rows(fig, axes_rows, samples, max_depth,
                    titles=[panel['name'] for panel in panels])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    return Path(path)


def build_parser() -> argparse.ArgumentParser:
    """Build the parser of ``eigen-depth eval``."""
    parser = argparse.ArgumentParser(
        prog='eigen-depth eval', formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description='Evaluate a checkpoint (or a mean-depth baseline) on KITTI raw with the '
                    "Eigen protocol and print the paper's Table 2 beside the result.")
    parser.add_argument('--checkpoint', type=Path, default=None,
                        help='network checkpoint (e.g. <train out>/final.pt)')
    parser.add_argument('--data-root', type=Path, required=True, help='KITTI raw root')
    parser.add_argument('--split', type=Path, required=True,
                        help='split file of the evaluated frames (e.g. the Eigen test list)')
    parser.add_argument('--out', type=Path, required=True,
                        help='output folder for metrics.json and examples.png')
    parser.add_argument('--stage', choices=('coarse', 'fine', 'both'), default='fine',
                        help='network output evaluated: coarse stack, coarse + fine, or both')
    parser.add_argument('--crop', choices=('garg', 'eigen', 'none'), default='garg',
                        help='evaluated region: the Garg crop (what most papers call '
                             '"eigen"), the Eigen crop, or the whole image')
    parser.add_argument('--min-depth', type=float, default=1e-3,
                        help='smallest evaluated depth (m)')
    parser.add_argument('--max-depth', type=float, default=80.0,
                        help='largest evaluated depth (m): 80, or 50 for the capped variant')
    parser.add_argument('--median-scaling', action='store_true',
                        help='scale each prediction by median(gt) / median(prediction)')
    parser.add_argument('--baseline', choices=('mean', 'constant'), default=None,
                        help='also evaluate a baseline computed from --train-split: the '
                             'per-pixel mean depth map (the paper\'s "mean") or the '
                             'overall mean depth')
    parser.add_argument('--train-split', type=Path, default=None,
                        help='training split the baseline averages over')
    parser.add_argument('--config', choices=('kitti', 'nyu'), default='kitti',
                        help='network size whose geometry the baseline uses (without '
                             '--checkpoint)')
    parser.add_argument('--cache-dir', type=Path, default=None,
                        help='depth cache folder (e.g. the one of training); default: in '
                             'memory')
    parser.add_argument('--max-images', type=int, default=0,
                        help='evaluate at most this many frames, evenly spread (0: all)')
    parser.add_argument('--examples', type=int, default=4,
                        help='frames drawn in examples.png')
    parser.add_argument('--camera-height', type=float, default=KITTI_CAMERA_HEIGHT,
                        help='camera height above the road for the obstacle metrics, m')
    parser.add_argument('--device', default='auto', help="'auto', 'cpu', 'cuda' or 'cuda:N'")
    parser.add_argument('--no-scale-by-focal', action='store_true',
                        help="do not scale the network's depth by f_in / f_train (the "
                             'canonical-focal rule, on by default as in depth_node)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``eigen-depth eval``; return 0, or 2 with a one-line error on bad input."""
    args = build_parser().parse_args(argv)
    stages = ('coarse', 'fine') if args.stage == 'both' else (args.stage,)
    try:
        report = evaluate(args.data_root, args.split, checkpoint=args.checkpoint,
                          stages=stages, baseline=args.baseline, train_split=args.train_split,
                          config=args.config, crop=None if args.crop == 'none' else args.crop,
                          min_depth=args.min_depth, max_depth=args.max_depth,
                          median_scaling=args.median_scaling, out=args.out,
                          device=args.device, cache_dir=args.cache_dir,
                          max_images=args.max_images, examples=args.examples,
                          progress=not args.no_progress, camera_height=args.camera_height,
                          scale_by_focal=not args.no_scale_by_focal)
    except (SplitError, KittiFormatError, CheckpointError, ValueError, OSError) as exc:
        print(f'eigen-depth eval: error: {exc}', file=sys.stderr)
        return 2
    skipped = report['skipped']
    print(f'KITTI, {report["images"]} images, crop {args.crop}, depth '
          f'{args.min_depth:g}..{args.max_depth:g} m'
          f'{", median scaling" if args.median_scaling else ""}; skipped: '
          f'{skipped["missing"]} missing, {skipped["corrupt_image"]} corrupt image, '
          f'{skipped["corrupt_velodyne"]} corrupt scan, {skipped["unreadable_image"]} '
          f'unreadable, {skipped["no_ground_truth"]} without ground truth')
    focal = report['focal']
    if args.checkpoint is not None:
        print('canonical-focal rule: ' + (
            f'on (depth x f_in / f_train, f_train {focal["f_train"]:.1f} px, f_in from each '
            "frame's P_rect)" if focal['scale_by_focal'] else 'off (--no-scale-by-focal)')
            + (f'; warning: {focal["f_train_note"]}' if focal['f_train_note'] else ''))
    print(report['table'])
    obstacles = report['obstacles']
    print(f'\nobstacle cells ({obstacles["truth"]} truth, camera {args.camera_height:g} m above '
          f'the road, counts summed over frames):')
    print(obstacle_table(report['results']))
    print(f'wrote {args.out / "metrics.json"} and {args.out / "examples.png"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

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
Obstacle metrics: score a depth cloud the way a Nav2 obstacle layer uses it.

Why: Nav2's ``ObstacleLayer`` (and ``VoxelLayer``) marks a costmap cell for *any* point of a
cloud whose height lies between ``min_obstacle_height`` and ``max_obstacle_height``. A depth
error matters to it only where it creates or removes such a point: a road predicted 20 %
too near rises above the height band and becomes a wall of phantom obstacles, while the
same relative error on a wall behind a car changes nothing. Per-pixel depth metrics cannot
tell these apart, so these metrics score the bird's-eye grid the costmap would see.

The rule (defaults of :class:`ObstacleGridSpec`):

1. Points are in the camera optical frame (x right, y down, z forward; REP 103). The camera
   looks level at a flat road ``camera_height`` metres below it (KITTI: 1.65 m), so a
   point's height above the road is ``camera_height - y``.
2. A point is an obstacle point when ``min_height <= camera_height - y <= max_height``
   (0.3 m .. 2.5 m) and ``z > 0``.
3. It falls into the bird's-eye cell ``(floor(x / cell), floor(z / cell))``, cell = 0.5 m; a
   cell is occupied when it holds at least ``min_points`` obstacle points (1: Nav2 marks any
   point).
4. A cell's range is the ground distance ``sqrt(x^2 + z^2)`` of its centre. For each range
   R in ``ranges`` (10 m and 20 m) only cells within R are scored: a true cell is found
   (recall) when a predicted cell lies within ``tolerance + tolerance_per_m * r`` of it
   (0.5 m + 5 cm per metre of the true cell's range r, as depth errors grow with range),
   and a predicted cell is right (precision) when a true cell lies within the tolerance at
   the predicted cell's range. F1 is their harmonic mean.
5. Over a sequence the four counts of each range are summed over frames before the ratios
   are taken (micro-average: a frame with many obstacles weighs more than an empty one).

The true cloud comes from dense true depth where a data set has it (the synthetic world's
``synthetic_depth_02``, a depth-image ground-truth topic), else from the LiDAR points
themselves (every point in front of the camera, not only the nearest per pixel). Both
clouds must cover the same image area; ``eigen-depth bag-eval`` restricts the truth to the
area the prediction covers.

Depth NaN, inf or <= 0 means "no point" (REP 118). A NaN anywhere else (a point's
coordinates, intrinsics, the camera height) raises :class:`ValueError` with a one-line
message, as do depth maps of different shapes and bad :class:`ObstacleGridSpec` values.
Only numpy is needed.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

KITTI_CAMERA_HEIGHT = 1.65
"""Height (m) of KITTI's colour cameras above the road, the default camera height."""

COUNT_NAMES = ('tp_truth', 'truth', 'tp_pred', 'pred')
SCORE_NAMES = ('f1', 'recall', 'precision')
# Differences of cell centres are not exact in binary: a neighbour exactly at the tolerance
# must still match.
MATCH_EPS = 1e-9
# Cell indices are packed into one uint64 key, 32 bits each: points whose index would not
# fit (a thousand kilometres away and more) are left out.
INDEX_BITS = 32
INDEX_OFFSET = 1 << (INDEX_BITS - 1)
# Largest distance matrix built at once by the nearest-cell search (elements).
CHUNK_ELEMENTS = 1 << 20


@dataclass(frozen=True)
class ObstacleGridSpec:
    """
    The obstacle rule: height band, bird's-eye cell, scored ranges and match tolerance.

    :param cell: bird's-eye cell size in metres (x right, z forward in the optical frame).
    :param min_height: lowest obstacle point above the road, metres.
    :param max_height: highest obstacle point above the road, metres.
    :param ranges: ground ranges (m) within which cells are scored, one result each.
    :param tolerance: largest distance (m) of two matching cell centres at range 0.
    :param tolerance_per_m: extra tolerance per metre of range of the tested cell.
    :param min_points: obstacle points a cell needs to be occupied.
    :raises ValueError: for a non-positive cell, an empty height band, no or non-positive
        ranges, a negative tolerance or ``min_points`` below 1.
    """

    cell: float = 0.5
    min_height: float = 0.3
    max_height: float = 2.5
    ranges: tuple[float, ...] = (10.0, 20.0)
    tolerance: float = 0.5
    tolerance_per_m: float = 0.05
    min_points: int = 1

    def __post_init__(self) -> None:
        """Check the values (see the class)."""
        object.__setattr__(self, 'ranges', tuple(self.ranges))
        if not (math.isfinite(self.cell) and self.cell > 0):
            raise ValueError(f'obstacle cell size must be positive, got {self.cell}')
        if not (math.isfinite(self.min_height) and math.isfinite(self.max_height)
                and self.min_height < self.max_height):
            raise ValueError(f'obstacle heights need min_height < max_height, got '
                             f'{self.min_height} .. {self.max_height}')
        if not self.ranges or not all(math.isfinite(r) and r > 0 for r in self.ranges):
            raise ValueError(f'obstacle ranges must be positive metres, got {self.ranges}')
        if not all(math.isfinite(t) and t >= 0
                   for t in (self.tolerance, self.tolerance_per_m)):
            raise ValueError(f'obstacle tolerance must be >= 0, got {self.tolerance} + '
                             f'{self.tolerance_per_m} per m')
        if int(self.min_points) != self.min_points or self.min_points < 1:
            raise ValueError(f'min_points must be an integer >= 1, got {self.min_points}')

    def match_distance(self, ground_range: np.ndarray) -> np.ndarray:
        """Largest centre distance (m) at which a cell at ``ground_range`` matches."""
        return self.tolerance + self.tolerance_per_m * ground_range


DEFAULT_SPEC = ObstacleGridSpec()


def range_key(ground_range: float) -> str:
    """Key of one scored range: ``10.0`` -> ``'10m'``."""
    return f'{ground_range:g}m'


def _check_camera_height(camera_height: float) -> None:
    if not (math.isfinite(camera_height) and camera_height > 0):
        raise ValueError(f'camera height must be a finite height above the road in metres, '
                         f'got {camera_height}')


def _check_intrinsics(fx: float, fy: float, cx: float, cy: float) -> None:
    if not all(math.isfinite(v) for v in (fx, fy, cx, cy)) or fx <= 0 or fy <= 0:
        raise ValueError(f'intrinsics must be finite with positive focal lengths, got '
                         f'fx={fx} fy={fy} cx={cx} cy={cy}')


def _as_points(points: np.ndarray) -> np.ndarray:
    """(N, 3) float64 copy of a cloud; raises for another shape or a non-finite value."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.size == 0:
        pts = pts.reshape(0, 3)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f'expected an (N, 3) point cloud, got shape {pts.shape}')
    if not np.isfinite(pts).all():
        raise ValueError('point cloud has non-finite coordinates; drop NaN points first')
    return pts


def _as_cells(cells: np.ndarray) -> np.ndarray:
    """(M, 2) int64 cell indices; raises for another shape or non-integer values."""
    arr = np.asarray(cells)
    if arr.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f'expected (M, 2) integer cells, got {arr.dtype} {arr.shape}')
    return arr.astype(np.int64)


def points_from_depth(depth: np.ndarray, fx: float, fy: float, cx: float, cy: float
                      ) -> np.ndarray:
    """
    Back-project a depth image into points of the camera optical frame.

    Pixel (row r, column c) has its centre at ``u = c, v = r`` (0-based, as the ``K`` of
    sensor_msgs/CameraInfo); its point is ``((u - cx) z / fx, (v - cy) z / fy, z)``.

    :param depth: (H, W) depth (camera z) in metres; NaN, inf and values <= 0 give no point.
    :return: (N, 3) float32 x, y, z in row-major pixel order (points whose coordinates do
        not fit float32 are left out).
    :raises ValueError: for a depth that is not 2-D or bad intrinsics.
    """
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim != 2:
        raise ValueError(f'expected an (H, W) depth image, got shape {depth.shape}')
    _check_intrinsics(fx, fy, cx, cy)
    rows, cols = np.nonzero(np.isfinite(depth) & (depth > 0))
    z = depth[rows, cols]
    with np.errstate(over='ignore'):
        points = np.stack([(cols - cx) * z / fx, (rows - cy) * z / fy, z],
                          axis=1).astype(np.float32)
    return points[np.isfinite(points).all(axis=1)]


def points_in_image_area(points: np.ndarray, fx: float, fy: float, cx: float, cy: float,
                         area: np.ndarray, min_depth: float = 1e-3) -> np.ndarray:
    """
    Keep the points whose pixel lies in ``area``: a LiDAR truth cut to what a camera sees.

    A point (x, y, z) with ``z > min_depth`` falls on pixel
    ``(round(fx x / z + cx), round(fy y / z + cy))`` (0-based, as in ``CameraInfo``; this
    is the KITTI devkit's ``round(P X) - 1`` for its 1-based ``P_rect``). Every such point
    is kept, not only the nearest of each pixel.

    :param points: (N, 3) points in the camera optical frame, metres.
    :param area: (H, W) bool, the image area to keep.
    :return: (M, 3) the kept points.
    """
    points = points[points[:, 2] > min_depth]
    cols = np.rint(fx * points[:, 0] / points[:, 2] + cx)
    rows = np.rint(fy * points[:, 1] / points[:, 2] + cy)
    height, width = area.shape
    inside = np.flatnonzero((cols >= 0) & (cols < width) & (rows >= 0) & (rows < height))
    keep = area[rows[inside].astype(np.int64), cols[inside].astype(np.int64)]
    return points[inside[keep]]


def occupied_cells(points: np.ndarray, camera_height: float,
                   spec: ObstacleGridSpec = DEFAULT_SPEC) -> np.ndarray:
    """
    Bird's-eye cells a Nav2 obstacle layer would mark for a cloud.

    :param points: (N, 3) points in the camera optical frame, metres, all finite.
    :param camera_height: height of the camera above the road, metres.
    :return: (M, 2) int64 ``(ix, iz)`` with ``ix = floor(x / cell)``, ``iz = floor(z / cell)``
        of the cells holding at least ``spec.min_points`` points whose height
        ``camera_height - y`` is within ``[min_height, max_height]`` and whose ``z > 0``;
        unique, sorted by ix then iz.
    :raises ValueError: for a non-finite point or camera height.
    """
    _check_camera_height(camera_height)
    pts = _as_points(points)
    height = camera_height - pts[:, 1]
    band = (height >= spec.min_height) & (height <= spec.max_height) & (pts[:, 2] > 0)
    index = np.floor(pts[band][:, [0, 2]] / spec.cell)
    index = index[(np.abs(index) < INDEX_OFFSET).all(axis=1)].astype(np.int64) + INDEX_OFFSET
    # one sortable key per cell (ix in the high bits): much faster than np.unique(axis=0)
    keys = (index[:, 0].astype(np.uint64) << np.uint64(INDEX_BITS)) | index[:, 1].astype(
        np.uint64)
    keys, counts = np.unique(keys, return_counts=True)
    keys = keys[counts >= spec.min_points]
    ix = (keys >> np.uint64(INDEX_BITS)).astype(np.int64) - INDEX_OFFSET
    iz = (keys & np.uint64((1 << INDEX_BITS) - 1)).astype(np.int64) - INDEX_OFFSET
    return np.stack([ix, iz], axis=1)


def _centres(cells: np.ndarray, spec: ObstacleGridSpec) -> np.ndarray:
    """(M, 2) float64 ground coordinates (x, z) of cell centres, metres."""
    return (_as_cells(cells) + 0.5) * spec.cell


def _nearest_distance(points: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Distance from each of ``points`` (K, 2) to the nearest of ``others`` (inf if none)."""
    if len(others) == 0:
        return np.full(len(points), np.inf)
    out = np.empty(len(points))
    step = max(1, CHUNK_ELEMENTS // len(others))
    for start in range(0, len(points), step):
        diff = points[start:start + step, None, :] - others[None, :, :]
        out[start:start + step] = np.sqrt((diff ** 2).sum(axis=2).min(axis=1))
    return out


def _matched(tested: np.ndarray, partners: np.ndarray, spec: ObstacleGridSpec
             ) -> tuple[np.ndarray, np.ndarray]:
    """
    Ranges of the tested cell centres within the largest range, and which of them match.

    A partner farther than the largest range plus its tolerance can match no tested cell
    within that range, so it is left out of the search.
    """
    far = max(spec.ranges)
    tested_range = np.hypot(tested[:, 0], tested[:, 1])
    near = tested_range <= far
    tested, tested_range = tested[near], tested_range[near]
    partners = partners[np.hypot(partners[:, 0], partners[:, 1])
                        <= far + spec.match_distance(far) + MATCH_EPS]
    hit = _nearest_distance(tested, partners) <= spec.match_distance(tested_range) + MATCH_EPS
    return tested_range, hit


def match_cells(pred: np.ndarray, truth: np.ndarray, spec: ObstacleGridSpec = DEFAULT_SPEC
                ) -> dict[str, dict[str, int]]:
    """
    Count found, true, right and predicted cells within each scored range.

    :param pred: (M, 2) predicted occupied cells (:func:`occupied_cells`).
    :param truth: (K, 2) true occupied cells.
    :return: per range key (``'10m'``, ``'20m'``): ``tp_truth`` (true cells within the range
        that a predicted cell matches), ``truth`` (true cells within the range), ``tp_pred``
        (predicted cells within the range that a true cell matches) and ``pred``.
    """
    pred_xz, truth_xz = _centres(pred, spec), _centres(truth, spec)
    truth_range, truth_found = _matched(truth_xz, pred_xz, spec)
    pred_range, pred_right = _matched(pred_xz, truth_xz, spec)
    counts = {}
    for limit in spec.ranges:
        in_truth, in_pred = truth_range <= limit, pred_range <= limit
        counts[range_key(limit)] = {
            'tp_truth': int((truth_found & in_truth).sum()), 'truth': int(in_truth.sum()),
            'tp_pred': int((pred_right & in_pred).sum()), 'pred': int(in_pred.sum())}
    return counts


def zero_counts(spec: ObstacleGridSpec = DEFAULT_SPEC) -> dict[str, dict[str, int]]:
    """Return the counts of no frame (the start of :func:`add_counts`)."""
    return {range_key(limit): dict.fromkeys(COUNT_NAMES, 0) for limit in spec.ranges}


def add_counts(total: dict, counts: dict) -> dict:
    """
    Sum the counts of one more frame into a total (micro-average over frames).

    :param total: counts so far (``{}`` or :func:`zero_counts` at the start).
    :param counts: one frame's :func:`match_cells` counts.
    :return: a new dict; neither argument is changed.
    """
    keys = list(total) + [key for key in counts if key not in total]
    return {key: {name: total.get(key, {}).get(name, 0) + counts.get(key, {}).get(name, 0)
                  for name in COUNT_NAMES}
            for key in keys}


def _ratio(hits: float, total: float) -> float:
    return hits / total if total else math.nan


def scores_from_counts(counts: dict) -> dict[str, dict[str, float]]:
    """
    Recall, precision and F1 per range, beside the counts they come from.

    ``recall = tp_truth / truth`` (NaN without true cells), ``precision = tp_pred / pred``
    (NaN without predicted cells), ``f1 = 2 P R / (P + R)``: NaN when either is NaN, 0 when
    both are 0.
    """
    scores = {}
    for key, c in counts.items():
        recall, precision = _ratio(c['tp_truth'], c['truth']), _ratio(c['tp_pred'], c['pred'])
        if math.isnan(recall) or math.isnan(precision):
            f1 = math.nan
        else:
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores[key] = {**c, 'recall': recall, 'precision': precision, 'f1': f1}
    return scores


def flat_scores(scores: dict) -> dict[str, float]:
    """``{'obstacle_f1_10m': ..., 'obstacle_recall_10m': ..., ...}`` for tables and JSON."""
    return {f'obstacle_{name}_{key}': scores[key][name] for key in scores
            for name in SCORE_NAMES}


def cloud_obstacle_counts(pred_points: np.ndarray, truth_points: np.ndarray,
                          camera_height: float, spec: ObstacleGridSpec = DEFAULT_SPEC
                          ) -> dict[str, dict[str, int]]:
    """
    :func:`match_cells` counts of a predicted and a true cloud.

    :param pred_points: (N, 3) predicted points, camera optical frame, finite.
    :param truth_points: (K, 3) true points in the same frame, finite.
    """
    return match_cells(occupied_cells(pred_points, camera_height, spec),
                       occupied_cells(truth_points, camera_height, spec), spec)


def depth_obstacle_counts(pred_depth: np.ndarray, true_depth: np.ndarray, fx: float,
                          fy: float, cx: float, cy: float, camera_height: float,
                          spec: ObstacleGridSpec = DEFAULT_SPEC,
                          valid: np.ndarray | None = None) -> dict[str, dict[str, int]]:
    """
    :func:`match_cells` counts of a predicted and a true depth image of one camera.

    :param pred_depth: (H, W) predicted depth, metres (NaN, inf, <= 0: no point).
    :param true_depth: (H, W) true depth at the same intrinsics (NaN, inf, <= 0: unknown).
    :param valid: (H, W) bool, the pixels to use (default: all); each cloud takes the
        valid pixels where its own depth is finite and positive.
    :raises ValueError: for images of different shapes, bad intrinsics or camera height.
    """
    pred_depth, true_depth = np.asarray(pred_depth), np.asarray(true_depth)
    if pred_depth.shape != true_depth.shape:
        raise ValueError(f'predicted depth {pred_depth.shape} and true depth '
                         f'{true_depth.shape} differ in shape')
    if valid is None:
        valid = np.ones(pred_depth.shape, dtype=bool)
    elif np.shape(valid) != pred_depth.shape:
        raise ValueError(f'valid mask {np.shape(valid)} does not match the depth '
                         f'{pred_depth.shape}')
    pred, truth = (points_from_depth(np.where(valid, depth, np.nan), fx, fy, cx, cy)
                   for depth in (pred_depth, true_depth))
    return cloud_obstacle_counts(pred, truth, camera_height, spec)

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

"""Depth-evaluation metrics of Eigen et al. (NIPS 2014, section 4) and the KITTI crops."""
from __future__ import annotations

import math

from typing import Any

import numpy as np

METRIC_NAMES = ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'a1', 'a2', 'a3', 'si_rmse_log')

# Row and column fractions (of the ground-truth image) of the two usual KITTI crops.
GARG_CROP = (0.40810811, 0.99189189, 0.03594771, 0.96405229)
EIGEN_CROP = (0.3324324, 0.91351351, 0.03594771, 0.96405229)


def _to_numpy(array: Any) -> np.ndarray:
    if hasattr(array, 'detach'):  # a torch tensor, on any device
        array = array.detach().float().cpu().numpy()
    return np.asarray(array, dtype=np.float64)


def _crop_mask(h: int, w: int, fractions: tuple[float, float, float, float]) -> np.ndarray:
    top, bottom, left, right = fractions
    mask = np.zeros((h, w), dtype=bool)
    mask[int(top * h):int(bottom * h), int(left * w):int(right * w)] = True
    return mask


def garg_crop_mask(h: int, w: int) -> np.ndarray:
    """
    Return the Garg crop (the one most papers call "eigen"), True inside.

    Rows 0.40810811h..0.99189189h, columns 0.03594771w..0.96405229w (fractions truncated
    to integers).
    """
    return _crop_mask(h, w, GARG_CROP)


def eigen_crop_mask(h: int, w: int) -> np.ndarray:
    """Return the Eigen crop: rows 0.3324324h..0.91351351h, cols 0.03594771w..0.96405229w."""
    return _crop_mask(h, w, EIGEN_CROP)


def valid_depth_mask(gt: Any, min_depth: float = 1e-3, max_depth: float = 80.0,
                     crop: str | None = None) -> np.ndarray:
    """
    Return the pixels the Eigen protocol evaluates.

    They have a finite gt in ``[min_depth, max_depth]`` (the usual caps are 80 m and 50 m)
    and lie inside the ``'garg'`` or ``'eigen'`` crop if one is given.
    """
    gt = _to_numpy(gt)
    with np.errstate(invalid='ignore'):
        mask = np.isfinite(gt) & (gt >= min_depth) & (gt <= max_depth)
    if crop is not None:
        crops = {'garg': garg_crop_mask, 'eigen': eigen_crop_mask}
        if crop not in crops:
            raise ValueError(f"crop must be 'garg', 'eigen' or None, got {crop!r}")
        mask &= crops[crop](*gt.shape[-2:])
    return mask


def median_scale(pred: Any, gt: Any, mask: Any) -> float:
    """Per-image median scaling factor ``median(gt) / median(pred)`` over ``mask``."""
    pred, gt = _to_numpy(pred), _to_numpy(gt)
    mask = np.asarray(mask, dtype=bool)
    return float(np.median(gt[mask]) / np.median(pred[mask]))


def compute_depth_metrics(pred: Any, gt: Any, mask: Any = None) -> dict[str, float]:
    r"""
    Compute the paper's error metrics for one image, on depths in metres.

    Over the valid pixels T (gt > 0 and finite, prediction > 0 and finite, and ``mask``):

    - ``a1``, ``a2``, ``a3``: fraction of pixels with
      :math:`\max(y/y^*, y^*/y) < 1.25, 1.25^2, 1.25^3`;
    - ``abs_rel`` = mean(|y - y*| / y*), ``sq_rel`` = mean((y - y*)^2 / y*);
    - ``rmse`` = sqrt(mean((y - y*)^2)), ``rmse_log`` = sqrt(mean((log y - log y*)^2));
    - ``si_rmse_log`` = sqrt(D) with Eq. 1's
      :math:`D = \frac{1}{n}\sum d_i^2 - \frac{1}{n^2}(\sum d_i)^2`, :math:`d = \log y - \log y^*`.

    :param pred: predicted depth (H, W), numpy or torch.
    :param gt: ground-truth depth (H, W); pixels where gt <= 0 or not finite are ignored.
    :param mask: optional bool (H, W) restricting the evaluated pixels further.
    :return: dict with the keys of :data:`METRIC_NAMES`, plus ``n`` (valid pixel count).
    :raises ValueError: when shapes differ or no pixel is valid.
    """
    pred, gt = _to_numpy(pred), _to_numpy(gt)
    if pred.shape != gt.shape:
        raise ValueError(f'prediction {pred.shape} and ground truth {gt.shape} differ in shape')
    with np.errstate(invalid='ignore'):
        valid = np.isfinite(gt) & (gt > 0) & np.isfinite(pred) & (pred > 0)
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)
    if not valid.any():
        raise ValueError('no valid pixel to evaluate')
    y, y_star = pred[valid], gt[valid]
    ratio = np.maximum(y / y_star, y_star / y)
    d = np.log(y) - np.log(y_star)
    return {
        'abs_rel': float(np.mean(np.abs(y - y_star) / y_star)),
        'sq_rel': float(np.mean((y - y_star) ** 2 / y_star)),
        'rmse': float(np.sqrt(np.mean((y - y_star) ** 2))),
        'rmse_log': float(np.sqrt(np.mean(d ** 2))),
        'a1': float(np.mean(ratio < 1.25)),
        'a2': float(np.mean(ratio < 1.25 ** 2)),
        'a3': float(np.mean(ratio < 1.25 ** 3)),
        'si_rmse_log': float(np.sqrt(max(np.mean(d ** 2) - np.mean(d) ** 2, 0.0))),
        'n': int(valid.sum()),
    }


def evaluate_depth(pred: Any, gt: Any, min_depth: float = 1e-3, max_depth: float = 80.0,
                   crop: str | None = 'garg', median_scaling: bool = False
                   ) -> dict[str, float]:
    """
    Compute the Eigen-protocol metrics of one image.

    The prediction (already at the gt size) is capped to ``[min_depth, max_depth]``, gt
    pixels are gated by :func:`valid_depth_mask`, and optional per-image median scaling is
    applied before the cap; the result also holds ``scale``.
    """
    pred, gt = _to_numpy(pred), _to_numpy(gt)
    mask = valid_depth_mask(gt, min_depth, max_depth, crop)
    with np.errstate(invalid='ignore'):
        mask &= np.isfinite(pred) & (pred > 0)
    if not mask.any():
        raise ValueError('no valid pixel to evaluate')
    scale = median_scale(pred, gt, mask) if median_scaling else 1.0
    pred = np.clip(pred * scale, min_depth, max_depth)
    result = compute_depth_metrics(pred, gt, mask)
    result['scale'] = scale
    return result


def mean_metrics(per_image: list[dict[str, float]]) -> dict[str, float]:
    """Average each metric over images (the protocol's aggregate); ``n`` is the image count."""
    if not per_image:
        raise ValueError('no image to average')
    out = {k: float(np.mean([m[k] for m in per_image])) for k in METRIC_NAMES}
    out['n'] = len(per_image)
    return out


def format_metric_table(rows: dict[str, dict[str, float]]) -> str:
    """Format a text table with the columns of the paper's Table 2, one row per method."""
    columns = [('d<1.25', 'a1'), ('d<1.25^2', 'a2'), ('d<1.25^3', 'a3'),
               ('abs rel', 'abs_rel'), ('sqr rel', 'sq_rel'), ('RMSE', 'rmse'),
               ('RMSE log', 'rmse_log'), ('RMSE log sc.-inv.', 'si_rmse_log')]
    name_width = max([len('method')] + [len(name) for name in rows])
    header = ' | '.join([f'{"method":<{name_width}}'] + [f'{title:>9}' for title, _ in columns])
    lines = [header, '-' * len(header)]
    for name, metrics in rows.items():
        cells = [f'{metrics[key]:>9.3f}' for _, key in columns]
        lines.append(' | '.join([f'{name:<{name_width}}'] + cells))
    return '\n'.join(lines)


def json_safe(value: Any, digits: int | None = 6) -> Any:
    """
    Return ``value`` with every float rounded to ``digits`` and NaN or inf made None.

    Dicts, lists and tuples are walked; JSON has no NaN, so reports stay valid JSON.
    ``digits=None`` keeps the floats as they are.
    """
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return value if digits is None else round(value, digits)
    if isinstance(value, dict):
        return {k: json_safe(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, digits) for v in value]
    return value

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

"""PNG reports a person reads: image | prediction | ground truth | error, and error by range."""
from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
import numpy as np


def _show(fig: Figure, ax, data: np.ndarray, cmap: str | None, limits: tuple[float, float] | None,
          sparse: bool) -> None:
    """Draw one panel: an image, or the valid pixels of sparse data as small squares."""
    kwargs = {} if limits is None else {'vmin': limits[0], 'vmax': limits[1]}
    if sparse:
        ys, xs = np.nonzero(np.isfinite(data))
        ax.set_facecolor('black')
        mappable = ax.scatter(xs, ys, c=data[ys, xs], s=1.5, cmap=cmap, marker='s',
                              linewidths=0, **kwargs)
        ax.set_xlim(0, data.shape[1])
        ax.set_ylim(data.shape[0], 0)
        ax.set_aspect('equal')
    else:
        mappable = ax.imshow(data, cmap=cmap, interpolation='nearest', **kwargs)
    if cmap:
        fig.colorbar(mappable, ax=ax, fraction=0.025, pad=0.01)
    ax.set_xticks([])
    ax.set_yticks([])


def show_depth_rows(fig: Figure, axes_rows,
                    samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                    max_depth: float, titles: list[str] | None = None) -> None:
    """
    Fill rows of four axes with image, prediction, ground truth and error.

    The error is |pred - gt| / gt, for each ``(rgb, pred, gt)`` (gt 0 = none); sparse
    ground truth, such as projected LiDAR, is drawn as dots.

    :param titles: title of each row's image panel (e.g. the frame's name); default
        ``'image'``.
    """
    titles = list(titles or [])
    for row, (axes, (rgb, pred, gt)) in enumerate(zip(axes_rows, samples)):
        valid = gt > 0
        sparse = np.count_nonzero(valid) < 0.2 * valid.size
        error = np.full(gt.shape, np.nan)
        error[valid] = np.abs(pred[valid] - gt[valid]) / gt[valid]
        panels = [(rgb, None, None, False, titles[row] if row < len(titles) else 'image'),
                  (pred, 'magma_r', (0, max_depth), False, 'prediction (m)'),
                  (np.where(valid, gt, np.nan), 'magma_r', (0, max_depth), sparse,
                   'ground truth (m)'),
                  (error, 'inferno', (0, 0.5), sparse, 'abs rel error')]
        for ax, (data, cmap, limits, dots, title) in zip(axes, panels):
            _show(fig, ax, data, cmap, limits, dots)
            ax.set_title(title, fontsize=8)


def write_bag_report(path: Path, samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                     result: dict) -> Path:
    """Frames side by side and the error by distance band, into one PNG."""
    max_depth = float(result['options'].get('max_depth', 80.0))
    rows = max(1, len(samples))
    fig = Figure(figsize=(16, 2.2 * rows + 3.2))
    grid = fig.add_gridspec(rows + 1, 4, height_ratios=[1] * rows + [1.4])
    axes_rows = [[fig.add_subplot(grid[r, c]) for c in range(4)] for r in range(len(samples))]
    show_depth_rows(fig, axes_rows, samples, max_depth)
    bands = result.get('by_distance', {})
    ax_rel = fig.add_subplot(grid[rows, :2])
    ax_rmse = fig.add_subplot(grid[rows, 2:])
    names = list(bands)
    ax_rel.bar(names, [bands[n]['abs_rel'] for n in names], color='tab:orange')
    ax_rel.set_title('abs rel by ground-truth distance')
    ax_rmse.bar(names, [bands[n]['rmse'] for n in names], color='tab:blue')
    ax_rmse.set_title('RMSE (m) by ground-truth distance')
    agg = result['aggregate']
    fig.suptitle(f'{result.get("mode", "")} evaluation, {result["frames_evaluated"]} frames: '
                 f'abs rel {agg["abs_rel"]:.3f}, RMSE {agg["rmse"]:.2f} m, '
                 f'd<1.25 {agg["a1"]:.3f}', fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    return path

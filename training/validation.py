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
One validation pass of a training run: loss, depth metrics and obstacle scores.

Each process evaluates its share of the validation frames on the output grid; the sums
are reduced over all processes, so every process returns the same scores.
"""
from __future__ import annotations

import math
from typing import Any, Callable, ContextManager

from eigen_depth_ros.core.loss import scale_invariant_loss
from eigen_depth_ros.core.metrics import compute_depth_metrics, METRIC_NAMES
from eigen_depth_ros.core.obstacles import (add_counts, depth_obstacle_counts, flat_scores,
                                            KITTI_CAMERA_HEIGHT, scores_from_counts, zero_counts)
import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from .dataset import KittiDepthDataset
from .distributed import all_reduce, DistContext
from .interrupts import ignore_stop_signals
from .splits import evenly_spread

FirstBatch = tuple[dict[str, Any], torch.Tensor]
"""The first validation batch and its predicted log depth (on the CPU), for pictures."""


def output_grid_metrics(pred_log: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor
                        ) -> list[dict[str, float]]:
    """
    Compute the depth metrics of each image of a batch on the output grid.

    :func:`~eigen_depth_ros.core.metrics.compute_depth_metrics` over the valid target pixels
    of each image (images without any are left out). A prediction that is not finite and
    positive on all of them (a diverged network) gives NaN metrics rather than metrics of
    the pixels left.

    :param pred_log: predicted log depth (N, 1, H, W), on the CPU.
    :param depth: target depth in metres (N, 1, H, W).
    :param mask: valid target pixels (N, 1, H, W).
    """
    out = []
    for y, t, m in zip(pred_log.detach().float().exp(), depth, mask):
        if not bool(m.any()):
            continue
        if bool(torch.isfinite(y[m]).all() and (y[m] > 0).all()):
            out.append(compute_depth_metrics(y[0], t[0], m[0]))
        else:
            out.append(dict.fromkeys(METRIC_NAMES, math.nan))
    return out


def obstacle_counts(val_set: KittiDepthDataset, batch: dict[str, Any], pred_log: torch.Tensor
                    ) -> dict[str, dict[str, int]]:
    """
    Count obstacle cells of a validation batch on the output grid.

    Prediction and LiDAR target are back-projected with the output grid's intrinsics;
    the camera is KITTI's, 1.65 m above the road (:mod:`eigen_depth_ros.core.obstacles`).
    """
    counts = zero_counts()
    pred = pred_log.detach().float().exp().cpu().numpy()         # (B, 1, H_out, W_out)
    target = np.where(batch['mask'].numpy(), batch['depth'].numpy(), np.nan)
    for i, index in enumerate(batch['index'].tolist()):
        fx, fy, cx, cy = val_set.output_intrinsics(index)
        counts = add_counts(counts, depth_obstacle_counts(
            pred[i, 0], target[i, 0], fx, fy, cx, cy, KITTI_CAMERA_HEIGHT))
    return counts


@torch.no_grad()
def validation_pass(model: torch.nn.Module, stage: str, val_set: KittiDepthDataset,
                    ctx: DistContext, batch_size: int, options: Any,
                    autocast: Callable[[], ContextManager[Any]]
                    ) -> tuple[dict[str, Any] | None, FirstBatch | None]:
    """
    Evaluate ``model`` (already in eval mode) on this process's share of the validation set.

    :param batch_size: frames per batch of this process.
    :param options: the training options (``val_max_frames``, ``workers``, ``lam``).
    :param autocast: returns the mixed-precision context of the training steps.
    :return: ``(scores, first)``: the mean ``loss``, the ``images`` count, the mean
        :data:`~eigen_depth_ros.core.metrics.METRIC_NAMES` and the obstacle scores over
        every process (None when no frame has ground truth); and this process's first batch
        with its prediction (None when it had none).
    """
    indices = evenly_spread(len(val_set), options.val_max_frames)  # 0: all
    shard = Subset(val_set, indices[ctx.rank::ctx.world_size])
    loader = DataLoader(shard, batch_size=batch_size, num_workers=options.workers,
                        worker_init_fn=ignore_stop_signals if options.workers else None)
    sums = torch.zeros(2 + len(METRIC_NAMES), dtype=torch.float64)  # loss, images, metrics
    obstacles = zero_counts()
    first: FirstBatch | None = None
    for batch in loader:
        x = batch['image'].to(ctx.device)                # (B, 3, h, w)
        gt = batch['log_depth'].to(ctx.device)           # (B, 1, H_out, W_out)
        mask = batch['mask'].to(ctx.device)
        with autocast():
            pred = model(x, stage=stage).float()         # (B, 1, H_out, W_out)
        for i in range(len(x)):
            if bool(mask[i].any()):
                sums[0] += float(scale_invariant_loss(pred[i:i + 1], gt[i:i + 1],
                                                      mask[i:i + 1], lam=options.lam))
        pred = pred.cpu()
        per_image = output_grid_metrics(pred, batch['depth'], batch['mask'])
        obstacles = add_counts(obstacles, obstacle_counts(val_set, batch, pred))
        sums[1] += len(per_image)
        for metrics in per_image:
            for k, name in enumerate(METRIC_NAMES):
                sums[2 + k] += metrics[name]
        if first is None:
            first = (batch, pred)
    counts = [obstacles[key][name] for key in sorted(obstacles) for name in obstacles[key]]
    sums = torch.cat([sums, torch.tensor(counts, dtype=torch.float64)])
    sums = all_reduce(ctx, sums.to(ctx.device)).cpu()
    flat = iter(sums[2 + len(METRIC_NAMES):].tolist())
    obstacles = {key: {name: int(next(flat)) for name in obstacles[key]}
                 for key in sorted(obstacles)}
    count = float(sums[1])
    if count == 0:
        return None, first
    scores: dict[str, Any] = {'loss': float(sums[0]) / count, 'images': int(count)}
    scores.update({name: float(sums[2 + k]) / count for k, name in enumerate(METRIC_NAMES)})
    scores.update(flat_scores(scores_from_counts(obstacles)))
    return scores, first

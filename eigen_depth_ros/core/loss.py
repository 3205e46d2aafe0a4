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

"""The scale-invariant log loss of Eigen et al. (NIPS 2014, Eq. 4)."""
from __future__ import annotations

import torch


def scale_invariant_loss(pred_log: torch.Tensor, gt_log: torch.Tensor,
                         mask: torch.Tensor | None = None, lam: float = 0.5) -> torch.Tensor:
    r"""
    Scale-invariant log loss, Eq. 4, averaged over the batch.

    For one image with :math:`d_i = \log y_i - \log y^*_i` over its :math:`n` valid pixels:

    .. math::

        L(y, y^*) = \frac{1}{n} \sum_i d_i^2 - \frac{\lambda}{n^2} \Big(\sum_i d_i\Big)^2

    ``lam = 0`` is the element-wise L2 loss in log space; ``lam = 1`` is exactly the
    scale-invariant error D of Eq. 1 (no square root is taken here); the paper trains with
    ``lam = 0.5``. Images without a single valid pixel contribute nothing, and the mean runs
    over the images that have some.

    :param pred_log: predicted log depth (N, 1, H, W) or (N, H, W).
    :param gt_log: ground-truth log depth of the same shape (any value where masked out).
    :param mask: bool tensor of the same shape, True where the ground truth is valid; when
        None, every finite ground-truth pixel is valid.
    :param lam: the weight :math:`\lambda` of the scale-invariant term.
    :return: scalar loss tensor (0 when no image has a valid pixel).
    """
    if pred_log.shape != gt_log.shape:
        raise ValueError(f'prediction {tuple(pred_log.shape)} and ground truth '
                         f'{tuple(gt_log.shape)} differ in shape')
    valid = torch.isfinite(gt_log) if mask is None else mask.to(torch.bool)
    if valid.shape != pred_log.shape:
        raise ValueError(f'mask {tuple(valid.shape)} and prediction {tuple(pred_log.shape)} '
                         'differ in shape')
    diff = torch.where(valid, pred_log - torch.where(valid, gt_log, 0.0), 0.0).flatten(1)
    n = valid.flatten(1).sum(dim=1).to(diff.dtype)  # (N,) valid pixels per image
    has_pixels = n > 0
    n_safe = n.clamp(min=1.0)
    per_image = (diff ** 2).sum(dim=1) / n_safe - lam * diff.sum(dim=1) ** 2 / n_safe ** 2
    if not bool(has_pixels.any()):
        return per_image.sum() * 0.0
    return per_image[has_pixels].mean()

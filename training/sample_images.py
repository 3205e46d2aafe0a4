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


"""The validation pictures of a training run in TensorBoard: input, prediction, truth."""
from __future__ import annotations

from typing import Any

from eigen_depth_ros.core.model import IMAGENET_MEAN, IMAGENET_STD
import numpy as np
import torch


def _colourise(values: np.ndarray, valid: np.ndarray, low: float, high: float) -> np.ndarray:
    """Colour ``values`` with the magma map as (3, H, W) float RGB, black where invalid."""
    from matplotlib import colormaps

    scaled = np.clip((values - low) / max(high - low, 1e-6), 0.0, 1.0)
    rgb = colormaps['magma'](scaled)[..., :3].astype(np.float32)  # (H, W, 3)
    rgb[~valid] = 0.0
    return rgb.transpose(2, 0, 1)


def _denormalise(image: torch.Tensor) -> np.ndarray:
    """Return a normalised input image as (3, H, W) float RGB in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (image.detach().float().cpu() * std + mean).clamp(0, 1).numpy()


def add_sample_images(writer: Any, batch: dict[str, Any], pred_log: torch.Tensor,
                      step: int) -> None:
    """
    Write input, prediction and ground truth of the first two frames of a batch.

    Depths are drawn as inverse depth, with one colour range per frame.

    :param writer: a TensorBoard ``SummaryWriter``.
    :param batch: a validation batch (``image``, ``depth``, ``mask``).
    :param pred_log: its predicted log depth (N, 1, H_out, W_out), on the CPU.
    :param step: the global step to file the images under.
    """
    for i in range(min(2, len(pred_log))):
        depth = batch['depth'][i, 0].numpy()
        valid = batch['mask'][i, 0].numpy()
        pred = np.exp(pred_log[i, 0].numpy())
        inv_pred, inv_gt = 1.0 / np.maximum(pred, 1e-3), 1.0 / np.maximum(depth, 1e-3)
        high = float(np.percentile(inv_pred, 99))
        writer.add_image(f'sample{i}/input', _denormalise(batch['image'][i]), step)
        writer.add_image(f'sample{i}/prediction',
                         _colourise(inv_pred, np.ones_like(valid), 0.0, high), step)
        writer.add_image(f'sample{i}/ground_truth', _colourise(inv_gt, valid, 0.0, high), step)

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

"""Inputs for measuring without data: scene-like camera images and a calibrated random network."""
from __future__ import annotations

from typing import Any

from eigen_depth_ros.core.geometry import InputGeometry
from eigen_depth_ros.core.model import EigenDepthNet, normalize_image
import numpy as np
import torch
from torch import nn

CAMERA_SIZES = {'kitti': (1242, 375), 'nyu': (640, 480)}
"""Camera image (width, height) per configuration: KITTI's colour camera, the Kinect."""


def scene_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """
    Draw a scene-like RGB uint8 (height, width, 3) image: sky, road, verge, boxes, noise.

    Not a photograph, but it has the large smooth regions, edges and texture of a street
    scene, which random noise lacks (the accuracy figures depend on realistic activations).
    """
    rng = np.random.default_rng(seed)
    v = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    u = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
    horizon = 0.42 + 0.06 * rng.standard_normal()
    image = np.empty((height, width, 3), np.float32)
    sky = np.stack([110 + 80 * v, 150 + 60 * v, 230 - 20 * v], axis=-1)
    ground = np.where((np.abs(u) < 0.15 + 1.2 * (v - horizon))[..., None],
                      np.array([95, 95, 100], np.float32),    # road
                      np.array([70, 120, 55], np.float32))    # verge
    image[:] = np.where((v < horizon)[..., None], np.broadcast_to(sky, image.shape), ground)
    for _ in range(int(rng.integers(4, 9))):  # cars, walls, trees
        w = int(rng.integers(width // 20, width // 5))
        h = int(rng.integers(height // 10, height // 3))
        x0 = int(rng.integers(0, width - w))
        y1 = int(height * horizon) + int(rng.integers(0, max(1, height // 4)))
        y0 = max(0, y1 - h)
        image[y0:y1, x0:x0 + w] = rng.integers(20, 235, 3)
        image[y0:y1, x0:x0 + w] *= 0.8 + 0.2 * np.linspace(0, 1, w, dtype=np.float32)[:, None]
    image += rng.normal(0.0, 6.0, image.shape).astype(np.float32)  # sensor noise, texture
    return np.clip(image, 0, 255).astype(np.uint8)


def calibrate_random_model(model: EigenDepthNet, x: torch.Tensor, mean_log: float = 2.3,
                           std_log: float = 0.6) -> EigenDepthNet:
    """
    Rescale a randomly initialised network so its activations look like a trained one's.

    Layer by layer in forward order, weights and bias are scaled so the layer's output has
    unit standard deviation on ``x``; the two output layers (coarse fc7, fine conv4) get
    standard deviation ``std_log`` around ``mean_log`` (log depth of about 10 m). Without
    this a random network's output is nearly constant and backend differences look
    smaller than they would with trained weights. Used only when no checkpoint is given.
    """
    outputs = (model.coarse.fc7, model.fine.conv4)
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    seen: dict[nn.Module, torch.Tensor] = {}

    def keep(module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        seen[module] = output.detach()

    with torch.no_grad():
        for layer in layers:
            handle = layer.register_forward_hook(keep)
            model(x)
            handle.remove()
            out = seen.pop(layer)
            target = std_log if layer in outputs else 1.0
            scale = target / max(float(out.std()), 1e-12)
            layer.weight.mul_(scale)
            layer.bias.mul_(scale)
            if layer in outputs:
                layer.bias.add_(mean_log - float(out.mean()) * scale)
    return model


def camera_family(config: Any) -> str:
    """Return the data set a configuration is made for: ``kitti`` for ``kitti-small`` too."""
    return config.name.split('-')[0]


def camera_size(config: Any) -> tuple[int, int]:
    """(width, height) of the camera images benchmarked for ``config``."""
    return CAMERA_SIZES.get(camera_family(config),
                            (config.input_width * 2, config.input_height * 2))


def network_input(image: np.ndarray, config: Any) -> torch.Tensor:
    """Make the normalised network input (1, 3, H_in, W_in) float32 of a camera image."""
    window = InputGeometry.fit(image.shape[1], image.shape[0], config).crop_input(image)
    return normalize_image(torch.from_numpy(window).permute(2, 0, 1).unsqueeze(0))

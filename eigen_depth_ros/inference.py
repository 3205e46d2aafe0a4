"""Depth from one RGB image, without ROS: uint8 (H, W, 3) in, float32 metres out.

The camera image is resized and centre-cropped onto the network input as
:class:`~eigen_depth_ros.geometry.InputGeometry` describes; the prediction comes back at the
output-map resolution (with :meth:`DepthEstimator.output_intrinsics` for its pinhole model)
or resampled to the camera image (NaN where the network does not see).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from .checkpoint import load_checkpoint
from .geometry import InputGeometry
from .model import EigenDepthNet, Stage, normalize_image

Resolution = Literal['network', 'input']


def select_device(spec: str = 'auto') -> torch.device:
    """Resolve a device spec: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``
    or ``cuda:N``.

    :raises ValueError: for an unknown spec or a CUDA device that is not there.
    """
    spec = spec.strip().lower()
    if spec == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if spec == 'cpu':
        return torch.device('cpu')
    if spec == 'cuda' or (spec.startswith('cuda:') and spec[5:].isdigit()):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(spec[5:]) if ':' in spec else 0
        if index >= count:
            raise ValueError(f'device {spec!r} is not available ({count} CUDA device(s) here)')
        return torch.device(spec)
    raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {spec!r}")


@dataclass
class DepthPrediction:
    """One prediction: ``depth`` in metres and the geometry that places it in the camera."""

    depth: np.ndarray  # (H_out, W_out) float32 metres, or (H, W) when resampled to the image
    geometry: InputGeometry
    resolution: Resolution

    def intrinsics(self, fx: float, fy: float, cx: float, cy: float
                   ) -> tuple[float, float, float, float]:
        """Pinhole intrinsics of :attr:`depth` for a camera with intrinsics (fx, fy, cx, cy)."""
        if self.resolution == 'input':
            return fx, fy, cx, cy
        return self.geometry.output_intrinsics(fx, fy, cx, cy)


class DepthEstimator:
    """Runs an :class:`EigenDepthNet` on camera images.

    :param model: the network (put in eval mode and moved to ``device``).
    :param device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    :param half: run in float16 (CUDA only; ignored with a warning flag on CPU).
    """

    def __init__(self, model: EigenDepthNet, device: str = 'auto', half: bool = False) -> None:
        self.device = select_device(device)
        self.half = bool(half) and self.device.type == 'cuda'
        self.dtype = torch.float16 if self.half else torch.float32
        self.model = model.to(self.device, self.dtype).eval()
        self.config = model.config
        self._geometries: dict[tuple[int, int], InputGeometry] = {}

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str = 'auto',
                        half: bool = False) -> 'DepthEstimator':
        """Load a checkpoint (see :func:`~eigen_depth_ros.checkpoint.load_checkpoint`)."""
        model, _ = load_checkpoint(path, map_location='cpu')
        return cls(model, device=device, half=half)

    def geometry(self, width: int, height: int) -> InputGeometry:
        """The (cached) centre-crop geometry for camera images of ``width x height``."""
        key = (width, height)
        if key not in self._geometries:
            self._geometries[key] = InputGeometry.fit(width, height, self.config)
        return self._geometries[key]

    def preprocess(self, rgb: np.ndarray) -> tuple[torch.Tensor, InputGeometry]:
        """Resize/crop an RGB uint8 (H, W, 3) image into the normalised input (1, 3, h, w)."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f'expected an RGB uint8 (H, W, 3) image, got {rgb.dtype} '
                             f'{rgb.shape}')
        geometry = self.geometry(rgb.shape[1], rgb.shape[0])
        window = geometry.crop_input(rgb)                        # (h, w, 3) uint8
        x = torch.from_numpy(np.ascontiguousarray(window)).to(self.device)
        x = normalize_image(x.permute(2, 0, 1).unsqueeze(0))     # (1, 3, h, w) float32
        return x.to(self.dtype), geometry

    @torch.inference_mode()
    def predict_log(self, rgb: np.ndarray, stage: Stage = 'fine'
                    ) -> tuple[np.ndarray, InputGeometry]:
        """Log depth (H_out, W_out) float32 of one RGB image, and its geometry."""
        x, geometry = self.preprocess(rgb)
        log_depth = self.model(x, stage=stage)[0, 0]  # (H_out, W_out)
        return log_depth.float().cpu().numpy(), geometry

    def predict(self, rgb: np.ndarray, resolution: Resolution = 'network',
                stage: Stage = 'fine') -> DepthPrediction:
        """Metric depth of one RGB uint8 (H, W, 3) image.

        :param resolution: ``'network'`` for the output map (e.g. 142x27 for KITTI),
            ``'input'`` for the camera image size (NaN where the network does not see).
        :param stage: ``'fine'`` (coarse + fine) or ``'coarse'``.
        """
        log_depth, geometry = self.predict_log(rgb, stage)
        depth = np.exp(log_depth).astype(np.float32)
        if resolution == 'input':
            depth = geometry.output_to_image(depth)
        elif resolution != 'network':
            raise ValueError(f"resolution must be 'network' or 'input', got {resolution!r}")
        return DepthPrediction(depth, geometry, resolution)

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
Undistorting a raw camera image with its camera_info, before the network sees it.

A camera that publishes ``image_raw`` with a non-zero distortion ``D`` bends every ray away
from the pinhole model the depth, its camera_info and the cloud follow. :class:`Rectifier`
remaps such an image to the rectified pinhole camera of the camera_info's ``P`` (``K`` when
``P`` is zero), turned by ``R``, as image_proc's rectify node does, with OpenCV's maps: built
once per distinct :class:`Lens` and kept (a few of them, for cameras whose info changes).
Supported models: ``plumb_bob`` (5 coefficients), ``rational_polynomial`` (8) and
``equidistant`` (4, OpenCV's fisheye model). Importable without rclpy.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
import math
from typing import Any

import cv2
import numpy as np

DISTORTION_MODELS = {'plumb_bob': 5, 'rational_polynomial': 8, 'equidistant': 4}
"""The distortion models that can be undone, and the length of their ``D``."""

CACHED_MAPS = 4
"""How many lenses' maps are kept."""

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


class LensError(ValueError):
    """A camera_info's distortion cannot be undone; the text names the field."""


@dataclass(frozen=True)
class Lens:
    """
    The distortion of a camera and the rectified camera to remap it to.

    :param model: the distortion model (a key of :data:`DISTORTION_MODELS`).
    :param d: the distortion coefficients.
    :param k: the camera matrix of the raw image, row-major.
    :param r: the rectification rotation, row-major.
    :param new_k: the camera matrix of the rectified image, row-major.
    :param width: the image width.
    :param height: the image height.
    """

    model: str
    d: tuple[float, ...]
    k: tuple[float, ...]
    r: tuple[float, ...]
    new_k: tuple[float, ...]
    width: int
    height: int

    @property
    def distorted(self) -> bool:
        """Whether any distortion coefficient is non-zero."""
        return any(value != 0.0 for value in self.d)


def lens_from_camera_info(msg: Any) -> Lens | None:
    """
    Read the distortion of a sensor_msgs/CameraInfo; None when there is nothing to undo.

    Nothing to undo: ``D`` empty or all zero, and ``R`` the identity (or all zero, as some
    drivers leave it).

    :param msg: a CameraInfo (duck-typed: ``distortion_model``, ``d``, ``k``, ``r``, ``p``,
        ``width``, ``height``, ``binning_x/y``, ``roi``).
    :raises LensError: for a model OpenCV cannot undo, a ``D`` of the wrong length, a
        non-finite value, or binning or a region of interest (not supported with distortion).
    """
    d = tuple(float(v) for v in msg.d)
    r = tuple(float(v) for v in msg.r)
    if not any(r):
        r = IDENTITY
    if not any(d) and r == IDENTITY:
        return None
    model = str(msg.distortion_model)
    if model not in DISTORTION_MODELS:
        raise LensError(f"distortion_model '{model}' cannot be undone (supported: "
                        f"{', '.join(DISTORTION_MODELS)})")
    if len(d) != DISTORTION_MODELS[model]:
        raise LensError(f'd has {len(d)} coefficients, {model} needs '
                        f'{DISTORTION_MODELS[model]}')
    k = tuple(float(v) for v in msg.k)
    p = tuple(float(v) for v in msg.p)
    if not all(math.isfinite(v) for v in d + r + k + p):
        raise LensError('d, k, r or p holds a value that is not finite')
    roi = getattr(msg, 'roi', None)
    binned = max(int(getattr(msg, 'binning_x', 0)), int(getattr(msg, 'binning_y', 0))) > 1
    if binned or (roi is not None and int(roi.width) > 0 and int(roi.height) > 0):
        raise LensError('binning_x/binning_y or roi is set: undistorting a binned or '
                        'cropped image is not supported')
    new_k = (p[0], p[1], p[2], p[4], p[5], p[6], p[8], p[9], p[10]) if p[0] and p[5] else k
    return Lens(model, d, k, r, new_k, int(msg.width), int(msg.height))


class Rectifier:
    """Remaps raw images to their rectified pinhole camera, with maps cached per lens."""

    def __init__(self, cached: int = CACHED_MAPS) -> None:
        """Keep the maps of up to ``cached`` lenses (the least recently used goes)."""
        self._cached = cached
        self._maps: OrderedDict[Lens, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def maps(self, lens: Lens) -> tuple[np.ndarray, np.ndarray]:
        """Return the ``cv2.remap`` maps of ``lens`` (fixed point), built on first use."""
        if lens in self._maps:
            self._maps.move_to_end(lens)
            return self._maps[lens]
        k, r, new_k = (np.array(m, np.float64).reshape(3, 3)
                       for m in (lens.k, lens.r, lens.new_k))
        d = np.array(lens.d, np.float64)
        size = (lens.width, lens.height)
        if lens.model == 'equidistant':
            maps = cv2.fisheye.initUndistortRectifyMap(k, d, r, new_k, size, cv2.CV_16SC2)
        else:
            maps = cv2.initUndistortRectifyMap(k, d, r, new_k, size, cv2.CV_16SC2)
        self._maps[lens] = maps
        while len(self._maps) > self._cached:
            self._maps.popitem(last=False)
        return maps

    def rectify(self, image: np.ndarray, lens: Lens) -> np.ndarray:
        """
        Return ``image`` (H, W[, C]) remapped to the rectified camera of ``lens``.

        Pixels that see nothing of the raw image are black.

        :raises LensError: when the image is not of the lens's size.
        """
        if image.shape[:2] != (lens.height, lens.width):
            raise LensError(f'camera_info is for {lens.width}x{lens.height} but the image is '
                            f'{image.shape[1]}x{image.shape[0]}')
        map1, map2 = self.maps(lens)
        return cv2.remap(image, map1, map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)

    def __len__(self) -> int:
        """How many lenses' maps are cached."""
        return len(self._maps)

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
Pinhole intrinsics from sensor_msgs/CameraInfo, and the CameraInfo of the depth image.

The intrinsics are those of a rectified image, as depth_image_proc and
``image_geometry.PinholeCameraModel`` read them: fx, fy, cx, cy come from the projection
matrix ``P`` (falling back to ``K`` when a driver leaves ``P`` zero), and binning and a region
of interest are applied. Lens distortion is not modelled here: the node undistorts a raw
image whose camera_info has a non-zero ``D`` before the network
(:mod:`eigen_depth_ros.node.rectify`, parameter ``rectify``), so that these intrinsics hold.

Nothing here imports rclpy; messages are duck-typed.
"""
from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Any


class CameraInfoError(ValueError):
    """A CameraInfo cannot describe the image: the text says why, on one line."""


@dataclass(frozen=True)
class Intrinsics:
    """
    Pinhole model of one image size; pixel-centre coordinates (pixel k has its centre at k).

    :param fx: focal length along x in pixels.
    :param fy: focal length along y in pixels.
    :param cx: principal point column.
    :param cy: principal point row.
    :param width: image width the model is for.
    :param height: image height the model is for.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        """Check the values (finite, positive focal lengths, non-empty size)."""
        if not all(math.isfinite(v) for v in (self.fx, self.fy, self.cx, self.cy)):
            raise CameraInfoError(f'intrinsics are not finite: fx={self.fx} fy={self.fy} '
                                  f'cx={self.cx} cy={self.cy}')
        if self.fx <= 0 or self.fy <= 0:
            raise CameraInfoError(f'focal length must be positive: fx={self.fx} fy={self.fy}')
        if self.width <= 0 or self.height <= 0:
            raise CameraInfoError(f'image size is {self.width}x{self.height}: empty')

    @property
    def pinhole(self) -> tuple[float, float, float, float]:
        """``(fx, fy, cx, cy)``."""
        return self.fx, self.fy, self.cx, self.cy

    def matches(self, width: int, height: int) -> bool:
        """Whether these intrinsics are for an image of ``width x height``."""
        return (self.width, self.height) == (width, height)

    def describe(self) -> str:
        """One-line summary for logs."""
        return (f'{self.width}x{self.height} fx={self.fx:.2f} fy={self.fy:.2f} '
                f'cx={self.cx:.2f} cy={self.cy:.2f}')


def intrinsics_from_camera_info(msg: Any) -> Intrinsics:
    """
    Read the intrinsics of the images a CameraInfo describes.

    Uses ``P`` (``K`` when ``P``'s focal lengths are zero), then applies ``binning_x/y``
    and ``roi`` as image_geometry does: the image is the ROI (or the full sensor) divided
    by the binning.

    :param msg: a sensor_msgs/CameraInfo (duck-typed: ``width``, ``height``, ``k``, ``p``,
        ``binning_x``, ``binning_y``, ``roi``).
    :raises CameraInfoError: for zero, negative or non-finite focal lengths, a non-finite
        principal point or a zero image size.
    """
    p = [float(v) for v in msg.p]
    k = [float(v) for v in msg.k]
    if len(p) == 12 and p[0] != 0 and p[5] != 0:
        fx, fy, cx, cy = p[0], p[5], p[2], p[6]
        fields = ('p[0]', 'p[5]')
    elif len(k) == 9:
        fx, fy, cx, cy = k[0], k[4], k[2], k[5]
        fields = ('k[0]', 'k[4]')
    else:
        raise CameraInfoError(f'camera_info K has {len(k)} values, expected 9')
    bad = [f'{field} ({name})' for field, name, value in zip(fields, ('fx', 'fy'), (fx, fy))
           if not (math.isfinite(value) and value > 0)]
    if bad:
        raise CameraInfoError(f'camera_info focal length is fx={fx} fy={fy}: must be '
                              f'positive and finite (uncalibrated camera?); bad field '
                              f'{" and ".join(bad)}')
    width, height = int(msg.width), int(msg.height)
    if width <= 0 or height <= 0:
        raise CameraInfoError(f'camera_info image size is {width}x{height}: empty')
    bin_x = max(int(getattr(msg, 'binning_x', 0)), 1)
    bin_y = max(int(getattr(msg, 'binning_y', 0)), 1)
    roi = getattr(msg, 'roi', None)
    if roi is not None and int(roi.width) > 0 and int(roi.height) > 0:
        cx -= int(roi.x_offset)
        cy -= int(roi.y_offset)
        width, height = int(roi.width), int(roi.height)
    return Intrinsics(fx / bin_x, fy / bin_y, (cx + 0.5) / bin_x - 0.5,
                      (cy + 0.5) / bin_y - 0.5, width // bin_x, height // bin_y)


def fallback_intrinsics(width: int, height: int, fx: float, fy: float = 0.0,
                        cx: float = -1.0, cy: float = -1.0) -> Intrinsics:
    """
    Intrinsics from user parameters, for cameras that publish no camera_info.

    :param width: image width.
    :param height: image height.
    :param fx: focal length in pixels (> 0).
    :param fy: focal length along y; 0 means equal to ``fx``.
    :param cx: principal point column; negative means the image centre ``(width - 1) / 2``.
    :param cy: principal point row; negative means ``(height - 1) / 2``.
    """
    return Intrinsics(float(fx), float(fy) if fy > 0 else float(fx),
                      float(cx) if cx >= 0 else (width - 1) / 2.0,
                      float(cy) if cy >= 0 else (height - 1) / 2.0, int(width), int(height))


def depth_camera_info_fields(fx: float, fy: float, cx: float, cy: float, width: int,
                             height: int) -> dict[str, Any]:
    """
    Return the fields of the CameraInfo of a depth image (no header).

    The depth image is rectified (no distortion, ``plumb_bob`` with five zeros, identity
    ``R``), ``K`` holds the intrinsics and ``P = [K | 0]``; binning and ROI are zero.
    """
    return {
        'width': int(width), 'height': int(height), 'distortion_model': 'plumb_bob',
        'd': [0.0] * 5,
        'k': [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0],
        'r': [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        'p': [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0],
        'binning_x': 0, 'binning_y': 0,
    }

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

"""Pinhole projection helpers shared by ground-truth generation and evaluation."""
from __future__ import annotations

import numpy as np


def nearest_depth_image(cols: np.ndarray, rows: np.ndarray, depth: np.ndarray,
                        width: int, height: int) -> np.ndarray:
    """
    Splat points with integer pixel coordinates into a depth image, keeping the nearest.

    Points outside ``width x height`` are dropped.

    :param cols: (N,) integer column of each point.
    :param rows: (N,) integer row of each point.
    :param depth: (N,) depth of each point.
    :return: (height, width) float32, 0 where no point lands.
    """
    cols = np.asarray(cols, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    inside = (cols >= 0) & (rows >= 0) & (cols < width) & (rows < height)
    out = np.full(height * width, np.inf, dtype=np.float32)
    np.minimum.at(out, rows[inside] * width + cols[inside],
                  np.asarray(depth, dtype=np.float32)[inside])
    out[np.isinf(out)] = 0.0
    return out.reshape(height, width)


def project_to_depth_image(points_cam: np.ndarray, fx: float, fy: float, cx: float, cy: float,
                           width: int, height: int, min_depth: float = 1e-3) -> np.ndarray:
    """
    Sparse depth image of 3D points in a camera optical frame (x right, y down, z forward).

    A point (X, Y, Z) with Z > ``min_depth`` lands on pixel
    ``(round(fx X / Z + cx), round(fy Y / Z + cy))`` (ROS convention: pixel centres at integer
    coordinates) with depth Z; the nearest point wins a pixel.

    :param points_cam: (N, 3) points in the camera optical frame, metres.
    :return: (height, width) float32 metres, 0 where no point lands.
    """
    pts = np.asarray(points_cam, dtype=np.float64)
    pts = pts[np.isfinite(pts).all(axis=1) & (pts[:, 2] > min_depth)]
    cols = np.rint(fx * pts[:, 0] / pts[:, 2] + cx)
    rows = np.rint(fy * pts[:, 1] / pts[:, 2] + cy)
    return nearest_depth_image(cols, rows, pts[:, 2], width, height)


def rotation_to_quaternion(rotation: np.ndarray) -> tuple[float, float, float, float]:
    """Return the unit quaternion ``(x, y, z, w)`` of a 3x3 rotation (``w >= 0``)."""
    r = np.asarray(rotation, dtype=np.float64)
    w = np.sqrt(max(0.0, 1.0 + r[0, 0] + r[1, 1] + r[2, 2])) / 2
    x = np.sqrt(max(0.0, 1.0 + r[0, 0] - r[1, 1] - r[2, 2])) / 2
    y = np.sqrt(max(0.0, 1.0 - r[0, 0] + r[1, 1] - r[2, 2])) / 2
    z = np.sqrt(max(0.0, 1.0 - r[0, 0] - r[1, 1] + r[2, 2])) / 2
    x = np.copysign(x, r[2, 1] - r[1, 2])
    y = np.copysign(y, r[0, 2] - r[2, 0])
    z = np.copysign(z, r[1, 0] - r[0, 1])
    q = np.array([x, y, z, w])
    q /= np.linalg.norm(q)
    return tuple(float(v) for v in q)


def quaternion_to_rotation(x: float, y: float, z: float, w: float) -> np.ndarray:
    """3x3 rotation matrix of a quaternion ``(x, y, z, w)`` (normalised first)."""
    q = np.array([x, y, z, w], dtype=np.float64)
    norm = np.linalg.norm(q)
    if not np.isfinite(norm) or norm < 1e-9:
        raise ValueError(f'quaternion {q.tolist()} has no valid rotation')
    x, y, z, w = q / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])

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
Depth image + pinhole intrinsics -> point cloud, vectorised with numpy, and PointCloud2 I/O.

Points are in the camera optical frame (REP 103): x right, y down, z forward. A depth pixel
(u, v) in pixel-centre coordinates (pixel k has its centre at k) with depth z becomes

    x = (u - cx) * z / fx,    y = (v - cy) * z / fy,    z = z

so projecting a point with the same intrinsics gives back its pixel exactly:
``u = fx * x / z + cx``. The intrinsics must be those of the depth image itself (for the
node, the ones it publishes on ``depth/camera_info``).

Clearing points (``clearing_range`` R > 0): a costmap clears only along rays to points it
receives, so a pixel that sees nothing within ``max_depth`` (depth beyond it, or +inf,
REP 118's "no return") is published at distance R along its own ray,

    p = R d,   d = (r_x, r_y, 1) / sqrt(r_x^2 + r_y^2 + 1),   r_x = (u - cx) / fx,
    r_y = (v - cy) / fy,

so ``|p| = R`` and p projects back onto its pixel. R must exceed ``max_depth``. NaN
(unknown: e.g. where the network does not see), -inf (too near) and depths below
``min_depth`` never clear: nothing says the space along those rays is free.

Nothing here imports rclpy: :func:`build_point_cloud2` takes the message classes as
arguments, and :func:`point_cloud2_to_array` reads any object with PointCloud2's fields.
"""
from __future__ import annotations

import functools
import math
from typing import Any

import cv2
import numpy as np

from .image_conversion import byte_array, NATIVE_BIGENDIAN

XYZ_DTYPE = np.dtype([('x', np.float32), ('y', np.float32), ('z', np.float32)])
"""One point: float32 x, y, z (12 bytes)."""

XYZRGB_DTYPE = np.dtype([('x', np.float32), ('y', np.float32), ('z', np.float32),
                         ('rgb', np.float32)])
"""One point with colour packed as RViz and PCL expect (16 bytes), see :func:`pack_rgb`."""

# sensor_msgs/PointField datatype constants -> numpy type codes.
POINT_FIELD_TYPES = {1: 'i1', 2: 'u1', 3: 'i2', 4: 'u2', 5: 'i4', 6: 'u4', 7: 'f4', 8: 'f8'}
FLOAT32 = 7


def pack_rgb(colors: np.ndarray) -> np.ndarray:
    """
    Pack uint8 R, G, B into the float32 ``rgb`` field RViz reads.

    The float's bits are the uint32 ``(r << 16) | (g << 8) | b`` (alpha byte 0).

    :param colors: uint8 (..., 3) in R, G, B order.
    :return: float32 (...).
    """
    colors = np.asarray(colors, dtype=np.uint8)
    # The uint32's bytes in memory: b, g, r, 0 little-endian; 0, r, g, b big-endian.
    offsets = (1, 2, 3) if NATIVE_BIGENDIAN else (2, 1, 0)  # of r, g, b
    packed = np.zeros(colors.shape[:-1] + (4,), dtype=np.uint8)
    for channel, offset in enumerate(offsets):
        packed[..., offset] = colors[..., channel]
    return packed.view(np.float32)[..., 0]


def unpack_rgb(rgb: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_rgb`: float32 (...) -> uint8 (..., 3) R, G, B."""
    bits = np.ascontiguousarray(rgb, dtype=np.float32).view(np.uint32)
    return np.stack([(bits >> 16) & 0xFF, (bits >> 8) & 0xFF, bits & 0xFF],
                    axis=-1).astype(np.uint8)


def _check_intrinsics(fx: float, fy: float, cx: float, cy: float) -> None:
    """Raise ValueError unless fx, fy are finite and positive and cx, cy finite."""
    if not (math.isfinite(fx) and math.isfinite(fy) and fx > 0 and fy > 0):
        raise ValueError(f'focal lengths must be finite and positive, got fx={fx}, fy={fy}')
    if not (math.isfinite(cx) and math.isfinite(cy)):
        raise ValueError(f'principal point must be finite, got cx={cx}, cy={cy}')


def depth_to_points(depth: np.ndarray, fx: float, fy: float, cx: float, cy: float,
                    stride: int = 1, min_depth: float = 0.0, max_depth: float = math.inf,
                    colors: np.ndarray | None = None, clearing_range: float = 0.0
                    ) -> np.ndarray:
    """
    Back-project a depth image into points in the camera optical frame.

    Only pixels with ``u % stride == 0`` and ``v % stride == 0`` are used (decimation), and
    of those only the ones whose depth is finite, positive and within
    ``min_depth <= z <= max_depth``. The result is unorganised, in row-major pixel order.

    :param depth: (H, W) float depth in metres; NaN, inf and values <= 0 are invalid.
    :param fx: focal length along x, in pixels of ``depth``.
    :param fy: focal length along y, in pixels of ``depth``.
    :param cx: principal point column, pixel-centre coordinates of ``depth``.
    :param cy: principal point row.
    :param stride: keep every ``stride``-th row and column (>= 1).
    :param min_depth: smallest kept depth z in metres.
    :param max_depth: largest kept depth z in metres.
    :param colors: optional RGB uint8 (H, W, 3) aligned with ``depth``; adds the ``rgb``
        field.
    :param clearing_range: 0 (off) or a distance R > ``max_depth``, metres: pixels on the
        grid deeper than ``max_depth`` (+inf included) become points at distance R along
        their ray (see the module docstring), in the same row-major order.
    :return: a structured array of :data:`XYZ_DTYPE` (or :data:`XYZRGB_DTYPE`), shape (N,).
    :raises ValueError: for a non-2-D depth, bad intrinsics, stride < 1, an empty range,
        colours of another size or a clearing range not beyond ``max_depth``.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f'expected an (H, W) depth image, got shape {depth.shape}')
    _check_intrinsics(fx, fy, cx, cy)
    if int(stride) != stride or stride < 1:
        raise ValueError(f'stride must be an integer >= 1, got {stride}')
    if not min_depth <= max_depth:
        raise ValueError(f'min_depth {min_depth} is above max_depth {max_depth}')
    if colors is not None and (colors.shape[:2] != depth.shape or colors.ndim != 3
                               or colors.shape[2] != 3):
        raise ValueError(f'colors {colors.shape} do not match depth {depth.shape} x 3')
    if clearing_range and not (math.isfinite(clearing_range) and clearing_range > max_depth):
        raise ValueError(f'clearing_range must be 0 or a finite distance beyond max_depth '
                         f'{max_depth}, got {clearing_range}')
    stride = int(stride)
    z_grid = depth[::stride, ::stride]                                   # (h, w)
    with np.errstate(invalid='ignore'):  # NaN fails every comparison
        keep = (z_grid > 0) & (z_grid >= min_depth) & (z_grid <= max_depth)
        clear = z_grid > max_depth if clearing_range else None
    # An infinite z can pass the range test, but its x and y are then inf or NaN: dropped
    # below with the points whose x, y overflow float32 under absurd intrinsics.
    kept = np.flatnonzero(keep if clear is None else keep | clear)  # into the (h, w) grid
    z = z_grid.reshape(-1).take(kept).astype(np.float32)                  # (N,)
    ray_x, ray_y = _rays(z_grid.shape, stride, float(fx), float(fy), float(cx), float(cy))
    if clear is not None:  # z of the point at distance R along the ray: R / |(rx, ry, 1)|
        at = np.flatnonzero(clear.reshape(-1).take(kept))       # positions in the output
        cleared = kept[at]                                        # flat pixel indices
        rx, ry = ray_x.take(cleared).astype(np.float64), ray_y.take(cleared).astype(np.float64)
        with np.errstate(over='ignore'):
            z[at] = clearing_range / np.sqrt(rx * rx + ry * ry + 1.0)
    points = np.empty(z.size, dtype=XYZ_DTYPE if colors is None else XYZRGB_DTYPE)
    with np.errstate(over='ignore', invalid='ignore'):
        np.multiply(ray_x.take(kept), z, out=points['x'])
        np.multiply(ray_y.take(kept), z, out=points['y'])
    points['z'] = z
    if colors is not None:
        points['rgb'] = pack_rgb(colors[::stride, ::stride]).reshape(-1).take(kept)
    finite = np.isfinite(points['x']) & np.isfinite(points['y'])
    return points if finite.all() else points[finite]


@functools.lru_cache(maxsize=8)
def _rays(shape: tuple[int, int], stride: int, fx: float, fy: float, cx: float, cy: float
          ) -> tuple[np.ndarray, np.ndarray]:
    """
    Return the float32 rays ``(u - cx) / fx`` and ``(v - cy) / fy``, flattened (h * w,).

    ``u = stride * column`` and ``v = stride * row`` of a decimated (h, w) depth grid;
    cached, as a node sees the same grid and intrinsics frame after frame.
    """
    height, width = shape
    with np.errstate(over='ignore'):
        ray_x = ((np.arange(width) * stride - cx) / fx).astype(np.float32)
        ray_y = ((np.arange(height) * stride - cy) / fy).astype(np.float32)
    rays = (np.broadcast_to(ray_x[None, :], shape).reshape(-1),   # copies: contiguous
            np.broadcast_to(ray_y[:, None], shape).reshape(-1))
    for ray in rays:
        ray.flags.writeable = False  # shared by every caller
    return rays


def points_to_pixels(points: np.ndarray, fx: float, fy: float, cx: float, cy: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """
    Project points of a cloud to (u, v) pixel coordinates, ``u = fx * x / z + cx``.

    :param points: structured array with float fields ``x``, ``y``, ``z`` (z > 0).
    :return: float64 arrays ``(u, v)``.
    """
    z = points['z'].astype(np.float64)
    return (fx * points['x'] / z + cx, fy * points['y'] / z + cy)


def resample_to_grid(image: np.ndarray, affine: tuple[float, float, float, float],
                     width: int, height: int) -> np.ndarray:
    """
    Sample an image at the grid points ``(a_x j + b_x, a_y i + b_y)``, bilinearly.

    Colours a depth map that is smaller than the camera image: with the affine of
    :meth:`~eigen_depth_ros.core.geometry.InputGeometry.output_to_image_affine`, grid pixel
    (j, i) gets the camera colour at the spot the depth pixel sees.

    :param image: (H, W, C) or (H, W) array.
    :param affine: ``(a_x, b_x, a_y, b_y)``.
    :param width: grid width.
    :param height: grid height.
    :return: (height, width[, C]) array of the image's dtype; border pixels are extended.
    """
    a_x, b_x, a_y, b_y = affine
    matrix = np.array([[a_x, 0.0, b_x], [0.0, a_y, b_y]])
    return cv2.warpAffine(np.ascontiguousarray(image), matrix, (int(width), int(height)),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def point_fields(dtype: np.dtype) -> list[tuple[str, int, int, int]]:
    """``(name, offset, datatype, count)`` of each float32 field of a point dtype."""
    fields = []
    for name in dtype.names:
        field_dtype, offset = dtype.fields[name][:2]
        if field_dtype != np.float32:
            raise ValueError(f'field {name!r} is {field_dtype}, only float32 is written')
        fields.append((name, offset, FLOAT32, 1))
    return fields


def build_point_cloud2(points: np.ndarray, header: Any, cloud_cls: type,
                       field_cls: type) -> Any:
    """
    Build an unorganised (height 1), dense sensor_msgs/PointCloud2 from a structured array.

    :param points: (N,) array of float32 fields, e.g. from :func:`depth_to_points`.
    :param header: the std_msgs/Header to copy into the message.
    :param cloud_cls: the PointCloud2 message class (e.g. ``sensor_msgs.msg.PointCloud2``).
    :param field_cls: the PointField message class.
    :return: a ``cloud_cls`` instance.
    """
    points = np.ascontiguousarray(points).reshape(-1)
    cloud = cloud_cls()
    cloud.header = header
    cloud.height = 1
    cloud.width = points.size
    cloud.fields = [field_cls(name=name, offset=offset, datatype=datatype, count=count)
                    for name, offset, datatype, count in point_fields(points.dtype)]
    cloud.is_bigendian = bool(NATIVE_BIGENDIAN)
    cloud.point_step = points.dtype.itemsize
    cloud.row_step = points.dtype.itemsize * points.size
    cloud.data = byte_array(points)
    cloud.is_dense = True
    return cloud


def point_cloud2_to_array(cloud: Any) -> np.ndarray:
    """
    Read a PointCloud2 (duck-typed) into a structured numpy array.

    Honours ``point_step``, ``row_step``, field offsets, counts and ``is_bigendian``.

    :return: (height * width,) structured array in native byte order, one field per
        PointField (a field with count > 1 becomes a sub-array).
    :raises ValueError: for unknown field types or data shorter than the header says.
    """
    order = '>' if cloud.is_bigendian else '<'
    names, formats, offsets = [], [], []
    for field in cloud.fields:
        if field.datatype not in POINT_FIELD_TYPES:
            raise ValueError(f'field {field.name!r} has unknown datatype {field.datatype}')
        code = order + POINT_FIELD_TYPES[field.datatype]
        names.append(field.name)
        formats.append((code, (field.count,)) if field.count > 1 else code)
        offsets.append(field.offset)
    dtype = np.dtype({'names': names, 'formats': formats, 'offsets': offsets,
                      'itemsize': int(cloud.point_step)})
    height, width = int(cloud.height), int(cloud.width)
    row_bytes = width * int(cloud.point_step)
    row_step = int(cloud.row_step)
    if height * width == 0:
        return np.zeros(0, dtype=dtype.newbyteorder('='))
    if row_step < row_bytes:
        raise ValueError(f'row_step {row_step} is below width {width} x point_step '
                         f'{cloud.point_step}')
    data = np.frombuffer(cloud.data, dtype=np.uint8) if not isinstance(
        cloud.data, np.ndarray) else cloud.data.reshape(-1).view(np.uint8)
    needed = row_step * (height - 1) + row_bytes
    if data.size < needed:
        raise ValueError(f'cloud data holds {data.size} bytes, the header needs {needed}')
    rows = np.lib.stride_tricks.as_strided(data, (height, row_bytes), (row_step, 1))
    points = np.ascontiguousarray(rows).view(dtype).reshape(-1)
    return points.astype(dtype.newbyteorder('='))

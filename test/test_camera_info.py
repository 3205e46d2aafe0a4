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

"""Tests of eigen_depth_ros.msg.camera_info: CameraInfo -> intrinsics and back (no rclpy)."""
from __future__ import annotations

import math
from types import SimpleNamespace

from eigen_depth_ros.msg.camera_info import (CameraInfoError, depth_camera_info_fields,
                                             fallback_intrinsics, Intrinsics,
                                             intrinsics_from_camera_info)
import pytest


def camera_info(**overrides: object) -> SimpleNamespace:
    """Return a duck-typed 640x480 CameraInfo whose P and K differ, with ``overrides`` set."""
    info = SimpleNamespace(width=640, height=480, binning_x=0, binning_y=0,
                           roi=SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0),
                           k=[500.0, 0, 320.0, 0, 505.0, 240.0, 0, 0, 1],
                           p=[490.0, 0, 318.0, 0, 0, 495.0, 238.0, 0, 0, 0, 1, 0])
    for name, value in overrides.items():
        setattr(info, name, value)
    return info


def projection(fx: float, fy: float, cx: float, cy: float) -> list[float]:
    """Return the 12 values of a P = [K | 0] with these intrinsics."""
    return [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]


def test_intrinsics_come_from_p_then_k() -> None:
    assert intrinsics_from_camera_info(camera_info()).pinhole == (490.0, 495.0, 318.0, 238.0)
    k_only = intrinsics_from_camera_info(camera_info(p=[0.0] * 12))
    assert k_only.pinhole == (500.0, 505.0, 320.0, 240.0)
    assert k_only.matches(640, 480) and not k_only.matches(480, 640)


@pytest.mark.parametrize('p,expected', [
    # P's fy is zero (its cy is not): a driver that filled only part of P, so K is used
    (projection(490.0, 0.0, 318.0, 238.0), (500.0, 505.0, 320.0, 240.0)),
    # P's fx is zero: K again
    (projection(0.0, 495.0, 318.0, 238.0), (500.0, 505.0, 320.0, 240.0)),
    # a P whose cy is zero and whose focal lengths are 1 px is still a valid P
    (projection(1.0, 1.0, 2.0, 0.0), (1.0, 1.0, 2.0, 0.0)),
    # a P of the wrong length is ignored
    ([490.0, 0, 318.0, 0, 0, 495.0, 238.0, 0, 0, 0, 1], (500.0, 505.0, 320.0, 240.0)),
])
def test_p_is_used_only_when_both_its_focal_lengths_are_set(p: list, expected: tuple) -> None:
    assert intrinsics_from_camera_info(camera_info(p=p)).pinhole == expected


def test_sub_pixel_focal_lengths_are_accepted() -> None:
    info = camera_info(p=[0.0] * 12, k=[0.5, 0, 3.0, 0, 0.25, 2.0, 0, 0, 1])
    assert intrinsics_from_camera_info(info).pinhole == (0.5, 0.25, 3.0, 2.0)


def test_binning_and_roi() -> None:
    # ROI 401x301 at (100, 40) of the full sensor, binned 2 across and 4 down:
    # cx' = (cx - 100 + 0.5) / 2 - 0.5, cy' = (cy - 40 + 0.5) / 4 - 0.5 (pixel centres).
    info = camera_info(binning_x=2, binning_y=4, p=[0.0] * 12,
                       roi=SimpleNamespace(x_offset=100, y_offset=40, width=401, height=301))
    intrinsics = intrinsics_from_camera_info(info)
    assert intrinsics == Intrinsics(250.0, 505.0 / 4, (320.0 - 100 + 0.5) / 2 - 0.5,
                                    (240.0 - 40 + 0.5) / 4 - 0.5, 200, 75)
    assert isinstance(intrinsics.width, int) and isinstance(intrinsics.height, int)


@pytest.mark.parametrize('roi,expected', [
    # an ROI of zero width or height means "the full image" (and its offsets are ignored)
    ((100, 40, 0, 300), (490.0, 495.0, 318.0, 238.0, 640, 480)),
    ((100, 40, 400, 0), (490.0, 495.0, 318.0, 238.0, 640, 480)),
    # the smallest real ROI, one pixel, is applied
    ((100, 40, 1, 1), (490.0, 495.0, 218.0, 198.0, 1, 1)),
])
def test_an_empty_roi_means_the_full_image(roi: tuple, expected: tuple) -> None:
    x_offset, y_offset, width, height = roi
    info = camera_info(roi=SimpleNamespace(x_offset=x_offset, y_offset=y_offset, width=width,
                                           height=height))
    intrinsics = intrinsics_from_camera_info(info)
    assert intrinsics.pinhole + (intrinsics.width, intrinsics.height) == expected


def test_a_message_without_binning_or_roi_fields_is_unbinned() -> None:
    bare = SimpleNamespace(width=640, height=480, k=[500.0, 0, 320.0, 0, 505.0, 240.0, 0, 0, 1],
                           p=[0.0] * 12)
    assert intrinsics_from_camera_info(bare) == Intrinsics(500.0, 505.0, 320.0, 240.0, 640, 480)


@pytest.mark.parametrize('overrides,message', [
    ({'k': [0.0] * 9, 'p': [0.0] * 12},
     'camera_info focal length is fx=0.0 fy=0.0: must be positive and finite (uncalibrated '
     'camera?); bad field k[0] (fx) and k[4] (fy)'),
    ({'p': [math.nan] + [0.0] * 4 + [495.0] + [0.0] * 6},
     'camera_info focal length is fx=nan fy=495.0: must be positive and finite (uncalibrated '
     'camera?); bad field p[0] (fx)'),
    ({'p': [490.0] + [0.0] * 4 + [-1.0] + [0.0] * 6},
     'camera_info focal length is fx=490.0 fy=-1.0: must be positive and finite (uncalibrated '
     'camera?); bad field p[5] (fy)'),
    ({'p': [0.0] * 12, 'k': [500.0] * 8}, 'camera_info K has 8 values, expected 9'),
    ({'width': 0}, 'camera_info image size is 0x480: empty'),
    ({'height': 0}, 'camera_info image size is 640x0: empty'),
])
def test_bad_camera_info_is_rejected_with_the_reason(overrides: dict, message: str) -> None:
    with pytest.raises(CameraInfoError) as info:
        intrinsics_from_camera_info(camera_info(**overrides))
    assert str(info.value) == message


def test_a_one_pixel_image_is_not_empty() -> None:
    intrinsics = intrinsics_from_camera_info(camera_info(width=1, height=1))
    assert (intrinsics.width, intrinsics.height) == (1, 1)


@pytest.mark.parametrize('values,message', [
    ((math.inf, 1.0, 2.0, 3.0, 4, 5), 'intrinsics are not finite: fx=inf fy=1.0 cx=2.0 cy=3.0'),
    ((1.0, 1.0, 2.0, math.nan, 4, 5), 'intrinsics are not finite: fx=1.0 fy=1.0 cx=2.0 cy=nan'),
    ((0.0, 1.0, 2.0, 3.0, 4, 5), 'focal length must be positive: fx=0.0 fy=1.0'),
    ((1.0, 0.0, 2.0, 3.0, 4, 5), 'focal length must be positive: fx=1.0 fy=0.0'),
    ((1.0, 1.0, 2.0, 3.0, 0, 5), 'image size is 0x5: empty'),
    ((1.0, 1.0, 2.0, 3.0, 4, 0), 'image size is 4x0: empty'),
])
def test_intrinsics_check_their_values(values: tuple, message: str) -> None:
    with pytest.raises(CameraInfoError) as info:
        Intrinsics(*values)
    assert str(info.value) == message


def test_intrinsics_at_the_smallest_valid_values_and_their_summary() -> None:
    tiny = Intrinsics(1e-3, 1e-3, -5.0, -5.0, 1, 1)
    assert tiny.pinhole == (1e-3, 1e-3, -5.0, -5.0)
    assert Intrinsics(721.5377, 721.5, 609.559, 172.854, 1242, 375).describe() == \
        '1242x375 fx=721.54 fy=721.50 cx=609.56 cy=172.85'


def test_fallback_intrinsics_default_to_the_centre() -> None:
    assert fallback_intrinsics(641, 480, 300.0) == Intrinsics(300.0, 300.0, 320.0, 239.5, 641,
                                                              480)
    assert fallback_intrinsics(10, 10, 5.0, 6.0, 1.0, 2.0).pinhole == (5.0, 6.0, 1.0, 2.0)
    # 0 is a real principal point (the corner pixel), only a negative one means "the centre"
    assert fallback_intrinsics(10, 20, 5.0, cx=0.0, cy=0.0).pinhole == (5.0, 5.0, 0.0, 0.0)
    assert fallback_intrinsics(10, 20, 5.0, cx=-0.5, cy=-0.5).pinhole == (5.0, 5.0, 4.5, 9.5)
    assert fallback_intrinsics(10, 20, 5.0, fy=0.5).pinhole == (5.0, 0.5, 4.5, 9.5)
    with pytest.raises(CameraInfoError):
        fallback_intrinsics(10, 10, 0.0)


def test_depth_camera_info_fields() -> None:
    assert depth_camera_info_fields(50.0, 51.0, 20.5, 10.25, 142, 27) == {
        'width': 142, 'height': 27, 'distortion_model': 'plumb_bob', 'd': [0.0] * 5,
        'k': [50.0, 0.0, 20.5, 0.0, 51.0, 10.25, 0.0, 0.0, 1.0],
        'r': [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        'p': [50.0, 0.0, 20.5, 0.0, 0.0, 51.0, 10.25, 0.0, 0.0, 0.0, 1.0, 0.0],
        'binning_x': 0, 'binning_y': 0}
    # What the node publishes is read back as the same intrinsics.
    back = intrinsics_from_camera_info(
        SimpleNamespace(**depth_camera_info_fields(50.0, 51.0, 20.5, 10.25, 142, 27)))
    assert back == Intrinsics(50.0, 51.0, 20.5, 10.25, 142, 27)

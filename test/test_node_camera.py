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
In-process tests of the node's camera model: focal rule, camera_info pairing, undistortion.

No node runs here: :mod:`eigen_depth_ros.node.focal`, :mod:`~.pairing` and :mod:`~.rectify`
are plain Python, checked with hand-made values (the DDS tests in test_node.py check that
the node uses them).
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import cv2
from eigen_depth_ros.msg.camera_info import fallback_intrinsics, Intrinsics
from eigen_depth_ros.node.focal import focal_for_scale, FocalLog, frame_intrinsics, Note
from eigen_depth_ros.node.pairing import CameraModel, InfoBuffer
from eigen_depth_ros.node.parameters import PARAMETERS
from eigen_depth_ros.node.rectify import lens_from_camera_info, LensError, Rectifier
from eigen_depth_ros.node.settings import Settings
import numpy as np
import pytest

W, H = 320, 240
CAMERA = Intrinsics(300.0, 310.0, 159.5, 119.5, W, H)


def settings(**changes: Any) -> Settings:
    """Return the default settings with ``changes``."""
    return Settings.from_parameters({**{spec.name: spec.default for spec in PARAMETERS},
                                     **changes})


# ------------------------------------------------------------------------ focal


def test_without_camera_info_the_fallback_or_nothing() -> None:
    camera, notes = frame_intrinsics(None, W, H, settings(fallback_fx=200.0))
    assert camera == fallback_intrinsics(W, H, 200.0)
    assert [n.key for n in notes] == ['fallback'] and notes[0].once
    assert camera.describe() in notes[0].text
    camera, notes = frame_intrinsics(None, W, H, settings())
    assert camera is None
    assert notes == [Note('no_camera_info', notes[0].text)]
    assert 'fallback_fx is 0' in notes[0].text


def test_camera_info_of_the_image_size_is_used_another_size_is_not() -> None:
    assert frame_intrinsics((CAMERA, ''), W, H, settings(fallback_fx=200.0)) == (CAMERA, [])
    camera, notes = frame_intrinsics((CAMERA, ''), 640, 480, settings())
    assert camera is None and len(notes) == 1 and not notes[0].once
    assert f'camera_info is for {W}x{H} but the image is 640x480' in notes[0].text
    # a rejected camera_info: no intrinsics, and nothing more to say (its callback said it)
    assert frame_intrinsics((None, 'fx is 0'), W, H, settings(fallback_fx=200.0)) == (None, [])


def test_focal_comes_from_camera_info_then_the_fallback_then_is_assumed() -> None:
    assert focal_for_scale(CAMERA, True, W, H, settings()) == ((300.0, 310.0), 'camera_info',
                                                               [])
    fallback = fallback_intrinsics(W, H, 200.0)
    assert focal_for_scale(fallback, False, W, H, settings(fallback_fx=200.0))[:2] == (
        (200.0, 200.0), 'fallback_fx')
    # a rejected camera_info with a fallback: the fallback focal length, said once
    focal, source, notes = focal_for_scale(None, True, W, H,
                                           settings(fallback_fx=200.0, fallback_fy=250.0))
    assert (focal, source) == ((200.0, 250.0), 'fallback_fx')
    assert 'assumes fallback_fx 200 px' in notes[0].text and notes[0].once
    focal, source, notes = focal_for_scale(None, True, W, H, settings())
    assert focal is None and source.startswith('assumed f_in = f_train')
    assert "the training camera's focal length" in notes[0].text
    assert focal_for_scale(CAMERA, True, W, H, settings(scale_by_focal=False)) == (
        None, 'off (scale_by_focal is false)', [])


def test_focal_log_says_each_change_once_and_warns_outside_the_range() -> None:
    log = FocalLog()
    state, line, notes = log.frame('camera_info', 300.0, 1.5, 200.0)
    assert (state.source, state.f_in, state.scale) == ('camera_info', 300.0, 1.5)
    assert line == ('canonical focal: f_in = 300.0 px (from camera_info), f_train = 200.0 px: '
                    'depth x 1.5000')
    assert notes == []
    assert log.frame('camera_info', 300.0, 1.5, 200.0)[1] is None       # unchanged: silent
    assert log.frame('camera_info', 300.0, 1.5, 150.0)[1] is not None   # new network
    assert log.frame('fallback_fx', 300.0, 1.5, 150.0)[1] is not None   # new source
    assert log.frame('assumed', None, 1.0, 150.0)[1] is None            # nothing to name
    for scale, warned in ((0.25, False), (4.0, False), (0.249, True), (4.001, True)):
        notes = log.frame('camera_info', scale * 100, scale, 100.0)[2]
        assert bool(notes) == warned, scale
    assert notes[0].key == 'focal_ratio' and 'is outside 0.25x-4x' in notes[0].text


# ------------------------------------------------------------------------ pairing


def model(sec: float) -> CameraModel:
    return CameraModel(round(sec * 1e9), 'camera', CAMERA)


def test_pairs_exact_stamps_and_within_the_tolerance() -> None:
    infos = InfoBuffer(size=3)
    assert infos.pair(1, 1.0) is None and infos.newest is None
    for sec in (1.0, 2.0, 3.0, 4.0):   # the first one falls out
        infos.add(model(sec))
    assert infos.newest.stamp_ns == 4 * 10**9
    assert infos.pair(3 * 10**9, 0.0).stamp_ns == 3 * 10**9
    assert infos.pair(3 * 10**9 + 1, 0.0) is None
    assert infos.pair(1 * 10**9, 0.0) is None                  # no longer kept
    assert infos.pair(3 * 10**9 + 400_000_000, 0.5).stamp_ns == 3 * 10**9
    assert infos.pair(3 * 10**9 + 600_000_000, 0.5).stamp_ns == 4 * 10**9   # the nearest
    assert infos.pair(5 * 10**9 + 1, 1.0) is None


def test_waits_only_while_camera_infos_keep_pace_with_the_images() -> None:
    infos = InfoBuffer()
    assert not infos.may_still_come(5, 4)               # none ever came
    infos.add(model(2.0))
    image = 3 * 10**9
    assert infos.may_still_come(image, 2 * 10**9)       # one came with the previous image
    assert not infos.may_still_come(image, None)        # the first image: nothing known
    assert not infos.may_still_come(image, 2 * 10**9 + 1)   # rarer than the images
    assert not infos.may_still_come(2 * 10**9, 10**9)   # the newest is not older: it is past


# ------------------------------------------------------------------------ rectify

K = (300.0, 0.0, 159.5, 0.0, 310.0, 119.5, 0.0, 0.0, 1.0)
P = (280.0, 0.0, 160.0, 0.0, 0.0, 290.0, 120.0, 0.0, 0.0, 0.0, 1.0, 0.0)
P_OF_K = (300.0, 0.0, 159.5, 0.0, 0.0, 310.0, 119.5, 0.0, 0.0, 0.0, 1.0, 0.0)
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
PLUMB_BOB = (-0.3, 0.1, 0.001, -0.002, 0.0)


def info(model: str = 'plumb_bob', d: tuple = PLUMB_BOB, r: tuple = IDENTITY, p: tuple = P,
         **fields: Any) -> SimpleNamespace:
    """Return a duck-typed CameraInfo."""
    values = {'distortion_model': model, 'd': list(d), 'k': list(K), 'r': list(r),
              'p': list(p), 'width': W, 'height': H, 'binning_x': 0, 'binning_y': 0,
              'roi': SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0)}
    values.update(fields)
    return SimpleNamespace(**values)


def test_nothing_to_undo_is_no_lens() -> None:
    assert lens_from_camera_info(info(d=(0.0,) * 5)) is None
    assert lens_from_camera_info(info(d=())) is None
    assert lens_from_camera_info(info(d=(0.0,) * 5, r=(0.0,) * 9)) is None
    # an unknown model with nothing to undo is no error either
    assert lens_from_camera_info(info('weird', d=(0.0,) * 5)) is None
    lens = lens_from_camera_info(info(d=(0.0,) * 5, r=(0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0,
                                                       0.0, 1.0)))
    assert lens is not None and not lens.distorted     # R alone: rectify 'true' turns it


def test_the_rectified_camera_is_p_else_k() -> None:
    lens = lens_from_camera_info(info())
    assert lens.distorted and lens.model == 'plumb_bob' and lens.d == PLUMB_BOB
    assert lens.new_k == (280.0, 0.0, 160.0, 0.0, 290.0, 120.0, 0.0, 0.0, 1.0)
    assert lens_from_camera_info(info(p=(0.0,) * 12)).new_k == K


@pytest.mark.parametrize('fields, field', [
    ({'distortion_model': 'kannala_brandt'}, "distortion_model 'kannala_brandt'"),
    ({'d': (0.1, 0.2, 0.0)}, 'd has 3 coefficients, plumb_bob needs 5'),
    ({'distortion_model': 'rational_polynomial'}, 'rational_polynomial needs 8'),
    ({'distortion_model': 'equidistant'}, 'equidistant needs 4'),
    ({'d': (float('nan'), 0.0, 0.0, 0.0, 0.0)}, 'not finite'),
    ({'binning_x': 2}, 'binning_x/binning_y or roi'),
    ({'roi': SimpleNamespace(x_offset=4, y_offset=0, width=100, height=100)}, 'roi'),
])
def test_bad_distortion_names_the_field(fields: dict, field: str) -> None:
    with pytest.raises(LensError, match=field.replace('(', r'\(')):
        lens_from_camera_info(info(**fields))


def pattern() -> np.ndarray:
    """Return an image whose colour tells where each pixel is: x in red, y in green."""
    v, u = np.mgrid[0:H, 0:W]
    return np.dstack([u * 255 // (W - 1), v * 255 // (H - 1),
                      np.full_like(u, 77)]).astype(np.uint8)


@pytest.mark.parametrize('model, d', [
    ('plumb_bob', PLUMB_BOB),
    ('rational_polynomial', (-0.3, 0.1, 0.001, -0.002, 0.0, 0.01, 0.0, 0.0)),
    ('equidistant', (0.05, -0.01, 0.002, 0.0)),
])
def test_rectified_pixels_come_from_where_the_lens_put_them(model: str, d: tuple) -> None:
    """Each rectified pixel holds the raw pixel its ray was distorted onto (OpenCV's model)."""
    lens = lens_from_camera_info(info(model, d, p=P_OF_K))
    rectified = Rectifier().rectify(pattern(), lens)
    # project rectified pixels' rays through the lens model by hand
    new_k = np.array(lens.new_k).reshape(3, 3)
    v, u = np.mgrid[20:H - 20:17, 20:W - 20:19].astype(np.float64)
    rays = np.stack([(u - new_k[0, 2]) / new_k[0, 0], (v - new_k[1, 2]) / new_k[1, 1],
                     np.ones_like(u)], -1).reshape(-1, 1, 3)
    k, dist = np.array(K).reshape(3, 3), np.array(d)
    if model == 'equidistant':
        raw, _ = cv2.fisheye.projectPoints(rays, np.zeros(3), np.zeros(3), k, dist)
    else:
        raw, _ = cv2.projectPoints(rays, np.zeros(3), np.zeros(3), k, dist)
    raw = raw.reshape(u.shape + (2,))
    inside = ((raw[..., 0] > 1) & (raw[..., 0] < W - 2) & (raw[..., 1] > 1)
              & (raw[..., 1] < H - 2))
    assert inside.mean() > 0.5
    expected_red = raw[..., 0] * 255 / (W - 1)
    expected_green = raw[..., 1] * 255 / (H - 1)
    got = rectified[v.astype(int), u.astype(int)].astype(float)
    assert np.abs(got[..., 0] - expected_red)[inside].max() < 2.5
    assert np.abs(got[..., 1] - expected_green)[inside].max() < 2.5
    # the raw image is not the rectified one: the step moves pixels by up to 10-20 px
    raw_image = pattern()[v.astype(int), u.astype(int)].astype(float)
    assert np.abs(raw_image[..., 0] - expected_red)[inside].max() > 8


def test_maps_are_built_once_per_lens_and_a_few_are_kept() -> None:
    rectifier = Rectifier(cached=2)
    lenses = [lens_from_camera_info(info(d=(k1, 0.0, 0.0, 0.0, 0.0)))
              for k1 in (-0.1, -0.2, -0.3)]
    first = rectifier.maps(lenses[0])
    assert rectifier.maps(lens_from_camera_info(info(d=(-0.1, 0.0, 0.0, 0.0, 0.0)))) is first
    rectifier.maps(lenses[1])
    rectifier.maps(lenses[0])          # used last: kept when the third comes
    rectifier.maps(lenses[2])
    assert len(rectifier) == 2
    assert rectifier.maps(lenses[0]) is first
    with pytest.raises(LensError, match=f'camera_info is for {W}x{H} but the image is 10x10'):
        rectifier.rectify(np.zeros((10, 10, 3), np.uint8), lenses[0])

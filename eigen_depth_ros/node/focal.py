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
The camera model and the canonical-focal rule of one ``depth_node`` frame, as plain Python.

For each frame the node asks :func:`frame_intrinsics` for the camera's intrinsics (from the
camera_info paired with the frame, else the fallback parameters) and :func:`focal_for_scale`
for the focal length ``f_in`` that scales the depth by ``f_in / f_train``; a
:class:`FocalLog` decides what the log says about the scale the frame got. None of them logs:
each returns :class:`Note` objects (a once-only warning or a throttled error) that the node
writes. Importable without rclpy.
"""
from __future__ import annotations

from dataclasses import dataclass

from eigen_depth_ros.core.geometry import FOCAL_RATIO_RANGE
from eigen_depth_ros.msg.camera_info import fallback_intrinsics, Intrinsics

from .diagnostics import FocalState
from .settings import Settings


@dataclass(frozen=True)
class Note:
    """
    A log line for the node to write.

    :param key: identifies the line: a once-only warning is written the first time its key
        is seen, a throttled error at most once per period per key.
    :param text: the line.
    :param once: True for a once-only warning, False for a throttled error.
    """

    key: str
    text: str
    once: bool = True


def frame_intrinsics(state: tuple[Intrinsics | None, str] | None, width: int, height: int,
                     settings: Settings) -> tuple[Intrinsics | None, list[Note]]:
    """
    Return the intrinsics of a ``width`` x ``height`` camera image, or None when unknown.

    Without any camera_info, the fallback intrinsics when ``fallback_fx`` is set (said once),
    else None (said once). A rejected camera_info gives None (its callback logged why); one
    of another image size gives None with a throttled error.

    :param state: None when no camera_info ever arrived, else the intrinsics of the
        camera_info used for the frame (None when it was rejected) and why it was rejected.
    :param width: width of the camera image.
    :param height: height of the camera image.
    :param settings: the frame's settings (the fallback intrinsics).
    :return: the intrinsics (or None) and what to log.
    """
    if state is None:
        if settings.fallback_fx > 0:
            intrinsics = fallback_intrinsics(width, height, settings.fallback_fx,
                                             settings.fallback_fy, settings.fallback_cx,
                                             settings.fallback_cy)
            return intrinsics, [Note('fallback', 'no camera_info received: using the '
                                     f'fallback intrinsics {intrinsics.describe()}')]
        return None, [Note('no_camera_info', 'no camera_info received and fallback_fx is 0: '
                           'publishing depth only (no depth/camera_info, no points) until '
                           'camera_info arrives')]
    intrinsics = state[0]
    if intrinsics is None:
        return None, []
    if not intrinsics.matches(width, height):
        return None, [Note('camera_info_size', f'camera_info is for {intrinsics.width}x'
                           f'{intrinsics.height} but the image is {width}x{height}: no point '
                           'cloud and no depth/camera_info until they match', once=False)]
    return intrinsics, []


def focal_for_scale(camera: Intrinsics | None, info_received: bool, width: int, height: int,
                    settings: Settings
                    ) -> tuple[tuple[float, float] | None, str, list[Note]]:
    """
    Return the camera ``(fx, fy)`` the canonical-focal rule uses, where it comes from, notes.

    ``(fx, fy)``: the intrinsics of the frame when known; after a rejected camera_info (or
    one of another size) the fallback focal length when ``fallback_fx`` is set; else None,
    which assumes the camera is the training camera (f_in = f_train, no scaling). With
    ``scale_by_focal`` off: None, and the source says so.

    :param camera: the frame's intrinsics (:func:`frame_intrinsics`).
    :param info_received: whether any camera_info arrived (else ``camera`` is the fallback).
    :param width: width of the camera image.
    :param height: height of the camera image.
    :param settings: the frame's settings.
    """
    if not settings.scale_by_focal:
        return None, 'off (scale_by_focal is false)', []
    if camera is not None:
        return (camera.fx, camera.fy), 'camera_info' if info_received else 'fallback_fx', []
    if settings.fallback_fx > 0:
        fallback = fallback_intrinsics(width, height, settings.fallback_fx,
                                       settings.fallback_fy)
        focal, source = (fallback.fx, fallback.fy), 'fallback_fx'
        assumed = f'fallback_fx {settings.fallback_fx:g} px'
    else:
        focal = None
        source = 'assumed f_in = f_train (no usable camera_info, fallback_fx is 0)'
        assumed = "the training camera's focal length (f_in = f_train)"
    return focal, source, [Note(f'focal_assumed_{source}', 'no usable camera_info: the depth '
                                f'scale assumes {assumed}')]


class FocalLog:
    """What the log says about the canonical-focal rule, frame after frame."""

    def __init__(self) -> None:
        """Start with nothing said."""
        self._said: tuple | None = None

    def frame(self, source: str, f_in: float | None, scale: float, f_train: float
              ) -> tuple[FocalState, str | None, list[Note]]:
        """
        Record the scale one frame got.

        :param source: where f_in came from (:func:`focal_for_scale`).
        :param f_in: the camera's focal length at the network input [px], None when assumed.
        :param scale: the depth scale f_in / f_train the frame got.
        :param f_train: the running network's f_train [px].
        :return: the state for ``/diagnostics``; an info line when f_in, its source or
            f_train changed since the last line (None otherwise); a once-only warning when
            the ratio is outside :data:`FOCAL_RATIO_RANGE`.
        """
        info = None
        key = (source, None if f_in is None else round(f_in, 3), f_train)
        if key != self._said:
            self._said = key
            if f_in is not None:
                info = (f'canonical focal: f_in = {f_in:.1f} px (from {source}), f_train = '
                        f'{f_train:.1f} px: depth x {scale:.4f}')
        notes = []
        low, high = FOCAL_RATIO_RANGE
        if not low <= scale <= high:
            notes.append(Note('focal_ratio', f'focal ratio f_in / f_train = {scale:.3f} is '
                              f'outside {low:g}x-{high:g}x: the network was never trained for '
                              'such a field of view; depth is published but unreliable'))
        return FocalState(source, f_in, scale), info, notes

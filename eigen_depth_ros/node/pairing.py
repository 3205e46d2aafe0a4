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
Pairing each camera image with the camera_info of its stamp, as plain Python.

``depth_node`` keeps the last :data:`HISTORY` camera_infos it received in an
:class:`InfoBuffer` and looks up, for each image, the one whose stamp lies within
``info_sync_tolerance`` of the image's (exact by default), as image_transport's
CameraSubscriber pairs them. When none does, the worker waits up to :data:`WAIT_S` for it,
but only while the camera_info stream keeps pace with the images (a camera_info arrived
stamped at or after the previous image); then it takes the newest camera_info and counts the
frame as unpaired. Importable without rclpy.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from eigen_depth_ros.msg.camera_info import Intrinsics

from .rectify import Lens

HISTORY = 32
"""How many camera_infos the buffer keeps (a second of a 30 Hz camera)."""

WAIT_S = 0.1
"""The longest a frame waits for its camera_info before the newest one is used [s]."""


@dataclass(frozen=True)
class CameraModel:
    """
    One received camera_info, as the node uses it.

    :param stamp_ns: its stamp [ns].
    :param frame_id: its frame_id.
    :param intrinsics: the pinhole model of the images it describes; None when rejected.
    :param reason: why it was rejected ('' when it was not).
    :param lens: its distortion, when there is any to undo
        (:func:`~.rectify.lens_from_camera_info`).
    :param lens_error: why its distortion cannot be undone ('' when it can, or there is none).
    """

    stamp_ns: int
    frame_id: str
    intrinsics: Intrinsics | None
    reason: str = ''
    lens: Lens | None = None
    lens_error: str = ''


class InfoBuffer:
    """The last :data:`HISTORY` camera models, in the order they arrived."""

    def __init__(self, size: int = HISTORY) -> None:
        """Start empty, keeping at most ``size`` models."""
        self._models: deque[CameraModel] = deque(maxlen=size)

    def add(self, model: CameraModel) -> None:
        """Keep ``model`` as the newest (the oldest one goes when the buffer is full)."""
        self._models.append(model)

    @property
    def newest(self) -> CameraModel | None:
        """Return the model received last, None before the first."""
        return self._models[-1] if self._models else None

    def pair(self, stamp: int, tolerance_s: float) -> CameraModel | None:
        """
        Return the model whose stamp is nearest ``stamp`` within ``tolerance_s``, else None.

        :param stamp: the image's stamp [ns].
        :param tolerance_s: the largest difference [s]; 0 pairs equal stamps only.
        """
        limit = round(tolerance_s * 1e9)
        best = min(self._models, key=lambda m: abs(m.stamp_ns - stamp), default=None)
        if best is None or abs(best.stamp_ns - stamp) > limit:
            return None
        return best

    def may_still_come(self, stamp: int, previous_stamp: int | None) -> bool:
        """
        Whether the camera_info of an image stamped ``stamp`` is worth waiting for.

        Only when the newest camera_info is older than the image and no older than the
        previous image (``previous_stamp``): camera_infos then come with every image, and
        this one's is on its way. A stream of rarer camera_infos is never waited for.
        """
        newest = self.newest
        return (newest is not None and newest.stamp_ns < stamp
                and previous_stamp is not None and newest.stamp_ns >= previous_stamp)

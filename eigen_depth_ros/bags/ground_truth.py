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
The ground truth of a recorded ROS 2 bag, frame by frame, for ``eigen-depth bag-eval``.

:class:`BagGroundTruth` opens a bag (:mod:`eigen_depth_ros.bags.bag_reader`, also one cut
off mid-write), checks its topics, and pairs each camera image with the ground-truth
message and the camera_info whose header stamps are nearest, within a tolerance, whatever
order they were written in. The ground truth is either a LiDAR ``PointCloud2``, projected
into the camera through the bag's TF tree (``/tf_static``, and ``/tf`` at the image's stamp;
:mod:`eigen_depth_ros.bags.tf_tree`) or a given transform, with the camera's ``CameraInfo``,
or a depth image (32FC1 metres or 16UC1 millimetres) registered to the camera image. Each
paired image becomes a :class:`Frame`; each image that cannot, a counted reason.
"""
from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator
import math
from pathlib import Path
from typing import NamedTuple

from eigen_depth_ros.core.projection import project_to_depth_image, quaternion_to_rotation
from eigen_depth_ros.msg.camera_info import (CameraInfoError, Intrinsics,
                                             intrinsics_from_camera_info)
from eigen_depth_ros.msg.image_conversion import (image_to_depth, ImageConversionError,
                                                  message_to_rgb)
from eigen_depth_ros.msg.point_cloud import point_cloud2_to_array
from eigen_depth_ros.node.harness import stamp_ns
import numpy as np

from .bag_reader import BagReadError, first_line, open_bag
from .tf_tree import frame_name, TfError, TfExtrapolationError, TfTree

IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'
TF_TOPICS = ('/tf_static', '/tf')
NO_CAMERA_INFO = 'no valid camera_info before the image or within --tolerance after it'
# A depth ground truth in another frame than the image's is used as registered to the image
# when TF places the two frames within these of each other.
SAME_FRAME_METRES = 1e-3
SAME_FRAME_RADIANS = 1e-3


class BagEvalError(ValueError):
    """A bag cannot be evaluated as asked; the message says why on one line."""


class Frame(NamedTuple):
    """
    One camera image with its ground truth.

    :param stamp: the image's header stamp, ns.
    :param rgb: (H, W, 3) uint8 image.
    :param depth: (H, W) float32 true depth, metres, 0 where unknown.
    :param lidar_points: (N, 3) LiDAR points in the camera optical frame (all of them, finite)
        for a LiDAR ground truth; None for a depth-image ground truth.
    :param intrinsics: the camera's intrinsics; None without a camera_info topic.
    """

    stamp: int
    rgb: np.ndarray
    depth: np.ndarray
    lidar_points: np.ndarray | None
    intrinsics: Intrinsics | None


def parse_transform(text: str) -> np.ndarray:
    """``"x y z qx qy qz qw"`` (camera <- LiDAR) as a 4x4 matrix."""
    try:
        values = [float(v) for v in text.replace(',', ' ').split()]
    except ValueError:
        values = []
    if len(values) != 7:
        raise BagEvalError(f'--lidar-to-camera needs 7 numbers "x y z qx qy qz qw", got {text!r}')
    matrix = np.eye(4)
    try:
        matrix[:3, :3] = quaternion_to_rotation(*values[3:])
    except ValueError as exc:
        raise BagEvalError(f'--lidar-to-camera: {exc}') from None
    matrix[:3, 3] = values[:3]
    return matrix


def nearest_pairs(image_stamps: list[int], gt_stamps: list[int], tolerance_ns: int
                  ) -> dict[int, int]:
    """
    Pair each image stamp with the nearest ground-truth stamp within the tolerance.

    :return: ``{image stamp: ground-truth stamp}`` for the images that have a partner.
    """
    ordered = sorted(gt_stamps)
    pairs = {}
    for stamp in image_stamps:
        i = bisect_left(ordered, stamp)
        candidates = [ordered[j] for j in (i - 1, i) if 0 <= j < len(ordered)]
        if candidates:
            best = min(candidates, key=lambda s: abs(s - stamp))
            if abs(best - stamp) <= tolerance_ns:
                pairs[stamp] = best
    return pairs


class CameraInfos:
    """
    A bag's camera_info messages by header stamp, for pairing with images.

    An image takes the camera_info whose stamp is nearest its own within the tolerance,
    written before or after it; failing that the latest one stamped before the image (a
    driver that published the calibration once).
    """

    def __init__(self) -> None:
        self.stamps: list[int] = []
        self.values: list[tuple[Intrinsics | None, str | None]] = []

    def add(self, stamp: int, msg) -> None:
        """Add one CameraInfo message (kept with its error when it is unusable)."""
        try:
            value = (intrinsics_from_camera_info(msg), None)
        except CameraInfoError as exc:
            value = (None, str(exc))
        i = bisect_left(self.stamps, stamp)
        self.stamps.insert(i, stamp)
        self.values.insert(i, value)

    def for_image(self, stamp: int, tolerance_ns: int) -> tuple[Intrinsics | None, str]:
        """Return the intrinsics for an image stamped ``stamp``, or None and why not."""
        i = bisect_left(self.stamps, stamp)
        near = [j for j in (i - 1, i) if 0 <= j < len(self.stamps)
                and abs(self.stamps[j] - stamp) <= tolerance_ns]
        if near:
            chosen = min(near, key=lambda j: abs(self.stamps[j] - stamp))
        elif i > 0:
            chosen = i - 1
        else:
            return None, NO_CAMERA_INFO
        info, error = self.values[chosen]
        return info, NO_CAMERA_INFO + (f' ({error})' if error else '')


class BagGroundTruth:
    """
    Opens a bag, checks the topics, and pairs images with ground truth and camera_info.

    Pairing is by header stamp, never by the order messages were written in.

    :param bag: bag folder or file (mcap, sqlite3; ROS 1 ``.bag`` also works); a folder
        without metadata.yaml and an MCAP cut off mid-write are read as far as they go
        (:mod:`eigen_depth_ros.bags.bag_reader`), said in :attr:`notes`.
    :param image_topic: sensor_msgs/Image or CompressedImage topic.
    :param camera_info_topic: sensor_msgs/CameraInfo topic (required with a LiDAR topic).
    :param lidar_topic: sensor_msgs/PointCloud2 ground-truth topic, or None.
    :param depth_topic: depth Image ground-truth topic, or None.
    :param lidar_to_camera: 4x4 camera <- LiDAR transform; None resolves it through the
        bag's TF tree (``/tf_static``, and ``/tf`` at the image's stamp).
    :param tolerance: largest stamp difference of a pair, seconds.
    """

    def __init__(self, bag: Path, image_topic: str, camera_info_topic: str | None,
                 lidar_topic: str | None, depth_topic: str | None,
                 lidar_to_camera: np.ndarray | None = None, tolerance: float = 0.05) -> None:
        if (lidar_topic is None) == (depth_topic is None):
            raise BagEvalError('give exactly one of --lidar-topic and --depth-topic')
        if lidar_topic is not None and camera_info_topic is None:
            raise BagEvalError('--lidar-topic needs --camera-info-topic to project the points')
        self.bag = Path(bag)
        self.image_topic, self.info_topic = image_topic, camera_info_topic
        self.gt_topic = lidar_topic or depth_topic
        self.is_lidar = lidar_topic is not None
        self.lidar_to_camera = lidar_to_camera
        self.tolerance_ns = int(tolerance * 1e9)
        self.infos = CameraInfos()
        self.stamps_backwards: Counter[str] = Counter()
        self._tf_messages: list[tuple[bool, object]] = []
        self._tf: TfTree | None = None
        self._static_cache: dict[tuple[str, str], np.ndarray] = {}
        try:
            self.reader = open_bag(self.bag)
        except BagReadError as exc:
            raise BagEvalError(str(exc)) from None
        self.notes = list(self.reader.notes)
        try:
            self._check_topics()
            self.pairs = self._index()
        except BagEvalError:
            self.close()
            raise

    def close(self) -> None:
        """Close the bag."""
        self.reader.close()

    def bag_report(self) -> dict:
        """Return what the evaluation should say about the bag itself (JSON-ready)."""
        return {'truncated': self.reader.truncated,
                'recovered_messages': getattr(self.reader, 'recovered', None),
                'stamps_backwards': dict(self.stamps_backwards), 'notes': list(self.notes)}

    def _check_topics(self) -> None:
        topics = {name: info.msgtype for name, info in self.reader.topics.items()}
        expected = {self.image_topic: IMAGE_TYPES,
                    self.gt_topic: (('sensor_msgs/msg/PointCloud2',) if self.is_lidar
                                    else ('sensor_msgs/msg/Image',))}
        have = ', '.join(f'{name} [{kind}]' for name, kind in sorted(topics.items()))
        for topic, types in expected.items():
            if topic not in topics:
                raise BagEvalError(f'{self.bag}: no topic {topic!r}; the bag has: {have}')
            if topics[topic] not in types:
                raise BagEvalError(f'{self.bag}: topic {topic!r} is {topics[topic]}, '
                                   f'expected {" or ".join(types)}')
        if self.info_topic:
            self._check_camera_info_topic()

    def _check_camera_info_topic(self) -> None:
        """Refuse a camera_info topic that is missing, empty or of another type."""
        infos = {name: info.msgcount for name, info in self.reader.topics.items()
                 if info.msgtype == CAMERA_INFO_TYPE}
        listed = ', '.join(f'{name} ({count} messages)' for name, count in sorted(infos.items()))
        info = self.reader.topics.get(self.info_topic)
        if info is not None and info.msgtype != CAMERA_INFO_TYPE:
            problem = f'is {info.msgtype}, expected {CAMERA_INFO_TYPE}'
        elif info is None or info.msgcount == 0:
            problem = 'has no message' if info is not None else 'is not in the bag'
        else:
            return
        raise BagEvalError(f'{self.bag}: camera_info topic {self.info_topic!r} {problem}; '
                           f'camera_info topics in the bag: {listed or "none"}')

    def messages(self, *topics: str | None) -> Iterator[tuple[str, object]]:
        """``(topic, deserialised message)`` in storage order, bag errors as BagEvalError."""
        for topic, msgtype, _, raw in self.raw_messages(*topics):
            try:
                msg = self.reader.deserialize(raw, msgtype)
            except Exception as exc:  # noqa: B902  rosbags raises its own types
                raise BagEvalError(f'{self.bag}: corrupt message on {topic} '
                                   f'({type(exc).__name__}: {first_line(exc)})') from None
            yield topic, msg

    def raw_messages(self, *topics: str | None) -> Iterator[tuple[str, str, int, bytes]]:
        """``(topic, msgtype, log time ns, raw CDR)`` in storage order (for playback)."""
        try:
            yield from self.reader.messages({t for t in topics if t})
        except Exception as exc:  # noqa: B902  rosbags, mcap and sqlite raise their own types
            raise BagEvalError(f'{self.bag}: corrupt or truncated bag ({type(exc).__name__}: '
                               f'{first_line(exc)})') from None

    def _index(self) -> dict[int, int]:
        """One pass: image and ground-truth stamps, every camera_info, the TF messages."""
        image_stamps, gt_stamps = [], []
        last: dict[str, int] = {}
        tf_topics = [t for t in TF_TOPICS if t in self.reader.topics]
        for topic, msg in self.messages(self.image_topic, self.gt_topic, self.info_topic,
                                        *tf_topics):
            if topic in TF_TOPICS:
                self._tf_messages.append((topic == '/tf_static', msg))
                continue
            stamp = stamp_ns(msg)
            if stamp < last.get(topic, stamp):
                self.stamps_backwards[topic] += 1
            last[topic] = stamp
            if topic == self.info_topic:
                self.infos.add(stamp, msg)
            else:
                (image_stamps if topic == self.image_topic else gt_stamps).append(stamp)
        for topic, count in self.stamps_backwards.items():
            self.notes.append(f'{count} messages on {topic} are stamped earlier than the one '
                              'before them; paired by stamp')
        self.image_count = len(image_stamps)
        pairs = nearest_pairs(image_stamps, gt_stamps, self.tolerance_ns)
        if image_stamps and not pairs:
            raise BagEvalError(
                f'{self.bag}: none of {len(image_stamps)} images on {self.image_topic} has a '
                f'{self.gt_topic} message within {self.tolerance_ns / 1e9:g} s')
        if not image_stamps:
            raise BagEvalError(f'{self.bag}: no message on {self.image_topic}')
        return pairs

    def tf_tree(self) -> TfTree:
        """Return the bag's TF tree (``/tf_static`` and ``/tf``), built on first use."""
        if self._tf is None:
            tree = TfTree()
            try:
                for static, msg in self._tf_messages:
                    tree.add_message(msg, static)
            except TfError as exc:
                raise BagEvalError(f'{self.bag}: bad TF tree: {exc}') from None
            self._tf = tree
        return self._tf

    def camera_from(self, camera_frame: str, frame: str, stamp: int) -> np.ndarray:
        """
        4x4 ``T_camera<-frame`` at the image's ``stamp`` through the bag's TF tree.

        :raises BagEvalError: no TF in the bag, an unknown frame or no path (these hold for
            every frame); :class:`~eigen_depth_ros.bags.tf_tree.TfExtrapolationError` when
            ``/tf`` does not cover the stamp (this frame only).
        """
        key = (frame_name(camera_frame), frame_name(frame))
        if key in self._static_cache:
            return self._static_cache[key]
        tree = self.tf_tree()
        if not tree:
            raise BagEvalError(f'{self.bag}: no /tf_static or /tf in the bag to place '
                               f'{frame!r} in {camera_frame!r}; pass --lidar-to-camera '
                               '"x y z qx qy qz qw"')
        try:
            transform = tree.lookup(camera_frame, frame, stamp, self.tolerance_ns)
            if tree.is_static(camera_frame, frame):
                self._static_cache[key] = transform
        except TfExtrapolationError:
            raise
        except TfError as exc:
            raise BagEvalError(f'{self.bag}: {exc}; pass --lidar-to-camera '
                               '"x y z qx qy qz qw"') from None
        return transform

    def lidar_points(self, gt_msg, camera_frame: str, stamp: int | None = None) -> np.ndarray:
        """
        Return the finite points of a LiDAR message in the camera frame, (N, 3) float64 m.

        :param stamp: the image's stamp, ns, at which moving TF links are looked up
            (default: the LiDAR message's own).
        """
        cloud = point_cloud2_to_array(gt_msg)
        xyz = np.stack([cloud['x'], cloud['y'], cloud['z']], axis=1).astype(np.float64)
        transform = self.lidar_to_camera
        if transform is None:
            transform = self.camera_from(camera_frame, gt_msg.header.frame_id,
                                         stamp_ns(gt_msg) if stamp is None else stamp)
        return xyz[np.isfinite(xyz).all(axis=1)] @ transform[:3, :3].T + transform[:3, 3]

    def check_depth_frame(self, camera_frame: str, depth_frame: str, stamp: int) -> None:
        """
        Accept a depth ground truth in another frame than the image only if it coincides.

        A depth image is compared pixel by pixel with the camera's, so it must be registered
        to it. When TF relates the two frames, it must place them within
        :data:`SAME_FRAME_METRES` and :data:`SAME_FRAME_RADIANS`; when TF does not know the
        depth's frame, the depth is taken as registered and a note says so.
        """
        camera, depth = frame_name(camera_frame), frame_name(depth_frame)
        if not camera or not depth or camera == depth or (camera, depth) in self._static_cache:
            return
        tree = self.tf_tree()
        if not {camera, depth} <= set(tree.frames):
            self._static_cache[(camera, depth)] = np.eye(4)
            self.notes.append(f'depth ground truth is in frame {depth!r}, the image in '
                              f'{camera!r}, and TF does not relate them: taken as registered '
                              'to the image')
            return
        try:
            transform = tree.lookup(camera, depth, stamp, self.tolerance_ns)
        except TfExtrapolationError:
            raise
        except TfError as exc:
            raise BagEvalError(f'{self.bag}: depth ground truth: {exc}') from None
        offset = float(np.linalg.norm(transform[:3, 3]))
        angle = math.acos(max(-1.0, min(1.0, (np.trace(transform[:3, :3]) - 1) / 2)))
        if offset > SAME_FRAME_METRES or angle > SAME_FRAME_RADIANS:
            raise BagEvalError(
                f'{self.bag}: depth ground truth is in frame {depth!r}, which TF places '
                f'{offset:.3f} m and {math.degrees(angle):.2f} deg from the image frame '
                f'{camera!r}; bag-eval needs depth registered to the image (e.g. a '
                "depth camera's aligned_depth_to_color)")
        if tree.is_static(camera, depth):
            self._static_cache[(camera, depth)] = transform

    def ground_truth(self, gt_msg, info: Intrinsics | None, camera_frame: str,
                     stamp: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """
        Depth (H, W) float32 metres of one ground-truth message, 0 where unknown.

        :param stamp: the image's stamp, ns (default: the ground-truth message's own).
        :return: the depth and, for a LiDAR message, its points in the camera frame (see
            :meth:`lidar_points`; None for a depth image).
        """
        stamp = stamp_ns(gt_msg) if stamp is None else stamp
        if not self.is_lidar:
            self.check_depth_frame(camera_frame, gt_msg.header.frame_id, stamp)
            depth = image_to_depth(gt_msg)
            return np.nan_to_num(depth, nan=0.0), None
        points = self.lidar_points(gt_msg, camera_frame, stamp)
        return project_to_depth_image(points, info.fx, info.fy, info.cx, info.cy,
                                      info.width, info.height), points

    def frames(self) -> Iterator[Frame | tuple[int, str]]:
        """
        Yield a :class:`Frame` per paired image, ``(stamp, reason)`` per skip.

        Images and ground truth pair by stamp in whatever order they were written;
        messages are buffered only until their partner arrives.
        """
        wanted_gt = set(self.pairs.values())
        gt_buffer: dict[int, object] = {}
        image_buffer: dict[int, object] = {}
        seen: set[int] = set()
        for topic, msg in self.messages(self.image_topic, self.gt_topic):
            stamp = stamp_ns(msg)
            if topic == self.gt_topic:
                if stamp in wanted_gt:
                    gt_buffer[stamp] = msg
            elif stamp not in self.pairs:
                yield stamp, 'no ground truth within the tolerance'
                continue
            elif stamp in seen:
                yield stamp, 'another image has the same stamp'
                continue
            else:
                seen.add(stamp)
                image_buffer[stamp] = msg
            for image_stamp in [s for s in image_buffer if self.pairs[s] in gt_buffer]:
                image_msg = image_buffer.pop(image_stamp)
                yield self._frame(image_stamp, image_msg, gt_buffer[self.pairs[image_stamp]])
        for image_stamp in image_buffer:
            yield image_stamp, 'ground-truth message unreadable'

    def _frame(self, stamp: int, image_msg, gt_msg):
        try:
            rgb = message_to_rgb(image_msg)
        except ImageConversionError as exc:
            return stamp, f'bad image ({exc.kind})'
        height, width = rgb.shape[:2]
        info = None
        if self.is_lidar or self.info_topic:
            info, why = self.infos.for_image(stamp, self.tolerance_ns)
            if info is None:
                return stamp, why
            if (info.width, info.height) != (width, height):
                return stamp, 'camera_info size does not match the image'
        try:
            gt, points = self.ground_truth(gt_msg, info, image_msg.header.frame_id, stamp)
        except ImageConversionError as exc:
            return stamp, f'bad ground-truth image ({exc.kind})'
        except TfExtrapolationError:
            return stamp, 'no /tf at the image stamp'
        if gt.shape != (height, width):
            return stamp, 'ground-truth size does not match the image'
        return Frame(stamp, rgb, gt, points, info)

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
``eigen-depth bag-eval``: evaluate depth predictions on a recorded ROS 2 bag.

Ground truth comes either from a LiDAR ``PointCloud2`` projected into the camera (through the
bag's TF tree, ``/tf_static`` and ``/tf`` at the image's stamp, or ``--lidar-to-camera``, and
the camera's ``CameraInfo``) or from a depth image topic (32FC1 metres or 16UC1 millimetres).
Each image is paired with the ground-truth message and the camera_info whose header stamps
are nearest, within ``--tolerance`` seconds, whatever order they were written in. A bag cut
off mid-write is evaluated on the messages it still holds (:mod:`eigen_depth_ros.bags.bag_reader`).

Offline, the network runs in this process
(:class:`~eigen_depth_ros.core.inference.DepthEstimator`);
with ``--live`` the bag's images and camera infos are played over DDS into a real
``depth_node`` process (see :mod:`eigen_depth_ros.bags.live_playback`) and what it publishes is
evaluated the same way, adding end-to-end latency and dropped frames.

Both resample the network's output map to the camera image (border values extended, as the
KITTI protocol resizes predictions to the ground-truth size) and compute the Eigen metrics
per frame, averaged over frames, overall and per distance band.

Both also score obstacles the way a Nav2 obstacle layer uses a cloud
(:mod:`eigen_depth_ros.core.obstacles`): the bird's-eye cells holding points 0.3 to 2.5 m above
the road, within 10 and 20 m, summed over frames. The predicted cloud is the output map
back-projected one point per output pixel, as the node publishes it (offline), or the node's
own ``points`` (live); the true cloud is every LiDAR point in front of the camera, or the
ground-truth depth image back-projected, in the same image area.
"""
from __future__ import annotations

import argparse
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
import json
import math
from pathlib import Path
import sys
from typing import NamedTuple, TYPE_CHECKING
import warnings

from eigen_depth_ros.core.checkpoint import CheckpointError
from eigen_depth_ros.core.geometry import InputGeometry
from eigen_depth_ros.core.metrics import (compute_depth_metrics, evaluate_depth, json_safe,
                                          mean_metrics, METRIC_NAMES)
from eigen_depth_ros.core.obstacles import (add_counts, DEFAULT_SPEC, flat_scores,
                                            KITTI_CAMERA_HEIGHT, match_cells, occupied_cells,
                                            points_from_depth, points_in_image_area,
                                            scores_from_counts, zero_counts)
from eigen_depth_ros.core.projection import project_to_depth_image, quaternion_to_rotation
from eigen_depth_ros.msg.camera_info import (CameraInfoError, Intrinsics,
                                             intrinsics_from_camera_info)
from eigen_depth_ros.msg.image_conversion import (image_to_depth, ImageConversionError,
                                                  message_to_rgb)
from eigen_depth_ros.msg.point_cloud import point_cloud2_to_array
from eigen_depth_ros.node.harness import HarnessError, stamp_ns
import numpy as np
from tqdm import tqdm

from .bag_reader import BagReadError, open_bag
from .live_playback import LiveRun
from .tf_tree import frame_name, TfError, TfExtrapolationError, TfTree

if TYPE_CHECKING:
    from eigen_depth_ros.core.inference import DepthEstimator

IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'
TF_TOPICS = ('/tf_static', '/tf')
NO_CAMERA_INFO = 'no valid camera_info before the image or within --tolerance after it'
# A depth ground truth in another frame than the image's is used as registered to the image
# when TF places the two frames within these of each other.
SAME_FRAME_METRES = 1e-3
SAME_FRAME_RADIANS = 1e-3
DISTANCE_BANDS = ((0.0, 10.0), (10.0, 20.0), (20.0, 40.0), (40.0, 80.0))
# A camera image must be at least this fraction of the network input in both directions:
# below it the resize would invent more than half of the pixels the network sees.
MIN_IMAGE_FRACTION = 0.5
MIN_POINT_DEPTH = 1e-3  # m; nearer LiDAR points are not projected (as project_to_depth_image)


class BagEvalError(ValueError):
    """A bag cannot be evaluated as asked; the message says why on one line."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else 'no detail'


def _count(counter: dict[str, int], reason: str) -> None:
    counter[reason] = counter.get(reason, 0) + 1


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


@dataclass
class EvalReport:
    """What an evaluation found: per-frame metrics and what was skipped, and why."""

    frames: list[dict] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    bands: dict[str, list[dict]] = field(default_factory=dict)
    samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    obstacle_counts: dict[str, dict[str, int]] = field(default_factory=zero_counts)
    obstacle_frames: int = 0
    obstacle_skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        """Count a frame left out for ``reason``."""
        _count(self.skipped, reason)

    def add_obstacles(self, counts: dict[str, dict[str, int]]) -> None:
        """Add one frame's obstacle counts (``match_cells`` of :mod:`.core.obstacles`)."""
        self.obstacle_counts = add_counts(self.obstacle_counts, counts)
        self.obstacle_frames += 1

    def skip_obstacles(self, reason: str) -> None:
        """Count a frame with depth metrics but no obstacle counts, for ``reason``."""
        _count(self.obstacle_skipped, reason)

    def summary(self) -> dict:
        """JSON-ready aggregate (mean over frames), per band and per frame results."""
        if not self.frames:
            raise BagEvalError('no frame could be evaluated: ' + (
                ', '.join(f'{n} {why}' for why, n in self.skipped.items()) or 'bag is empty'))
        scores = scores_from_counts(self.obstacle_counts)
        return {
            'aggregate': {**mean_metrics(self.frames),
                          **json_safe(flat_scores(scores), digits=None)},
            'by_distance': {band: mean_metrics(rows) for band, rows in self.bands.items()
                            if rows},
            'frames_evaluated': len(self.frames),
            'skipped': dict(self.skipped),
            'obstacles': {
                'frames': self.obstacle_frames, 'skipped': dict(self.obstacle_skipped),
                'rule': asdict(DEFAULT_SPEC),
                'by_range': json_safe(scores, digits=None)},
            'per_frame': self.frames,
        }


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
        self.stamps_backwards: dict[str, int] = {}
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
                                   f'({type(exc).__name__}: {_first_line(exc)})') from None
            yield topic, msg

    def raw_messages(self, *topics: str | None) -> Iterator[tuple[str, str, int, bytes]]:
        """``(topic, msgtype, log time ns, raw CDR)`` in storage order (for playback)."""
        try:
            yield from self.reader.messages({t for t in topics if t})
        except Exception as exc:  # noqa: B902  rosbags, mcap and sqlite raise their own types
            raise BagEvalError(f'{self.bag}: corrupt or truncated bag ({type(exc).__name__}: '
                               f'{_first_line(exc)})') from None

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
                _count(self.stamps_backwards, topic)
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


def frame_metrics(pred_map: np.ndarray, geometry: InputGeometry, gt: np.ndarray,
                  report: EvalReport, stamp: int, args: argparse.Namespace,
                  rgb: np.ndarray, extra: dict | None = None) -> bool:
    """
    Metrics of one frame (overall and per distance band) added to ``report``.

    :return: False when the frame was skipped (no ground truth in range).
    """
    pred = geometry.output_to_image(pred_map, fill_outside=True)
    crop = None if args.crop == 'none' else args.crop
    try:
        metrics = evaluate_depth(pred, gt, args.min_depth, args.max_depth, crop,
                                 args.median_scaling)
    except ValueError:
        report.skip('no ground-truth pixel in range')
        return False
    metrics.update(stamp=stamp, **(extra or {}))
    report.frames.append(metrics)
    scaled = np.clip(pred * metrics['scale'], args.min_depth, args.max_depth)
    for low, high in DISTANCE_BANDS:
        band = (gt > low) & (gt <= min(high, args.max_depth))
        if band.any():
            report.bands.setdefault(f'{low:g}-{high:g} m', []).append(
                compute_depth_metrics(scaled, gt, band))
    if len(report.samples) < 3:
        report.samples.append((rgb, pred, gt))
    return True


def truth_points(frame: Frame, covered: np.ndarray) -> np.ndarray:
    """
    Return the true cloud of a frame inside the image area ``covered`` ((H, W) bool).

    For a LiDAR ground truth, every point in front of the camera whose nearest pixel is
    covered (not only the nearest point of each pixel); for a depth image, its covered
    pixels back-projected.

    :return: (N, 3) points in the camera optical frame, metres.
    """
    intrinsics = frame.intrinsics.pinhole
    if frame.lidar_points is None:
        return points_from_depth(np.where(covered, frame.depth, np.nan), *intrinsics)
    return points_in_image_area(frame.lidar_points, *intrinsics, covered, MIN_POINT_DEPTH)


def frame_obstacles(pred_map: np.ndarray, geometry: InputGeometry, frame: Frame,
                    report: EvalReport, camera_height: float,
                    pred_cells: np.ndarray | None) -> None:
    """
    Obstacle counts of one frame added to ``report``.

    Both clouds are limited to the image area the output map reaches (never the border
    extension the depth metrics use).

    :param pred_cells: the occupied cells of the node's own cloud (live), or None to take
        those of ``pred_map`` back-projected as the node's cloud is, one point per output
        pixel with the output map's intrinsics (offline). Not resampled to the camera size:
        bilinear interpolation across an object's edge invents floating points.
    """
    covered = np.isfinite(geometry.output_to_image(np.ones_like(pred_map)))
    if pred_cells is None:
        pred_points = points_from_depth(
            pred_map, *geometry.output_intrinsics(*frame.intrinsics.pinhole))
        pred_cells = occupied_cells(pred_points, camera_height, DEFAULT_SPEC)
    truth_cells = occupied_cells(truth_points(frame, covered), camera_height, DEFAULT_SPEC)
    report.add_obstacles(match_cells(pred_cells, truth_cells, DEFAULT_SPEC))


def evaluate_frames(source: BagGroundTruth, predict: Callable[[int, np.ndarray], tuple],
                    args: argparse.Namespace,
                    predicted_cells: Callable[[int], np.ndarray | None] | None = None
                    ) -> EvalReport:
    """
    Score ``predict(stamp, rgb) -> (output map in metres, geometry)`` on every frame.

    A predictor raising :class:`BagEvalError` has the frame skipped for that reason.

    :param args: bag-eval options (``crop``, ``min_depth``, ``max_depth``,
        ``median_scaling``, ``camera_height``).
    :param predicted_cells: ``predicted_cells(stamp)`` gives the occupied obstacle cells of
        the node's own cloud for that frame (live), None where it sent none; without it the
        cells come from the predicted depth (see :func:`frame_obstacles`).
    """
    report = EvalReport()
    for item in tqdm(source.frames(), total=source.image_count, desc='bag-eval', unit='frame'):
        if not isinstance(item, Frame):
            report.skip(item[1])
            continue
        try:
            pred_map, geometry = predict(item.stamp, item.rgb)
        except BagEvalError as exc:
            report.skip(str(exc).split(':')[0])
            continue
        if not frame_metrics(pred_map, geometry, item.depth, report, item.stamp, args,
                             item.rgb):
            continue
        pred_cells = predicted_cells(item.stamp) if predicted_cells else None
        if item.intrinsics is None:
            report.skip_obstacles('no camera_info')
        elif predicted_cells and pred_cells is None:
            report.skip_obstacles('no points from the node')
        else:
            frame_obstacles(pred_map, geometry, item, report, args.camera_height, pred_cells)
    return report


def live_predictor(live: LiveRun, estimator) -> Callable[[int, np.ndarray], tuple]:
    """
    Return a ``predict(stamp, rgb)`` that gives the node's depth for that frame.

    It returns the depth the node published and the geometry it used, for
    :func:`evaluate_frames`; a frame the node dropped raises :class:`BagEvalError`.
    """
    def predict(stamp: int, rgb: np.ndarray) -> tuple:
        if stamp not in live.depth:
            raise BagEvalError('dropped by the node')
        geometry = estimator.geometry(rgb.shape[1], rgb.shape[0])
        depth = live.depth[stamp]
        if depth.shape != tuple(reversed(geometry.output_size)):
            raise BagEvalError('node depth is not at the network resolution')
        return depth, geometry
    return predict


def check_image_size(width: int, height: int, geometry: InputGeometry) -> None:
    """Refuse images far smaller than the network input (see MIN_IMAGE_FRACTION)."""
    cfg = geometry.config
    if width < MIN_IMAGE_FRACTION * cfg.input_width or \
            height < MIN_IMAGE_FRACTION * cfg.input_height:
        raise BagEvalError(f'image too small for the network input '
                           f'{cfg.input_width}x{cfg.input_height}: {width}x{height}')


def build_parser() -> argparse.ArgumentParser:
    """Options of ``eigen-depth bag-eval``."""
    parser = argparse.ArgumentParser(
        prog='eigen-depth bag-eval',
        description='Evaluate a checkpoint on a recorded ROS 2 bag against LiDAR or depth '
                    'ground truth (Eigen metrics, JSON + PNG report).')
    parser.add_argument('bag', type=Path, help='bag folder or file (mcap, sqlite3, ROS 1)')
    parser.add_argument('--checkpoint', type=Path, required=True, help='model checkpoint')
    parser.add_argument('--image-topic', required=True,
                        help='sensor_msgs/Image or CompressedImage topic')
    parser.add_argument('--camera-info-topic', default=None,
                        help='sensor_msgs/CameraInfo topic (needed with --lidar-topic)')
    gt = parser.add_mutually_exclusive_group(required=True)
    gt.add_argument('--lidar-topic', help='PointCloud2 ground truth (projected into the camera)')
    gt.add_argument('--depth-topic', help='depth Image ground truth (32FC1 m or 16UC1 mm)')
    parser.add_argument('--lidar-to-camera', default=None, metavar='"x y z qx qy qz qw"',
                        help="camera <- LiDAR transform; default: the bag's TF tree "
                             '(/tf_static, and /tf at the image stamp)')
    parser.add_argument('--tolerance', type=float, default=0.05,
                        help='largest image / ground-truth / camera_info stamp difference, '
                             's; also how far /tf may be extrapolated '
                             '(default: %(default)s)')
    parser.add_argument('--min-depth', type=float, default=1e-3, help='m (default: %(default)s)')
    parser.add_argument('--max-depth', type=float, default=80.0,
                        help='cap of prediction and ground truth, m (default: %(default)s)')
    parser.add_argument('--crop', choices=('none', 'garg', 'eigen'), default='none',
                        help='evaluation crop (default: %(default)s)')
    parser.add_argument('--median-scaling', action='store_true',
                        help='scale each prediction by median(gt) / median(pred)')
    parser.add_argument('--camera-height', type=float, default=KITTI_CAMERA_HEIGHT,
                        help='camera height above the road for the obstacle metrics, m '
                             '(default: %(default)s, KITTI)')
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N')
    parser.add_argument('--backend', default='eager',
                        help="how the network's forward pass runs, offline and in the node "
                             '--live starts (its backend parameter): eager, int8, bf16_int8, '
                             "auto, ... (eigen_depth_ros.core.backends); 'auto' is resolved "
                             'once here and the node gets the resolved name, so both '
                             'evaluate the same network (default: %(default)s, float32)')
    parser.add_argument('--no-scale-by-focal', action='store_true',
                        help="offline: do not scale the network's depth by f_in / f_train "
                             '(the canonical-focal rule, on by default as in depth_node; '
                             "f_in from the frame's camera_info). --live: started as "
                             'scale_by_focal:=false')
    parser.add_argument('--live', action='store_true',
                        help='play the bag into a real depth_node over DDS and evaluate what '
                             'it publishes')
    parser.add_argument('--rate', type=float, default=1.0,
                        help='--live playback speed factor (default: %(default)s)')
    parser.add_argument('--record', type=Path, default=None,
                        help='--live: also record the node outputs into this bag (mcap)')
    parser.add_argument('--out', type=Path, required=True, help='output folder')
    return parser


def load_estimator(args: argparse.Namespace) -> DepthEstimator:
    """
    Load ``args.checkpoint`` on ``args.device`` with backend ``args.backend``.

    :return: the :class:`~eigen_depth_ros.core.inference.DepthEstimator`; its
        ``backend.name`` is the resolved backend (``auto`` made concrete), which ``--live``
        hands to the node.
    :raises BagEvalError: for a backend name the device cannot run.
    """
    from eigen_depth_ros.core.inference import DepthEstimator
    try:
        return DepthEstimator.from_checkpoint(args.checkpoint, device=args.device,
                                              backend=args.backend)
    except CheckpointError:
        raise
    except ValueError as exc:
        raise BagEvalError(f'--backend {args.backend!r}: {_first_line(exc)}') from None


def run(args: argparse.Namespace) -> tuple[dict, LiveRun | None]:
    """
    Evaluate as ``args`` say; write ``metrics.json`` and ``report.png`` into ``args.out``.

    :return: the result written to ``metrics.json``, and with ``--live`` what the node
        published (:class:`~eigen_depth_ros.bags.live_playback.LiveRun`, else None).
    """
    from eigen_depth_ros.core.report import write_bag_report

    transform = parse_transform(args.lidar_to_camera) if args.lidar_to_camera else None
    for name in ('tolerance', 'rate'):
        if not getattr(args, name) > 0:
            raise BagEvalError(f'--{name} must be positive, got {getattr(args, name)}')
    if not (math.isfinite(args.camera_height) and args.camera_height > 0):
        raise BagEvalError(f'--camera-height must be a finite height above the road in '
                           f'metres, got {args.camera_height}')
    source = BagGroundTruth(args.bag, args.image_topic, args.camera_info_topic,
                            args.lidar_topic, args.depth_topic, transform, args.tolerance)
    scale_by_focal = not getattr(args, 'no_scale_by_focal', False)
    focal: dict = {'scale_by_focal': scale_by_focal, 'frames_scaled': 0}
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', '.*f_train', UserWarning)  # in the report
            estimator = load_estimator(args)
        focal.update(f_train=estimator.train_focal, f_train_note=estimator.train_focal_note)
        live, predicted_cells = None, None
        if args.live:
            from .live_playback import play_into_node
            live = play_into_node(source, args, backend=estimator.backend.name)
            predict, predicted_cells = live_predictor(live, estimator), live.obstacle_cells.get
        else:
            def predict(stamp: int, rgb: np.ndarray):
                check_image_size(rgb.shape[1], rgb.shape[0],
                                 estimator.geometry(rgb.shape[1], rgb.shape[0]))
                log_depth, geometry = estimator.predict_log(rgb)
                depth = np.exp(log_depth)
                # The node's rule: f_in from this frame's camera_info, none -> unscaled.
                info = (source.infos.for_image(stamp, source.tolerance_ns)[0]
                        if scale_by_focal and source.info_topic else None)
                if info is not None:
                    depth = depth * estimator.focal_scale(geometry, info.fx, info.fy)[0]
                    focal['frames_scaled'] += 1
                return depth, geometry
        report = evaluate_frames(source, predict, args, predicted_cells)
    finally:
        source.close()
    try:
        result = report.summary()
    except BagEvalError as exc:
        if source.reader.truncated:
            raise BagEvalError(f'{exc}; {"; ".join(source.notes)}') from None
        raise
    result['bag'] = source.bag_report()
    result['mode'] = 'live' if args.live else 'offline'
    result['backend'] = {'requested': args.backend, 'resolved': estimator.backend.name}
    result['focal'] = focal
    result['options'] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    if live is not None:
        result['live'] = live.statistics()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'metrics.json').write_text(json.dumps(result, indent=2))
    write_bag_report(args.out / 'report.png', report.samples, result)
    return result, live


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``eigen-depth bag-eval``."""
    args = build_parser().parse_args(argv)
    try:
        result, _ = run(args)
    except (BagEvalError, CheckpointError, HarnessError, OSError) as exc:
        print(f'eigen-depth bag-eval: error: {exc}', file=sys.stderr)
        return 1
    for note in result['bag']['notes']:
        print(f'eigen-depth bag-eval: warning: {note}', file=sys.stderr)
    focal = result['focal']
    print('canonical-focal rule: ' + (
        f'on (depth x f_in / f_train, f_train {focal["f_train"]:.1f} px, f_in from camera_info'
        + ('' if result['mode'] == 'live' else f', {focal["frames_scaled"]} frames scaled')
        + ')' if focal['scale_by_focal'] else 'off (--no-scale-by-focal)')
        + (f'; warning: {focal["f_train_note"]}' if focal['f_train_note'] else ''))
    backend = result['backend']
    print(f"backend: {backend['resolved']}" + (
        f" (--backend {backend['requested']})"
        if backend['requested'] != backend['resolved'] else '')
        + (', offline and in the node' if result['mode'] == 'live' else ''))
    agg = result['aggregate']
    print(' '.join(f'{k}={agg[k]:.4f}' for k in METRIC_NAMES))
    print(f'obstacles ({result["obstacles"]["frames"]} frames): ' + ' '.join(
        f'{k.removeprefix("obstacle_")}=' + ('n/a' if v is None else f'{v:.4f}')
        for k, v in agg.items() if k.startswith('obstacle_')))
    print(f'{result["frames_evaluated"]} frames evaluated, skipped: {result["skipped"] or 0}; '
          f'wrote {args.out / "metrics.json"} and {args.out / "report.png"}')
    return 0

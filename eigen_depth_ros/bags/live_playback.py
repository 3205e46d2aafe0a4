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
Play a bag's camera into a real ``depth_node`` process over DDS and collect what it says.

Used by ``eigen-depth bag-eval --live`` and by the demo. The node runs in its own process
with the shipped ``config/depth.yaml`` (plus overrides), on a DDS domain of its own, on
loopback with the shared-memory profile (:func:`~eigen_depth_ros.node.ros_env.local_dds_env`).
Images and camera infos go out with the recorded timing (times a rate factor) under
sensor-data QoS, as a camera driver sends them; every ``depth`` and ``points`` message that
comes back is matched to its input by header stamp, giving end-to-end latency and the frames
the node dropped. Of each cloud only its occupied obstacle cells are kept
(:func:`~eigen_depth_ros.core.obstacles.occupied_cells`), and the whole cloud of the first few.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
import threading
import time
from typing import Any

from eigen_depth_ros.core.obstacles import KITTI_CAMERA_HEIGHT, occupied_cells
from eigen_depth_ros.msg.image_conversion import image_to_depth
from eigen_depth_ros.msg.point_cloud import point_cloud2_to_array
from eigen_depth_ros.node.harness import (HarnessTimeout, node_command, NodeProcess,
                                          output_qos, RosSide, stamp_ns)
from eigen_depth_ros.node.ros_env import config_file, local_dds_env, private_domain_id
import numpy as np

STARTUP_TIMEOUT_S = 60.0   # torch import + checkpoint load + DDS discovery, on a slow CPU
DRAIN_TIMEOUT_S = 5.0      # after the last image, wait while outputs keep coming this often
DRAIN_LIMIT_S = 60.0       # how long to wait for a first depth (a first inference can be slow)
KEPT_CLOUDS = 3            # whole clouds kept (for pictures); obstacle cells are kept for all
RECORDED_TYPES = {'depth/image': 'sensor_msgs/msg/Image', 'points': 'sensor_msgs/msg/PointCloud2',
                  'depth/camera_info': 'sensor_msgs/msg/CameraInfo'}


@dataclass
class LiveRun:
    """
    What the node published, keyed by the input image's header stamp (ns).

    ``clouds`` holds the first :data:`KEPT_CLOUDS` clouds whole (structured arrays),
    ``obstacle_cells`` the occupied obstacle cells of every cloud, for a camera
    ``camera_height`` metres above the road.
    """

    sent_at: dict[int, float] = field(default_factory=dict)
    depth: dict[int, np.ndarray] = field(default_factory=dict)
    latency_s: dict[int, float] = field(default_factory=dict)
    clouds: dict[int, np.ndarray] = field(default_factory=dict)
    obstacle_cells: dict[int, np.ndarray] = field(default_factory=dict)
    points_latency_s: dict[int, float] = field(default_factory=dict)
    duration_s: float = 0.0
    camera_height: float = KITTI_CAMERA_HEIGHT

    def add_cloud(self, stamp: int, cloud: np.ndarray) -> None:
        """Keep a cloud's obstacle cells (its NaN points left out, as Nav2 does)."""
        xyz = np.stack([cloud['x'], cloud['y'], cloud['z']], axis=1)
        self.obstacle_cells[stamp] = occupied_cells(xyz[np.isfinite(xyz).all(axis=1)],
                                                    self.camera_height)
        if len(self.clouds) < KEPT_CLOUDS:
            self.clouds[stamp] = cloud

    def statistics(self) -> dict[str, Any]:
        """Frames sent and answered, drops, output rate and latency percentiles (ms)."""
        def percentiles(values: list[float]) -> dict[str, float | None]:
            if not values:
                return {'p50_ms': None, 'p95_ms': None, 'max_ms': None}
            ms = np.asarray(values) * 1e3
            return {'p50_ms': float(np.percentile(ms, 50)),
                    'p95_ms': float(np.percentile(ms, 95)), 'max_ms': float(ms.max())}
        sent, answered = len(self.sent_at), len(self.depth)
        return {
            'frames_sent': sent, 'depth_received': answered,
            'points_received': len(self.points_latency_s), 'dropped': sent - answered,
            'input_rate_hz': sent / self.duration_s if self.duration_s else None,
            'output_rate_hz': answered / self.duration_s if self.duration_s else None,
            'latency_depth': percentiles(list(self.latency_s.values())),
            'latency_points': percentiles(list(self.points_latency_s.values())),
        }


def play_into_node(source, args, backend: str = 'eager') -> LiveRun:
    """
    Start a node, play ``source``'s images and camera infos into it, collect its outputs.

    :param source: an open :class:`~eigen_depth_ros.bags.ground_truth.BagGroundTruth`.
    :param args: bag-eval options (``checkpoint``, ``device``, ``rate``, ``record``, ``out``,
        ``image_topic``, ``camera_info_topic``, ``camera_height``; optional
        ``node_overrides``).
    :param backend: the node's ``backend`` parameter: the backend the offline evaluation
        resolved, so both run the same network (the node's own default ``auto`` is
        ``int8`` or ``bf16_int8`` depending on the CPU).
    :raises HarnessError: the node did not start, exited or did not connect.
    """
    compressed = source.reader.topics[args.image_topic].msgtype.endswith('CompressedImage')
    env = local_dds_env(private_domain_id(7))
    args.out.mkdir(parents=True, exist_ok=True)
    image_base = args.image_topic[:-len('/compressed')] if compressed else args.image_topic
    remaps = {'image': image_base}
    if args.camera_info_topic:
        remaps['camera_info'] = args.camera_info_topic
    params = {'compressed': compressed, 'depth_resolution': 'network', 'device': args.device,
              'backend': backend,
              'scale_by_focal': not getattr(args, 'no_scale_by_focal', False),
              **getattr(args, 'node_overrides', {})}
    cmd = node_command(args.checkpoint, params=params, remaps=remaps,
                       params_file=config_file('depth.yaml'))
    recorder = _Recorder(args.record) if args.record else None
    try:
        with NodeProcess(cmd, env, args.out / 'depth_node.log') as node:
            with RosSide('eigen_depth_bag_player', env=env, process=node) as ros:
                return _play(source, args, ros, compressed, recorder)
    finally:
        if recorder:   # after the ROS side stopped delivering
            recorder.close()


def _play(source, args, ros: RosSide, compressed: bool, recorder: _Recorder | None
          ) -> LiveRun:
    """Play the bag into the node through ``ros``; collect (and record) its outputs."""
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image

    run = LiveRun(camera_height=args.camera_height)

    def on_output(name: str, msg, now: float) -> None:
        stamp = stamp_ns(msg)
        with ros.cond:
            sent = ros.sent_at.get(stamp)
        if sent is not None and name == 'depth/image':
            depth = image_to_depth(msg)
            with ros.cond:
                run.latency_s[stamp] = now - sent
                run.depth[stamp] = depth
        elif sent is not None and name == 'points':
            cloud = point_cloud2_to_array(msg)
            with ros.cond:
                run.points_latency_s[stamp] = now - sent
                run.add_cloud(stamp, cloud)
        if recorder:
            recorder.write(f'/eigen_depth/{name}', RECORDED_TYPES[name],
                           serialize_message(msg))

    subs = ros.subscribe_outputs('', tuple(RECORDED_TYPES), keep=False,
                                 on_message=on_output, qos=output_qos(10))
    image_type = CompressedImage if compressed else Image
    image_pub = ros.publisher(args.image_topic, image_type)
    info_pub = (ros.publisher(args.camera_info_topic, CameraInfo)
                if args.camera_info_topic else None)
    ros.wait_connected([image_pub] + ([info_pub] if info_pub else []), subs,
                       STARTUP_TIMEOUT_S, 'depth_node to connect')
    started = time.monotonic()
    first_log = None
    messages = source.raw_messages(args.image_topic, args.camera_info_topic)
    for topic, _, log_time, raw in messages:
        first_log = log_time if first_log is None else first_log
        delay = started + (log_time - first_log) / 1e9 / args.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if topic == args.image_topic:
            msg = deserialize_message(raw, image_type)
            ros.publish(topic, msg, timed=True, wait_s=None)
        else:
            ros.publish(topic, deserialize_message(raw, CameraInfo), wait_s=None)
        ros.process.check_alive()
    run.duration_s = time.monotonic() - started
    with ros.cond:
        run.sent_at = dict(ros.sent_at)
    _drain(ros, run)
    return run


def _drain(ros: RosSide, run: LiveRun) -> None:
    """
    Wait for the depth of every image sent, while the node still answers.

    Until a first depth arrives the wait lasts up to :data:`DRAIN_LIMIT_S` (a first
    inference can be slow); after that it ends once no depth came for
    :data:`DRAIN_TIMEOUT_S`: the rest were dropped, and counted in the statistics.
    """
    limit = time.monotonic() + DRAIN_LIMIT_S
    while len(run.depth) < len(run.sent_at):
        answered = len(run.depth)
        patience = limit - time.monotonic() if not answered else DRAIN_TIMEOUT_S
        try:
            ros.wait(lambda: len(run.depth) >= len(run.sent_at) or len(run.depth) > answered,
                     max(patience, 0.0), 'the last depth images')
        except HarnessTimeout:
            return


class _Recorder:
    """Writes the node's outputs (serialised CDR) into an mcap bag, thread-safe."""

    def __init__(self, path: Path) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore
        self._typestore = get_typestore(Stores.ROS2_JAZZY)
        self._writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._connections: dict[str, Any] = {}
        self._lock = threading.Lock()

    def write(self, topic: str, msgtype: str, raw: bytes) -> None:
        """Append one message with the current time as its log time."""
        with self._lock:
            if topic not in self._connections:
                self._connections[topic] = self._writer.add_connection(
                    topic, msgtype, typestore=self._typestore)
            self._writer.write(self._connections[topic], time.time_ns(), raw)

    def close(self) -> None:
        """Finish the bag."""
        with self._lock:
            self._writer.close()

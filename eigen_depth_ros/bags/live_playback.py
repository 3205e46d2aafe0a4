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
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from eigen_depth_ros.core.obstacles import KITTI_CAMERA_HEIGHT, occupied_cells
from eigen_depth_ros.msg.image_conversion import image_to_depth
from eigen_depth_ros.msg.point_cloud import point_cloud2_to_array
from eigen_depth_ros.node.ros_env import config_file, local_dds_env
import numpy as np

STARTUP_TIMEOUT_S = 60.0   # torch import + checkpoint load + DDS discovery, on a slow CPU
DRAIN_TIMEOUT_S = 5.0      # wait this long after the last image for outstanding outputs
KEPT_CLOUDS = 3            # whole clouds kept (for pictures); obstacle cells are kept for all


class LivePlaybackError(RuntimeError):
    """The node could not be started or reached; the message says why on one line."""


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

    def predictor(self, estimator):
        """
        Return a ``predict(stamp, rgb)`` that gives the node's depth for that frame.

        It returns the depth and the geometry the node used, for
        :func:`~eigen_depth_ros.bags.bag_eval.evaluate_frames`.
        """
        from .bag_eval import BagEvalError

        def predict(stamp: int, rgb: np.ndarray):
            if stamp not in self.depth:
                raise BagEvalError('dropped by the node')
            geometry = estimator.geometry(rgb.shape[1], rgb.shape[0])
            depth = self.depth[stamp]
            if depth.shape != tuple(reversed(geometry.output_size)):
                raise BagEvalError('node depth is not at the network resolution')
            return depth, geometry
        return predict

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


def node_command(checkpoint: Path, image_topic: str, info_topic: str | None,
                 compressed: bool, overrides: dict[str, Any]) -> list[str]:
    """Build the ``depth_node`` command line: shipped params file, checkpoint, remaps."""
    params = {'checkpoint': str(checkpoint), 'compressed': compressed,
              'depth_resolution': 'network', **overrides}
    image_base = image_topic[:-len('/compressed')] if compressed else image_topic
    cmd = [sys.executable, '-m', 'eigen_depth_ros.node', '--ros-args',
           '--params-file', str(config_file('depth.yaml')), '-r', f'image:={image_base}']
    if info_topic:
        cmd += ['-r', f'camera_info:={info_topic}']
    for name, value in params.items():
        # rcl parses `-p name:=value` as YAML: JSON literals are YAML and keep paths intact
        cmd += ['-p', f'{name}:={json.dumps(value)}']
    return cmd


def stop_process(proc: subprocess.Popen, timeout_s: float = 5.0) -> int:
    """Stop a child node like Ctrl-C does (SIGINT), SIGKILL after ``timeout_s``; exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class NodeProcess:
    """A ``depth_node`` child process on its own DDS domain; stops it on exit."""

    def __init__(self, cmd: list[str], env: dict[str, str], log_path: Path | None) -> None:
        self._log = open(log_path, 'wb') if log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def check_alive(self) -> None:
        """Raise LivePlaybackError when the node has exited."""
        if self.proc.poll() is not None:
            raise LivePlaybackError(f'depth_node exited with code {self.proc.returncode} '
                                    'before it answered (see its log)')

    def stop(self) -> int:
        """SIGINT, then SIGKILL after 5 s; the exit code."""
        stop_process(self.proc)
        if self._log is not subprocess.DEVNULL:
            self._log.close()
        return self.proc.returncode


def play_into_node(source, args) -> LiveRun:
    """
    Start a node, play ``source``'s images and camera infos into it, collect its outputs.

    :param source: an open :class:`~eigen_depth_ros.bags.bag_eval.BagGroundTruth`.
    :param args: bag-eval options (``checkpoint``, ``device``, ``rate``, ``record``, ``out``,
        ``image_topic``, ``camera_info_topic``, ``camera_height``; optional
        ``node_overrides``).
    """
    compressed = source.reader.topics[args.image_topic].msgtype.endswith('CompressedImage')
    domain = 10 + (os.getpid() + 7) % 90
    os.environ.update(local_dds_env(domain))  # before rclpy creates this process's participant
    args.out.mkdir(parents=True, exist_ok=True)
    node = NodeProcess(node_command(args.checkpoint, args.image_topic, args.camera_info_topic,
                                    compressed, {'device': args.device,
                                                 'scale_by_focal': not getattr(
                                                     args, 'no_scale_by_focal', False),
                                                 **getattr(args, 'node_overrides', {})}),
                       local_dds_env(domain), args.out / 'depth_node.log')
    try:
        return _play(source, args, node, compressed)
    finally:
        node.stop()


def _play(source, args, node: NodeProcess, compressed: bool) -> LiveRun:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

    run = LiveRun(camera_height=args.camera_height)
    lock = threading.Lock()
    recorder = _Recorder(args.record) if args.record else None
    context = rclpy.Context()
    rclpy.init(context=context)
    player = rclpy.create_node('eigen_depth_bag_player', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(player)
    try:
        def on_depth(msg: Image) -> None:
            now = time.monotonic()
            stamp = msg.header.stamp.sec * 10 ** 9 + msg.header.stamp.nanosec
            with lock:
                if stamp in run.sent_at:
                    run.latency_s[stamp] = now - run.sent_at[stamp]
                    run.depth[stamp] = image_to_depth(msg)
            if recorder:
                recorder.write('/eigen_depth/depth', 'sensor_msgs/msg/Image',
                               serialize_message(msg))

        def on_points(msg: PointCloud2) -> None:
            now = time.monotonic()
            stamp = msg.header.stamp.sec * 10 ** 9 + msg.header.stamp.nanosec
            with lock:
                if stamp in run.sent_at:
                    run.points_latency_s[stamp] = now - run.sent_at[stamp]
                    run.add_cloud(stamp, point_cloud2_to_array(msg))
            if recorder:
                recorder.write('/eigen_depth/points', 'sensor_msgs/msg/PointCloud2',
                               serialize_message(msg))

        def on_info(msg: CameraInfo) -> None:
            if recorder:
                recorder.write('/eigen_depth/depth/camera_info', 'sensor_msgs/msg/CameraInfo',
                               serialize_message(msg))

        output_qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        subs = [player.create_subscription(Image, '/depth', on_depth, output_qos),
                player.create_subscription(PointCloud2, '/points', on_points, output_qos),
                player.create_subscription(CameraInfo, '/depth/camera_info', on_info,
                                           output_qos)]
        image_type = CompressedImage if compressed else Image
        image_pub = player.create_publisher(image_type, args.image_topic,
                                            qos_profile_sensor_data)
        info_pub = (player.create_publisher(CameraInfo, args.camera_info_topic,
                                            qos_profile_sensor_data)
                    if args.camera_info_topic else None)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        _wait_for_node(node, image_pub, info_pub, subs)
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
                stamp = msg.header.stamp.sec * 10 ** 9 + msg.header.stamp.nanosec
                with lock:
                    run.sent_at[stamp] = time.monotonic()
                image_pub.publish(msg)
            else:
                info_pub.publish(deserialize_message(raw, CameraInfo))
            node.check_alive()
        run.duration_s = time.monotonic() - started
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline and len(run.depth) < len(run.sent_at):
            node.check_alive()
            time.sleep(0.02)
    finally:
        executor.shutdown()
        player.destroy_node()
        context.try_shutdown()
        if recorder:
            recorder.close()
    return run


def _wait_for_node(node: NodeProcess, image_pub, info_pub, subs) -> None:
    """Block until the node subscribes our inputs and publishes what we listen to."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        node.check_alive()
        ready = image_pub.get_subscription_count() > 0 and (
            info_pub is None or info_pub.get_subscription_count() > 0) and all(
            sub.get_publisher_count() > 0 for sub in subs)
        if ready:
            return
        time.sleep(0.05)
    raise LivePlaybackError(f'depth_node did not connect within {STARTUP_TIMEOUT_S:g} s')


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

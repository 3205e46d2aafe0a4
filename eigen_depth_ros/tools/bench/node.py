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

"""``depth_node`` end to end under a camera stream, and the DDS transport floor under it."""
from __future__ import annotations

import argparse
import os
from pathlib import Path
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

from eigen_depth_ros.bags.live_playback import stop_process
from eigen_depth_ros.core.inference import BACKEND_ENV
from eigen_depth_ros.core.malloc_tuning import keep_large_buffers
from eigen_depth_ros.tools.scenes import camera_size, scene_image
import numpy as np

from .measure import summarize_ms


CAMERA_RATES = {'kitti': 10.0, 'nyu': 30.0}
"""Default camera frame rate [Hz] per configuration (KITTI 10 Hz, Kinect 30 Hz)."""


def local_dds_env_here(domain_id: int) -> dict[str, str]:
    """Keep this process's DDS on this machine and domain; return the env for children."""
    from eigen_depth_ros.node.ros_env import local_dds_env
    env = local_dds_env(domain_id)
    os.environ.update(env)  # before rclpy creates this process's participant
    return env


def bench_transport(image_bytes: int, rate: float, args: argparse.Namespace
                    ) -> list[dict[str, Any]]:
    """
    Age at receipt of a 100-byte and of a camera-size Image between two processes.

    The floor under the node's end-to-end latency: see :mod:`.transport_probe`.
    """
    try:
        from eigen_depth_ros.tools.transport_probe import probe_transport, ProbeError
    except ImportError as exc:
        return [{'skipped': f'rclpy not importable: {exc}'}]
    env = local_dds_env_here(args.domain_id)
    results = []
    for size in (100, image_bytes):
        try:
            probe = probe_transport(size, args.transport_messages, rate, env)
        except ProbeError as exc:
            results.append({'size_bytes': size, 'skipped': str(exc)})
            continue
        counts = {key: probe[key] for key in ('sent', 'received', 'lost')}
        if len(probe['ages']) < 2:  # a transport that loses camera-size messages
            results.append({'size_bytes': size, 'rate_hz': rate, **counts, 'skipped':
                            f"{probe['received']} of {probe['sent']} received, too few to "
                            'time: check the Fast DDS profile (docs/node.md)'})
        else:
            results.append({'size_bytes': size, 'rate_hz': rate, **counts,
                            **summarize_ms(probe['ages'])})
    return results


def bench_node(backend: str, checkpoint: Path, config: Any, args: argparse.Namespace,
               forward_ms: float | None, paced_ms: float | None = None) -> dict[str, Any]:
    """
    Run ``depth_node`` under a camera stream and measure stamp -> receive latency.

    :param forward_ms: the backend's bare forward median (back to back), for the ratios.
    :param paced_ms: its forward median at the camera rate (see :func:`time_calls`).
    """
    try:
        import rclpy
        from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from sensor_msgs.msg import CameraInfo, Image, PointCloud2
        from eigen_depth_ros.node.depth_node import PARAMETERS
        try:
            from diagnostic_msgs.msg import DiagnosticArray
        except ImportError:
            DiagnosticArray = None
    except ImportError as exc:
        return {'skipped': f'rclpy or eigen_depth_ros.node.depth_node not importable: {exc}'}
    keep_large_buffers()  # the bench's own receiving of big clouds, as in the node
    env = local_dds_env_here(args.domain_id)
    env[BACKEND_ENV] = backend
    if args.threads:
        env['OMP_NUM_THREADS'] = str(args.threads)
    for item in args.node_env:
        key, _, value = item.partition('=')
        env[key] = value
    params = {'checkpoint': str(checkpoint), 'device': args.device,
              'depth_resolution': args.node_resolution}
    if any(spec.name == 'backend' for spec in PARAMETERS):
        params['backend'] = backend
    command = [sys.executable, '-m', 'eigen_depth_ros.node', '--ros-args']
    for key, value in params.items():
        command += ['-p', f'{key}:={value}']
    width, height = camera_size(config)
    rate = args.rate or CAMERA_RATES.get(config.name, 10.0)
    image = scene_image(width, height, seed=1)
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('eigen_depth_bench', context=context)
    latencies: list[float] = []
    sent = 0
    try:
        publisher = node.create_publisher(Image, 'image', qos_profile_sensor_data)
        info_publisher = node.create_publisher(CameraInfo, 'camera_info',
                                               qos_profile_sensor_data)
        # (stamp [ns], latency [s]) of each output; the last one the node publishes times it
        arrivals: dict[str, list[tuple[int, float]]] = {'depth': [], 'points': []}
        received = arrivals['points' if args.node_points else 'depth']
        timed_from: int | None = None  # stamp [ns] of the first timed frame

        def on_output(topic: str) -> Callable[[Any], None]:
            def record(msg: Any) -> None:
                now = node.get_clock().now().nanoseconds
                stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
                arrivals[topic].append((stamp, (now - stamp) / 1e9))
            return record

        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        node.create_subscription(Image, 'depth', on_output('depth'), reliable)
        if args.node_points:
            node.create_subscription(PointCloud2, 'points', on_output('points'), reliable)
        diagnostics: list[dict[str, float]] = []

        def on_diagnostics(msg: Any) -> None:
            if timed_from is not None:  # windows of the timed frames only
                diagnostics.extend(_numeric_values(status) for status in msg.status)

        if DiagnosticArray is not None:
            node.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, 10)
        executor = rclpy.executors.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        message = Image(height=height, width=width, encoding='rgb8', is_bigendian=0,
                        step=width * 3, data=image.tobytes())
        message.header.frame_id = 'camera'
        fx = 0.58 * width
        info = CameraInfo(height=height, width=width, distortion_model='plumb_bob',
                          d=[0.0] * 5,
                          k=[fx, 0.0, width / 2, 0.0, fx, height / 2, 0.0, 0.0, 1.0],
                          r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                          p=[fx, 0.0, width / 2, 0.0, 0.0, fx, height / 2, 0.0,
                             0.0, 0.0, 1.0, 0.0])
        info.header.frame_id = 'camera'
        deadline = time.monotonic() + args.node_timeout
        while publisher.get_subscription_count() == 0 or \
                node.count_publishers(node.resolve_topic_name('depth')) == 0:
            if process.poll() is not None or time.monotonic() > deadline:
                return {'skipped': 'depth_node did not come up: ' + _tail(log, process)}
            executor.spin_once(timeout_sec=0.1)
        # Stream at the camera rate. Frames count only from --node-warmup seconds after the
        # node's first answer: its first seconds are slow (start-up, first passes).
        period = 1.0 / rate
        next_time = time.monotonic()
        warm = 0
        first_answer: float | None = None
        while sent < args.node_frames:
            if process.poll() is not None or (timed_from is None
                                              and time.monotonic() > deadline):
                break
            stamp = node.get_clock().now().to_msg()
            message.header.stamp = stamp
            info.header.stamp = stamp
            info_publisher.publish(info)
            publisher.publish(message)
            if timed_from is not None:
                sent += 1
            else:
                warm += 1
                if received and first_answer is None:
                    first_answer = time.monotonic()
                if first_answer is not None and \
                        time.monotonic() - first_answer >= args.node_warmup:
                    timed_from = stamp.sec * 1_000_000_000 + stamp.nanosec
                    sent = 1
            next_time += period
            while time.monotonic() < next_time:
                executor.spin_once(timeout_sec=max(0.0, next_time - time.monotonic()))
        drain = time.monotonic() + 2.0
        timed = []
        while time.monotonic() < drain:
            timed = [lat for stamp, lat in received
                     if timed_from is not None and stamp >= timed_from]
            if len(timed) >= sent:
                break
            executor.spin_once(timeout_sec=0.05)
        if process.poll() is not None:
            return {'skipped': 'depth_node exited: ' + _tail(log, process)}
        if timed_from is None:
            return {'skipped': f'no depth within {args.node_timeout:g} s of streaming: '
                               + _tail(log, process)}
        latencies = timed
        depth_latencies = [lat for stamp, lat in arrivals['depth'] if stamp >= timed_from]
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)
        stop_process(process, timeout_s=10)
        log.close()
    if not latencies:
        return {'skipped': f'no depth received for {sent} images sent'}
    stats = summarize_ms(latencies)
    result: dict[str, Any] = {
        'backend': backend, 'rate_hz': rate, 'image': f'{width}x{height} rgb8',
        'sent': sent, 'received': len(latencies), 'warmup_frames': warm,
        'resolution': args.node_resolution,
        'timed_output': 'points' if args.node_points else 'depth',
        'e2e': stats, 'backend_via': 'parameter' if 'backend' in params else BACKEND_ENV,
        'load_average_1m': os.getloadavg()[0],
        'node_diagnostics': _mean_values(diagnostics),
    }
    if args.node_points and depth_latencies:
        result['e2e_depth'] = summarize_ms(depth_latencies)
    if forward_ms:
        result['e2e_over_forward'] = stats['median_ms'] / forward_ms
        result['overhead_ms'] = stats['median_ms'] - forward_ms
        result['overhead_fraction'] = result['overhead_ms'] / stats['median_ms']
    if paced_ms:
        result['e2e_over_forward_paced'] = stats['median_ms'] / paced_ms
        result['overhead_paced_ms'] = stats['median_ms'] - paced_ms
        result['overhead_paced_fraction'] = result['overhead_paced_ms'] / stats['median_ms']
    return result


def _numeric_values(status: Any) -> dict[str, float]:
    """Return the values of a DiagnosticStatus that parse as finite numbers."""
    values = {}
    for pair in status.values:
        try:
            number = float(pair.value)
        except ValueError:
            continue
        if np.isfinite(number):
            values[pair.key] = number
    return values


def _mean_values(dicts: list[dict[str, float]]) -> dict[str, float]:
    """Average each key over the dicts that have it (the node's diagnostics windows)."""
    keys = {key for d in dicts for key in d}
    return {key: statistics.fmean(d[key] for d in dicts if key in d) for key in sorted(keys)}


def _tail(log: Any, process: subprocess.Popen, lines: int = 5) -> str:
    """Return the last lines the node printed (and its exit code), for an error."""
    log.seek(0)
    text = log.read().decode(errors='replace').strip().splitlines()[-lines:]
    code = process.poll()
    return ' | '.join(text) + (f' (exit code {code})' if code is not None else '')

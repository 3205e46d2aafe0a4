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
import time
from typing import Any

from eigen_depth_ros.core.malloc_tuning import keep_large_buffers
from eigen_depth_ros.node.ros_env import local_dds_env
from eigen_depth_ros.tools.scenes import camera_family, camera_size, scene_image
import numpy as np

from .measure import summarize_ms


CAMERA_RATES = {'kitti': 10.0, 'nyu': 30.0}
"""Default camera frame rate [Hz] per configuration (KITTI 10 Hz, Kinect 30 Hz)."""


def bench_transport(image_bytes: int, rate: float, args: argparse.Namespace
                    ) -> list[dict[str, Any]]:
    """
    Age at receipt of a 100-byte and of a camera-size Image between two processes.

    The floor under the node's end-to-end latency: see
    :mod:`eigen_depth_ros.tools.transport_probe`.
    """
    try:
        import rclpy  # noqa: F401  (the probe imports it only when it runs)
        from eigen_depth_ros.tools.transport_probe import probe_transport, ProbeError
    except ImportError as exc:
        return [{'skipped': f'rclpy not importable: {exc}'}]
    env = local_dds_env(args.domain_id)
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

    The node process and this process's DDS side are the harness's
    (:mod:`eigen_depth_ros.node.harness`).

    :param forward_ms: the backend's bare forward median (back to back), for the ratios.
    :param paced_ms: its forward median at the camera rate (see :func:`.measure.time_calls`).
    """
    try:
        import rclpy  # noqa: F401  (the harness imports it only when it runs)
        from eigen_depth_ros.node.harness import (HarnessError, node_command, NodeProcess,
                                                  RosSide)
    except ImportError as exc:
        return {'skipped': f'rclpy not importable: {exc}'}
    keep_large_buffers()  # the bench's own receiving of big clouds, as in the node
    env = local_dds_env(args.domain_id)
    if args.threads:
        env['OMP_NUM_THREADS'] = str(args.threads)
    for item in args.node_env:
        key, _, value = item.partition('=')
        env[key] = value
    params = {'device': args.device, 'depth_resolution': args.node_resolution,
              'backend': backend}
    width, height = camera_size(config)
    rate = args.rate or CAMERA_RATES.get(camera_family(config), 10.0)
    node = NodeProcess(node_command(checkpoint, params=params), env)
    try:
        with RosSide('eigen_depth_bench', env=env, process=node) as ros:
            run = _stream(ros, scene_image(width, height, seed=1), rate, args)
    except HarnessError as exc:
        return {'skipped': str(exc)}
    finally:
        node.stop(timeout_s=10)
    if isinstance(run, str):
        return {'skipped': f'{run}: {node.tail(5)}'}
    latencies, depth_latencies, sent, warm, diagnostics = run
    if not latencies:
        return {'skipped': f'no depth received for {sent} images sent'}
    stats = summarize_ms(latencies)
    result: dict[str, Any] = {
        'backend': backend, 'rate_hz': rate, 'image': f'{width}x{height} rgb8',
        'sent': sent, 'received': len(latencies), 'warmup_frames': warm,
        'resolution': args.node_resolution,
        'timed_output': 'points' if args.node_points else 'depth',
        'e2e': stats,
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


def _stream(ros: Any, image: np.ndarray, rate: float, args: argparse.Namespace
            ) -> tuple[list[float], list[float], int, int, list[dict[str, float]]] | str:
    """
    Stream ``image`` at ``rate`` into the node through ``ros`` (a harness ``RosSide``).

    Frames count only from ``--node-warmup`` seconds after the node's first answer: its
    first seconds are slow (start-up, first passes).

    :return: the timed latencies [s] of the last output (points or depth), those of depth,
        the frames timed, the warm-up frames and the node's numeric diagnostics windows of
        the timed frames; or why nothing was timed.
    """
    from sensor_msgs.msg import CameraInfo, Image
    from eigen_depth_ros.node.harness import (camera_image, camera_info, HarnessTimeout,
                                              set_stamp, stamp_ns)

    height, width = image.shape[:2]
    message = camera_image(image)
    info = camera_info(width, height, 0.58 * width, cx=width / 2, cy=height / 2)
    # (stamp [ns], latency [s]) of each output; the last one the node publishes times it
    arrivals: dict[str, list[tuple[int, float]]] = {'depth': [], 'points': []}
    received = arrivals['points' if args.node_points else 'depth']
    timed_from: list[int] = []   # stamp [ns] of the first timed frame, once known

    def on_output(name: str, msg: Any, _: float) -> None:
        now = ros.node.get_clock().now().nanoseconds
        with ros.cond:
            arrivals['depth' if name == 'depth/image' else name].append(
                (stamp_ns(msg), (now - stamp_ns(msg)) / 1e9))

    subs = ros.subscribe_outputs('', ('depth/image', 'points') if args.node_points
                                 else ('depth/image',), keep=False, on_message=on_output)
    ros.subscribe_diagnostics()
    publisher = ros.publisher('image', Image)
    info_publisher = ros.publisher('camera_info', CameraInfo)
    try:
        ros.wait_connected([publisher], subs, args.node_timeout, 'depth_node to come up')
    except HarnessTimeout:
        return 'depth_node did not come up'
    deadline = time.monotonic() + args.node_timeout
    period = 1.0 / rate
    next_time = time.monotonic()
    sent = warm = 0
    first_answer: float | None = None
    while sent < args.node_frames:
        ros.process.check_alive()
        if not timed_from and time.monotonic() > deadline:
            return f'no depth within {args.node_timeout:g} s of streaming'
        stamp = ros.node.get_clock().now().nanoseconds
        info_publisher.publish(set_stamp(info, stamp))
        publisher.publish(set_stamp(message, stamp))
        if timed_from:
            sent += 1
        else:
            warm += 1
            with ros.cond:
                answered = bool(received)
            if answered and first_answer is None:
                first_answer = time.monotonic()
            if first_answer is not None and time.monotonic() - first_answer >= args.node_warmup:
                timed_from.append(stamp)
                diagnostics_from = time.monotonic()
                sent = 1
        next_time += period
        time.sleep(max(0.0, next_time - time.monotonic()))
    if not timed_from:
        return f'no depth within {args.node_timeout:g} s of streaming'

    def timed(kind: str) -> list[float]:
        return [lat for stamp, lat in arrivals[kind] if stamp >= timed_from[0]]
    try:
        ros.wait(lambda: len(timed('points' if args.node_points else 'depth')) >= sent, 2.0,
                 'the last outputs')
    except HarnessTimeout:
        pass   # frames the node dropped for newer ones
    with ros.cond:
        last = timed('points' if args.node_points else 'depth')
        depth = timed('depth')
        diagnostics = [_numeric_values(values)
                       for values in ros.diagnostics(after=diagnostics_from)]
    return last, depth, sent, warm, diagnostics


def _numeric_values(values: dict[str, str]) -> dict[str, float]:
    """
    Return the values of a status (:meth:`RosSide.diagnostics`) that are finite numbers.

    The harness's own keys (``_level`` and the like) are left out.
    """
    numbers = {}
    for key, text in values.items():
        try:
            number = float(text)
        except ValueError:
            continue
        if not key.startswith('_') and np.isfinite(number):
            numbers[key] = number
    return numbers


def _mean_values(dicts: list[dict[str, float]]) -> dict[str, float]:
    """Average each key over the dicts that have it (the node's diagnostics windows)."""
    keys = {key for d in dicts for key in d}
    return {key: statistics.fmean(d[key] for d in dicts if key in d) for key in sorted(keys)}

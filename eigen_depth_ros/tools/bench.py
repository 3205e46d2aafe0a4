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
``eigen-depth bench``: how fast the network and the node are, and how fast they could be.

One run measures, for each backend asked for (so before and after sit side by side):

* **forward**: the bare forward pass on a prepared input, median and p95 over warm runs;
* **predict**: :meth:`DepthEstimator.predict` on a camera-size image (preprocessing,
  forward, exp), and the preprocessing alone;
* **accuracy**: the backend's log depth against the float32 ``eager`` one on scene-like
  images (largest difference, mean and p99 relative depth change);
* the **bounds**: network FLOPs / a measured matrix-multiply rate (compute bound), bytes of
  weights read per frame / a measured copy bandwidth (memory bound), and a per-layer
  roofline (sum over layers of the larger of the two);
* resident memory with the backend loaded, and the process peak (``ru_maxrss``);

then, once, the point-cloud build time (when :mod:`eigen_depth_ros.msg.point_cloud` is there),
and with ``--node`` the end-to-end latency of ``depth_node`` under a camera stream: images
published at ``--rate`` with the current time as header stamp, ``depth`` received, latency =
receive time - stamp (p50, p95), and its ratio to the bare forward pass (``--node-points``
times frames to the point cloud instead, ``--node-resolution input`` publishes at the camera
size); with ``--transport`` the floor under that latency: how long a 100-byte and a
camera-size Image take from one rclpy process to another (:mod:`.transport_probe`). Every
figure comes with the machine (CPU model, cores, threads, load average, torch version,
device).

Timing numbers on a shared machine are noisy: each is a median of many runs, and the load
average before and after is recorded beside them.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
from pathlib import Path
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

from eigen_depth_ros.bags.live_playback import stop_process
from eigen_depth_ros.core.backends import BACKENDS, check_backend, cuda_tf32_state, split_name
from eigen_depth_ros.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from eigen_depth_ros.core.inference import BACKEND_ENV, DepthEstimator, select_device
from eigen_depth_ros.core.malloc_tuning import keep_large_buffers
from eigen_depth_ros.core.model import EigenDepthNet, resolve_config
from eigen_depth_ros.tools.scenes import (calibrate_random_model, camera_size, network_input,
                                          scene_image)
import numpy as np
import torch
from torch import nn

CAMERA_RATES = {'kitti': 10.0, 'nyu': 30.0}
"""Default camera frame rate [Hz] per configuration (KITTI 10 Hz, Kinect 30 Hz)."""
DEFAULT_BACKENDS = 'eager,bf16_int8'
"""Backends measured by default on a CPU."""
DEFAULT_CUDA_BACKENDS = 'eager,fp16,fp16+graph,bf16,bf16+graph'
"""Backends measured by default on CUDA (``bf16_int8`` and ``int8`` run on the CPU only)."""


def default_backends(device: torch.device | str) -> str:
    """Return the comma-separated backends ``bench`` measures on ``device`` by default."""
    return DEFAULT_CUDA_BACKENDS if torch.device(device).type == 'cuda' else DEFAULT_BACKENDS


# ----------------------------------------------------------------------------- measuring


def percentile(values: list[float], q: float) -> float:
    """Return the q-th percentile, q in 0..100, of the values (linear interpolation)."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def summarize_ms(seconds: list[float]) -> dict[str, float]:
    """``median_ms``, ``p95_ms``, ``mean_ms``, ``min_ms`` and ``runs`` of durations [s]."""
    ms = [s * 1e3 for s in seconds]
    return {'median_ms': statistics.median(ms), 'p95_ms': percentile(ms, 95),
            'mean_ms': statistics.fmean(ms), 'min_ms': min(ms), 'runs': len(ms)}


def time_calls(fn: Callable[[], Any], runs: int, warmup: int, sync: Callable[[], None],
               pause: float = 0.0) -> list[float]:
    """
    Time ``runs`` calls of ``fn`` after ``warmup`` untimed ones.

    :param pause: start the calls this many seconds apart (a camera's frame period), so
        each finds the machine as a camera-paced node does: threads asleep, caches cold.
    :return: the durations [s].
    """
    for _ in range(warmup):
        fn()
    sync()
    durations = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        sync()
        durations.append(time.perf_counter() - start)
        if pause:
            time.sleep(max(0.0, pause - durations[-1]))
    return durations


def device_sync(device: torch.device) -> Callable[[], None]:
    """Return a function that waits for queued work on ``device`` (no-op on a CPU)."""
    if device.type == 'cuda':
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def count_flops(model: EigenDepthNet, x: torch.Tensor) -> list[dict[str, Any]]:
    """
    Count FLOPs and weight bytes per Conv2d / Linear layer of one forward pass.

    :return: one dict per layer: ``layer`` (name), ``flops`` (2 per multiply-add) and
        ``weight_bytes_fp32``. Pools, ReLUs and the concat are left out (under 1 %).
    """
    names = {module: name for name, module in model.named_modules()}
    layers: list[dict[str, Any]] = []

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor
             ) -> None:
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            macs = output.numel() * (module.in_channels // module.groups) * kh * kw
        else:
            macs = output.numel() * module.in_features
        weight_bytes = sum(p.numel() * 4 for p in module.parameters())
        layers.append({'layer': names[module], 'flops': 2 * macs,
                       'weight_bytes_fp32': weight_bytes})

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return layers


def matmul_rate(dtype: torch.dtype, device: torch.device, size: int, runs: int = 5
                ) -> float:
    """Measured FLOP/s of a ``size``-cubed matrix product in ``dtype`` (best of ``runs``)."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    sync = device_sync(device)
    durations = time_calls(lambda: torch.mm(a, b), runs, 1, sync)
    return 2 * size ** 3 / min(durations)


def copy_bandwidth(device: torch.device, megabytes: int, runs: int = 5) -> float:
    """Measured bytes/s of a large array copy (read + write counted, best of ``runs``)."""
    n = megabytes * (1 << 20) // 4
    src = torch.ones(n, device=device)
    dst = torch.empty_like(src)
    sync = device_sync(device)
    durations = time_calls(lambda: dst.copy_(src), runs, 1, sync)
    return 2 * src.numel() * 4 / min(durations)


def rss_mb() -> float:
    """Resident memory of this process now [MB] (Linux /proc; ru_maxrss elsewhere)."""
    try:
        pages = int(Path('/proc/self/statm').read_text().split()[1])
        return pages * os.sysconf('SC_PAGE_SIZE') / 1e6
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (``ru_maxrss``) [MB]."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # KiB on Linux


def machine_info(device: torch.device) -> dict[str, Any]:
    """CPU model, cores, threads, load, versions and device name, for beside the numbers."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        'cpu_model': cpu, 'cpu_cores': os.cpu_count(), 'torch_threads': torch.get_num_threads(),
        'torch_version': torch.__version__, 'python': platform.python_version(),
        'device': str(device), 'load_average_1m_start': os.getloadavg()[0],
    }
    try:
        import onnxruntime
        info['onnxruntime_version'] = onnxruntime.__version__
    except ImportError:
        pass
    if device.type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
        # the backends set TF32 off (eigen_depth_ros.core.backends); recorded after they are built
        info['tf32'] = cuda_tf32_state()
    return info


# ----------------------------------------------------------------------------- parts


def fresh_model(state_dict: dict[str, torch.Tensor], config: Any) -> EigenDepthNet:
    """Build a new float32 CPU network holding (a copy of) ``state_dict``."""
    model = EigenDepthNet(config).eval()
    model.load_state_dict(state_dict)
    return model


def bench_backend(name: str, state_dict: dict[str, torch.Tensor], config: Any,
                  device: torch.device, images: list[np.ndarray],
                  reference: list[np.ndarray], args: argparse.Namespace) -> dict[str, Any]:
    """Build one backend and measure its forward, predict, accuracy and memory."""
    started = time.perf_counter()
    estimator = DepthEstimator(fresh_model(state_dict, config), device=str(device),
                               backend=name)
    gc.collect()
    build_s = time.perf_counter() - started
    backend = estimator.backend
    sync = device_sync(device)
    x, _ = estimator.preprocess(images[0])
    with torch.inference_mode():
        first = time.perf_counter()
        backend(x)  # the first call may compile (compile) or capture (+graph)
        sync()
        first_s = time.perf_counter() - first
        forward = time_calls(lambda: backend(x), args.runs, args.warmup, sync)
        period = 1.0 / (args.rate or CAMERA_RATES.get(config.name, 10.0))
        paced = time_calls(lambda: backend(x), min(args.runs, 20), 0, sync, pause=period)
        predict = time_calls(lambda: estimator.predict(images[0]), args.runs, 2, sync)
        preprocess = time_calls(lambda: estimator.preprocess(images[0]), args.runs, 2, sync)
    result: dict[str, Any] = {
        'backend': backend.name, 'description': BACKENDS[split_name(backend.name)[0]],
        'forward': summarize_ms(forward), 'forward_paced': summarize_ms(paced),
        'paced_period_s': period, 'predict': summarize_ms(predict),
        'preprocess': summarize_ms(preprocess), 'build_s': build_s,
        'first_call_s': first_s, 'weight_bytes': backend.weight_bytes(),
        'rss_mb': rss_mb(), 'peak_rss_mb': peak_rss_mb(),
        'load_average_1m': os.getloadavg()[0],
    }
    logs = [estimator.predict_log(image)[0] for image in images]
    result['accuracy'] = accuracy(logs, reference)
    return result


def accuracy(logs: list[np.ndarray], reference: list[np.ndarray]) -> dict[str, float]:
    """
    Differences of log depths against the reference ones (``eager``).

    ``max_abs_log_diff``: largest |difference| in log depth; ``mean_rel_depth_change`` and
    ``p99_rel_depth_change``: of |exp(difference) - 1|, the relative change in metres.
    """
    diff = np.concatenate([(a - b).ravel() for a, b in zip(logs, reference)]).astype(np.float64)
    rel = np.abs(np.expm1(diff))
    return {'max_abs_log_diff': float(np.max(np.abs(diff))),
            'mean_rel_depth_change': float(np.mean(rel)),
            'p99_rel_depth_change': float(np.percentile(rel, 99)),
            'images': len(logs)}


def layer_format(backend: str, layer: str) -> tuple[str, float]:
    """
    Return the number format a backend runs a layer in, and its weight bytes per parameter.

    :param backend: a resolved backend name (``+graph`` allowed).
    :param layer: a layer name of :func:`count_flops` (``coarse.fc6``, ``fine.conv4``, ...).
    :return: ``('float32' | 'bfloat16' | 'float16' | 'int8', bytes per parameter)``.
    """
    base = split_name(backend)[0]
    fc = layer in ('coarse.fc6', 'coarse.fc7')
    if base in ('int8', 'bf16_int8') and fc:
        return 'int8', 1.0
    if base == 'bf16_int8':
        return ('bfloat16', 2.0) if layer.startswith('coarse.') else ('float32', 4.0)
    if base in ('bf16', 'fp16') and layer != 'fine.conv4':  # the output conv stays float32
        return ('bfloat16' if base == 'bf16' else 'float16'), 2.0
    return 'float32', 4.0


def bench_bounds(layers: list[dict[str, Any]], backends: list[dict[str, Any]],
                 device: torch.device, quick: bool) -> dict[str, Any]:
    """
    Measure matmul rates and copy bandwidth, and bound each backend's forward pass [ms].

    Per backend: ``compute_bound_ms`` = sum over layers of FLOPs / the matmul rate of the
    layer's format (int8 GEMV counted at the float32 rate, bfloat16 and float16 at the
    bfloat16 one); ``memory_bound_ms`` = the backend's weight bytes / copy bandwidth;
    ``roofline_ms`` = sum over layers of the larger of the two, a layer at batch 1 not
    overlapping the next.
    """
    size = 512 if quick else 2048
    rates = {'float32': matmul_rate(torch.float32, device, size)}
    if device.type == 'cuda' or split_name(check_backend('auto', device))[0] != 'int8':
        rates['bfloat16'] = matmul_rate(torch.bfloat16, device, size)
    bandwidth = copy_bandwidth(device, 64 if quick else 512)
    flops = sum(layer['flops'] for layer in layers)
    out: dict[str, Any] = {
        'network_gflops': flops / 1e9,
        'weight_mb_fp32': sum(layer['weight_bytes_fp32'] for layer in layers) / 1e6,
        'matmul_gflops_per_s': {k: v / 1e9 for k, v in rates.items()},
        'matmul_size': size, 'copy_bandwidth_gb_per_s': bandwidth / 1e9,
        'layers': layers, 'per_backend': {},
    }
    for result in backends:
        name = result['backend']
        compute = roofline = 0.0
        for layer in layers:
            fmt, width = layer_format(name, layer['layer'])
            rate = rates.get('bfloat16', rates['float32']) if fmt in ('bfloat16', 'float16') \
                else rates['float32']
            seconds = layer['flops'] / rate
            compute += seconds
            roofline += max(seconds, layer['weight_bytes_fp32'] * width / 4 / bandwidth)
        out['per_backend'][name] = {
            'compute_bound_ms': compute * 1e3,
            'memory_bound_ms': result['weight_bytes'] / bandwidth * 1e3,
            'roofline_ms': roofline * 1e3,
            'forward_over_roofline': result['forward']['median_ms'] / (roofline * 1e3),
        }
    return out


def bench_point_cloud(config: Any, runs: int) -> dict[str, Any]:
    """Time building the point cloud of one prediction, as the node does (if it exists)."""
    try:
        from eigen_depth_ros.msg import point_cloud
    except ImportError as exc:
        return {'skipped': f'eigen_depth_ros.msg.point_cloud not importable: {exc}'}
    w_out, h_out = config.output_size
    width, height = camera_size(config)
    result: dict[str, Any] = {}
    rng = np.random.default_rng(0)
    for label, (w, h) in (('network', (w_out, h_out)), ('input', (width, height))):
        depth = rng.uniform(2.0, 50.0, (h, w)).astype(np.float32)
        colors = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        fx = fy = 0.6 * w
        try:
            def cloud() -> Any:
                points = point_cloud.depth_to_points(depth, fx, fy, w / 2, h / 2,
                                                     colors=colors)
                if message_classes is not None:
                    return point_cloud.build_point_cloud2(points, header, *message_classes)
                return points
            try:
                from sensor_msgs.msg import PointCloud2, PointField
                from std_msgs.msg import Header
                message_classes: tuple[type, type] | None = (PointCloud2, PointField)
                header = Header(frame_id='camera')
            except ImportError:
                message_classes = None
            stats = summarize_ms(time_calls(cloud, runs, 2, lambda: None))
        except (AttributeError, TypeError, ValueError) as exc:
            return {'skipped': f'point_cloud API did not fit: {exc!r}'}
        result[label] = stats | {'pixels': w * h, 'message': message_classes is not None}
    return result


# ----------------------------------------------------------------------------- node


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
        from .transport_probe import probe_transport, ProbeError
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


# ----------------------------------------------------------------------------- report


def format_table(report: dict[str, Any]) -> str:
    """Render a bench report as a human-readable table."""
    m = report['machine']
    lines = [f"eigen-depth bench: {report['config']} on {m['device']} ({m['cpu_model']}, "
             f"{m['cpu_cores']} cores, {m['torch_threads']} threads, torch "
             f"{m['torch_version']}), load {m['load_average_1m_start']:.2f} -> "
             f"{m.get('load_average_1m_end', float('nan')):.2f}",
             f"weights: {report['weights']}", '']
    if 'tf32' in m:
        tf32 = m['tf32']
        lines[-1:-1] = [f"gpu: {m.get('gpu', '?')}; TF32 matmul "
                        f"{'on' if tf32['matmul'] else 'off'}, cuDNN conv "
                        f"{'on' if tf32['cudnn_conv'] else 'off'} (eager is float32)"]
    bounds = report.get('bounds', {}).get('per_backend', {})
    header = (f"{'backend':<14}{'forward ms':>18}{'paced ms':>18}{'predict ms':>18}"
              f"{'prep ms':>9}"
              f"{'roofline':>10}{'weights MB':>12}{'RSS MB':>8}{'max dlog':>10}"
              f"{'mean drel':>11}")
    lines += [header, '-' * len(header)]
    for r in report['backends']:
        name = r['backend']
        acc = r.get('accuracy', {})
        bound = bounds.get(name, {})
        lines.append(
            f"{name:<14}{_pair(r['forward']):>18}{_pair(r['forward_paced']):>18}"
            f"{_pair(r['predict']):>18}"
            f"{r['preprocess']['median_ms']:>9.2f}"
            f"{bound.get('roofline_ms', float('nan')):>10.1f}"
            f"{r['weight_bytes'] / 1e6:>12.1f}{r['rss_mb']:>8.0f}"
            f"{acc.get('max_abs_log_diff', float('nan')):>10.2e}"
            f"{acc.get('mean_rel_depth_change', float('nan')):>11.2e}")
    lines.append('(ms: median / p95; paced: forward at the camera rate; roofline: per-layer '
                 'lower bound; dlog: abs diff of log depth vs eager; drel: relative depth '
                 'change vs eager)')
    if 'bounds' in report:
        b = report['bounds']
        rates = ', '.join(f'{k} {v:.0f}' for k, v in b['matmul_gflops_per_s'].items())
        lines += ['', f"network {b['network_gflops']:.2f} GFLOP, {b['weight_mb_fp32']:.0f} MB "
                  f'fp32 weights; matmul GFLOP/s: {rates}; copy bandwidth '
                  f"{b['copy_bandwidth_gb_per_s']:.1f} GB/s"]
        for name, bound in bounds.items():
            lines.append(f"  {name:<14} compute bound {bound['compute_bound_ms']:6.2f} ms, "
                         f"memory bound {bound['memory_bound_ms']:6.2f} ms, roofline "
                         f"{bound['roofline_ms']:6.2f} ms")
    pc = report.get('point_cloud')
    if pc:
        lines.append('')
        if 'skipped' in pc:
            lines.append(f"point cloud: skipped ({pc['skipped']})")
        else:
            for label, stats in pc.items():
                lines.append(f"point cloud ({label} resolution, {stats['pixels']} px): "
                             f'{_pair(stats)} ms')
    for t in report.get('transport', []):
        if 'skipped' in t:
            lines.append(f"transport: skipped ({t['skipped']})")
        else:
            lines.append(f"transport of a {t['size_bytes']}-byte Image between two rclpy "
                         f'processes (age at receipt): {_pair(t)} ms, '
                         f"{t['lost']} of {t['sent']} lost")
    for n in report.get('node', []):
        if 'skipped' in n:
            lines.append(f"node: skipped ({n['skipped']})")
            continue
        extra = ''
        if 'e2e_over_forward' in n:
            extra = (f", e2e/forward {n['e2e_over_forward']:.2f}, overhead "
                     f"{n['overhead_ms']:.1f} ms ({100 * n['overhead_fraction']:.0f} % of e2e)")
        if 'e2e_over_forward_paced' in n:
            extra += (f"; vs paced forward {n['e2e_over_forward_paced']:.2f}, overhead "
                      f"{n['overhead_paced_ms']:.1f} ms "
                      f"({100 * n['overhead_paced_fraction']:.0f} %)")
        lines.append(f"node [{n['backend']}] e2e {_pair(n['e2e'])} ms to "
                     f"{n.get('timed_output', 'depth')} ({n.get('resolution', 'network')} "
                     f"resolution) at {n['rate_hz']:g} Hz, {n['received']}/{n['sent']} "
                     f"frames{extra}, load {n['load_average_1m']:.2f}")
        reported = {k: v for k, v in n.get('node_diagnostics', {}).items() if 'ms' in k}
        if reported:
            pairs = ', '.join(f'{k} {v:.1f}' for k, v in reported.items())
            lines.append(f'  node diagnostics: {pairs}')
    return '\n'.join(lines)


def _pair(stats: dict[str, float]) -> str:
    """``'median / p95'`` of a summary."""
    return f"{stats['median_ms']:.2f} / {stats['p95_ms']:.2f}"


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of ``eigen-depth bench``."""
    parser = argparse.ArgumentParser(
        prog='eigen-depth bench',
        description='Benchmark inference backends side by side (forward, predict, '
                    'accuracy vs eager, bounds), the point-cloud build and, with --node, '
                    'the node end to end. Writes JSON and prints a table.')
    parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N (default cpu)')
    parser.add_argument('--config', default='kitti', choices=('kitti', 'nyu'),
                        help='network configuration when no checkpoint is given')
    parser.add_argument('--checkpoint', type=Path, default=None,
                        help='checkpoint to benchmark (default: random weights, '
                             'calibrated to realistic activation scales)')
    parser.add_argument('--backend', '--backends', dest='backends', default=None,
                        help='comma-separated backends, each measured in turn and compared '
                             f'with float32 eager (default {DEFAULT_BACKENDS} on a CPU, '
                             f'{DEFAULT_CUDA_BACKENDS} on CUDA; choices '
                             f'{", ".join(BACKENDS)}, auto, NAME+graph on CUDA)')
    parser.add_argument('--runs', type=int, default=50, help='timed runs per figure')
    parser.add_argument('--warmup', type=int, default=5, help='untimed runs first')
    parser.add_argument('--threads', type=int, default=0,
                        help='torch (and node) CPU threads; 0 keeps the default')
    parser.add_argument('--images', type=int, default=6,
                        help='scene-like images for the accuracy comparison')
    parser.add_argument('--quick', action='store_true',
                        help='small bound measurements (for tests and smoke runs)')
    parser.add_argument('--no-bounds', action='store_true', help='skip the bounds')
    parser.add_argument('--node', action='store_true',
                        help='also measure depth_node end to end under a camera stream')
    parser.add_argument('--node-backends', default=None,
                        help='backends to run the node with (default: those of --backends)')
    parser.add_argument('--rate', type=float, default=0.0,
                        help='camera rate [Hz] for --node (default 10 KITTI, 30 NYU)')
    parser.add_argument('--node-frames', type=int, default=100,
                        help='timed frames per node run')
    parser.add_argument('--node-warmup', type=float, default=5.0,
                        help='seconds of streaming after the first depth from the node '
                             'before frames are timed (its first seconds are slow)')
    parser.add_argument('--transport', action='store_true',
                        help='also measure how long a tiny and a camera-size Image take '
                             'from one rclpy process to another (the floor under the '
                             "node's latency)")
    parser.add_argument('--transport-messages', type=int, default=60,
                        help='messages per size for --transport')
    parser.add_argument('--node-resolution', default='network', choices=('network', 'input'),
                        help="the node's depth_resolution: the output map, or depth and "
                             'cloud at the camera image size')
    parser.add_argument('--node-points', action='store_true',
                        help='also subscribe to the point cloud (the node builds it only '
                             'then) and time the frames to its arrival')
    parser.add_argument('--node-env', action='append', default=[], metavar='KEY=VALUE',
                        help='extra environment variable of the node process (repeatable), '
                             'e.g. OMP_WAIT_POLICY=PASSIVE')
    parser.add_argument('--node-timeout', type=float, default=90.0,
                        help='seconds to wait for the node to come up')
    parser.add_argument('--domain-id', type=int,
                        default=int(os.environ.get('ROS_DOMAIN_ID') or 100 + os.getpid() % 100),
                        help='ROS domain of the node run (default $ROS_DOMAIN_ID, else '
                             'pid-based)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random weights')
    parser.add_argument('--train-data', nargs=2, metavar=('ROOT', 'SPLIT'), default=None,
                        help='instead of inference: training samples/s of the coarse stage '
                             '(PNG per sample in fp32, preloaded, preloaded with bf16 '
                             'autocast) on this KITTI root and split, side by side')
    parser.add_argument('--train-steps', type=int, default=40,
                        help='timed optimiser steps per training variant')
    parser.add_argument('--out', type=Path, required=True, help='JSON report to write')
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``eigen-depth bench``; return 0, or 2 on bad input."""
    args = build_parser().parse_args(argv)
    try:
        device = select_device(args.device)
        if args.backends is None:
            args.backends = default_backends(device)
        names = [check_backend(n, device) for n in args.backends.split(',') if n.strip()]
        node_names = ([check_backend(n, device) for n in args.node_backends.split(',')
                       if n.strip()] if args.node_backends else names)
        if args.runs < 1 or args.images < 1:
            raise ValueError('--runs and --images must be >= 1')
    except ValueError as exc:
        print(f'eigen-depth bench: error: {exc}', file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    report: dict[str, Any] = {'machine': machine_info(device)}
    if args.train_data is not None:
        return bench_training_throughput(args, report)
    try:
        if args.checkpoint is not None:
            model, _ = load_checkpoint(args.checkpoint)
            source = str(args.checkpoint)
        else:
            torch.manual_seed(args.seed)
            model = EigenDepthNet(resolve_config(args.config)).eval()
            source = 'random (calibrated to realistic activation scales, no checkpoint)'
    except CheckpointError as exc:
        print(f'eigen-depth bench: error: {exc}', file=sys.stderr)
        return 2
    config = model.config
    width, height = camera_size(config)
    images = [scene_image(width, height, seed) for seed in range(args.images)]
    probe = torch.cat([network_input(image, config) for image in images[:2]])
    if args.checkpoint is None:
        calibrate_random_model(model, probe)
    state_dict = model.state_dict()
    report.update(config=config.name, weights=source, camera_image=f'{width}x{height}',
                  runs=args.runs, warmup=args.warmup)
    print(f'bench: {config.name} ({source}) on {device}, backends {", ".join(names)}',
          flush=True)
    reference = bench_reference(state_dict, config, images)
    results: list[dict[str, Any]] = []
    for name in names:
        print(f'  {name} ...', flush=True)
        results.append(bench_backend(name, state_dict, config, device, images, reference,
                                     args))
    report['backends'] = results
    if device.type == 'cuda':
        report['machine']['tf32'] = cuda_tf32_state()  # as the backends left it: off
    if not args.no_bounds:
        print('  bounds ...', flush=True)
        layers = count_flops(model, probe[:1])
        report['bounds'] = bench_bounds(layers, results, device, args.quick)
    report['point_cloud'] = bench_point_cloud(config, args.runs)
    if args.transport:
        print('  transport ...', flush=True)
        report['transport'] = bench_transport(
            width * height * 3, args.rate or CAMERA_RATES.get(config.name, 10.0), args)
    if args.node:
        with tempfile.TemporaryDirectory(prefix='eigen_depth_bench_') as folder:
            checkpoint = args.checkpoint or save_checkpoint(Path(folder) / 'bench.pt', model)
            forward = {r['backend']: r['forward']['median_ms'] for r in results}
            paced = {r['backend']: r['forward_paced']['median_ms'] for r in results}
            report['node'] = []
            for name in node_names:
                print(f'  node [{name}] ...', flush=True)
                report['node'].append(bench_node(name, checkpoint, config, args,
                                                 forward.get(name), paced.get(name)))
    report['machine']['load_average_1m_end'] = os.getloadavg()[0]
    report['peak_rss_mb'] = peak_rss_mb()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + '\n')
    print(format_table(report))
    print(f'wrote {args.out}')
    return 0


def bench_training_throughput(args: argparse.Namespace, report: dict[str, Any]) -> int:
    """Run ``--train-data``: training samples/s per variant; write and print the JSON."""
    from eigen_depth_training.throughput import bench_training

    root, split = args.train_data
    print(f'bench: training throughput on {split}, batch 32, {args.train_steps} steps',
          flush=True)
    try:
        report['training'] = bench_training(root, split, steps=args.train_steps,
                                            device=args.device)
    except ValueError as exc:
        print(f'eigen-depth bench: error: {exc}', file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + '\n')
    print(f'wrote {args.out}')
    return 0


def bench_reference(state_dict: dict[str, torch.Tensor], config: Any,
                    images: list[np.ndarray]) -> list[np.ndarray]:
    """Log depths of the float32 eager network (the accuracy reference)."""
    estimator = DepthEstimator(fresh_model(state_dict, config), device='cpu')
    return [estimator.predict_log(image)[0] for image in images]


if __name__ == '__main__':
    sys.exit(main())

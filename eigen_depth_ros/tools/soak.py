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
``eigen-depth soak``: drive a real ``depth_node`` under load and report latency and memory.

One ``depth_node`` process runs for the whole soak, on a DDS domain and namespace of its own
(loopback, shared memory: :func:`~eigen_depth_ros.node.ros_env.local_dds_env`). This process is
the camera and the consumers:

* a synthetic camera publishes a few fixed scene-like images (and their camera_info) at each
  rate of ``--rates`` in turn, with sensor-data QoS, each frame stamped uniquely;
* ``--subscribers`` consumer nodes each subscribe ``depth`` and ``points`` (reliable QoS);
* ``/diagnostics`` of the node gives its own frame counts (received, dropped, processed).

Each rate is a phase: ``--warmup`` seconds unmeasured, then ``--duration`` seconds measured,
then up to two seconds to drain. Per phase the report has the frames sent and answered, the
output rate, the drops (frames the node replaced by a newer one, by design; frames that
never reached it), the end-to-end latency (publish -> first consumer's ``depth``) p50/p99
overall and per time window (``--window``, default a minute for runs of three minutes or
more, else a quarter of the run), and the node's resident memory (``VmRSS`` of
``/proc/PID/status``) sampled every second, at the start (after warm-up) and at the end.

Verdicts against the reliability targets:

* **no crash**: the node stays up, exits 0 on SIGINT and printed no traceback;
* **latency flat**: p99 of the last window <= 1.2 x p99 of the first (getting faster passes);
* **memory flat**: RSS growth from the end of warm-up to the end of the phase < 5 %; on a
  GPU also the node's ``torch.cuda.memory_reserved`` (its ``/diagnostics``, read with the
  camera paused at both ends of the measured window) grows by less than 5 % or one 2 MiB
  allocator block, whichever is larger (a GPU memory leak does not show in the RSS).

Exit status: 0 all targets met, 1 a target missed (the JSON is written either way),
2 bad input or the node could not be started.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import sys
import tempfile
import threading
import time
from typing import Any, Callable

from eigen_depth_ros.node.depth_node import status_name
from eigen_depth_ros.node.harness import (camera_image, camera_info, HarnessError, HarnessTimeout,
                                          node_command, NodeProcess, output_qos, RosSide,
                                          set_stamp, stamp_ns)
from eigen_depth_ros.node.ros_env import config_file, local_dds_env, private_domain_id
import numpy as np

LATENCY_GROWTH_LIMIT = 1.2     # last-window p99 / first-window p99
MEMORY_GROWTH_LIMIT = 0.05     # RSS growth after warm-up, fraction
GPU_MEMORY_SLACK_MB = 2.0      # GPU reserved memory may grow by one allocator block
STARTUP_TIMEOUT_S = 90.0       # torch import + checkpoint load + discovery, on a busy CPU
DRAIN_S = 2.0                  # wait this long after a phase for outstanding outputs
RSS_PERIOD_S = 1.0
NAMESPACE = '/eigen_depth_soak'
STATUS_NAME = status_name(f'{NAMESPACE}/eigen_depth')  # the node's /diagnostics status
CAMERA_FRAME = 'soak_camera_optical'


class SoakError(RuntimeError):
    """The soak cannot run (bad option, node did not start); one line says why."""


# ----------------------------------------------------------------------------- helpers


def read_rss_mb(pid: int) -> float | None:
    """Resident memory of process ``pid`` in MiB (``VmRSS``), None when unreadable."""
    try:
        with open(f'/proc/{pid}/status', encoding='ascii', errors='replace') as status:
            for line in status:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


def latency_stats(values_s: list[float]) -> dict[str, float | int | None]:
    """Count, p50, p99 and max of latencies given in seconds, reported in milliseconds."""
    if not values_s:
        return {'count': 0, 'p50_ms': None, 'p99_ms': None, 'max_ms': None}
    ms = np.asarray(values_s, dtype=np.float64) * 1e3
    return {'count': int(ms.size), 'p50_ms': float(np.percentile(ms, 50)),
            'p99_ms': float(np.percentile(ms, 99)), 'max_ms': float(ms.max())}


def window_length(duration_s: float, requested: float | None) -> float:
    """Return the latency window: as asked, else 60 s for runs >= 180 s, else a quarter."""
    if requested:
        return float(requested)
    return 60.0 if duration_s >= 180.0 else max(duration_s / 4.0, 0.5)


def latency_windows(samples: list[tuple[float, float]], duration_s: float,
                    length_s: float) -> list[dict[str, Any]]:
    """
    Group ``(send time since phase start [s], latency [s])`` into consecutive windows.

    The run is cut into ``round(duration / length)`` equal windows (at least one), so no
    short sliver at the end stands for "the last window"; each window reports its frames,
    output rate and latency percentiles.
    """
    count = max(1, int(round(duration_s / length_s)))
    edges = np.linspace(0.0, duration_s, count + 1)
    windows = []
    for index, (start, end) in enumerate(zip(edges[:-1], edges[1:])):
        last = index == count - 1
        inside = [lat for t, lat in samples if start <= t < end or (last and t >= end)]
        windows.append({'start_s': round(float(start), 3), 'end_s': round(float(end), 3),
                        'output_rate_hz': len(inside) / max(end - start, 1e-9),
                        **latency_stats(inside)})
    return windows


def parse_rates(text: str) -> list[float]:
    """``'30,100'`` -> ``[30.0, 100.0]``; raises ValueError for a non-positive rate."""
    try:
        rates = [float(part) for part in text.split(',') if part.strip()]
    except ValueError:
        raise ValueError(f'--rates must be comma-separated numbers, got {text!r}') from None
    if not rates or any(not np.isfinite(r) or r <= 0 for r in rates):
        raise ValueError(f'--rates must be positive numbers, got {text!r}')
    return rates


def parse_size(text: str) -> tuple[int, int]:
    """``'1242x375'`` -> ``(1242, 375)``."""
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise ValueError(f'--image-size must be WIDTHxHEIGHT, got {text!r}') from None
    if width < 2 or height < 2:
        raise ValueError(f'--image-size must be at least 2x2, got {text!r}')
    return width, height


# ----------------------------------------------------------------------------- the run


@dataclass
class Phase:
    """What was measured while the camera ran at one rate."""

    rate_hz: float
    sent_at: dict[int, float] = field(default_factory=dict)  # measured stamp -> monotonic
    measure_start: float = 0.0
    measure_end: float = 0.0
    sent: int = 0
    late_ticks: int = 0
    latency: list[tuple[float, float]] = field(default_factory=list)
    points_latency: list[float] = field(default_factory=list)
    received: list[dict[str, int]] = field(default_factory=list)  # per subscriber
    rss: list[tuple[float, float]] = field(default_factory=list)
    diag_start: dict[str, str] = field(default_factory=dict)
    diag_end: dict[str, str] = field(default_factory=dict)


class Consumers:
    """The soak's ROS side on the harness: the camera, ``count`` consumer nodes, diagnostics."""

    def __init__(self, count: int, images: list[np.ndarray], fx: float,
                 env: dict[str, str], node: NodeProcess) -> None:
        """
        Join DDS in ``env`` as the camera and the consumers of ``node``'s outputs.

        :param count: consumer nodes, each subscribing ``depth`` and ``points``.
        :param images: the camera's RGB images, sent in turn.
        :param fx: the camera's focal length [px].
        """
        from sensor_msgs.msg import CameraInfo, Image

        self.ros = RosSide('soak_camera', NAMESPACE, env=env, process=node)
        self.lock = self.ros.cond
        self.phase: Phase | None = None
        self.first_depth = threading.Event()
        self.images = [camera_image(rgb, frame_id=CAMERA_FRAME) for rgb in images]
        height, width = images[0].shape[:2]
        self.info = camera_info(width, height, fx, frame_id=CAMERA_FRAME)
        self.image_pub = self.ros.publisher('image', Image)
        self.info_pub = self.ros.publisher('camera_info', CameraInfo)
        self.subscriptions = []
        for index in range(count):
            self.subscriptions += self.ros.subscribe_outputs(
                '', ('depth/image', 'points'), qos=output_qos(10), keep=False,
                node=self.ros.add_node(f'soak_consumer_{index}'),
                on_message=self._on_output(index))
        self.ros.subscribe_diagnostics()

    def _on_output(self, index: int) -> Callable[[str, Any, float], None]:
        def callback(kind: str, msg: Any, now: float) -> None:
            stamp = stamp_ns(msg)
            kind = 'depth' if kind == 'depth/image' else kind  # the report's key
            with self.lock:
                phase = self.phase
                if kind == 'depth' and index == 0:
                    self.first_depth.set()
                if phase is None or stamp not in phase.sent_at:
                    return  # a warm-up frame, or one of another phase
                sent = phase.sent_at[stamp]
                phase.received[index][kind] += 1
                if index == 0 and kind == 'depth':
                    phase.latency.append((sent - phase.measure_start, now - sent))
                elif index == 0:
                    phase.points_latency.append(now - sent)
        return callback

    def wait_until_answering(self) -> None:
        """Discovery both ways, then frames at 5 Hz until the first depth comes back."""
        self.ros.wait_connected([self.image_pub, self.info_pub], self.subscriptions,
                                STARTUP_TIMEOUT_S, 'depth_node to connect')
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        index = 0
        while not self.first_depth.is_set():
            if time.monotonic() > deadline:
                raise HarnessError(f'depth_node did not answer within {STARTUP_TIMEOUT_S:g} s')
            self.publish(None, index)
            index += 1
            try:
                self.ros.wait(self.first_depth.is_set, 0.2, 'the first depth')
            except HarnessTimeout:
                continue

    def publish(self, phase: Phase | None, index: int) -> None:
        """
        Publish camera_info and image ``index`` with a fresh, unique stamp.

        :param phase: the phase measuring this frame (None for an unmeasured frame).
        :param index: frame counter; picks the image.
        """
        stamp = time.time_ns()
        msg = set_stamp(self.images[index % len(self.images)], stamp)
        set_stamp(self.info, stamp)
        if phase is not None:
            with self.lock:
                phase.sent_at[stamp] = time.monotonic()
                phase.sent += 1
        self.info_pub.publish(self.info)
        self.image_pub.publish(msg)

    def fresh_diagnostics(self, after: float, timeout: float) -> dict[str, str]:
        """Return the first node diagnostics received after monotonic ``after`` (or the last)."""
        try:
            return self.ros.wait(lambda: self.ros.diagnostics(STATUS_NAME, after)[:1],
                                 timeout, 'fresh diagnostics')[0]
        except HarnessTimeout:
            return (self.ros.diagnostics(STATUS_NAME) or [{}])[-1]

    def close(self) -> None:
        """Stop spinning and leave DDS."""
        self.ros.close()


def _diag_delta(phase: Phase, key: str) -> int | None:
    """Increase of a node diagnostics total over the phase, None when unknown."""
    try:
        return int(phase.diag_end[key]) - int(phase.diag_start[key])
    except (KeyError, ValueError):
        return None


def _diag_float(values: dict[str, str], key: str) -> float | None:
    """Return a numeric ``/diagnostics`` value, None when absent or not a number."""
    try:
        return float(values[key])
    except (KeyError, ValueError):
        return None


def gpu_memory_flat(start_mb: float | None, end_mb: float | None) -> bool:
    """
    Whether GPU reserved memory stayed flat: grew by < 5 % or one 2 MiB block at most.

    True when there is nothing to judge (a CPU node reports no GPU memory).
    """
    if start_mb is None or end_mb is None:
        return True
    return end_mb - start_mb <= max(MEMORY_GROWTH_LIMIT * start_mb, GPU_MEMORY_SLACK_MB)


def summarize_phase(phase: Phase, window_s: float) -> dict[str, Any]:
    """Return the JSON report of one phase, with its verdicts."""
    from eigen_depth_ros.core.inference import GPU_RESERVED_KEY  # torch is loaded by now
    elapsed = max(phase.measure_end - phase.measure_start, 1e-9)
    answered = len(phase.latency)
    windows = latency_windows(phase.latency, elapsed, window_s)
    measured = [w for w in windows if w['p99_ms'] is not None]
    first = measured[0]['p99_ms'] if measured else None
    last = measured[-1]['p99_ms'] if measured else None
    ratio = last / first if first and len(measured) >= 2 else None
    rss_values = [mb for _, mb in phase.rss]
    rss_start = rss_values[0] if rss_values else None
    rss_end = rss_values[-1] if rss_values else None
    growth = (rss_end - rss_start) / rss_start if rss_start and rss_end else None
    node_received = _diag_delta(phase, 'frames received (total)')
    gpu_start = _diag_float(phase.diag_start, GPU_RESERVED_KEY)
    gpu_end = _diag_float(phase.diag_end, GPU_RESERVED_KEY)
    return {
        'rate_hz': phase.rate_hz,
        'duration_s': round(elapsed, 3),
        'input_rate_hz': phase.sent / elapsed,
        'output_rate_hz': answered / elapsed,
        'frames_sent': phase.sent,
        'late_ticks': phase.late_ticks,
        'depth_received': answered,
        'received_per_subscriber': phase.received,
        'dropped': {
            'not_answered': phase.sent - answered,
            'replaced_by_newer_frame': _diag_delta(phase, 'dropped frames (total)'),
            'never_reached_node': (phase.sent - node_received
                                   if node_received is not None else None),
            'missed_by_a_subscriber': (max(r['depth'] for r in phase.received)
                                       - min(r['depth'] for r in phase.received)),
            'note': 'the node keeps only the newest frame: when the camera is faster than '
                    'the network the frames in between are replaced, by design; node '
                    'counts are /diagnostics totals taken with the camera paused before and '
                    'after the measured window',
        },
        'node_diagnostics_end': phase.diag_end,
        'latency': latency_stats([lat for _, lat in phase.latency]),
        'points_latency': latency_stats(phase.points_latency),
        'window_s': window_s,
        'windows': windows,
        'p99_first_window_ms': first,
        'p99_last_window_ms': last,
        'p99_last_over_first': ratio,
        'rss_mb': {'start': rss_start, 'end': rss_end,
                   'samples': [[round(t, 2), round(mb, 2)] for t, mb in phase.rss]},
        'memory_growth': growth,
        'gpu_reserved_mb': {'start': gpu_start, 'end': gpu_end},
        'verdicts': {
            'answered': answered > 0 and all(r['depth'] > 0 for r in phase.received),
            'latency_flat': ratio is not None and ratio <= LATENCY_GROWTH_LIMIT,
            'memory_flat': (growth is not None and growth < MEMORY_GROWTH_LIMIT
                            and gpu_memory_flat(gpu_start, gpu_end)),
        },
    }


def _publish_for(ros: Consumers, node: NodeProcess, phase: Phase | None, rate: float,
                 seconds: float) -> None:
    """
    Publish at ``rate`` for ``seconds`` (absolute schedule, no catch-up bursts).

    With a ``phase`` the frames are measured and the node's RSS is sampled every second.
    """
    period = 1.0 / rate
    start = time.monotonic()
    end = start + seconds
    next_tick = next_rss = start
    index = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if phase is not None and now >= next_rss:
            rss = read_rss_mb(node.pid)
            if rss is not None:
                phase.rss.append((now - phase.measure_start, rss))
            next_rss += RSS_PERIOD_S
        ros.publish(phase, index)
        index += 1
        if index % 50 == 0:
            node.check_alive()
        next_tick += period
        delay = next_tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -period:   # more than a frame behind: do not send a burst
            if phase is not None:
                phase.late_ticks += 1
            next_tick = time.monotonic()


def _quiet_diagnostics(ros: Consumers, node: NodeProcess) -> dict[str, str]:
    """Let the node finish what it holds, then return diagnostics counting every frame."""
    paused = time.monotonic()
    diagnostics = ros.fresh_diagnostics(paused + 0.2, 3.0)
    node.check_alive()
    return diagnostics


def _run_phase(ros: Consumers, node: NodeProcess, rate: float, warmup_s: float,
               duration_s: float, log: Any) -> Phase:
    """
    Run one rate: warm-up, a short pause, the measured window, drain.

    The pause (about one diagnostics period, the camera silent) makes the node's frame
    totals of ``/diagnostics`` exact at both ends of the measured window.
    """
    phase = Phase(rate, received=[{'depth': 0, 'points': 0} for _ in ros.subscriptions[::2]])
    print(f'soak: {rate:g} Hz: {warmup_s:g} s warm-up, {duration_s:g} s measured', file=log,
          flush=True)
    _publish_for(ros, node, None, rate, warmup_s)
    phase.diag_start = _quiet_diagnostics(ros, node)
    phase.measure_start = time.monotonic()
    with ros.lock:
        ros.phase = phase
    _publish_for(ros, node, phase, rate, duration_s)
    phase.measure_end = time.monotonic()
    # outstanding: at most the frame in the network and the newest one waiting for it
    drain_end = time.monotonic() + DRAIN_S
    count, changed = -1, time.monotonic()
    while time.monotonic() < drain_end and time.monotonic() - changed < 0.5:
        with ros.lock:
            if len(phase.latency) != count:
                count, changed = len(phase.latency), time.monotonic()
        time.sleep(0.02)
    rss = read_rss_mb(node.pid)
    if rss is not None:
        phase.rss.append((time.monotonic() - phase.measure_start, rss))
    phase.diag_end = _quiet_diagnostics(ros, node)
    with ros.lock:
        ros.phase = None
    return phase


def _prepare_checkpoint(args: argparse.Namespace, folder: Path) -> tuple[Path, Any, str]:
    """Return the checkpoint to run and its config; a calibrated random net if none given."""
    import torch

    from .scenes import calibrate_random_model, network_input, scene_image
    from eigen_depth_ros.core.checkpoint import read_checkpoint, save_checkpoint
    from eigen_depth_ros.core.model import (config_from_dict, EigenDepthConfig, EigenDepthNet,
                                            resolve_config)

    if args.checkpoint is not None:
        payload = read_checkpoint(args.checkpoint)
        return args.checkpoint, config_from_dict(payload['model_args']), str(args.checkpoint)
    config = resolve_config(args.config)
    if args.width_mult != 1.0:
        def scaled(n: int) -> int:
            return max(2, int(round(n * args.width_mult)))
        config = EigenDepthConfig(
            f'{config.name}-narrow{args.width_mult:g}', config.input_width,
            config.input_height, config.fine_row_start, config.fine_input_height,
            coarse_channels=tuple(scaled(c) for c in config.coarse_channels),
            fc_width=scaled(config.fc_width), fine_channels=scaled(config.fine_channels))
    torch.manual_seed(0)
    model = EigenDepthNet(config).eval()
    probe = network_input(scene_image(config.input_width * 2, config.input_height * 2), config)
    calibrate_random_model(model, probe)
    path = save_checkpoint(folder / 'soak.pt', model)
    return path, config, f'random {config.name} (calibrated activations, no checkpoint given)'


def run_soak(args: argparse.Namespace) -> dict[str, Any]:
    """Run every phase and return the report (see the module docstring)."""
    from .scenes import camera_size, scene_image

    rates = parse_rates(args.rates)
    for name in ('duration', 'warmup'):
        if not getattr(args, name) >= 0 or (name == 'duration' and args.duration <= 0):
            raise ValueError(f'--{name} must be positive, got {getattr(args, name)}')
    if args.subscribers < 1:
        raise ValueError(f'--subscribers must be >= 1, got {args.subscribers}')
    domain = args.domain_id if args.domain_id is not None else private_domain_id(31)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    log_path = args.out.with_suffix('.node.log')
    log = sys.stdout
    with tempfile.TemporaryDirectory(prefix='eigen_depth_soak_') as folder:
        checkpoint, config, weights = _prepare_checkpoint(args, Path(folder))
        width, height = (parse_size(args.image_size) if args.image_size else
                         camera_size(config))
        images = [scene_image(width, height, seed) for seed in range(args.images)]
        cmd = node_command(checkpoint, params={'compressed': False, 'depth_resolution': 'network',
                                               'device': args.device,
                                               'diagnostics_period': 0.5},
                           namespace=NAMESPACE, params_file=config_file('depth.yaml'))
        started = time.time()
        load_start = os.getloadavg()[0]
        env = local_dds_env(domain)
        node = NodeProcess(cmd, env, log_path)
        ros = None
        phases: list[Phase] = []
        crash = None
        try:
            ros = Consumers(args.subscribers, images, 0.58 * width, env, node)
            ros.wait_until_answering()
            for rate in rates:
                phases.append(_run_phase(ros, node, rate, args.warmup, args.duration, log))
        except HarnessError as exc:
            crash = str(exc)
        finally:
            if ros is not None:
                ros.close()
            alive_at_end = node.running()
            stop_started = time.monotonic()
            code = node.stop()
            stop_s = time.monotonic() - stop_started
        if crash and not phases:
            raise SoakError(f'{crash} (node log: {node.tail()})')
    node_log = log_path.read_text(errors='replace') if log_path.exists() else ''
    window_s = window_length(args.duration, args.window)
    reports = [summarize_phase(p, window_s) for p in phases]
    rss_first = reports[0]['rss_mb']['start'] if reports else None
    rss_last = reports[-1]['rss_mb']['end'] if reports else None
    no_crash = (crash is None and alive_at_end and code == 0
                and 'Traceback' not in node_log and len(phases) == len(rates))
    verdicts = {
        'no_crash': no_crash,
        'latency_flat': bool(reports) and all(r['verdicts']['latency_flat'] for r in reports),
        'memory_flat': bool(reports) and all(r['verdicts']['memory_flat'] for r in reports),
        'answered': bool(reports) and all(r['verdicts']['answered'] for r in reports),
    }
    verdicts['all'] = all(verdicts.values())
    return {
        'command': 'eigen-depth soak', 'started_unix': started,
        'targets': {'latency_p99_last_over_first_max': LATENCY_GROWTH_LIMIT,
                    'memory_growth_max': MEMORY_GROWTH_LIMIT},
        'machine': {'cpus': os.cpu_count(), 'load_average_1m_start': load_start,
                    'load_average_1m_end': os.getloadavg()[0]},
        'network': config.name, 'weights': weights, 'device': args.device,
        'camera': f'{width}x{height} rgb8, {len(images)} images',
        'subscribers': args.subscribers, 'warmup_s': args.warmup,
        'node': {'pid': node.pid, 'exit_code': code, 'alive_at_end': alive_at_end,
                 'stop_s': stop_s, 'traceback_in_log': 'Traceback' in node_log,
                 'error': crash, 'log': str(log_path)},
        'memory': {'start_mb': rss_first, 'end_mb': rss_last,
                   'growth': ((rss_last - rss_first) / rss_first
                              if rss_first and rss_last else None),
                   'gpu_reserved_start_mb': (reports[0]['gpu_reserved_mb']['start']
                                             if reports else None),
                   'gpu_reserved_end_mb': (reports[-1]['gpu_reserved_mb']['end']
                                           if reports else None)},
        'rates': reports,
        'verdicts': verdicts,
    }


# ----------------------------------------------------------------------------- output


def _fmt(value: Any, spec: str = '.1f') -> str:
    return '-' if value is None else format(value, spec)


def format_table(report: dict[str, Any]) -> str:
    """Format the report as a plain-text table, one row per rate, then the verdicts."""
    head = (f'{"rate":>6} {"in Hz":>6} {"out Hz":>6} {"sent":>6} {"answ":>6} {"repl":>5} '
            f'{"lost":>5} {"p50":>7} {"p99":>7} {"p99 1st":>7} {"p99 last":>8} '
            f'{"RSS start":>9} {"RSS end":>8} {"growth":>7}  verdicts')
    lines = [f'soak of {report["network"]} on {report["device"]}, camera {report["camera"]}, '
             f'{report["subscribers"]} subscribers (latency ms, RSS MiB)', head]
    for r in report['rates']:
        flags = ' '.join(name for name, ok in r['verdicts'].items() if not ok)
        lines.append(
            f'{r["rate_hz"]:>6g} {r["input_rate_hz"]:>6.1f} {r["output_rate_hz"]:>6.2f} '
            f'{r["frames_sent"]:>6} {r["depth_received"]:>6} '
            f'{_fmt(r["dropped"]["replaced_by_newer_frame"], "d"):>5} '
            f'{_fmt(r["dropped"]["never_reached_node"], "d"):>5} '
            f'{_fmt(r["latency"]["p50_ms"]):>7} {_fmt(r["latency"]["p99_ms"]):>7} '
            f'{_fmt(r["p99_first_window_ms"]):>7} {_fmt(r["p99_last_window_ms"]):>8} '
            f'{_fmt(r["rss_mb"]["start"]):>9} {_fmt(r["rss_mb"]["end"]):>8} '
            f'{_fmt(None if r["memory_growth"] is None else 100 * r["memory_growth"], "+.2f"):>6}%'
            f'  {"ok" if not flags else "MISSED: " + flags}')
        gpu = r.get('gpu_reserved_mb', {})
        if gpu.get('start') is not None:
            lines.append(f'{"":>6} GPU memory reserved {_fmt(gpu["start"])} -> '
                         f'{_fmt(gpu["end"])} MiB')
    v = report['verdicts']
    lines.append('verdicts: ' + ', '.join(f'{k}={"yes" if ok else "NO"}' for k, ok in v.items()
                                          if k != 'all')
                 + f'; node exit code {report["node"]["exit_code"]}')
    return '\n'.join(lines)


def build_parser() -> argparse.ArgumentParser:
    """Options of ``eigen-depth soak``."""
    parser = argparse.ArgumentParser(
        prog='eigen-depth soak', formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description='Run depth_node in its own process under a synthetic camera at each '
                    'rate, with several subscribers, and report latency over time, output '
                    'rate, drops and resident memory, with verdicts against the targets '
                    '(no crash, p99 of the last window within 20%% of the first, memory '
                    'growth under 5%% after warm-up).')
    parser.add_argument('--out', type=Path, required=True, help='JSON report to write')
    parser.add_argument('--rates', default='30,100',
                        help='camera rates to run in turn, Hz, comma-separated')
    parser.add_argument('--duration', type=float, default=20.0,
                        help='measured seconds per rate (use 300+ for a real soak)')
    parser.add_argument('--warmup', type=float, default=5.0,
                        help='unmeasured seconds at the start of each rate')
    parser.add_argument('--window', type=float, default=None,
                        help='latency window in seconds (default: 60 for runs of 180 s or '
                             'more, else a quarter of --duration)')
    parser.add_argument('--subscribers', type=int, default=3,
                        help='consumer nodes, each subscribing depth and points')
    parser.add_argument('--checkpoint', type=Path, default=None,
                        help='network checkpoint (default: a random network of --config, '
                             'calibrated to realistic activations)')
    parser.add_argument('--config', choices=('kitti', 'nyu'), default='kitti',
                        help='network of the random checkpoint when none is given')
    parser.add_argument('--width-mult', type=float, default=1.0,
                        help='narrow the random network by this factor (not the paper)')
    parser.add_argument('--image-size', default=None,
                        help='camera image WIDTHxHEIGHT (default: 1242x375 for KITTI, '
                             '640x480 for NYU)')
    parser.add_argument('--images', type=int, default=4,
                        help='distinct synthetic camera images, sent in turn')
    parser.add_argument('--device', default='auto', help="node parameter 'device'")
    parser.add_argument('--domain-id', type=int, default=None,
                        help='ROS_DOMAIN_ID of the soak (default: one derived from the pid)')
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``eigen-depth soak``: 0 targets met, 1 missed, 2 error."""
    args = build_parser().parse_args(argv)
    try:
        if args.images < 1 or not args.width_mult > 0:
            raise ValueError('--images must be >= 1 and --width-mult positive')
        report = run_soak(args)
    except (SoakError, ValueError, OSError) as exc:
        print(f'eigen-depth soak: error: {exc}', file=sys.stderr)
        return 2
    args.out.write_text(json.dumps(report, indent=2) + '\n')
    print(format_table(report))
    print(f'wrote {args.out} (node log {report["node"]["log"]})')
    return 0 if report['verdicts']['all'] else 1


if __name__ == '__main__':
    sys.exit(main())

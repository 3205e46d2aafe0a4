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

"""Timing, memory and machine facts every bench figure is reported with."""
from __future__ import annotations

import os
from pathlib import Path
import platform
import resource
import statistics
import time
from typing import Any, Callable

from eigen_depth_ros.core.backends import cuda_tf32_state
import numpy as np
import torch


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

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

"""The network per backend: forward and predict times, and accuracy against float32 eager."""
from __future__ import annotations

import argparse
import gc
import os
import time
from typing import Any

from eigen_depth_ros.core.backends import BACKENDS, split_name
from eigen_depth_ros.core.inference import DepthEstimator
from eigen_depth_ros.core.model import EigenDepthNet
from eigen_depth_ros.tools.scenes import camera_family
import numpy as np
import torch

from .measure import device_sync, peak_rss_mb, rss_mb, summarize_ms, time_calls
from .node import CAMERA_RATES


DEFAULT_BACKENDS = 'eager,bf16_int8'
"""Backends measured by default on a CPU."""


DEFAULT_CUDA_BACKENDS = 'eager,fp16,fp16+graph,bf16,bf16+graph'
"""Backends measured by default on CUDA (``bf16_int8`` and ``int8`` run on the CPU only)."""


def default_backends(device: torch.device | str) -> str:
    """Return the comma-separated backends ``bench`` measures on ``device`` by default."""
    return DEFAULT_CUDA_BACKENDS if torch.device(device).type == 'cuda' else DEFAULT_BACKENDS


def fresh_model(state_dict: dict[str, torch.Tensor], config: Any) -> EigenDepthNet:
    """Build a new float32 CPU network holding (a copy of) ``state_dict``."""
    model = EigenDepthNet(config).eval()
    model.load_state_dict(state_dict)
    return model


def bench_reference(state_dict: dict[str, torch.Tensor], config: Any,
                    images: list[np.ndarray]) -> list[np.ndarray]:
    """Log depths of the float32 eager network (the accuracy reference)."""
    estimator = DepthEstimator(fresh_model(state_dict, config), device='cpu')
    return [estimator.predict_log(image)[0] for image in images]


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
        period = 1.0 / (args.rate or CAMERA_RATES.get(camera_family(config), 10.0))
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

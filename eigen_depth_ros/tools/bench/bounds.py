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

"""How fast the network could be: FLOPs and weight bytes against measured compute and memory."""
from __future__ import annotations

from typing import Any

from eigen_depth_ros.core.backends import check_backend, split_name
from eigen_depth_ros.core.model import EigenDepthNet
import torch
from torch import nn

from .measure import device_sync, time_calls


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

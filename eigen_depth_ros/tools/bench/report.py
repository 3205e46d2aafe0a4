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

"""The table ``eigen-depth bench`` prints."""
from __future__ import annotations

from typing import Any


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

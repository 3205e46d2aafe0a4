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
``eigen-depth gpu-check``: prove the CUDA code paths in a few minutes on one GPU.

Written for the first short time slot on a GPU machine (a bare one: a recent PyTorch, no ROS
needed). One command runs, in order, and exits non-zero when any part fails:

1. **backends**: every CUDA backend (``eager``, ``channels_last``, ``fp16``, ``bf16`` and
   each with ``+graph``) on the KITTI network (random weights calibrated to realistic
   activations) against float32 on the CPU, on two different frames and the first again;
   no "CUDA Graph is empty" warning; each ``+graph`` row equal to its plain row (a graph
   captured on the wrong device replays nothing and returns the warm-up frame); forward
   median [ms]; with two or more GPUs, ``fp16+graph`` on the last one too;
2. **training**: a tiny synthetic KITTI world (written on the spot), a narrow network,
   a few AMP steps through pinned memory, uninterrupted, and the same run stopped with
   ``--stop-after`` and continued with ``--resume``: the weights must be bit-identical;
3. **eval**: the Eigen-protocol evaluation of that checkpoint on the device and on the CPU,
   agreeing to 1e-3 (relative);
4. **onnx**: export to ONNX and run it with the CUDA execution provider (skipped without
   onnxruntime-gpu), against float32 PyTorch on the CPU;
5. **throughput**: coarse-stage training samples/s of the KITTI network (AMP, prepared set)
   against its compute alone;
6. **node**: ``depth_node`` end to end with ``device:=auto`` under a camera stream (skipped,
   saying so, when rclpy is not importable).

It writes ``OUT/gpu_check.json`` and the table ``OUT/gpu_check.txt``. With ``--device cpu``
the same sequence runs on the CPU (the CPU backends instead of the CUDA ones); the test
suite runs that, small, so the check itself does not rot.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
from pathlib import Path
import statistics
import sys
import tempfile
import time
import traceback
from typing import Any, Callable
import warnings

import torch

CUDA_BACKENDS = ('eager', 'channels_last', 'fp16', 'bf16', 'eager+graph',
                 'channels_last+graph', 'fp16+graph', 'bf16+graph')
"""Backends checked on CUDA (``compile`` is left out: it compiles for minutes)."""
CPU_BACKENDS = ('eager', 'channels_last', 'bf16', 'int8', 'bf16_int8')
"""Backends checked with ``--device cpu``."""

LOG_DEPTH_TOLERANCE = {'eager': 1e-3, 'channels_last': 1e-3, 'fp16': 3e-2, 'bf16': 0.1,
                       'int8': 0.1, 'bf16_int8': 0.1, 'onnx': 1e-3, 'onnx_cuda': 2e-2}
"""
Largest |log depth - float32 CPU log depth| accepted per backend (0.1 is 10 % in metres;
float32 on CUDA has TF32 off, so it agrees to about 1e-5; ONNX Runtime's CUDA provider
may use TF32)."""
GRAPH_TOLERANCE = 1e-5
"""Largest difference of a ``+graph`` row from its plain row (the same kernels)."""
EVAL_TOLERANCE = 1e-3
"""Relative agreement of every evaluation metric on the device and on the CPU."""
EMPTY_GRAPH_WARNING = 'graph is empty'
SYNTH_SIZE = (414, 125)  # a third of KITTI's camera image: quick to render, same aspect


def _part(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one part; turn an exception into a failed part that names it."""
    started = time.perf_counter()
    try:
        result = fn()
    except Exception as exc:  # noqa: B902 - every failure is reported, then the next part
        lines = traceback.format_exception_only(type(exc), exc)
        result = {'ok': False, 'error': ''.join(lines).strip().splitlines()[-1],
                  'where': traceback.format_tb(exc.__traceback__)[-1].strip()}
    result['seconds'] = round(time.perf_counter() - started, 2)
    result.setdefault('ok', False)
    status = 'skipped' if result.get('skipped') else ('ok' if result['ok'] else 'FAILED')
    print(f'gpu-check: {name}: {status} ({result["seconds"]:.1f} s)'
          + (f': {result.get("error") or result.get("skipped")}'
             if status != 'ok' else ''), flush=True)
    return result


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _median_ms(fn: Callable[[], Any], device: torch.device, runs: int) -> float:
    """Median wall time of ``fn`` in ms over ``runs`` calls after two warm-up calls."""
    for _ in range(2):
        fn()
    _sync(device)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - started)
    return 1e3 * statistics.median(times)


# ----------------------------------------------------------------------------- parts


def check_backends(device: torch.device, config: Any, runs: int,
                   names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """
    Run every backend of ``device`` on two frames against float32 on the CPU.

    :return: ``{'ok', 'rows': [...], 'tf32': ...}``; a row per backend with
        ``max_abs_log_diff``, ``tolerance``, ``forward_ms`` and, for ``+graph``,
        ``max_diff_to_plain``.
    """
    from eigen_depth_ros.core.backends import build_backend, cuda_tf32_state, split_name
    from .scenes import calibrate_random_model, network_input, scene_image
    from eigen_depth_ros.core.model import EigenDepthNet

    torch.manual_seed(0)
    model = EigenDepthNet(config).eval()
    width, height = config.input_width * 2, config.input_height * 2
    frames = torch.cat([network_input(scene_image(width, height, seed), config)
                        for seed in (1, 2)])                     # (2, 3, H_in, W_in)
    calibrate_random_model(model, frames)
    inputs = [frames[:1], frames[1:], frames[:1]]                # two frames, the first again
    with torch.inference_mode():
        reference = [model(x) for x in inputs]                   # (1, 1, H_out, W_out) each
    if names is None:
        names = CUDA_BACKENDS if device.type == 'cuda' else CPU_BACKENDS
    targets = [(name, device) for name in names]
    if device.type == 'cuda' and torch.cuda.device_count() > 1 and 'fp16+graph' in names:
        targets.append(('fp16+graph', torch.device('cuda', torch.cuda.device_count() - 1)))
    rows, plain = [], {}
    for name, where in targets:
        row: dict[str, Any] = {'backend': name, 'device': str(where)}
        rows.append(row)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                backend = build_backend(name, copy.deepcopy(model), where)
                with torch.inference_mode():
                    outs = [backend(x.to(where)).cpu() for x in inputs]
                    row['forward_ms'] = round(_median_ms(lambda: backend(inputs[0].to(where)),
                                                         where, runs), 3)
        except Exception as exc:  # noqa: B902 - one backend's failure is one failed row
            row.update(ok=False, error=f'{type(exc).__name__}: {exc}')
            continue
        base, graph = split_name(name)
        tolerance = LOG_DEPTH_TOLERANCE[base]
        diff = max(float((o - r).abs().max()) for o, r in zip(outs, reference))
        empty = [str(w.message) for w in caught if EMPTY_GRAPH_WARNING in str(w.message).lower()]
        row.update(max_abs_log_diff=diff, tolerance=tolerance, empty_graph_warnings=empty,
                   finite=all(bool(torch.isfinite(o).all()) for o in outs))
        row['ok'] = diff <= tolerance and not empty and row['finite']
        if graph and (base, where) in plain:
            to_plain = max(float((o - p).abs().max()) for o, p in zip(outs, plain[base, where]))
            row['max_diff_to_plain'] = to_plain
            row['ok'] = row['ok'] and to_plain <= GRAPH_TOLERANCE
        elif not graph:
            plain[base, where] = outs
    result: dict[str, Any] = {'ok': all(r['ok'] for r in rows), 'rows': rows,
                              'network': config.name}
    if device.type == 'cuda':
        result['tf32'] = cuda_tf32_state()
    return result


def make_world(folder: Path) -> tuple[Path, Path]:
    """Write a tiny synthetic KITTI world and its splits; return (root, splits folder)."""
    from eigen_depth_training.splits import build_eigen_split
    from eigen_depth_training.synth import write_synthetic_kitti

    root = folder / 'raw'
    write_synthetic_kitti(root, drives=6, frames=6, seed=3, size=SYNTH_SIZE, stationary=0)
    split = build_eigen_split(root, val_fraction=0.3, seed=0, skip_stationary=False)
    split.write(folder / 'splits')
    return root, folder / 'splits'


def check_training(device: torch.device, root: Path, splits: Path, work: Path,
                   width_mult: float, steps: int) -> dict[str, Any]:
    """
    Train ``steps`` AMP steps uninterrupted, and the same in two pieces; compare the weights.

    Batch 4, data workers with pinned memory on CUDA, the coarse stage then the fine one.
    """
    from eigen_depth_training.distributed import amp_dtype_for
    from eigen_depth_training.options import default_options
    from eigen_depth_training.train import train

    from eigen_depth_ros.core.checkpoint import read_checkpoint

    batch = 4
    coarse = max(2, steps - steps // 2)
    fine = max(1, steps - coarse)

    def options(out: Path, **extra: Any) -> argparse.Namespace:
        return default_options(
            data_root=root, train_split=splits / 'train_files.txt', val_split=None, out=out,
            cache_dir=work / 'cache', batch_size=batch, coarse_samples=coarse * batch,
            fine_samples=fine * batch, width_mult=width_mult, workers=1, amp='on',
            device=str(device), checkpoint_every=1000, no_progress=True,
            no_tensorboard=True, **extra)

    straight = train(options(work / 'straight'))
    first = train(options(work / 'pieces', stop_after=max(1, coarse // 2)))
    second = train(options(work / 'pieces', resume='last'))
    a = read_checkpoint(work / 'straight' / 'final.pt')['state_dict']
    b = read_checkpoint(work / 'pieces' / 'final.pt')['state_dict']
    diff = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    finite = all(bool(torch.isfinite(v).all()) for v in a.values())
    ok = (straight.status == 'finished' and first.status == 'stopped'
          and second.status == 'finished' and diff == 0.0 and finite)
    return {'ok': ok, 'steps': straight.steps, 'batch': batch,
            'amp_dtype': str(amp_dtype_for(device)).replace('torch.', ''),
            'pinned_memory': device.type == 'cuda', 'stopped_at': [first.stage, first.step],
            'resume_max_abs_weight_diff': diff, 'bit_exact': diff == 0.0,
            'weights_finite': finite, 'train_loss': straight.train_loss,
            'samples_per_second': round(straight.samples_per_second, 1),
            'checkpoint': str(work / 'straight' / 'final.pt')}


def check_eval(device: torch.device, root: Path, splits: Path, checkpoint: Path,
               work: Path) -> dict[str, Any]:
    """Evaluate ``checkpoint`` on the device and on the CPU; every metric must agree."""
    from eigen_depth_training.evaluate import evaluate

    kwargs = {'stages': ('coarse', 'fine'), 'cache_dir': work / 'cache', 'examples': 0,
              'max_images': 4}
    here = evaluate(root, splits / 'test_files.txt', checkpoint, device=str(device), **kwargs)
    cpu = evaluate(root, splits / 'test_files.txt', checkpoint, device='cpu', **kwargs)
    worst, where = 0.0, ''
    for method, result in cpu['results'].items():
        for name, value in result['aggregate'].items():
            other = here['results'][method]['aggregate'][name]
            if not isinstance(value, (int, float)) or value is None:
                continue
            rel = abs(other - value) / max(1.0, abs(value))
            if not rel <= worst:  # NaN too
                worst, where = rel, f'{method} {name}'
    return {'ok': worst <= EVAL_TOLERANCE, 'images': here['images'],
            'max_rel_metric_diff': worst, 'worst_metric': where,
            'tolerance': EVAL_TOLERANCE,
            'abs_rel': {m: r['aggregate']['abs_rel'] for m, r in here['results'].items()}}


def check_onnx(device: torch.device, config: Any, work: Path) -> dict[str, Any]:
    """Export to ONNX and run it (CUDA provider on CUDA) against float32 on the CPU."""
    try:
        import onnxruntime as ort
    except ImportError:
        return {'ok': True, 'skipped': 'onnxruntime is not installed'}
    if device.type == 'cuda' and 'CUDAExecutionProvider' not in ort.get_available_providers():
        return {'ok': True, 'skipped': 'onnxruntime-gpu is not installed (only the CPU '
                                       'execution provider is there)'}
    from eigen_depth_ros.core.backends import build_backend, export_onnx
    from .scenes import network_input, scene_image
    from eigen_depth_ros.core.model import EigenDepthNet

    torch.manual_seed(0)
    model = EigenDepthNet(config).eval()
    path = export_onnx(copy.deepcopy(model), work / 'model.onnx')
    backend = build_backend('onnx', copy.deepcopy(model), device, onnx_path=path)
    x = network_input(scene_image(config.input_width * 2, config.input_height * 2, 3), config)
    with torch.inference_mode():
        diff = float((backend(x.to(device)).cpu() - model(x)).abs().max())
    tolerance = LOG_DEPTH_TOLERANCE['onnx_cuda' if device.type == 'cuda' else 'onnx']
    return {'ok': diff <= tolerance, 'max_abs_log_diff': diff, 'tolerance': tolerance,
            'onnxruntime': ort.__version__, 'file_bytes': path.stat().st_size}


def check_throughput(device: torch.device, root: Path, splits: Path, width_mult: float,
                     steps: int) -> dict[str, Any]:
    """
    Coarse-stage training samples/s of the KITTI network (batch 32, AMP, prepared set).

    The real loop against its compute alone (:func:`~eigen_depth_training.throughput.
    bench_training`'s first two rows), and the host CPU time per sample of the data path.
    """
    from eigen_depth_training.throughput import bench_training, VARIANTS

    batch = 32
    report = bench_training(root, splits / 'train_files.txt', width_mult=width_mult,
                            batch_size=batch, steps=steps, warmup=3,
                            device=str(device), variants=VARIANTS[:2])
    compute, loop = report['rows']
    return {'ok': loop['samples_per_second'] > 0, 'width_mult': width_mult, 'batch': batch,
            'steps': steps, 'samples_per_second': loop['samples_per_second'],
            'compute_only_samples_per_second': compute['samples_per_second'],
            'ratio': loop['ratio'], 'host_ms_per_sample': report['host_ms_per_sample'],
            'goal_samples_per_second': 1000 if width_mult == 1.0 else None}


def check_node(checkpoint: Path, frames: int) -> dict[str, Any]:
    """Run ``depth_node`` with ``device:=auto`` under a camera stream (needs rclpy)."""
    try:
        import rclpy  # noqa: F401 - only whether it imports
    except ImportError as exc:
        return {'ok': True, 'skipped': f'rclpy is not importable ({exc}): no ROS here, the '
                                       'node part was not run'}
    from eigen_depth_ros.core.checkpoint import load_checkpoint

    from .bench.cli import build_parser
    from .bench.node import bench_node

    model, _ = load_checkpoint(checkpoint)
    config = model.config
    # bench's own options and defaults, only the run's length and rate set here
    args = build_parser().parse_args([
        '--out', os.devnull, '--device', 'auto', '--node-frames', str(frames),
        '--node-warmup', '2', '--rate', '10', '--transport-messages', '0'])
    result = bench_node('auto', checkpoint, config, args, None)
    if 'skipped' in result:
        return {'ok': False, 'error': result['skipped']}
    return {'ok': result['received'] > 0, 'device': 'auto', 'backend': 'auto',
            'e2e_ms': result['e2e'], 'received': result['received'], 'sent': result['sent'],
            'node_diagnostics': result.get('node_diagnostics', {})}


# ----------------------------------------------------------------------------- command


def run_check(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Run the parts in order; return the report (``ok`` is the verdict)."""
    from .bench.measure import machine_info
    from eigen_depth_ros.core.model import EigenDepthConfig, KITTI

    config = KITTI
    if args.small:
        config = EigenDepthConfig('kitti-small', KITTI.input_width, KITTI.input_height,
                                  KITTI.fine_row_start, KITTI.fine_input_height,
                                  coarse_channels=(8, 16, 16, 16, 16), fc_width=64,
                                  fine_channels=8)
    started = time.perf_counter()
    report: dict[str, Any] = {'command': 'eigen-depth gpu-check', 'device': str(device),
                              'machine': machine_info(device), 'network': config.name,
                              'parts': {}}
    parts = report['parts']
    parts['backends'] = _part('backends', lambda: check_backends(device, config, args.runs))
    with tempfile.TemporaryDirectory(prefix='eigen_depth_gpu_check_') as folder:
        work = Path(folder)
        root, splits = make_world(work)
        parts['training'] = _part('training', lambda: check_training(
            device, root, splits, work, args.width_mult, args.train_steps))
        checkpoint = Path(parts['training'].get('checkpoint', work / 'none.pt'))
        if checkpoint.is_file():
            parts['eval'] = _part('eval', lambda: check_eval(device, root, splits,
                                                             checkpoint, work))
        else:
            parts['eval'] = {'ok': False, 'error': 'no checkpoint: the training part failed',
                             'seconds': 0.0}
        parts['onnx'] = _part('onnx', lambda: check_onnx(device, config, work))
        if args.throughput_steps:
            parts['throughput'] = _part('throughput', lambda: check_throughput(
                device, root, splits, args.throughput_width_mult, args.throughput_steps))
        if args.skip_node:
            parts['node'] = {'ok': True, 'skipped': '--skip-node', 'seconds': 0.0}
        elif checkpoint.is_file():
            parts['node'] = _part('node', lambda: check_node(checkpoint, args.node_frames))
        else:
            parts['node'] = {'ok': False, 'error': 'no checkpoint: the training part failed',
                             'seconds': 0.0}
    report['seconds'] = round(time.perf_counter() - started, 1)
    report['budget_s'] = args.budget
    report['within_budget'] = report['seconds'] <= args.budget
    report['ok'] = all(p['ok'] for p in parts.values()) and report['within_budget']
    return report


def format_table(report: dict[str, Any]) -> str:
    """Format the report: one line per part, one per backend, then the verdict."""
    lines = [f"eigen-depth gpu-check on {report['device']} "
             f"({report['machine'].get('gpu', report['machine']['cpu_model'])}, torch "
             f"{report['machine']['torch_version']}), {report['network']}", '']
    for name, part in report['parts'].items():
        status = 'skipped' if part.get('skipped') else ('ok' if part['ok'] else 'FAILED')
        note = part.get('error') or part.get('skipped') or ''
        lines.append(f'{name:<11}{status:<9}{part["seconds"]:>7.1f} s  {note}')
    lines += ['', f"{'backend':<22}{'device':<8}{'max dlog':>10}{'tol':>8}{'to plain':>10}"
                  f"{'fwd ms':>9}  verdict"]
    for row in report['parts'].get('backends', {}).get('rows', []):
        plain = row.get('max_diff_to_plain')
        lines.append(
            f"{row['backend']:<22}{row['device']:<8}"
            f"{row.get('max_abs_log_diff', float('nan')):>10.2e}"
            f"{row.get('tolerance', float('nan')):>8.0e}"
            f"{'-' if plain is None else format(plain, '.1e'):>10}"
            f"{row.get('forward_ms', float('nan')):>9.3f}  "
            f"{'ok' if row['ok'] else 'FAILED ' + row.get('error', '')}")
    training = report['parts'].get('training', {})
    if 'bit_exact' in training:
        lines.append(f"training: {training['amp_dtype']} autocast, resume bit-exact "
                     f"{'yes' if training['bit_exact'] else 'NO'} (max weight diff "
                     f"{training['resume_max_abs_weight_diff']:.1e})")
    node = report['parts'].get('node', {})
    if 'e2e_ms' in node:
        lines.append(f"node e2e median {node['e2e_ms']['median_ms']:.2f} ms")
    lines.append(f"total {report['seconds']:.0f} s (budget {report['budget_s']:.0f} s): "
                 f"{'PASSED' if report['ok'] else 'FAILED'}")
    return '\n'.join(lines)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of ``eigen-depth gpu-check``."""
    parser = argparse.ArgumentParser(
        prog='eigen-depth gpu-check',
        description='Prove the CUDA code paths in a few minutes: backends against the CPU, '
                    'AMP training with an exact resume, eval on the device against the '
                    'CPU, ONNX with the CUDA provider, the node end to end. Writes '
                    'OUT/gpu_check.json and OUT/gpu_check.txt; exits 1 on any failure.')
    parser.add_argument('--out', type=Path, required=True, help='folder for the report')
    parser.add_argument('--device', default='cuda',
                        help="'cuda', 'cuda:N' or 'cpu' (the same sequence on the CPU)")
    parser.add_argument('--small', action='store_true',
                        help='a narrow test network for the backends and ONNX (for tests)')
    parser.add_argument('--runs', type=int, default=50,
                        help='timed forward passes per backend')
    parser.add_argument('--width-mult', type=float, default=0.125,
                        help='channel width of the network the training part trains')
    parser.add_argument('--train-steps', type=int, default=6,
                        help='optimiser steps of the training part (coarse then fine)')
    parser.add_argument('--throughput-steps', type=int, default=30,
                        help='timed steps of the training throughput part (0: skip it)')
    parser.add_argument('--throughput-width-mult', type=float, default=1.0,
                        help='channel width of the network whose samples/s are measured')
    parser.add_argument('--node-frames', type=int, default=50,
                        help='timed camera frames of the node part')
    parser.add_argument('--skip-node', action='store_true',
                        help='leave out the node part (it is skipped anyway without rclpy)')
    parser.add_argument('--budget', type=float, default=480.0,
                        help='seconds the whole check may take (fails beyond)')
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``eigen-depth gpu-check``; return 0 (passed), 1 (a part failed) or 2."""
    from eigen_depth_training.distributed import CUBLAS_WORKSPACE

    from eigen_depth_ros.core.inference import select_device
    from eigen_depth_ros.core.metrics import json_safe

    args = build_parser().parse_args(argv)

    # cuBLAS reads this when its handle is created: before the first GPU matrix multiply
    os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', CUBLAS_WORKSPACE)
    try:
        device = select_device(args.device)
        if args.device.strip().lower() == 'auto':
            raise ValueError("give --device cuda, cuda:N or cpu, not 'auto'")
        if min(args.runs, args.train_steps) < 1 or args.train_steps < 3:
            raise ValueError('--runs must be >= 1 and --train-steps >= 3')
    except ValueError as exc:
        print(f'eigen-depth gpu-check: error: {exc}', file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    report = run_check(args, device)
    text = json.dumps(json_safe(report, digits=9), indent=2)
    (args.out / 'gpu_check.json').write_text(text + '\n')
    table = format_table(report)
    (args.out / 'gpu_check.txt').write_text(table + '\n')
    print(table)
    print(f"wrote {args.out / 'gpu_check.json'} and gpu_check.txt")
    return 0 if report['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())

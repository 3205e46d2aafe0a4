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

"""``eigen-depth bench``: the command line, running the parts in order and writing the JSON."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import sys
import tempfile
from typing import Any

from eigen_depth_ros.core.backends import BACKENDS, check_backend, cuda_tf32_state
from eigen_depth_ros.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from eigen_depth_ros.core.inference import select_device
from eigen_depth_ros.core.model import EigenDepthNet, resolve_config
from eigen_depth_ros.node.ros_env import session_domain_id
from eigen_depth_ros.tools.scenes import (calibrate_random_model, camera_family, camera_size,
                                          network_input, scene_image)
import torch

from .bounds import bench_bounds, count_flops
from .cloud import bench_point_cloud
from .measure import machine_info, peak_rss_mb
from .network import (bench_backend, bench_reference, DEFAULT_BACKENDS, default_backends,
                      DEFAULT_CUDA_BACKENDS)
from .node import bench_node, bench_transport, CAMERA_RATES
from .report import format_table


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
                        default=session_domain_id(),
                        help='ROS domain of the node run (default $ROS_DOMAIN_ID, else '
                             'pid-based)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random weights')
    parser.add_argument('--train-data', nargs=2, metavar=('ROOT', 'SPLIT'), default=None,
                        help='instead of inference: training samples/s of the coarse stage '
                             'on this KITTI root and split, side by side: compute only '
                             '(batches already on the device), the prepared set, raw PNGs; '
                             'and the host CPU time per sample of the data path')
    parser.add_argument('--train-steps', type=int, default=40,
                        help='timed optimiser steps per training variant')
    parser.add_argument('--train-warmup', type=int, default=5,
                        help='untimed optimiser steps before each training variant is timed')
    parser.add_argument('--train-width-mult', type=float, default=0.125,
                        help="channel multiplier of the trained network (0.125: the demo's "
                             "narrow variant; 1: the paper's network)")
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
            width * height * 3, args.rate or CAMERA_RATES.get(camera_family(config), 10.0), args)
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
    print(f'bench: training throughput on {split}, batch 32, {args.train_steps} steps, '
          f'width {args.train_width_mult}',
          flush=True)
    try:
        report['training'] = bench_training(root, split, steps=args.train_steps,
                                            warmup=args.train_warmup, device=args.device,
                                            width_mult=args.train_width_mult)
    except ValueError as exc:
        print(f'eigen-depth bench: error: {exc}', file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + '\n')
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

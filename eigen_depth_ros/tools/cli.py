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
The ``eigen-depth`` console script: one subcommand per job, each in its own module.

Every subcommand module has ``main(argv: list[str] | None) -> int`` with its own argparse
parser, so ``eigen-depth SUB --help`` shows that subcommand's options. Modules are imported
only when their subcommand runs, keeping ``eigen-depth --help`` fast.
"""
from __future__ import annotations

import importlib
import sys

SUBCOMMANDS = {
    'synth': ('eigen_depth_training.synth', 'write a synthetic drive in the KITTI raw layout'),
    'splits': ('eigen_depth_training.splits', 'write Eigen-split train/val/test files'),
    'train': ('eigen_depth_training.train', 'train the network on KITTI raw drives'),
    'eval': ('eigen_depth_training.evaluate', 'evaluate a checkpoint on KITTI raw (Eigen '
             'protocol)'),
    'synth-bag': ('eigen_depth_ros.bags.synth_bag', 'write a ROS 2 bag from a synthetic drive'),
    'bag-eval': ('eigen_depth_ros.bags.bag_eval', 'evaluate on a recorded ROS 2 bag'),
    'bench': ('eigen_depth_ros.tools.bench.cli', 'benchmark the model and the node (JSON)'),
    'export': ('eigen_depth_ros.tools.export', 'export a checkpoint to ONNX or TorchScript'),
    'demo': ('eigen_depth_ros.tools.demo', 'the whole system on the built-in synthetic world'),
    'soak': ('eigen_depth_ros.tools.soak', 'drive the node under load and report latency and '
             'memory'),
    'gpu-check': ('eigen_depth_ros.tools.gpu_check', 'prove the CUDA paths in minutes (or the '
                  'same on the CPU)'),
    'gpu-run': ('eigen_depth_ros.tools.gpu_run', 'the first GPU run: the paper-width network '
                'trained for minutes, both test tables'),
    'prepare': ('eigen_depth_training.prepare_cli', 'write the prepared training set of a split '
                '(train does it on first use)'),
}


def usage() -> str:
    """Return the top-level help text listing the subcommands."""
    lines = ['usage: eigen-depth SUBCOMMAND [options]   (eigen-depth SUBCOMMAND --help)', '',
             'subcommands:']
    lines += [f'  {name:<10} {summary}' for name, (_, summary) in SUBCOMMANDS.items()]
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``eigen-depth SUBCOMMAND ...`` to the subcommand's ``main``."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ('-h', '--help'):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f'eigen-depth: error: unknown subcommand {name!r}\n{usage()}', file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    try:
        return int(module.main(rest) or 0)
    except KeyboardInterrupt:
        print(f'eigen-depth {name}: interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())

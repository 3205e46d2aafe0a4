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
``eigen-depth gpu-run``: the first GPU run, ready to learn, in one call of about 8 minutes.

The demo's pipeline (:mod:`eigen_depth_ros.tools.demo`) with a GPU's defaults: a synthetic
world of 1000 training drives rendered with every core, prepared once, the **paper-width
network** (``--width-mult 1``, 90.9M parameters) trained with AMP for a fixed time
(``--time-budget``, the coarse and fine stages sharing it 3:1), both test tables evaluated
(the test drive and eight further Eigen test drives), and ``summary.json`` (metrics and
the training's samples/s), ``model/learning_curves.png`` and ``eval/examples.png`` written.
No node run (``--skip-node``): ``eigen-depth gpu-check`` proves the node on CUDA.

Every demo option is accepted and overrides these defaults, so the same command runs at a
tiny size on a CPU (the test suite does), and longer on a bigger budget.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .demo import build_parser as demo_parser, main as demo_main

#: The demo options that differ for the first GPU run (see docs/speed.md, "First GPU run").
GPU_RUN_DEFAULTS = {
    'out': Path('gpu_run_out'), 'train_drives': 1000, 'width_mult': 1.0,
    'coarse_samples': 3_000_000, 'fine_samples': 1_000_000, 'time_budget': 4.5,
    'val_every': 2000, 'val_max_frames': 256, 'skip_node': True,
}


def build_parser() -> argparse.ArgumentParser:
    """Return the demo's parser with :data:`GPU_RUN_DEFAULTS`."""
    parser = demo_parser()
    parser.prog = 'eigen-depth gpu-run'
    parser.description = ('The first GPU run: render, prepare, train the paper-width network '
                          'with AMP for --time-budget minutes, evaluate both test tables '
                          "(docs/speed.md, 'First GPU run'). Every demo option applies.")
    parser.set_defaults(**GPU_RUN_DEFAULTS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``eigen-depth gpu-run``: the demo's run with :func:`build_parser`."""
    return demo_main(argv, build_parser())

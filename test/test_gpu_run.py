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

"""``eigen-depth gpu-run`` at a tiny size on the CPU, so that the first GPU run cannot rot."""
import json
import subprocess
import sys

from eigen_depth_ros.tools.gpu_run import build_parser, GPU_RUN_DEFAULTS


def test_defaults_are_the_paper_network_for_a_fixed_time():
    args = build_parser().parse_args([])
    assert args.width_mult == 1.0 and args.time_budget == GPU_RUN_DEFAULTS['time_budget'] > 0
    assert args.skip_node and args.train_drives == 1000


def test_tiny_gpu_run_on_the_cpu_writes_both_tables_and_pictures(tmp_path):
    out = tmp_path / 'gpu_run'
    cmd = [sys.executable, '-m', 'eigen_depth_ros.tools.cli', 'gpu-run', '--out', str(out),
           '--train-drives', '2', '--frames', '5', '--test-frames', '4', '--batch-size', '2',
           '--more-test-drives', '1', '--more-test-frames', '1', '--time-budget', '0.001',
           '--val-max-frames', '2', '--device', 'cpu',
           '--width-mult', '0.0625']  # the paper's 364 MB checkpoints take seconds each to write
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((out / 'summary.json').read_text())
    training = summary['training']
    assert training['network'] == 'kitti-narrow0.0625' and training['parameters'] > 0
    assert training['budget_ended'] == ['coarse', 'fine']  # stopped by the clock, not the plan
    assert training['samples'] >= 4 and training['samples_per_second'] > 0
    assert set(summary['metrics']) == {'coarse', 'fine', 'baseline: mean'}  # no node run
    assert set(summary['more_test_drives']['metrics']) == {'coarse', 'fine', 'baseline: mean'}
    for picture in ('examples', 'learning_curves'):
        with open(summary['pictures'][picture], 'rb') as png:
            assert png.read(8) == b'\x89PNG\r\n\x1a\n'
    assert 'samples/s' in proc.stdout and 'more test drives' in proc.stdout

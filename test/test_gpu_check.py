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
``eigen-depth gpu-check`` on the CPU, small, so that the check itself never rots.

The same sequence of parts as on a GPU, its JSON and table, and its verdict.
"""
import json
import sys

from eigen_depth_ros.tools import gpu_check
from eigen_depth_ros.tools.cli import SUBCOMMANDS
import pytest

pytestmark = pytest.mark.usefixtures('one_torch_thread')

SMALL = ['--device', 'cpu', '--small', '--runs', '2', '--train-steps', '3',
         '--width-mult', '0.0625', '--throughput-steps', '1',
         '--throughput-width-mult', '0.0625', '--skip-node']


def test_gpu_check_runs_its_whole_sequence_on_the_cpu(tmp_path, capsys):
    assert 'gpu-check' in SUBCOMMANDS
    assert gpu_check.main(SMALL + ['--out', str(tmp_path)]) == 0
    report = json.loads((tmp_path / 'gpu_check.json').read_text())
    assert report['ok'] and report['device'] == 'cpu' and report['within_budget']
    parts = report['parts']
    assert list(parts) == ['backends', 'training', 'eval', 'onnx', 'throughput', 'node']
    rows = {row['backend']: row for row in parts['backends']['rows']}
    assert set(rows) == set(gpu_check.CPU_BACKENDS)
    assert rows['eager']['max_abs_log_diff'] == 0.0
    assert all(row['forward_ms'] > 0 and row['empty_graph_warnings'] == []
               for row in rows.values())
    training = parts['training']
    assert training['bit_exact'] and training['resume_max_abs_weight_diff'] == 0.0
    assert training['amp_dtype'] == 'bfloat16' and training['stopped_at'] == ['coarse', 1]
    assert parts['eval']['max_rel_metric_diff'] == 0.0 and parts['eval']['images'] > 0
    assert parts['node'] == {'ok': True, 'skipped': '--skip-node', 'seconds': 0.0}
    assert parts['throughput']['samples_per_second'] > 0
    table = (tmp_path / 'gpu_check.txt').read_text()
    assert 'PASSED' in table and 'bf16_int8' in table and 'resume bit-exact yes' in table
    assert 'gpu-check: training: ok' in capsys.readouterr().out


def test_a_failing_part_fails_the_check(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError('CUDA error: an illegal memory access was encountered')

    monkeypatch.setattr(gpu_check, 'check_training', broken)
    monkeypatch.setattr(gpu_check, 'make_world', lambda folder: (folder, folder))
    args = SMALL + ['--out', str(tmp_path), '--throughput-steps', '0']
    monkeypatch.setattr(gpu_check, 'check_onnx', lambda *a: {'ok': True, 'skipped': 'test'})
    assert gpu_check.main(args) == 1
    report = json.loads((tmp_path / 'gpu_check.json').read_text())
    assert not report['ok'] and 'illegal memory access' in report['parts']['training']['error']
    assert not report['parts']['eval']['ok'] and report['parts']['backends']['ok']
    assert 'FAILED' in (tmp_path / 'gpu_check.txt').read_text()


def test_node_part_is_skipped_without_ros_and_bad_input_exits_2(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, 'rclpy', None)  # import rclpy raises ImportError
    part = gpu_check.check_node(tmp_path / 'model.pt', 5)
    assert part['ok'] and 'node part was not run' in part['skipped']
    assert gpu_check.main(['--out', str(tmp_path), '--device', 'auto']) == 2
    assert gpu_check.main(['--out', str(tmp_path), '--device', 'cuda:7']) == 2
    assert 'not available' in capsys.readouterr().err

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

"""The demo end to end in a reduced mode, and its cache's behaviour when interrupted."""
import json
import math
import subprocess
import sys

from eigen_depth_ros.tools.demo import cached_stage
import pytest

TINY = ['--train-drives', '2', '--frames', '5', '--test-frames', '4', '--coarse-samples', '32',
        '--fine-samples', '16', '--batch-size', '8', '--device', 'cpu', '--rate', '0.5',
        '--more-test-drives', '1', '--more-test-frames', '2']


@pytest.mark.ros
@pytest.mark.slow
def test_demo_end_to_end_then_cached(tmp_path, ros_env):
    out = tmp_path / 'demo'
    cmd = [sys.executable, '-m', 'eigen_depth_ros.tools.cli', 'demo', '--out', str(out), *TINY]
    first = subprocess.run(cmd, env=ros_env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    summary = json.loads((out / 'summary.json').read_text())
    assert set(summary['metrics']) == {'coarse', 'fine', 'baseline: mean', 'depth_node (live)'}
    for row in summary['metrics'].values():
        assert all(math.isfinite(row[k]) and row[k] >= 0 for k in ('abs_rel', 'rmse', 'a1'))
        for key in ('obstacle_f1_10m', 'obstacle_recall_20m', 'obstacle_precision_20m'):
            assert row[key] is None or 0 <= row[key] <= 1
    assert summary['obstacle_truth']['offline'] == 'dense'
    more = summary['more_test_drives']
    assert more['drives'] == ['2011_09_26/2011_09_26_drive_0009_sync'] and more['frames'] == 2
    assert set(more['metrics']) == {'coarse', 'fine', 'baseline: mean'}
    assert 'more test drives' in first.stdout
    world = json.loads((out / 'world' / 'stage.json').read_text())['key']
    assert summary['test_drive'] not in world['train_drives']
    assert all(d.startswith('2011_09_28/') for d in world['train_drives'])
    live = summary['live']
    assert live['frames_sent'] == 4 and live['depth_received'] >= 3
    assert live['latency_depth']['p50_ms'] > 0
    for picture in summary['pictures'].values():
        with open(picture, 'rb') as png:
            assert png.read(8) == b'\x89PNG\r\n\x1a\n'
    assert 'd<1.25' in first.stdout and 'latency p50' in first.stdout
    assert 'obstacle cells' in first.stdout and 'f1 10m' in first.stdout
    assert set(summary['pictures']) >= {'examples', 'birdseye', 'learning_curves'}
    second = subprocess.run(cmd, env=ros_env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    assert 'synthetic world: cached' in second.stdout and 'training the model: cached' in \
        second.stdout


def test_interrupted_stage_leaves_no_cache(tmp_path):
    def crash(folder):
        (folder / 'half.bin').write_bytes(b'x')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached_stage(tmp_path / 'model', {'v': 1}, crash, 'model')
    assert list(tmp_path.iterdir()) == []
    built = cached_stage(tmp_path / 'model', {'v': 1},
                         lambda f: (f / 'final.pt').write_bytes(b'ok'), 'model')
    assert (built / 'final.pt').read_bytes() == b'ok'
    calls = []
    cached_stage(tmp_path / 'model', {'v': 1}, calls.append, 'model')
    assert calls == []                                   # reused
    cached_stage(tmp_path / 'model', {'v': 2}, lambda f: calls.append(f), 'model')
    assert len(calls) == 1 and not (tmp_path / 'model' / 'final.pt').exists()  # rebuilt


def test_missing_package_is_named(monkeypatch):
    from eigen_depth_ros.tools import demo
    monkeypatch.setattr(demo, 'REQUIRED_MODULES', ('eigen_depth_no_such_module',))
    with pytest.raises(demo.DemoError, match='eigen_depth_no_such_module.*make venv'):
        demo.check_environment()


@pytest.mark.parametrize('bad, message', [
    (['--train-drives', '1'], '--train-drives 1: the split needs at least 2'),
    (['--more-test-drives', '99'], '--more-test-drives 99 is outside 0..'),
    (['--coarse-samples', '4', '--batch-size', '8'],
     '--coarse-samples 4 is less than one batch of 8'),
])
def test_bad_world_or_budget_is_one_line_and_writes_nothing(tmp_path, bad, message):
    out = tmp_path / 'demo'
    cmd = [sys.executable, '-m', 'eigen_depth_ros.tools.cli', 'demo', '--out', str(out), *TINY,
           *bad]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not out.exists()

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

"""Evaluation: a constant-depth network on a wall of known depth gives known metrics."""
from __future__ import annotations

import json
import math

from conftest import SMALL_KITTI
from eigen_depth_ros.checkpoint import save_checkpoint
from eigen_depth_ros.model import EigenDepthNet
from eigen_depth_training.evaluate import evaluate, main, PAPER_KITTI
from eigen_depth_training.splits import SplitEntry, write_split_file
import numpy as np
import pytest
from test_dataset import copy_drive, synthetic_kitti
import torch

DRIVE = '2011_09_26/2011_09_26_drive_0001_sync'
WALL = 20.0      # m, every LiDAR point of the hand-made drive
PREDICTED = 10.0  # m, every pixel of the hand-made network


pytestmark = pytest.mark.usefixtures('one_torch_thread')


@pytest.fixture
def wall_drive(tmp_path):
    """Make a drive whose every scan is a wall of points 20 m ahead, and its split file."""
    root = copy_drive(tmp_path, DRIVE)
    y, z = np.meshgrid(np.arange(-25.0, 25.0, 0.04), np.arange(-1.7, 4.0, 0.04))
    wall = np.stack([np.full(y.size, WALL), y.ravel(), z.ravel(), np.zeros(y.size)], axis=1)
    entries = [SplitEntry(DRIVE, frame, 'l') for frame in range(3)]
    for entry in entries:
        wall.astype('<f4').tofile(entry.velodyne_path(root))
    return root, write_split_file(tmp_path / 'wall.txt', entries)


@pytest.fixture
def constant_checkpoint(tmp_path):
    """Save a network whose coarse and fine outputs are log(10 m) everywhere."""
    model = EigenDepthNet(SMALL_KITTI)
    with torch.no_grad():
        for layer in (model.coarse.fc7, model.fine.conv4):
            layer.weight.zero_()
            layer.bias.fill_(math.log(PREDICTED))
    return save_checkpoint(tmp_path / 'constant.pt', model)


def test_constant_prediction_on_a_wall_gives_known_metrics(wall_drive, constant_checkpoint,
                                                           tmp_path):
    root, split = wall_drive
    report = evaluate(root, split, constant_checkpoint, stages=('coarse', 'fine'),
                      out=tmp_path / 'eval', device='cpu')
    assert report['images'] == 3
    for stage in ('coarse', 'fine'):
        agg = report['results'][stage]['aggregate']
        # y = 10, y* = 20 at every pixel: |y - y*| / y* = 0.5, (y - y*)^2 / y* = 5,
        # ratio 2 > 1.25^3, log error log 2 everywhere, so zero scale-invariant error
        assert agg['abs_rel'] == pytest.approx(0.5, abs=1e-5)
        assert agg['sq_rel'] == pytest.approx(5.0, abs=1e-4)
        assert agg['rmse'] == pytest.approx(10.0, abs=1e-4)
        assert agg['rmse_log'] == pytest.approx(math.log(2), abs=1e-5)
        assert agg['a1'] == agg['a2'] == agg['a3'] == 0.0
        assert agg['si_rmse_log'] == pytest.approx(0.0, abs=1e-3)
        assert len(report['results'][stage]['per_image']) == 3
    saved = json.loads((tmp_path / 'eval' / 'metrics.json').read_text())
    assert saved['results']['fine']['aggregate']['abs_rel'] == pytest.approx(0.5, abs=1e-5)
    assert saved['options']['crop'] == 'garg' and saved['options']['max_depth'] == 80.0
    assert saved['results']['fine']['per_image'][0]['frame'] == f'{DRIVE} 0000000000 l'
    png = (tmp_path / 'eval' / 'examples.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n'
    # median scaling makes a constant-scale error vanish
    scaled = evaluate(root, split, constant_checkpoint, median_scaling=True, device='cpu')
    agg = scaled['results']['fine']['aggregate']
    assert agg['abs_rel'] == pytest.approx(0.0, abs=1e-5) and agg['a1'] == 1.0
    # a 15 m cap removes every pixel of the 20 m wall
    with pytest.raises(ValueError, match='no frame with ground truth'):
        evaluate(root, split, constant_checkpoint, max_depth=15.0, device='cpu')


def test_baselines_predict_the_training_mean(wall_drive):
    root, split = wall_drive
    for kind in ('mean', 'constant'):
        report = evaluate(root, split, baseline=kind, train_split=split, config=SMALL_KITTI)
        agg = report['results'][f'baseline: {kind}']['aggregate']
        assert agg['abs_rel'] == pytest.approx(0.0, abs=1e-5) and agg['a1'] == 1.0


def test_mean_baseline_on_driving_scenes_is_worse_than_perfect():
    root, splits = synthetic_kitti()
    report = evaluate(root, splits / 'test_files.txt', baseline='mean',
                      train_split=splits / 'train_files.txt', config=SMALL_KITTI,
                      max_images=4)
    agg = report['results']['baseline: mean']['aggregate']
    assert report['images'] == 4
    assert 0.1 < agg['abs_rel'] < 0.6 and 0.2 < agg['a1'] < 0.95


def test_cli_prints_table_2_beside_ours(wall_drive, constant_checkpoint, tmp_path, capsys):
    root, split = wall_drive
    code = main(['--checkpoint', str(constant_checkpoint), '--data-root', str(root),
                 '--split', str(split), '--out', str(tmp_path / 'cli'), '--crop', 'eigen',
                 '--max-depth', '50', '--stage', 'both', '--device', 'cpu', '--no-progress'])
    assert code == 0
    out = capsys.readouterr().out
    for row in list(PAPER_KITTI) + ['ours: coarse', 'ours: fine']:
        assert row in out
    assert '0.679' in out and '0.692' in out and '0.500' in out
    assert (tmp_path / 'cli' / 'metrics.json').is_file()
    # bad input: one line on stderr, status 2
    code = main(['--checkpoint', str(tmp_path / 'nope.pt'), '--data-root', str(root),
                 '--split', str(split), '--out', str(tmp_path / 'cli2'), '--no-progress'])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and 'nope.pt' in err[0]

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
Evaluation: a constant-depth network on a wall of known depth gives known metrics.

Also the obstacle metrics beside them: a prediction equal to the dense truth is perfect, the
LiDAR truth serves where the dense one is missing, and a NaN prediction stops everything.
"""
from __future__ import annotations

import json
import math
import shutil

from eigen_depth_ros.core.checkpoint import save_checkpoint
from eigen_depth_ros.core.geometry import InputGeometry
from eigen_depth_ros.core.model import EigenDepthNet
from eigen_depth_ros.core.obstacles import (cloud_obstacle_counts, points_from_depth,
                                            scores_from_counts)
from eigen_depth_training.evaluate import (evaluate, frame_obstacle_counts, frame_truth, main,
                                           obstacle_table, PAPER_KITTI)
from eigen_depth_training.kitti import load_calibration
from eigen_depth_training.splits import read_split_file, SplitEntry, write_split_file
from eigen_depth_training.synth import SYNTHETIC_DEPTH_DIR
import numpy as np
import pytest
from support import copy_drive, synthetic_kitti
from support import SMALL_KITTI
import torch

DRIVE = '2011_09_26/2011_09_26_drive_0001_sync'
WALL = 20.0      # m, every LiDAR point of the hand-made drive
PREDICTED = 10.0  # m, every pixel of the hand-made network
OBSTACLE_KEYS = [f'obstacle_{name}_{r}' for r in ('10m', '20m')
                 for name in ('f1', 'recall', 'precision')]


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


def save_constant_checkpoint(path, log_depth: float):
    """Save a network whose coarse and fine outputs are ``log_depth`` everywhere."""
    model = EigenDepthNet(SMALL_KITTI)
    with torch.no_grad():
        for layer in (model.coarse.fc7, model.fine.conv4):
            layer.weight.zero_()
            layer.bias.fill_(log_depth)
    return save_checkpoint(path, model)


@pytest.fixture
def constant_checkpoint(tmp_path):
    """Save a network whose coarse and fine outputs are log(10 m) everywhere."""
    return save_constant_checkpoint(tmp_path / 'constant.pt', math.log(PREDICTED))


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


def assert_obstacle_scores(report: dict, truth: str) -> None:
    """Check the obstacle part of a report (as returned, or as read from metrics.json)."""
    assert report['obstacles']['truth'] == truth
    assert set(report['obstacles']['by_method']) == set(report['results'])
    for method, result in report['results'].items():
        for key in OBSTACLE_KEYS:
            value = result['aggregate'][key]  # NaN (None in JSON): no cell to score
            assert value is None or math.isnan(value) or 0.0 <= value <= 1.0, (key, value)
        counts = report['obstacles']['by_method'][method]['20m']
        assert counts['tp_truth'] <= counts['truth'] and counts['tp_pred'] <= counts['pred']
    table = obstacle_table(report['results']).splitlines()
    assert 'f1 10m' in table[0] and 'precision 20m' in table[0]
    assert len(table) == 2 + len(report['results'])


def test_mean_baseline_on_driving_scenes_is_worse_than_perfect(tmp_path):
    root, splits = synthetic_kitti()
    report = evaluate(root, splits / 'test_files.txt', baseline='mean',
                      train_split=splits / 'train_files.txt', config=SMALL_KITTI,
                      max_images=4, out=tmp_path, examples=0)
    agg = report['results']['baseline: mean']['aggregate']
    assert report['images'] == 4
    assert 0.1 < agg['abs_rel'] < 0.6 and 0.2 < agg['a1'] < 0.95
    # obstacles against the dense truth: the scenes have obstacles within 20 m, which one
    # mean depth map for every frame places only roughly
    assert report['obstacles']['camera_height'] == 1.65
    assert report['obstacles']['by_method']['baseline: mean']['20m']['truth'] > 0
    assert 0.0 <= agg['obstacle_f1_20m'] < 0.9
    assert_obstacle_scores(report, 'dense')
    assert_obstacle_scores(json.loads((tmp_path / 'metrics.json').read_text()), 'dense')


def test_dense_truth_as_prediction_scores_one_and_lidar_truth_agrees(tmp_path):
    root, splits = synthetic_kitti()
    entry = read_split_file(splits / 'test_files.txt')[0]
    calib = load_calibration(entry.calib_dir(root), entry.cam)
    kind, dense = truth = frame_truth(entry, root, calib)
    assert kind == 'dense' and dense.shape == calib.image_size[::-1]
    # the prediction: the true depth at the output map's pixel centres
    geometry = InputGeometry.fit(*calib.image_size, SMALL_KITTI)
    covered = np.isfinite(geometry.output_to_image(np.ones(SMALL_KITTI.output_size[::-1])))
    assert 0.3 < covered.mean() < 0.9
    a_x, b_x, a_y, b_y = geometry.output_to_image_affine()
    width, height = SMALL_KITTI.output_size
    rows = np.rint(a_y * np.arange(height) + b_y).astype(int)
    cols = np.rint(a_x * np.arange(width) + b_x).astype(int)
    pred = dense[np.ix_(rows, cols)]
    scores = scores_from_counts(frame_obstacle_counts(pred, geometry, truth, calib))
    for limit in ('10m', '20m'):
        assert scores[limit]['truth'] > 5
        assert scores[limit]['recall'] > 0.95 and scores[limit]['precision'] == 1.0
    # the same depth upsampled bilinearly invents points between objects and background
    # (which is why the node's cloud and these metrics stay on the output grid)
    upsampled = geometry.output_to_image(pred)
    blurred = points_from_depth(upsampled, calib.P_rect[0, 0], calib.P_rect[1, 1],
                                calib.P_rect[0, 2] - 1, calib.P_rect[1, 2] - 1)
    true_points = points_from_depth(np.where(covered, dense, np.nan), calib.P_rect[0, 0],
                                    calib.P_rect[1, 1], calib.P_rect[0, 2] - 1,
                                    calib.P_rect[1, 2] - 1)
    phantom = scores_from_counts(cloud_obstacle_counts(blurred, true_points, 1.65))
    assert phantom['20m']['precision'] < scores['20m']['precision']
    # without the dense depth the truth is the scan in the camera frame: the same scene seen
    # from the Velodyne, so nearly the same cells (a wrong transform would miss most)
    lidar_root = copy_drive(tmp_path, entry.drive)
    shutil.rmtree(lidar_root / entry.drive / SYNTHETIC_DEPTH_DIR)
    kind, points = truth = frame_truth(entry, lidar_root, calib)
    assert kind == 'lidar' and points.shape[1] == 3
    scores = scores_from_counts(frame_obstacle_counts(pred, geometry, truth, calib))
    assert scores['20m']['recall'] > 0.8 and scores['20m']['precision'] > 0.8
    # the camera height moves the height band: 10 m up, nothing is an obstacle any more
    counts = frame_obstacle_counts(pred, geometry, truth, calib, camera_height=10.0)
    assert counts['20m']['truth'] == counts['20m']['pred'] == 0


def test_lidar_truth_without_dense_depth(tmp_path):
    root = copy_drive(tmp_path, DRIVE)
    shutil.rmtree(root / DRIVE / SYNTHETIC_DEPTH_DIR)
    split = write_split_file(tmp_path / 'split.txt',
                             [SplitEntry(DRIVE, frame, 'l') for frame in range(2)])
    report = evaluate(root, split, baseline='constant', train_split=split,
                      config=SMALL_KITTI, camera_height=1.5, out=tmp_path / 'eval', examples=0)
    assert report['obstacles']['camera_height'] == 1.5
    assert report['options']['camera_height'] == 1.5
    assert report['obstacles']['by_method']['baseline: constant']['20m']['truth'] > 0
    assert_obstacle_scores(report, 'lidar')
    # one constant depth (about 20 m) puts no cell within 10 m: no precision there, null in JSON
    agg = report['results']['baseline: constant']['aggregate']
    assert math.isnan(agg['obstacle_precision_10m']) and math.isnan(agg['obstacle_f1_10m'])
    saved = json.loads((tmp_path / 'eval' / 'metrics.json').read_text())
    assert saved['results']['baseline: constant']['aggregate']['obstacle_f1_10m'] is None
    assert_obstacle_scores(saved, 'lidar')


def test_nan_prediction_stops_before_writing(wall_drive, tmp_path, capsys):
    root, split = wall_drive
    nan_checkpoint = save_constant_checkpoint(tmp_path / 'nan.pt', math.nan)
    with pytest.raises(ValueError, match=r'0000000000 l: the fine prediction has NaN'):
        evaluate(root, split, nan_checkpoint, out=tmp_path / 'eval', device='cpu')
    assert not (tmp_path / 'eval' / 'metrics.json').exists()
    code = main(['--checkpoint', str(nan_checkpoint), '--data-root', str(root),
                 '--split', str(split), '--out', str(tmp_path / 'cli'), '--device', 'cpu',
                 '--no-progress'])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and 'prediction has NaN' in err[0]
    assert not (tmp_path / 'cli' / 'metrics.json').exists()


def test_cli_prints_table_2_beside_ours(wall_drive, constant_checkpoint, tmp_path, capsys):
    root, split = wall_drive
    code = main(['--checkpoint', str(constant_checkpoint), '--data-root', str(root),
                 '--split', str(split), '--out', str(tmp_path / 'cli'), '--crop', 'eigen',
                 '--max-depth', '50', '--stage', 'both', '--device', 'cpu', '--no-progress',
                 '--camera-height', '1.7'])
    assert code == 0
    out = capsys.readouterr().out
    for row in list(PAPER_KITTI) + ['ours: coarse', 'ours: fine']:
        assert row in out
    assert '0.679' in out and '0.692' in out and '0.500' in out
    # the obstacle table follows, one row per method
    assert 'obstacle cells (dense truth, camera 1.7 m' in out
    assert obstacle_table(json.loads((tmp_path / 'cli' / 'metrics.json').read_text())
                          ['results']) in out
    # bad input: one line on stderr, status 2
    code = main(['--checkpoint', str(tmp_path / 'nope.pt'), '--data-root', str(root),
                 '--split', str(split), '--out', str(tmp_path / 'cli2'), '--no-progress'])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and 'nope.pt' in err[0]


def test_canonical_focal_rule_scales_the_prediction(wall_drive, tmp_path):
    """f_train = half the camera's focal length: the 10 m network predicts the 20 m wall."""
    from eigen_depth_ros.core.checkpoint import load_checkpoint
    root, split = wall_drive
    calib = load_calibration(root / DRIVE.split('/')[0], 2)
    f_in = InputGeometry.fit(*calib.image_size, SMALL_KITTI).input_focal(
        calib.P_rect[0, 0], calib.P_rect[1, 1])
    model, _ = load_checkpoint(save_constant_checkpoint(tmp_path / 'c.pt', math.log(PREDICTED)))
    path = save_checkpoint(tmp_path / 'half.pt', model, f_train=f_in / 2)
    on = evaluate(root, split, path, device='cpu')
    assert on['results']['fine']['aggregate']['abs_rel'] == pytest.approx(0.0, abs=1e-5)
    assert on['focal'] == {'scale_by_focal': True, 'f_train': f_in / 2, 'f_train_note': None}
    off = evaluate(root, split, path, device='cpu', scale_by_focal=False)
    assert off['results']['fine']['aggregate']['abs_rel'] == pytest.approx(0.5, abs=1e-5)
    assert off['focal']['scale_by_focal'] is False
    assert off['options']['scale_by_focal'] is False

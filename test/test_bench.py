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
eigen-depth bench in a tiny mode: the JSON report's keys and that its figures are positive.

Timings are never asserted: the machine is shared and the numbers are noise at this size.
"""
import importlib.util
import json
import math

from eigen_depth_ros.tools import scenes
from eigen_depth_ros.tools.bench import cli as bench
from eigen_depth_ros.tools.bench import network
import numpy as np
import pytest


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def _check_stats(stats: dict) -> None:
    assert _positive(stats['median_ms']) and _positive(stats['p95_ms'])
    assert stats['p95_ms'] >= stats['median_ms'] >= stats['min_ms'] > 0


def test_bench_report(small_checkpoint, tmp_path, capsys):
    out = tmp_path / 'bench.json'
    code = bench.main(['--checkpoint', str(small_checkpoint), '--backends', 'eager,int8',
                       '--runs', '3', '--warmup', '1', '--images', '2', '--quick',
                       '--out', str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    machine = report['machine']
    for key in ('cpu_model', 'cpu_cores', 'torch_threads', 'torch_version', 'device',
                'load_average_1m_start', 'load_average_1m_end'):
        assert key in machine
    assert machine['device'] == 'cpu' and _positive(machine['cpu_cores'])
    assert [r['backend'] for r in report['backends']] == ['eager', 'int8']
    for result in report['backends']:
        for part in ('forward', 'predict', 'preprocess'):
            _check_stats(result[part])
        assert result['forward']['runs'] == 3
        for key in ('weight_bytes', 'rss_mb', 'peak_rss_mb', 'build_s'):
            assert _positive(result[key]), key
        assert result['accuracy']['images'] == 2
    eager, int8 = report['backends']
    assert eager['accuracy']['max_abs_log_diff'] == 0
    # int8 rounds the weights: its depth differs from eager's, but by percents, not factors
    int8_accuracy = int8['accuracy']
    assert 0 < int8_accuracy['mean_rel_depth_change'] <= int8_accuracy['p99_rel_depth_change']
    assert 0 < int8_accuracy['max_abs_log_diff'] < 0.5
    assert int8['weight_bytes'] < eager['weight_bytes']
    bounds = report['bounds']
    assert _positive(bounds['network_gflops']) and _positive(bounds['weight_mb_fp32'])
    assert _positive(bounds['copy_bandwidth_gb_per_s'])
    assert all(_positive(v) for v in bounds['matmul_gflops_per_s'].values())
    for name in ('eager', 'int8'):
        per = bounds['per_backend'][name]
        for key in ('compute_bound_ms', 'memory_bound_ms', 'roofline_ms'):
            assert _positive(per[key])
        assert per['roofline_ms'] >= max(per['compute_bound_ms'], per['memory_bound_ms']) * 0.5
    assert {layer['layer'] for layer in bounds['layers']} >= {'coarse.fc6', 'fine.conv4'}
    assert _positive(report['peak_rss_mb'])
    if 'skipped' not in report['point_cloud']:
        _check_stats(report['point_cloud']['network'])
    table = capsys.readouterr().out
    assert 'forward ms' in table and 'int8' in table and 'roofline' in table


def test_camera_size_of_a_variant_is_its_data_sets(small_checkpoint):
    from eigen_depth_ros.core.checkpoint import load_checkpoint
    config = load_checkpoint(small_checkpoint)[0].config
    assert config.name != 'kitti' and scenes.camera_family(config) == 'kitti'
    assert scenes.camera_size(config) == scenes.CAMERA_SIZES['kitti']


def test_node_diagnostics_keep_the_finite_numbers_of_the_node():
    from eigen_depth_ros.tools.bench.node import _mean_values, _numeric_values
    status = {'bad frames (total)': '3', 'backend': 'eager', 'latency (ms)': 'nan',
              '_level': '0', '_name': 'eigen_depth: depth estimation', 'fps': '9.5'}
    assert _numeric_values(status) == {'bad frames (total)': 3.0, 'fps': 9.5}
    assert _mean_values([{'fps': 9.0}, {'fps': 10.0, 'x': 1.0}]) == {'fps': 9.5, 'x': 1.0}


def test_accuracy_figures_of_a_known_difference():
    reference = [np.zeros((2, 3)), np.zeros((2, 3))]
    logs = [np.full((2, 3), np.log(1.1)), np.zeros((2, 3))]
    figures = network.accuracy(logs, reference)
    assert figures['images'] == 2
    assert figures['max_abs_log_diff'] == pytest.approx(np.log(1.1))
    assert figures['mean_rel_depth_change'] == pytest.approx(0.05)
    assert figures['p99_rel_depth_change'] == pytest.approx(0.1)


def test_bench_bad_input(tmp_path, capsys):
    assert bench.main(['--backends', 'eager,warp', '--out', str(tmp_path / 'b.json')]) == 2
    assert 'unknown backend' in capsys.readouterr().err
    assert bench.main(['--device', 'cpu', '--backends', 'fp16',
                       '--out', str(tmp_path / 'b.json')]) == 2


def test_scene_image_and_calibration():
    image = scenes.scene_image(200, 80, seed=1)
    assert image.shape == (80, 200, 3) and image.dtype.name == 'uint8'
    assert image.std() > 10  # not flat
    assert (scenes.scene_image(200, 80, seed=1) == image).all()


@pytest.mark.skipif(importlib.util.find_spec('rclpy') is None
                    or importlib.util.find_spec('eigen_depth_ros.node.depth_node') is None,
                    reason='rclpy or the node is not installed')
def test_bench_node(small_checkpoint, tmp_path, ros_env):
    out = tmp_path / 'node.json'
    code = bench.main(['--checkpoint', str(small_checkpoint), '--backends', 'eager',
                       '--runs', '2', '--warmup', '1', '--images', '1', '--no-bounds',
                       '--node', '--node-frames', '6', '--node-warmup', '1', '--rate', '20',
                       '--node-points', '--node-resolution', 'input',
                       '--domain-id', ros_env['ROS_DOMAIN_ID'], '--out', str(out)])
    assert code == 0
    node = json.loads(out.read_text())['node'][0]
    assert 'skipped' not in node, node.get('skipped')
    # Timed to the cloud, the node's last output, at the camera resolution.
    assert (node['timed_output'], node['resolution']) == ('points', 'input')
    _check_stats(node['e2e'])
    _check_stats(node['e2e_depth'])
    # The node keeps only the newest frame: a busy machine may drop some, never add any.
    assert node['sent'] == 6 and 1 <= node['received'] <= 6 and node['warmup_frames'] >= 1
    assert _positive(node['e2e_over_forward'])


def test_bench_transport_floor(small_checkpoint, tmp_path, ros_env):
    out = tmp_path / 'transport.json'
    code = bench.main(['--checkpoint', str(small_checkpoint), '--backends', 'eager',
                       '--runs', '2', '--warmup', '1', '--images', '1', '--no-bounds',
                       '--transport', '--transport-messages', '10', '--rate', '30',
                       '--domain-id', ros_env['ROS_DOMAIN_ID'], '--out', str(out)])
    assert code == 0
    tiny, camera = json.loads(out.read_text())['transport']
    assert 'skipped' not in tiny and 'skipped' not in camera, (tiny, camera)
    report = json.loads(out.read_text())
    width, height = map(int, report['camera_image'].split('x'))
    assert tiny['size_bytes'] == 100 and camera['size_bytes'] == width * height * 3
    for probe in (tiny, camera):
        _check_stats(probe)
        assert 2 <= probe['runs'] <= 5  # 10 sent, the first 5 not timed, some may be lost


def test_default_backends_depend_on_the_device():
    from eigen_depth_ros.core.backends import check_backend

    assert network.default_backends('cpu') == network.DEFAULT_BACKENDS
    cuda = network.default_backends('cuda')
    assert 'graph' in cuda and 'int8' not in cuda
    for name in cuda.split(','):  # every default runs on CUDA (no CPU-only backend)
        assert check_backend(name, 'cuda:0') == name
    for name in network.DEFAULT_BACKENDS.split(','):
        check_backend(name, 'cpu')
    assert bench.build_parser().parse_args(['--out', 'x.json']).backends is None


def test_bench_on_cuda_without_backend_does_not_reject_the_defaults(monkeypatch, tmp_path):
    """``bench --device cuda`` used to exit 2 (a CPU-only default); now it gets going."""
    import torch

    class Started(Exception):
        pass

    def stop(*args, **kwargs):
        raise Started

    monkeypatch.setattr(bench, 'select_device', lambda spec: torch.device('cuda', 0))
    monkeypatch.setattr(bench, 'machine_info', stop)  # the first step after the checks
    with pytest.raises(Started):
        bench.main(['--device', 'cuda', '--out', str(tmp_path / 'b.json')])

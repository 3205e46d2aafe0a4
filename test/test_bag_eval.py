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
Offline bag evaluation.

Covers both storage formats, raw and compressed images, LiDAR and depth ground truth, the
projection against the synthetic world, and each bad-input case.
"""
import json

from eigen_depth_ros.bags import bag_eval, synth_bag
from eigen_depth_ros.bags.ground_truth import (BagEvalError, BagGroundTruth, nearest_pairs,
                                               parse_transform)
import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from support import BAG_DRIVE as DRIVE, dense_depth, error_lines, run_eval, write_bag_world

COMMON = ['--image-topic', '/camera/image_raw', '--camera-info-topic', '/camera/camera_info']


@pytest.fixture(scope='module')
def kitti_root(tmp_path_factory):
    return write_bag_world(tmp_path_factory.mktemp('kitti'))


@pytest.fixture(scope='module')
def mcap_bag(kitti_root, tmp_path_factory):
    return synth_bag.write_bag(kitti_root, DRIVE, tmp_path_factory.mktemp('b') / 'raw',
                               storage='mcap', depth_gt='32FC1', progress=False)


@pytest.fixture(scope='module')
def sqlite_bag(kitti_root, tmp_path_factory):
    return synth_bag.write_bag(kitti_root, DRIVE, tmp_path_factory.mktemp('b') / 'jpeg',
                               storage='sqlite3', compressed='jpeg', depth_gt='16UC1',
                               progress=False)


def test_bag_layout_and_storage(mcap_bag, sqlite_bag):
    assert list(mcap_bag.glob('*.mcap')) and list(sqlite_bag.glob('*.db3'))
    source = BagGroundTruth(sqlite_bag, '/camera/image_raw/compressed', '/camera/camera_info',
                            '/velodyne_points', None)
    assert source.reader.topics['/camera/image_raw/compressed'].msgtype == \
        'sensor_msgs/msg/CompressedImage'
    assert source.image_count == 3 and len(source.pairs) == 3
    source.close()


def test_lidar_projection_matches_the_dense_world(mcap_bag, kitti_root):
    source = BagGroundTruth(mcap_bag, '/camera/image_raw', '/camera/camera_info',
                            '/velodyne_points', None)
    frames = list(source.frames())
    source.close()
    assert len(frames) == 3
    for index, frame in enumerate(frames):
        dense = dense_depth(kitti_root, index)
        gt = frame.depth
        hit = gt > 0
        assert frame.rgb.shape == (375, 1242, 3) and hit.sum() > 5000
        rel = np.abs(gt[hit] - dense[hit]) / dense[hit]
        assert np.mean(rel < 0.01) > 0.95   # the rest sit on depth edges
        # every LiDAR point is kept beside the image, in the camera frame
        assert len(frame.lidar_points) > hit.sum() and frame.intrinsics.width == 1242


@pytest.mark.parametrize('gt_args', [['--lidar-topic', '/velodyne_points'],
                                     ['--depth-topic', '/ground_truth/depth']])
def test_offline_eval_mcap_raw(tmp_path, mcap_bag, small_checkpoint, gt_args):
    code, out = run_eval(tmp_path, mcap_bag, small_checkpoint, *COMMON, *gt_args)
    assert code == 0
    result = json.loads((out / 'metrics.json').read_text())
    assert result['frames_evaluated'] == 3 and result['skipped'] == {}
    agg = result['aggregate']
    # the small checkpoint predicts about 10 m everywhere: the metrics must say so
    per_frame = result['per_frame']
    assert len(per_frame) == 3 and all(f['n'] > 1000 for f in per_frame)
    assert agg['abs_rel'] == pytest.approx(np.mean([f['abs_rel'] for f in per_frame]))
    assert 0.1 < agg['abs_rel'] < 5 and 0 < agg['a1'] < 1
    assert set(result['by_distance']) <= {'0-10 m', '10-20 m', '20-40 m', '40-80 m'}
    near, far = result['by_distance']['0-10 m'], result['by_distance']['40-80 m']
    assert far['rmse'] > near['rmse']  # a 10 m guess is worse far away
    assert (out / 'report.png').stat().st_size > 10_000
    assert_obstacle_metrics(result)
    assert result['obstacles']['frames'] == 3


def assert_obstacle_metrics(result):
    """Check the obstacle scores: in the aggregate, within [0, 1], their counts beside."""
    agg = result['aggregate']
    keys = {f'obstacle_{name}_{r}' for name in ('f1', 'recall', 'precision')
            for r in ('10m', '20m')}
    assert keys <= set(agg) and all(0 <= agg[k] <= 1 for k in keys)
    obstacles = result['obstacles']
    assert obstacles['frames'] + sum(obstacles['skipped'].values()) == \
        result['frames_evaluated']
    assert obstacles['frames'] > 0 and obstacles['rule']['min_height'] == 0.3
    for key, row in obstacles['by_range'].items():
        assert row['truth'] > 0 and row['pred'] > 0
        assert row['recall'] == agg[f'obstacle_recall_{key}'] == row['tp_truth'] / row['truth']


class CameraSizeGeometry:
    """Stands in for InputGeometry when a predictor answers at the camera size already."""

    @staticmethod
    def output_to_image(output_map, fill_outside=False):
        return output_map

    @staticmethod
    def output_intrinsics(fx, fy, cx, cy):
        return fx, fy, cx, cy


@pytest.mark.parametrize('gt_args, least_f1', [
    (('/ground_truth/depth', None), 1.0),     # the prediction is the ground truth itself
    # the world's dense depth against its LiDAR, which sees a little around thin near
    # objects (poles, people) from 0.27 m behind the camera
    ((None, '/velodyne_points'), 0.97)])
def test_a_perfect_prediction_finds_every_obstacle(mcap_bag, kitti_root, gt_args, least_f1):
    depth_topic, lidar_topic = gt_args
    args = bag_eval.build_parser().parse_args(
        [str(mcap_bag), '--checkpoint', 'unused.pt', '--out', 'unused', *COMMON,
         '--lidar-topic' if lidar_topic else '--depth-topic', lidar_topic or depth_topic])
    source = BagGroundTruth(mcap_bag, '/camera/image_raw', '/camera/camera_info',
                            lidar_topic, depth_topic)
    truth = {}
    for index, frame in enumerate(source.frames()):
        truth[frame.stamp] = frame.depth if depth_topic else dense_depth(kitti_root, index)
    report = bag_eval.evaluate_frames(
        source, lambda stamp, rgb: (truth[stamp], CameraSizeGeometry()), args)
    source.close()
    result = report.summary()
    assert result['obstacles']['frames'] == 3
    for key in ('10m', '20m'):
        assert result['obstacles']['by_range'][key]['truth'] > 10
        assert result['aggregate'][f'obstacle_f1_{key}'] >= least_f1


def test_camera_height_must_be_a_height(tmp_path, mcap_bag, small_checkpoint, capsys):
    for bad in ('nan', '0', '-1.65', 'inf'):
        code, _ = run_eval(tmp_path, mcap_bag, small_checkpoint, *COMMON, '--depth-topic',
                           '/ground_truth/depth', '--camera-height', bad)
        err = capsys.readouterr().err
        assert code == 1 and len(error_lines(err)) == 1 and '--camera-height' in err


def test_offline_eval_sqlite_compressed_16uc1(tmp_path, sqlite_bag, small_checkpoint):
    code, out = run_eval(tmp_path, sqlite_bag, small_checkpoint, '--image-topic',
                         '/camera/image_raw/compressed', '--depth-topic', '/ground_truth/depth')
    assert code == 0
    result = json.loads((out / 'metrics.json').read_text())
    assert result['frames_evaluated'] == 3
    # without a camera_info topic the depth image cannot be back-projected: no obstacles
    assert result['obstacles']['frames'] == 0
    assert result['obstacles']['skipped'] == {'no camera_info': 3}
    assert result['aggregate']['obstacle_f1_10m'] is None


def test_lidar_and_depth_truth_agree_on_metrics(tmp_path, mcap_bag, small_checkpoint):
    results = []
    for gt_args in (['--lidar-topic', '/velodyne_points'],
                    ['--depth-topic', '/ground_truth/depth']):
        out = tmp_path / gt_args[1].strip('/').replace('/', '_')
        assert bag_eval.main([str(mcap_bag), '--checkpoint', str(small_checkpoint), *COMMON,
                              *gt_args, '--out', str(out), '--device', 'cpu',
                              '--max-depth', '30']) == 0
        results.append(json.loads((out / 'metrics.json').read_text())['aggregate'])
    # LiDAR samples the same world sparsely: the same prediction scores about the same
    assert results[0]['abs_rel'] == pytest.approx(results[1]['abs_rel'], rel=0.25)


def test_missing_topic_lists_what_the_bag_has(tmp_path, mcap_bag, small_checkpoint, capsys):
    code, _ = run_eval(tmp_path, mcap_bag, small_checkpoint, '--image-topic', '/cam/image',
                       '--depth-topic', '/ground_truth/depth')
    err = capsys.readouterr().err
    assert code == 1 and len(error_lines(err)) == 1
    assert "no topic '/cam/image'" in err and '/velodyne_points [sensor_msgs/msg/PointCloud2]' \
        in err


def test_wrong_type_no_pairs_and_missing_bag(tmp_path, mcap_bag, small_checkpoint, capsys):
    assert run_eval(tmp_path, mcap_bag, small_checkpoint, *COMMON,
                    '--depth-topic', '/velodyne_points')[0] == 1
    assert 'is sensor_msgs/msg/PointCloud2, expected sensor_msgs/msg/Image' in \
        capsys.readouterr().err
    # LiDAR stamps are a few ms off the camera's: a 1 us tolerance pairs nothing
    assert run_eval(tmp_path, mcap_bag, small_checkpoint, *COMMON, '--lidar-topic',
                    '/velodyne_points', '--tolerance', '1e-6')[0] == 1
    assert 'has a /velodyne_points message within 1e-06 s' in capsys.readouterr().err
    assert run_eval(tmp_path, tmp_path / 'nope', small_checkpoint, *COMMON,
                    '--depth-topic', '/d')[0] == 1
    assert 'nope: bag not found' in capsys.readouterr().err


@pytest.mark.parametrize('fraction, evaluated', [(3, True), (1000, False)])
def test_truncated_bag(tmp_path, mcap_bag, small_checkpoint, capsys, fraction, evaluated):
    # Issue 14: a bag cut off mid-write is evaluated on the complete messages it holds, and
    # says so; one cut before any usable frame is one error line naming the bag.
    broken = tmp_path / 'broken'
    broken.mkdir()
    for item in mcap_bag.iterdir():
        data = item.read_bytes()
        (broken / item.name).write_bytes(data[: len(data) // fraction]
                                         if item.suffix == '.mcap' else data)
    code, _ = run_eval(tmp_path, broken, small_checkpoint, *COMMON,
                       '--lidar-topic', '/velodyne_points')
    err = capsys.readouterr().err
    if evaluated:
        assert code == 0 and 'warning:' in err and 'bag truncated' in err
        assert 'recovered' in err and not error_lines(err)
    else:
        assert code == 1 and 'broken' in err and len(error_lines(err)) == 1


def write_custom_bag(path, image_size, info_size, fx=500.0):
    """Write a bag with one image, one depth image and one camera_info of the given sizes."""
    ts = synth_bag.TYPESTORE
    w, h = image_size
    stamp = 1_000_000_000
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {topic: writer.add_connection(topic, kind, typestore=ts) for topic, kind in (
            ('/camera/image_raw', 'sensor_msgs/msg/Image'),
            ('/camera/camera_info', 'sensor_msgs/msg/CameraInfo'),
            ('/depth', 'sensor_msgs/msg/Image'))}
        msgs = {'/camera/camera_info': synth_bag.camera_info_message(
                    stamp, *info_size, (fx, fx, info_size[0] / 2, info_size[1] / 2)),
                '/camera/image_raw': synth_bag.image_message(
                    stamp, np.full((h, w, 3), 128, np.uint8), 'rgb8'),
                '/depth': synth_bag.image_message(stamp, np.full((h, w), 5.0, '<f4'), '32FC1')}
        for topic, msg in msgs.items():
            writer.write(conns[topic], stamp, ts.serialize_cdr(msg, conns[topic].msgtype))
    return path


@pytest.mark.parametrize('image_size, info_size, fx, reason', [
    ((100, 40), (100, 40), 500.0, 'image too small for the network input'),
    ((640, 480), (320, 240), 500.0, 'camera_info size does not match the image'),
    ((640, 480), (640, 480), 0.0, 'no valid camera_info before the image'),
])
def test_bad_frames_are_counted_and_explained(tmp_path, small_checkpoint, capsys, image_size,
                                              info_size, fx, reason):
    bag = write_custom_bag(tmp_path / 'custom', image_size, info_size, fx)
    code, _ = run_eval(tmp_path, bag, small_checkpoint, *COMMON, '--depth-topic', '/depth')
    err = capsys.readouterr().err
    assert code == 1 and f'1 {reason}' in err and len(error_lines(err)) == 1


def test_good_custom_bag_and_explicit_transform_parsing(tmp_path, small_checkpoint):
    bag = write_custom_bag(tmp_path / 'custom', (640, 480), (640, 480))
    code, out = run_eval(tmp_path, bag, small_checkpoint, *COMMON, '--depth-topic', '/depth')
    assert code == 0
    frame = json.loads((out / 'metrics.json').read_text())['per_frame'][0]
    assert frame['n'] == 640 * 480
    transform = parse_transform('1 2 3 0 0 0 1')
    assert np.allclose(transform[:3, 3], [1, 2, 3]) and np.allclose(transform[:3, :3], np.eye(3))
    with pytest.raises(BagEvalError, match='7 numbers'):
        parse_transform('1 2 3')


def test_backend_option_is_used_and_recorded(tmp_path, mcap_bag, small_checkpoint, capsys):
    # int8 quantises fc6/fc7 on every CPU: its numbers differ from eager's a little, and
    # metrics.json names the backend that made them.
    results = {}
    for backend in ('eager', 'int8'):
        code, out = run_eval(tmp_path / backend, mcap_bag, small_checkpoint, *COMMON,
                             '--depth-topic', '/ground_truth/depth', '--backend', backend)
        assert code == 0
        results[backend] = json.loads((out / 'metrics.json').read_text())
        assert results[backend]['backend'] == {'requested': backend, 'resolved': backend}
        assert results[backend]['options']['backend'] == backend
    assert 'backend: int8' in capsys.readouterr().out
    eager, int8 = (results[b]['aggregate']['abs_rel'] for b in ('eager', 'int8'))
    assert eager != int8 and int8 == pytest.approx(eager, rel=0.05)
    # auto is resolved here, to the name the node would pick on this CPU
    from eigen_depth_ros.core.backends import default_backend
    code, out = run_eval(tmp_path / 'auto', mcap_bag, small_checkpoint, *COMMON,
                         '--depth-topic', '/ground_truth/depth', '--backend', 'auto')
    assert code == 0 and json.loads((out / 'metrics.json').read_text())['backend'] == {
        'requested': 'auto', 'resolved': default_backend('cpu')}
    # a backend the device cannot run is one error line naming the option
    code, _ = run_eval(tmp_path / 'fp16', mcap_bag, small_checkpoint, *COMMON,
                       '--depth-topic', '/ground_truth/depth', '--backend', 'fp16')
    err = capsys.readouterr().err
    assert code == 1 and len(error_lines(err)) == 1 and "--backend 'fp16'" in err


def test_nearest_pairs():
    pairs = nearest_pairs([100, 200, 300], [95, 210, 500], tolerance_ns=10)
    assert pairs == {100: 95, 200: 210}


@pytest.mark.ros
def test_live_through_a_real_node_agrees_with_offline(tmp_path, mcap_bag, small_checkpoint):
    results = {}
    for mode in ('offline', 'live'):
        extra = ['--live', '--record', str(tmp_path / 'rec')] if mode == 'live' else []
        out = tmp_path / mode
        code = bag_eval.main([str(mcap_bag), '--checkpoint', str(small_checkpoint), *COMMON,
                              '--lidar-topic', '/velodyne_points', '--out', str(out),
                              '--device', 'cpu', *extra])
        node_log = out / 'depth_node.log'
        assert code == 0, node_log.read_text()[-3000:] if node_log.exists() else mode
        results[mode] = json.loads((out / 'metrics.json').read_text())
    # Issue 24: the node runs the backend evaluated offline (its own default, auto, is int8
    # or bf16_int8 depending on the CPU), and metrics.json says which.
    for mode in ('offline', 'live'):
        assert results[mode]['backend'] == {'requested': 'eager', 'resolved': 'eager'}
    assert "backend 'eager' -> eager" in (tmp_path / 'live' / 'depth_node.log').read_text()
    live = results['live']['live']
    assert_obstacle_metrics(results['live'])
    assert live['frames_sent'] == 3 and live['depth_received'] + live['dropped'] == 3
    assert live['depth_received'] >= 2 and live['points_received'] >= 2
    assert 0 < live['latency_depth']['p50_ms'] < 5000
    offline_frames = {f['stamp']: f for f in results['offline']['per_frame']}
    for frame in results['live']['per_frame']:  # the node computes exactly what we do
        for key in ('abs_rel', 'rmse', 'a1'):
            assert frame[key] == pytest.approx(offline_frames[frame['stamp']][key], rel=1e-5)
    with AnyReader([tmp_path / 'rec'], default_typestore=synth_bag.TYPESTORE) as reader:
        assert {'/eigen_depth/depth/image', '/eigen_depth/points',
                '/eigen_depth/depth/camera_info'} <= set(reader.topics)
        assert reader.topics['/eigen_depth/depth/image'].msgcount == live['depth_received']


def test_offline_eval_applies_and_reports_the_canonical_focal_rule(
        tmp_path, mcap_bag, small_checkpoint):
    from eigen_depth_ros.core.checkpoint import load_checkpoint, save_checkpoint
    from eigen_depth_ros.core.geometry import kitti_train_focal
    model, _ = load_checkpoint(small_checkpoint)
    half = save_checkpoint(tmp_path / 'half.pt', model,
                           f_train=kitti_train_focal(model.config) / 2)
    results = {}
    for rule in ('on', 'off'):
        extra = [] if rule == 'on' else ['--no-scale-by-focal']
        for scaling in ('', '--median-scaling'):
            code, out = run_eval(tmp_path / f'{rule}{scaling}', mcap_bag, half, *COMMON,
                                 '--lidar-topic', '/velodyne_points', *extra,
                                 *([scaling] if scaling else []))
            assert code == 0
            results[rule + scaling] = json.loads((out / 'metrics.json').read_text())
    on, off = results['on']['focal'], results['off']['focal']
    assert on['scale_by_focal'] is True and on['frames_scaled'] == 3
    assert on['f_train'] == pytest.approx(kitti_train_focal(model.config) / 2)
    assert off['scale_by_focal'] is False and off['frames_scaled'] == 0
    assert results['on']['aggregate']['abs_rel'] != results['off']['aggregate']['abs_rel']
    # The bag's camera is KITTI's and f_train half of KITTI's: the rule (f_in / f_train)
    # doubles every depth. Median scaling (applied before the cap) measures the factor:
    # median(gt) / median(pred) is half as large with the rule as without it.
    scaled = {rule: [f['scale'] for f in results[f'{rule}--median-scaling']['per_frame']]
              for rule in ('on', 'off')}
    assert len(scaled['on']) == len(scaled['off']) == 3
    for with_rule, without in zip(scaled['on'], scaled['off']):
        assert without / with_rule == pytest.approx(2.0, rel=1e-3)

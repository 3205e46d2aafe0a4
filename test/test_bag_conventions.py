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
bag-eval on bags written the way robots and third-party converters write them.

``write_robot_bag`` is a writer of its own, not ``synth-bag``: a robot_state_publisher TF
tree (``base_link -> camera_link -> camera_color_optical_frame``, ``base_link ->
velodyne``), ``/tf`` carrying ``odom -> base_link`` motion, camera_info written after its
image, CompressedImage format strings of several drivers, a 16UC1 depth under the depth
camera's own frame; sqlite3 and mcap. Then each kind of bad input.
"""
import json
import math
import shutil

from eigen_depth_ros.bags import synth_bag
from eigen_depth_ros.bags.ground_truth import BagGroundTruth, CameraInfos
from eigen_depth_ros.bags.tf_tree import transform_matrix
from eigen_depth_ros.core.projection import rotation_to_quaternion
from eigen_depth_training import kitti
import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from support import BAG_DRIVE as DRIVE, dense_depth, error_lines, run_eval, write_bag_world

TS = synth_bag.TYPESTORE
OPTICAL = 'camera_color_optical_frame'
IMAGE, INFO = '/camera/color/image_raw/compressed', '/camera/color/camera_info'
DEPTH, LIDAR = '/camera/depth/image_rect_raw', '/velodyne_points'
FORMATS = ('rgb8; jpeg compressed bgr8', 'jpeg', 'bgr8; png compressed bgr8')
ARGS = ['--image-topic', IMAGE, '--camera-info-topic', INFO]
# base_link (x forward, z up) -> optical (z forward, x right, y down)
OPTICAL_ROTATION = (-0.5, 0.5, -0.5, 0.5)
BASE_FROM_CAMERA_LINK = transform_matrix((1.2, 0.1, 1.65), (0.0, 0.0, math.sin(0.02), 1.0))
CAMERA_LINK_FROM_OPTICAL = transform_matrix((0.0, -0.06, 0.0), OPTICAL_ROTATION)


def stamped(frame_id: str, parent: str, stamp: int, transform: np.ndarray):
    t = TS.types
    x, y, z, w = rotation_to_quaternion(transform[:3, :3])
    tx, ty, tz = (float(v) for v in transform[:3, 3])
    return t['geometry_msgs/msg/TransformStamped'](
        header=synth_bag._header(stamp, parent), child_frame_id=frame_id,
        transform=t['geometry_msgs/msg/Transform'](
            translation=t['geometry_msgs/msg/Vector3'](x=tx, y=ty, z=tz),
            rotation=t['geometry_msgs/msg/Quaternion'](x=x, y=y, z=z, w=w)))


def tf_message(*transforms):
    return TS.types['tf2_msgs/msg/TFMessage'](transforms=list(transforms))


def robot_tf(calib, stamp: int, depth_offset: float = 0.0, extra=()):
    """/tf_static as robot_state_publisher writes it, consistent with KITTI's calibration."""
    base_from_optical = BASE_FROM_CAMERA_LINK @ CAMERA_LINK_FROM_OPTICAL
    base_from_velodyne = base_from_optical @ synth_bag.camera_from_lidar(calib)
    depth_link = transform_matrix((depth_offset, 0, 0), (0, 0, 0, 1)) @ CAMERA_LINK_FROM_OPTICAL
    return tf_message(
        stamped('camera_link', 'base_link', stamp, BASE_FROM_CAMERA_LINK),
        stamped(OPTICAL, 'camera_link', stamp, CAMERA_LINK_FROM_OPTICAL),
        stamped('camera_depth_optical_frame', 'camera_link', stamp, depth_link),
        stamped('velodyne', 'base_link', stamp, base_from_velodyne), *extra)


def write_robot_bag(root, out, storage='mcap', order=None, tf_static=None, infos=True,
                    depth_offset=0.0):
    """
    Write the synthetic drive as a robot would record it (see the module docstring).

    :param order: frame indices in writing order (default: as recorded).
    :param tf_static: a TFMessage to write instead of the robot's tree.
    :param infos: False writes a camera_info topic with no message.
    """
    calib = kitti.load_calibration(root / '2011_09_26', cam=2)
    index = kitti.list_drive_frames(root, DRIVE, cam=2)
    folder = root / '2011_09_26' / f'{DRIVE}_sync'
    stamps = synth_bag.read_stamps(folder / 'image_02' / 'timestamps.txt')
    lidar_stamps = synth_bag.read_stamps(folder / 'velodyne_points' / 'timestamps.txt')
    width, height = calib.image_size
    plugin = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}[storage]
    with Writer(out, version=9, storage_plugin=plugin) as writer:
        conns = {topic: writer.add_connection(topic, kind, typestore=TS) for topic, kind in (
            ('/tf_static', 'tf2_msgs/msg/TFMessage'), ('/tf', 'tf2_msgs/msg/TFMessage'),
            (IMAGE, 'sensor_msgs/msg/CompressedImage'), (INFO, 'sensor_msgs/msg/CameraInfo'),
            (DEPTH, 'sensor_msgs/msg/Image'), (LIDAR, 'sensor_msgs/msg/PointCloud2'))}

        written = []

        def write(topic, stamp, msg):  # log time = arrival: increasing in writing order
            written.append(topic)
            writer.write(conns[topic], stamps[0] + len(written) * 1000,
                         TS.serialize_cdr(msg, conns[topic].msgtype))

        first = stamps[index.frames[0]]
        write('/tf_static', first, tf_static or robot_tf(calib, first, depth_offset))
        for k in range(-2, 3 * len(index.frames) + 2):  # odom -> base_link at 30 Hz, moving
            t = first + k * 33_000_000
            odom = transform_matrix((0.3 * k, 0.01 * k, 0), (0, 0, math.sin(0.01 * k), 1))
            write('/tf', t, tf_message(stamped('base_link', 'odom', t, odom)))
        for n in order or range(len(index.frames)):
            frame, stamp = index.frames[n], stamps[index.frames[n]]
            rgb = kitti.read_image(kitti.frame_path(root, DRIVE, 'image_02', frame))
            scan = kitti.load_velodyne_points(kitti.frame_path(root, DRIVE, 'velodyne_points',
                                                               frame))
            cloud = synth_bag.point_cloud_message(lidar_stamps[frame], scan)
            cloud.header.frame_id = 'velodyne'
            write(LIDAR, lidar_stamps[frame], cloud)
            fmt = FORMATS[n % len(FORMATS)]
            image = synth_bag.compressed_image_message(stamp, rgb, 'png' if 'png' in fmt
                                                       else 'jpeg')
            image.format, image.header.frame_id = fmt, OPTICAL
            write(IMAGE, stamp, image)
            if infos:  # after its image, same stamp, as the converter of the issue does
                info = synth_bag.camera_info_message(stamp, width, height,
                                                     synth_bag.camera_intrinsics(calib))
                info.header.frame_id = OPTICAL
                write(INFO, stamp, info)
            dense = np.load(folder / synth_bag.DENSE_DEPTH_FOLDER / f'{frame:010d}.npy')
            millimetres = np.clip(np.rint(np.where(np.isfinite(dense), dense, 0) * 1000), 0,
                                  65535).astype('<u2')
            write(DEPTH, stamp, synth_bag.image_message(stamp, millimetres, '16UC1',
                                                        'camera_depth_optical_frame'))
    return out


@pytest.fixture(scope='module')
def kitti_root(tmp_path_factory):
    return write_bag_world(tmp_path_factory.mktemp('kitti'))


@pytest.fixture(scope='module')
def robot_bags(kitti_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp('robot')
    return {storage: write_robot_bag(kitti_root, folder / storage, storage)
            for storage in ('mcap', 'sqlite3')}


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_lidar_through_the_robot_tf_tree_matches_the_world(robot_bags, kitti_root, storage):
    source = BagGroundTruth(robot_bags[storage], IMAGE, INFO, LIDAR, None)
    frames = list(source.frames())
    source.close()
    assert [type(f).__name__ for f in frames] == ['Frame'] * 3   # frame 0 included
    for index, frame in enumerate(frames):
        dense, gt = dense_depth(kitti_root, index), frame.depth
        hit = gt > 0
        assert hit.sum() > 5000
        assert np.mean(np.abs(gt[hit] - dense[hit]) / dense[hit] < 0.01) > 0.95


def test_robot_bag_evaluates_lidar_and_depth_alike(tmp_path, robot_bags, small_checkpoint):
    results = {}
    for name, gt in (('lidar', ['--lidar-topic', LIDAR]), ('depth', ['--depth-topic', DEPTH])):
        code, out = run_eval(tmp_path / name, robot_bags['mcap'], small_checkpoint, *ARGS,
                             *gt, '--max-depth', '30')
        assert code == 0
        results[name] = json.loads((out / 'metrics.json').read_text())
        assert results[name]['frames_evaluated'] == 3 and results[name]['skipped'] == {}
        assert results[name]['obstacles']['frames'] == 3
    assert results['lidar']['aggregate']['abs_rel'] == pytest.approx(
        results['depth']['aggregate']['abs_rel'], rel=0.25)
    assert results['depth']['bag']['truncated'] is False


def test_stamps_going_backwards_pair_by_stamp(tmp_path, kitti_root, small_checkpoint, capsys):
    bag = write_robot_bag(kitti_root, tmp_path / 'backwards', order=[2, 0, 1])
    code, out = run_eval(tmp_path, bag, small_checkpoint, *ARGS, '--lidar-topic', LIDAR)
    assert code == 0
    result = json.loads((out / 'metrics.json').read_text())
    assert result['frames_evaluated'] == 3
    assert result['bag']['stamps_backwards'] == {IMAGE: 1, INFO: 1, LIDAR: 1}
    assert 'warning: 1 messages on /velodyne_points are stamped earlier' in \
        capsys.readouterr().err


def test_depth_in_a_frame_offset_from_the_camera_is_refused(tmp_path, kitti_root,
                                                            small_checkpoint, capsys):
    bag = write_robot_bag(kitti_root, tmp_path / 'offset', depth_offset=0.05)
    code, _ = run_eval(tmp_path, bag, small_checkpoint, *ARGS, '--depth-topic', DEPTH)
    err = capsys.readouterr().err
    assert code == 1 and len(error_lines(err)) == 1
    assert "'camera_depth_optical_frame', which TF places 0.050 m" in err and OPTICAL in err


def tree_with(kitti_root, *extra):
    calib = kitti.load_calibration(kitti_root / '2011_09_26', cam=2)
    return robot_tf(calib, 0, extra=extra)


@pytest.mark.parametrize('extra, message', [
    ((stamped('base_link', 'camera_color_optical_frame', 0, np.eye(4)),),
     'bad TF tree: TF cycle: base_link -> camera_link -> camera_color_optical_frame -> '
     'base_link'),
    ((stamped('velodyne', 'camera_link', 0, np.eye(4)),),
     "bad TF tree: frame 'velodyne' has two parents, 'base_link' and 'camera_link'"),
])
def test_bad_tf_trees_name_the_frames(tmp_path, kitti_root, small_checkpoint, capsys, extra,
                                      message):
    bag = write_robot_bag(kitti_root, tmp_path / 'bad_tf',
                          tf_static=tree_with(kitti_root, *extra))
    code, _ = run_eval(tmp_path, bag, small_checkpoint, *ARGS, '--lidar-topic', LIDAR)
    err = capsys.readouterr().err
    assert code == 1 and len(error_lines(err)) == 1 and message in err
    # --lidar-to-camera still overrides the bag's TF, broken or not
    calib = kitti.load_calibration(kitti_root / '2011_09_26', cam=2)
    velo = synth_bag.camera_from_lidar(calib)
    x, y, z, w = rotation_to_quaternion(velo[:3, :3])
    transform = ' '.join(str(v) for v in (*velo[:3, 3], x, y, z, w))
    assert run_eval(tmp_path, bag, small_checkpoint, *ARGS, '--lidar-topic', LIDAR,
                    '--lidar-to-camera', transform)[0] == 0


def test_unknown_lidar_frame_lists_the_frames(tmp_path, kitti_root, small_checkpoint, capsys):
    calib = kitti.load_calibration(kitti_root / '2011_09_26', cam=2)
    tree = robot_tf(calib, 0)
    tree.transforms = tree.transforms[:3]   # no velodyne in the tree
    bag = write_robot_bag(kitti_root, tmp_path / 'no_velodyne', tf_static=tree)
    code, _ = run_eval(tmp_path, bag, small_checkpoint, *ARGS, '--lidar-topic', LIDAR)
    err = capsys.readouterr().err
    assert code == 1 and len(error_lines(err)) == 1
    assert "frame 'velodyne' is not in the TF tree; it has: base_link, " \
        'camera_color_optical_frame, camera_depth_optical_frame, camera_link, odom' in err


def test_missing_camera_info_lists_the_camera_info_topics(tmp_path, kitti_root,
                                                          small_checkpoint, capsys):
    bag = write_robot_bag(kitti_root, tmp_path / 'no_info', infos=False)
    for topic, problem in ((INFO, 'has no message'), ('/camera/info', 'is not in the bag')):
        code, _ = run_eval(tmp_path, bag, small_checkpoint, '--image-topic', IMAGE,
                           '--camera-info-topic', topic, '--lidar-topic', LIDAR)
        err = capsys.readouterr().err
        assert code == 1 and len(error_lines(err)) == 1
        assert f"camera_info topic '{topic}' {problem}; camera_info topics in the bag: " \
            f'{INFO} (0 messages)' in err


def test_truncated_mcap_is_evaluated_as_far_as_it_goes(tmp_path, robot_bags, small_checkpoint,
                                                       capsys):
    whole = next(robot_bags['mcap'].glob('*.mcap')).read_bytes()
    for name, keep, frames in (('cut', len(whole) * 3 // 4, 2), ('stub', 200, 0)):
        broken = tmp_path / name
        broken.mkdir()
        (broken / 'mcap.mcap').write_bytes(whole[:keep])  # no metadata.yaml either
        code, out = run_eval(tmp_path / name, broken, small_checkpoint, *ARGS,
                             '--lidar-topic', LIDAR)
        err = capsys.readouterr().err
        if not frames:
            assert code == 1 and len(error_lines(err)) == 1 and name in err
            continue
        assert code == 0 and 'bag truncated' in err and 'no metadata.yaml' in err
        result = json.loads((out / 'metrics.json').read_text())
        assert result['bag']['truncated'] is True
        assert 0 < result['bag']['recovered_messages'] < 1 + 13 + 4 * 3  # of the whole bag
        assert result['frames_evaluated'] >= frames - 1


def test_sqlite_bag_without_metadata(tmp_path, robot_bags, small_checkpoint, capsys):
    bag = tmp_path / 'no_metadata'
    shutil.copytree(robot_bags['sqlite3'], bag)
    (bag / 'metadata.yaml').unlink()
    code, out = run_eval(tmp_path, bag, small_checkpoint, *ARGS, '--depth-topic', DEPTH)
    assert code == 0 and 'warning:' in capsys.readouterr().err
    result = json.loads((out / 'metrics.json').read_text())
    assert result['frames_evaluated'] == 3
    assert 'no metadata.yaml' in result['bag']['notes'][0]


def test_camera_info_pairs_by_stamp_not_order():
    infos = CameraInfos()
    message = synth_bag.camera_info_message(2_000, 640, 480, (500.0, 500.0, 320.0, 240.0))
    infos.add(2_000, message)
    assert infos.for_image(1_000, 5_000)[0].fx == 500.0      # written after, within tolerance
    assert infos.for_image(1_000, 10)[0] is None             # too far, and nothing before
    assert infos.for_image(9_000, 10)[0].fx == 500.0         # the last one before the image

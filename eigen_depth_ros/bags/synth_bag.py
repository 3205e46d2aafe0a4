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
Write a ROS 2 bag from a KITTI raw drive (synthetic or real), stamped like a recording.

Topics (defaults):

- ``/camera/image_raw`` (sensor_msgs/Image, rgb8) or ``/camera/image_raw/compressed``
  (sensor_msgs/CompressedImage, jpeg or png) with ``--compressed``;
- ``/camera/camera_info`` (sensor_msgs/CameraInfo) of the rectified left colour camera;
- ``/velodyne_points`` (sensor_msgs/PointCloud2, float32 x y z intensity, frame ``velo_link``);
- ``/tf_static`` (tf2_msgs/TFMessage): ``camera_color_left`` <- ``velo_link``;
- ``/ground_truth/depth`` (sensor_msgs/Image 32FC1 metres, or 16UC1 millimetres) when the
  drive has the synthetic world's dense depth and ``--depth-gt`` is given.

Stamps come from the drive's ``timestamps.txt`` files. KITTI's calibration counts pixels from
1 (its devkit subtracts 1 after projecting); CameraInfo counts from 0, so ``cx`` and ``cy``
are ``P_rect_02[0, 2] - 1`` and ``P_rect_02[1, 2] - 1``.
"""
from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path
import sys
import tempfile

import cv2
from eigen_depth_ros.core.projection import rotation_to_quaternion
from eigen_depth_ros.msg.camera_info import depth_camera_info_fields
from eigen_depth_training import kitti
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import get_typestore, Stores
from tqdm import tqdm

CAMERA_FRAME = 'camera_color_left'
LIDAR_FRAME = 'velo_link'
TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
DENSE_DEPTH_FOLDER = 'synthetic_depth_02'


def parse_kitti_stamp(text: str) -> int:
    """Nanoseconds since the epoch (UTC) of a KITTI stamp ``2011-09-26 13:02:25.964389445``."""
    date, _, fraction = text.strip().partition('.')
    seconds = datetime.strptime(date, '%Y-%m-%d %H:%M:%S').replace(tzinfo=timezone.utc)
    return int(seconds.timestamp()) * 10 ** 9 + int((fraction + '000000000')[:9])


def read_stamps(path: Path) -> list[int]:
    """All stamps (ns) of a KITTI ``timestamps.txt``; raises KittiFormatError naming it."""
    try:
        return [parse_kitti_stamp(line) for line in path.read_text().splitlines() if line]
    except (OSError, ValueError) as exc:
        raise kitti.KittiFormatError(f'{path}: cannot read timestamps ({exc})') from None


def camera_from_lidar(calib: 'kitti.Calibration') -> np.ndarray:
    """
    4x4 transform from Velodyne coordinates into the rectified camera's optical frame.

    ``X_cam = R_rect_00 [R|T] X_velo + t`` with ``t = K^-1 P_rect[:, 3]`` (the rectified
    camera's offset from camera 0).
    """
    rect = np.eye(4)
    rect[:3, :3] = calib.R_rect_00
    offset = np.eye(4)
    offset[:3, 3] = np.linalg.solve(calib.P_rect[:, :3], calib.P_rect[:, 3])
    return offset @ rect @ calib.velo_to_cam


def camera_intrinsics(calib: 'kitti.Calibration') -> tuple[float, float, float, float]:
    """``(fx, fy, cx, cy)`` in ROS's 0-based pixel convention."""
    p = calib.P_rect
    return float(p[0, 0]), float(p[1, 1]), float(p[0, 2] - 1), float(p[1, 2] - 1)


def _header(stamp_ns: int, frame_id: str):
    t = TYPESTORE.types
    return t['std_msgs/msg/Header'](
        stamp=t['builtin_interfaces/msg/Time'](sec=stamp_ns // 10 ** 9,
                                               nanosec=stamp_ns % 10 ** 9),
        frame_id=frame_id)


def camera_info_message(stamp_ns: int, width: int, height: int,
                        intrinsics: tuple[float, float, float, float]):
    """
    Build a rosbags CameraInfo for an undistorted pinhole camera.

    Its fields are those the node publishes for its depth image
    (:func:`~eigen_depth_ros.msg.camera_info.depth_camera_info_fields`: plumb_bob with zero
    distortion, identity R, ``P = [K | 0]``), the arrays as rosbags wants them (float64).
    """
    fields = depth_camera_info_fields(*intrinsics, width, height)
    arrays = {name: np.asarray(fields[name], np.float64) for name in ('d', 'k', 'r', 'p')}
    return TYPESTORE.types['sensor_msgs/msg/CameraInfo'](
        header=_header(stamp_ns, CAMERA_FRAME), **{**fields, **arrays},
        roi=TYPESTORE.types['sensor_msgs/msg/RegionOfInterest'](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))


def image_message(stamp_ns: int, array: np.ndarray, encoding: str, frame_id: str = CAMERA_FRAME):
    """Build a rosbags Image holding ``array`` (H, W[, C]) little-endian."""
    array = np.ascontiguousarray(array)
    return TYPESTORE.types['sensor_msgs/msg/Image'](
        header=_header(stamp_ns, frame_id), height=array.shape[0], width=array.shape[1],
        encoding=encoding, is_bigendian=0, step=array.strides[0],
        data=array.view(np.uint8).ravel())


def compressed_image_message(stamp_ns: int, rgb: np.ndarray, fmt: str):
    """Build a rosbags CompressedImage (``jpeg`` or ``png``), image_transport style."""
    ok, encoded = cv2.imencode(f'.{fmt}', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f'OpenCV could not encode {fmt}')
    return TYPESTORE.types['sensor_msgs/msg/CompressedImage'](
        header=_header(stamp_ns, CAMERA_FRAME), format=f'rgb8; {fmt} compressed bgr8',
        data=encoded.ravel())


def point_cloud_message(stamp_ns: int, scan: np.ndarray):
    """Build a rosbags PointCloud2 of a KITTI scan (float32 x y z intensity)."""
    t = TYPESTORE.types
    fields = [t['sensor_msgs/msg/PointField'](name=name, offset=4 * i, datatype=7, count=1)
              for i, name in enumerate(('x', 'y', 'z', 'intensity'))]
    scan = np.ascontiguousarray(scan, dtype='<f4')
    return t['sensor_msgs/msg/PointCloud2'](
        header=_header(stamp_ns, LIDAR_FRAME), height=1, width=len(scan), fields=fields,
        is_bigendian=False, point_step=16, row_step=16 * len(scan),
        data=scan.view(np.uint8).ravel(), is_dense=True)


def tf_static_message(stamp_ns: int, transform: np.ndarray):
    """``/tf_static`` with the pose of the LiDAR frame in the camera frame."""
    t = TYPESTORE.types
    x, y, z, w = rotation_to_quaternion(transform[:3, :3])
    tx, ty, tz = (float(v) for v in transform[:3, 3])
    stamped = t['geometry_msgs/msg/TransformStamped'](
        header=_header(stamp_ns, CAMERA_FRAME), child_frame_id=LIDAR_FRAME,
        transform=t['geometry_msgs/msg/Transform'](
            translation=t['geometry_msgs/msg/Vector3'](x=tx, y=ty, z=tz),
            rotation=t['geometry_msgs/msg/Quaternion'](x=x, y=y, z=z, w=w)))
    return t['tf2_msgs/msg/TFMessage'](transforms=[stamped])


def write_bag(kitti_root: str | Path, drive: str, out: str | Path, storage: str = 'mcap',
              compressed: str | None = None, depth_gt: str | None = None,
              progress: bool = True) -> Path:
    """
    Write the drive's left colour images, camera info, scans and ``/tf_static`` to a bag.

    :param kitti_root: KITTI raw root holding ``drive``.
    :param drive: drive name, e.g. ``2011_09_26_drive_0002``.
    :param out: bag folder to create (must not exist).
    :param storage: ``'mcap'`` or ``'sqlite3'``.
    :param compressed: None for raw rgb8 images, else ``'jpeg'`` or ``'png'``.
    :param depth_gt: None, ``'32FC1'`` or ``'16UC1'``: also write the dense synthetic depth.
    :return: the bag folder.
    """
    plugins = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}
    if storage not in plugins:
        raise ValueError(f"storage must be 'mcap' or 'sqlite3', got {storage!r}")
    if compressed not in (None, 'jpeg', 'png'):
        raise ValueError(f"compressed must be 'jpeg' or 'png', got {compressed!r}")
    if depth_gt not in (None, '32FC1', '16UC1'):
        raise ValueError(f"depth_gt must be '32FC1' or '16UC1', got {depth_gt!r}")
    root, out = Path(kitti_root), Path(out)
    name = kitti.normalise_drive(drive)
    folder = root / name
    calib = kitti.load_calibration(root / name.split('/')[0], cam=2)
    index = kitti.list_drive_frames(root, name, cam=2)
    if not index.frames:
        raise kitti.KittiFormatError(f'{folder}: no frame with both an image and a scan')
    image_stamps = read_stamps(folder / 'image_02' / 'timestamps.txt')
    lidar_stamps = read_stamps(folder / 'velodyne_points' / 'timestamps.txt')
    intrinsics = camera_intrinsics(calib)
    width, height = calib.image_size
    t = 'sensor_msgs/msg/'
    with Writer(out, version=9, storage_plugin=plugins[storage]) as writer:
        def connect(topic: str, msgtype: str):
            return writer.add_connection(topic, msgtype, typestore=TYPESTORE)
        image_topic = '/camera/image_raw' + ('/compressed' if compressed else '')
        image_conn = connect(image_topic, t + ('CompressedImage' if compressed else 'Image'))
        info_conn = connect('/camera/camera_info', t + 'CameraInfo')
        lidar_conn = connect('/velodyne_points', t + 'PointCloud2')
        tf_conn = connect('/tf_static', 'tf2_msgs/msg/TFMessage')
        depth_conn = connect('/ground_truth/depth', t + 'Image') if depth_gt else None

        def write(conn, stamp: int, msg) -> None:
            writer.write(conn, stamp, TYPESTORE.serialize_cdr(msg, conn.msgtype))

        first = min(image_stamps[index.frames[0]], lidar_stamps[index.frames[0]])
        write(tf_conn, first, tf_static_message(first, camera_from_lidar(calib)))
        for frame in tqdm(index.frames, desc=f'bag {name}', disable=not progress, unit='frame'):
            stamp, lidar_stamp = image_stamps[frame], lidar_stamps[frame]
            rgb = kitti.read_image(kitti.frame_path(root, name, 'image_02', frame))
            scan = kitti.load_velodyne_points(
                kitti.frame_path(root, name, 'velodyne_points', frame))
            write(lidar_conn, lidar_stamp, point_cloud_message(lidar_stamp, scan))
            write(info_conn, stamp, camera_info_message(stamp, width, height, intrinsics))
            write(image_conn, stamp, compressed_image_message(stamp, rgb, compressed)
                  if compressed else image_message(stamp, rgb, 'rgb8'))
            if depth_conn is not None:
                dense = np.load(folder / DENSE_DEPTH_FOLDER / f'{frame:010d}.npy')
                dense = np.where(np.isfinite(dense) & (dense > 0), dense, 0.0)
                if depth_gt == '16UC1':
                    gt = np.clip(np.rint(dense * 1000), 0, 65535).astype('<u2')
                else:
                    gt = dense.astype('<f4')
                write(depth_conn, stamp, image_message(stamp, gt, depth_gt))
    return out


def build_parser() -> argparse.ArgumentParser:
    """Options of ``eigen-depth synth-bag``."""
    parser = argparse.ArgumentParser(
        prog='eigen-depth synth-bag',
        description='Write a ROS 2 bag (camera, camera_info, Velodyne, /tf_static) from a '
                    'KITTI raw drive; without --kitti-root a synthetic drive is made first.')
    parser.add_argument('out', type=Path, help='bag folder to create (must not exist)')
    parser.add_argument('--kitti-root', type=Path, default=None,
                        help='KITTI raw root holding --drive (default: write a synthetic one)')
    parser.add_argument('--drive', default='2011_09_26_drive_0002',
                        help='drive to convert (default: %(default)s)')
    parser.add_argument('--frames', type=int, default=10,
                        help='frames of the synthetic drive (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0, help='synthetic world seed')
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap',
                        help='rosbag2 storage plugin (default: %(default)s)')
    parser.add_argument('--compressed', choices=('jpeg', 'png'), default=None,
                        help='write sensor_msgs/CompressedImage instead of raw rgb8')
    parser.add_argument('--depth-gt', choices=('32FC1', '16UC1'), default=None,
                        help='also write the synthetic dense depth on /ground_truth/depth')
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``eigen-depth synth-bag``."""
    args = build_parser().parse_args(argv)
    if args.out.exists():
        print(f'eigen-depth synth-bag: error: {args.out} exists already', file=sys.stderr)
        return 1
    try:
        with tempfile.TemporaryDirectory(prefix='eigen-synth-') as tmp:
            root = args.kitti_root
            if root is None:
                from eigen_depth_training.synth import write_synthetic_kitti
                root = Path(tmp)
                write_synthetic_kitti(root, drives=1, frames=args.frames, seed=args.seed,
                                      drive_names=[args.drive])
            write_bag(root, args.drive, args.out, args.storage, args.compressed, args.depth_gt)
    except (ValueError, OSError) as exc:
        print(f'eigen-depth synth-bag: error: {exc}', file=sys.stderr)
        return 1
    print(f'wrote {args.out}')
    return 0

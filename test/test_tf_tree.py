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

"""The TF tree: composition across branches, /tf interpolation, and each bad tree."""
import math

from eigen_depth_ros.bags.tf_tree import slerp, TfError, TfExtrapolationError, TfTree
from eigen_depth_ros.core.projection import rotation_to_quaternion
import numpy as np
import pytest

# base_link: x forward, y left, z up -> optical: z forward, x right, y down (REP 103)
OPTICAL = (-0.5, 0.5, -0.5, 0.5)


def yaw(angle: float) -> tuple[float, float, float, float]:
    return (0.0, 0.0, math.sin(angle / 2), math.cos(angle / 2))


def matrix(translation, quaternion) -> np.ndarray:
    from eigen_depth_ros.bags.tf_tree import transform_matrix
    return transform_matrix(translation, quaternion)


def robot_tree() -> TfTree:
    """Return odom -> base_link (moving) -> {camera_link -> camera_optical, velodyne}."""
    tree = TfTree()
    tree.add('base_link', 'camera_link', 0, (0.3, 0.0, 1.2), yaw(0.1), static=True)
    tree.add('camera_link', 'camera_optical', 0, (0.0, -0.06, 0.0), OPTICAL, static=True)
    tree.add('/base_link', 'velodyne', 0, (0.8, 0.0, 1.7), yaw(-0.05), static=True)
    for t in range(5):
        tree.add('odom', 'base_link', t * 10 ** 9, (2.0 * t, 0.0, 0.0), yaw(0.2 * t),
                 static=False)
    return tree


def test_chain_across_branches_composes_as_the_matrices_say():
    tree = robot_tree()
    base_from_camera = matrix((0.3, 0, 1.2), yaw(0.1)) @ matrix((0, -0.06, 0), OPTICAL)
    base_from_velodyne = matrix((0.8, 0, 1.7), yaw(-0.05))
    expected = np.linalg.inv(base_from_camera) @ base_from_velodyne
    camera_from_velodyne = tree.lookup('camera_optical', 'velodyne')
    assert np.allclose(camera_from_velodyne, expected)
    assert np.allclose(tree.lookup('velodyne', 'camera_optical') @ camera_from_velodyne,
                       np.eye(4))
    # the robot's motion above base_link never enters, at any stamp
    assert tree.is_static('camera_optical', 'velodyne')
    assert np.allclose(tree.lookup('camera_optical', 'velodyne', 3_500_000_000), expected)
    # a point 10 m ahead of the LiDAR, which sits 0.5 m above the camera: 0.5 m above the
    # optical axis (y down), about 10.4 m ahead
    point = camera_from_velodyne @ np.array([10.0, 0, 0, 1])
    assert 10 < point[2] < 11 and point[1] == pytest.approx(-0.5)


def test_moving_links_are_interpolated_and_not_extrapolated():
    tree = robot_tree()
    assert not tree.is_static('odom', 'camera_optical')
    half = tree.lookup('odom', 'base_link', 1_500_000_000)
    assert np.allclose(half[:3, 3], [3.0, 0, 0])                      # linear
    assert np.allclose(half[:3, :3], matrix((0, 0, 0), yaw(0.3))[:3, :3])  # slerp
    with pytest.raises(TfExtrapolationError, match='not at 9.000 s'):
        tree.lookup('odom', 'base_link', 9 * 10 ** 9)
    # within the tolerance, the nearest sample is used
    near = tree.lookup('odom', 'base_link', 4_010_000_000, tolerance_ns=50_000_000)
    assert np.allclose(near[:3, 3], [8.0, 0, 0])
    with pytest.raises(TfExtrapolationError, match='stamp is needed'):
        tree.lookup('odom', 'camera_optical')


def test_slerp_takes_the_short_way():
    q0, q1 = np.array(yaw(0.1)), -np.array(yaw(0.3))  # -q is the same rotation
    mid = slerp(q0, q1, 0.5)
    assert abs(abs(np.dot(mid, yaw(0.2))) - 1) < 1e-12
    assert np.allclose(slerp(q0, q0, 0.3), q0)


def test_quaternion_round_trip_through_a_lookup():
    rotation = matrix((0, 0, 0), (0.1, -0.2, 0.3, 0.9))[:3, :3]
    tree = TfTree()
    tree.add('a', 'b', 0, (1, 2, 3), rotation_to_quaternion(rotation), static=True)
    assert np.allclose(tree.lookup('a', 'b')[:3, :3], rotation)


def test_unknown_frame_and_no_path_name_the_frames():
    tree = robot_tree()
    with pytest.raises(TfError, match="'camera_color_left' is not in the TF tree; it has: "
                                      'base_link, camera_link, camera_optical, odom, velodyne'):
        tree.lookup('camera_color_left', 'velodyne')
    tree.add('map', 'gps', 0, (0, 0, 0), (0, 0, 0, 1), static=True)
    with pytest.raises(TfError, match="no TF path between 'gps' \\(tree of 'map'\\) and "
                                      "'velodyne' \\(tree of 'odom'\\)"):
        tree.lookup('gps', 'velodyne', 0)


def test_cycles_and_second_parents_are_refused_with_the_frames():
    tree = robot_tree()
    with pytest.raises(TfError, match='TF cycle: odom -> base_link -> camera_link -> '
                                      'camera_optical -> odom'):
        tree.add('camera_optical', 'odom', 0, (0, 0, 0), (0, 0, 0, 1), static=True)
    with pytest.raises(TfError, match="frame 'velodyne' has two parents, 'base_link' and "
                                      "'camera_link'"):
        tree.add('camera_link', 'velodyne', 0, (0, 0, 0), (0, 0, 0, 1), static=True)
    with pytest.raises(TfError, match='to itself'):
        tree.add('a', '/a', 0, (0, 0, 0), (0, 0, 0, 1), static=True)
    with pytest.raises(ValueError, match='no valid rotation'):
        tree.add('a', 'b', 0, (0, 0, 0), (0, 0, 0, 0), static=True)
    with pytest.raises(TfError, match='not finite'):
        tree.add('a', 'b', 0, (0, math.nan, 0), (0, 0, 0, 1), static=True)
    with pytest.raises(TfError, match='both /tf_static and /tf'):
        tree.add('base_link', 'velodyne', 5, (0, 0, 0), (0, 0, 0, 1), static=False)

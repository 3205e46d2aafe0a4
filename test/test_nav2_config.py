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

"""config/nav2_costmap.yaml: the node's real topic and type, and ranges that fit together."""
import os
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / 'config' / 'nav2_costmap.yaml').read_text())
NODE = CONFIG['eigen_depth']['ros__parameters']
COSTMAP = CONFIG['local_costmap']['local_costmap']['ros__parameters']
LAYERS = {name: COSTMAP[name] for name in COSTMAP['plugins']}
OBSTACLE_LAYERS = {name: layer for name, layer in LAYERS.items() if layer['plugin'] in (
    'nav2_costmap_2d::VoxelLayer', 'nav2_costmap_2d::ObstacleLayer')}
SOURCES = [layer[source] for layer in OBSTACLE_LAYERS.values()
           for source in layer['observation_sources'].split()]


def test_one_obstacle_source_takes_point_clouds():
    assert len(SOURCES) == 1
    assert SOURCES[0]['data_type'] == 'PointCloud2'
    assert SOURCES[0]['marking'] and SOURCES[0]['clearing']
    assert SOURCES[0]['expected_update_rate'] > 0 and SOURCES[0]['inf_is_valid'] is False


def test_ranges_and_heights_fit_the_node():
    source = SOURCES[0]
    max_depth, clearing = NODE['max_depth'], NODE['clearing_range']
    # every point the node keeps can mark; its clearing points mark nothing but clear
    assert max_depth <= source['obstacle_max_range'] < clearing <= source['raytrace_max_range']
    # rays are not cut at the edge of the rolling window
    assert source['raytrace_max_range'] <= min(COSTMAP['width'], COSTMAP['height']) / 2
    assert COSTMAP['rolling_window'] and COSTMAP['robot_base_frame'] == 'base_link'
    # obstacle heights inside the voxel column, above the ground band bag-eval scores
    layer = next(iter(OBSTACLE_LAYERS.values()))
    top = layer.get('origin_z', 0.0) + layer.get('z_voxels', 0) * layer.get('z_resolution', 0)
    assert 0 < source['min_obstacle_height'] < source['max_obstacle_height']
    if layer['plugin'].endswith('VoxelLayer'):
        assert source['max_obstacle_height'] <= top and layer['z_voxels'] <= 16
    assert isinstance(NODE['points_stride'], int) and NODE['points_stride'] >= 1


def test_node_section_holds_node_parameters_of_their_types():
    pytest.importorskip('rclpy')
    from eigen_depth_ros.node.parameters import PARAMETERS
    specs = {spec.name: spec for spec in PARAMETERS}
    for name, value in NODE.items():
        assert name in specs, name
        assert type(value) is type(specs[name].default), name


@pytest.mark.ros
def test_the_node_publishes_the_configured_topic_and_takes_the_ranges(small_checkpoint):
    """Start the real node with the file's parameters; its cloud topic is the source's."""
    rclpy = pytest.importorskip('rclpy')
    from eigen_depth_ros.node.depth_node import DepthNode
    from rclpy.parameter import Parameter
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=100 + os.getpid() % 50)
    node = None
    try:
        overrides = [Parameter('checkpoint', value=str(small_checkpoint)),
                     Parameter('device', value='cpu'), Parameter('backend', value='eager'),
                     *(Parameter(name, value=value) for name, value in NODE.items())]
        node = DepthNode(context=context, parameter_overrides=overrides)
        published = dict(node.get_publisher_names_and_types_by_node(
            node.get_name(), node.get_namespace()))
        assert published[SOURCES[0]['topic']] == ['sensor_msgs/msg/PointCloud2']
        for name in ('max_depth', 'clearing_range', 'points_stride'):
            assert node.get_parameter(name).value == NODE[name]
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.shutdown(context=context)


def test_the_node_refuses_a_clearing_range_inside_max_depth():
    pytest.importorskip('rclpy')
    from eigen_depth_ros.node.parameters import PARAMETERS
    from eigen_depth_ros.node.settings import Settings
    values = {spec.name: spec.default for spec in PARAMETERS
              if spec.name in Settings.__dataclass_fields__}
    Settings(**{**values, **{k: v for k, v in NODE.items() if k in values}}).check()
    for clearing in (9.0, 10.0, float('inf')):
        with pytest.raises(ValueError, match='clearing_range'):
            Settings(**{**values, 'max_depth': 10.0, 'clearing_range': clearing}).check()

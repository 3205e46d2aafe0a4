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
Launch ``depth_node`` (node ``eigen_depth``) with its parameters file.

    ros2 launch eigen_depth_ros depth.launch.py checkpoint:=/path/model.pt \
        image_topic:=/camera/image_raw camera_info_topic:=/camera/camera_info

Parameters come from ``params_file`` (default: the package's config/depth.yaml); the
``checkpoint``, ``device`` and ``backend`` arguments override it only when they are not
empty, so an unset argument never blanks the file's value.

Fast DDS: unless FASTDDS_DEFAULT_PROFILES_FILE is already set in the environment, the node
gets the package's shared-memory profile (config/fastdds_shm.xml) so camera-sized
best-effort messages arrive between processes; ``fastdds_profile:=''`` turns this off
(needed when the node must also talk to other machines over UDP, see docs/node.md).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = 'eigen_depth_ros'
EXECUTABLE = 'depth_node'
NODE_NAME = 'eigen_depth'
PARAMS_FILE = 'depth.yaml'
FASTDDS_PROFILE = 'fastdds_shm.xml'
FASTDDS_VARIABLE = 'FASTDDS_DEFAULT_PROFILES_FILE'
OVERRIDES = ('checkpoint', 'device', 'backend')


def launch_setup(context: LaunchContext) -> list:
    """Build the actions once the launch arguments are known."""
    def arg(name: str) -> str:
        return LaunchConfiguration(name).perform(context).strip()

    overrides = {name: arg(name) for name in OVERRIDES if arg(name)}
    parameters = [arg('params_file')] + ([overrides] if overrides else [])
    actions = []
    environment = getattr(context, 'environment', os.environ)
    if arg('fastdds_profile') and not environment.get(FASTDDS_VARIABLE):
        actions.append(SetEnvironmentVariable(FASTDDS_VARIABLE, arg('fastdds_profile')))
    actions.append(Node(
        package=PACKAGE,
        executable=EXECUTABLE,
        name=NODE_NAME,
        output='screen',
        parameters=parameters,
        remappings=[('image', arg('image_topic')),
                    ('camera_info', arg('camera_info_topic'))],
        ros_arguments=['--log-level', arg('log_level')],
    ))
    return actions


def generate_launch_description() -> LaunchDescription:
    """Declare the launch arguments, then the node."""
    share = get_package_share_directory(PACKAGE)
    return LaunchDescription([
        DeclareLaunchArgument(
            'params_file', default_value=os.path.join(share, 'config', PARAMS_FILE),
            description='YAML file with an eigen_depth: ros__parameters: block'),
        DeclareLaunchArgument(
            'checkpoint', default_value='',
            description='Network checkpoint (.pt); empty keeps the value of params_file'),
        DeclareLaunchArgument(
            'device', default_value='',
            description='auto, cpu, cuda or cuda:N; empty keeps the value of params_file'),
        DeclareLaunchArgument(
            'backend', default_value='',
            description='Forward pass: auto (the measured default for the device), eager, '
                        'channels_last, bf16, int8, bf16_int8, compile, onnx or fp16 '
                        '(+graph on CUDA); empty keeps the value of params_file'),
        DeclareLaunchArgument(
            'image_topic', default_value='image',
            description='Camera image topic (the node adds /compressed when compressed '
                        'is true)'),
        DeclareLaunchArgument(
            'camera_info_topic', default_value='camera_info',
            description='CameraInfo topic of the camera'),
        DeclareLaunchArgument(
            'log_level', default_value='info',
            description='Log level of the node: debug, info, warn, error or fatal'),
        DeclareLaunchArgument(
            'fastdds_profile', default_value=os.path.join(share, 'config', FASTDDS_PROFILE),
            description='Fast DDS profile for the node, used unless '
                        f'{FASTDDS_VARIABLE} is set already; empty for none'),
        OpaqueFunction(function=launch_setup),
    ])

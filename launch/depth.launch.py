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

Fast DDS: unless a profile is already set in the environment, the node gets the package's
shared-memory profile (config/fastdds_shm.xml) so camera-sized best-effort messages arrive
between processes; ``fastdds_profile:=''`` turns this off (needed when the node must also
talk to other machines over UDP, see docs/node.md). The variable depends on the Fast DDS
major version: Fast DDS 2.x (Humble, Jazzy) reads only FASTRTPS_DEFAULT_PROFILES_FILE and
ignores FASTDDS_DEFAULT_PROFILES_FILE, Fast DDS 3.x (Kilted) the other way round; a profile
under the wrong name is dropped silently and Jazzy's default transports then lose 1.4 MB
images. So the node gets the name its Fast DDS reads (``ROS_DISTRO`` tells), and a profile
the user set under either name. A missing, unreadable or invalid profile stops the launch
with the file's name, what is wrong and what Fast DDS said about it, instead of a node
silently running on the default transports.
"""
import os

from ament_index_python.packages import get_package_share_directory
from eigen_depth_ros.node.ros_env import fastdds_messages, profile_problem, profile_variables
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = 'eigen_depth_ros'
EXECUTABLE = 'depth_node'
NODE_NAME = 'eigen_depth'
PARAMS_FILE = 'depth.yaml'
FASTDDS_PROFILE = 'fastdds_shm.xml'
FASTDDS_VARIABLE = 'FASTDDS_DEFAULT_PROFILES_FILE'  # Fast DDS 3.x (Kilted and later)
FASTRTPS_VARIABLE = 'FASTRTPS_DEFAULT_PROFILES_FILE'  # Fast DDS 2.x (Humble, Jazzy)
OVERRIDES = ('checkpoint', 'device', 'backend')


def launch_setup(context: LaunchContext) -> list:
    """Build the actions once the launch arguments are known."""
    def arg(name: str) -> str:
        return LaunchConfiguration(name).perform(context).strip()

    overrides = {name: arg(name) for name in OVERRIDES if arg(name)}
    parameters = [arg('params_file')] + ([overrides] if overrides else [])
    actions = []
    environment = getattr(context, 'environment', os.environ)
    names = profile_variables(environment)  # the one(s) this Fast DDS reads
    given = next((name for name in (*names, FASTDDS_VARIABLE, FASTRTPS_VARIABLE)
                  if environment.get(name)), None)
    profile = environment[given] if given else arg('fastdds_profile')
    if profile:
        problem = profile_problem(profile)
        if problem is not None:
            said = fastdds_messages(profile, environment)
            source = given or 'launch argument fastdds_profile'
            raise RuntimeError(
                f'Fast DDS profile {profile} ({source}): {problem}; Fast DDS said: '
                + (' | '.join(said) if said else 'nothing') + '. Fix the file, or pass '
                "fastdds_profile:='' and unset the variable to run on the default transports")
        for name in names:
            if environment.get(name) != profile:
                actions.append(SetEnvironmentVariable(name, profile))
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
                        f'{FASTDDS_VARIABLE} (Kilted) or {FASTRTPS_VARIABLE} (Jazzy) is '
                        'set already; empty for none'),
        OpaqueFunction(function=launch_setup),
    ])

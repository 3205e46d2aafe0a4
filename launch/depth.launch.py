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

Several cameras: ``cameras:='front rear'`` runs one node per camera, each in its own
namespace (``/front/eigen_depth`` on ``/front/image`` and ``/front/camera_info``, publishing
``/front/depth/image``, ``/front/points``, ...); ``namespace:=robot1`` puts the node (or
every camera's node) under a namespace. A params file's ``eigen_depth:`` block names the node
without a namespace, which rcl does not apply to a namespaced node, so for those the block is
passed to the node as a dictionary too.

Managed: ``use_lifecycle:=true`` runs ``depth_lifecycle_node``, a lifecycle node that
lifecycle_manager (or ``ros2 lifecycle set``) configures and activates; with
``autostart:=true`` (the default) it configures and activates itself.

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
import yaml

PACKAGE = 'eigen_depth_ros'
EXECUTABLE = 'depth_node'
MANAGED_EXECUTABLE = 'depth_lifecycle_node'
AUTOSTART_FLAG = '--autostart'  # eigen_depth_ros.node.lifecycle.AUTOSTART_FLAG
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
    managed = arg('use_lifecycle').lower() == 'true'
    autostart = managed and arg('autostart').lower() == 'true'
    for namespace in camera_namespaces(arg('namespace'), arg('cameras')):
        parameters = node_parameters(arg('params_file'), namespace)
        actions.append(Node(
            package=PACKAGE,
            executable=MANAGED_EXECUTABLE if managed else EXECUTABLE,
            name=NODE_NAME,
            namespace=namespace,
            output='screen',
            parameters=parameters + ([overrides] if overrides else []),
            remappings=[('image', arg('image_topic')),
                        ('camera_info', arg('camera_info_topic'))],
            arguments=[AUTOSTART_FLAG] if autostart else [],
            ros_arguments=['--log-level', arg('log_level')],
        ))
    return actions


def camera_namespaces(namespace: str, cameras: str) -> list[str]:
    """Return one namespace per node: each camera's under ``namespace``, or ``namespace``."""
    names = cameras.replace(',', ' ').split()
    if not names:
        return [namespace]
    return ['/'.join(part.strip('/') for part in (namespace, name) if part.strip('/'))
            for name in names]


def node_parameters(params_file: str, namespace: str) -> list:
    """
    Return the node's parameters: the file, and for a namespaced node its block again.

    rcl applies a block named ``eigen_depth`` (no namespace) only to ``/eigen_depth``; a
    namespaced node gets the block's values as a dictionary as well.
    """
    if not namespace.strip('/'):
        return [params_file]
    with open(params_file) as stream:
        document = yaml.safe_load(stream) or {}
    block = (document.get(NODE_NAME) or {}).get('ros__parameters')
    return [params_file] + ([block] if block else [])


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
            'namespace', default_value='',
            description='Namespace of the node (of every camera node with cameras); empty '
                        'for none'),
        DeclareLaunchArgument(
            'cameras', default_value='',
            description='Several cameras: namespaces separated by spaces or commas (e.g. '
                        'front,rear); one node per camera, each on <camera>/image and '
                        '<camera>/camera_info; empty for one node'),
        DeclareLaunchArgument(
            'use_lifecycle', default_value='false',
            description='true runs the managed (lifecycle) node, which configure and '
                        'activate transitions bring up'),
        DeclareLaunchArgument(
            'autostart', default_value='true',
            description='With use_lifecycle: the node configures and activates itself; '
                        'false leaves it unconfigured for a lifecycle manager'),
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

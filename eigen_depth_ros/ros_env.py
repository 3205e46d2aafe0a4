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

"""Environment for processes that talk DDS: loopback only, large messages over shared memory."""
from __future__ import annotations

import os
from pathlib import Path

FASTDDS_PROFILE_NAME = 'fastdds_shm.xml'


def config_file(name: str) -> Path:
    """Path of a shipped file of ``config/``: the source tree's, else the install's share/."""
    source = Path(__file__).resolve().parent.parent / 'config' / name
    if source.is_file():
        return source
    from ament_index_python.packages import get_package_share_directory
    return Path(get_package_share_directory('eigen_depth_ros')) / 'config' / name


def fastdds_profile_path() -> Path:
    """Path of the shipped Fast DDS shared-memory profile."""
    return config_file(FASTDDS_PROFILE_NAME)


def local_dds_env(domain_id: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """
    Return a copy of ``base`` (default ``os.environ``) that keeps DDS on this machine.

    Sets ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``, ``ROS_DOMAIN_ID=domain_id``, the Fast
    DDS rmw, and ``FASTDDS_DEFAULT_PROFILES_FILE`` to the shared-memory profile (unless one is
    set already).
    """
    env = dict(os.environ if base is None else base)
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env['ROS_DOMAIN_ID'] = str(domain_id)
    env.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    env.setdefault('FASTDDS_DEFAULT_PROFILES_FILE', str(fastdds_profile_path()))
    return env

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
Quality of service of ``depth_node``'s subscriptions and publishers.

Only rclpy is needed (no torch), so a process that imitates the node's camera subscription
(``eigen-depth bench --transport``) uses the very same profile. Each call returns a new
profile: rclpy writes ``qos_overrides`` into the profile a publisher is created with.
"""
from __future__ import annotations

from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy


def camera_input_qos() -> QoSProfile:
    """
    Return the QoS of the node's camera subscription.

    Sensor data (best effort, volatile) keeping only the newest frame, so frames the node
    cannot take never wait in a DDS queue; the node's one-slot buffer drops and counts the
    rest.
    """
    return QoSProfile(depth=1, reliability=qos_profile_sensor_data.reliability,
                      durability=qos_profile_sensor_data.durability,
                      history=qos_profile_sensor_data.history)


def camera_info_qos() -> QoSProfile:
    """Return the QoS of the node's camera_info subscription: sensor data (a copy of it)."""
    return QoSProfile(depth=qos_profile_sensor_data.depth,
                      reliability=qos_profile_sensor_data.reliability,
                      durability=qos_profile_sensor_data.durability,
                      history=qos_profile_sensor_data.history)


def output_qos() -> QoSProfile:
    """Return the QoS of the node's depth, cloud and camera_info publishers: reliable, 2."""
    return QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)

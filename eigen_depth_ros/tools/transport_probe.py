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
How long rclpy and DDS take to carry an Image between two processes: the node's floor.

The camera image crosses a process boundary before the node can start on it, and the
depth crosses one back; neither is the node's own work, and neither can be faster than
this probe. :func:`measure_transport` publishes stamped ``sensor_msgs/Image`` messages
of a given size from a child process (``python -m eigen_depth_ros.tools.transport_probe SIZE
COUNT RATE``) and receives them here with the node's camera QoS (best effort, depth 1)
and a single-threaded executor, as the node does (both sides are a
:class:`~eigen_depth_ros.node.harness.RosSide`); age = receive time - stamp. Both
sides raise the malloc thresholds, as the node does (:mod:`eigen_depth_ros.core.malloc_tuning`).
:func:`probe_transport` also counts the messages lost: with a wrong or ignored Fast DDS
profile (on Jazzy, one set under Kilted's variable name), camera-size best-effort messages
are lost, and the few that arrive are timed as if nothing were wrong.
"""
from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from eigen_depth_ros.core.malloc_tuning import keep_large_buffers
from eigen_depth_ros.msg.image_conversion import byte_array
from eigen_depth_ros.node.harness import HarnessTimeout, NodeProcess, RosSide, stamp_ns
import numpy as np

TOPIC = 'transport_probe'
SKIPPED_FIRST = 5
"""Messages not counted at the start (discovery and first allocations)."""


def publish(size: int, count: int, rate: float, timeout_s: float = 30.0) -> int:
    """
    Publish ``count`` stamped Images of ``size`` data bytes at ``rate`` Hz on :data:`TOPIC`.

    Starts once a subscriber is matched; returns 0, or 1 when none came within
    ``timeout_s``.
    """
    from sensor_msgs.msg import Image

    from eigen_depth_ros.node.qos import camera_input_qos

    keep_large_buffers()
    with RosSide('eigen_depth_transport_probe') as ros:
        publisher = ros.publisher(TOPIC, Image, camera_input_qos())
        message = Image(height=1, width=size, encoding='mono8', step=size,
                        data=byte_array(np.zeros(size, np.uint8)))
        try:
            ros.wait_connected([publisher], timeout=timeout_s, what='the receiver')
        except HarnessTimeout:
            return 1
        next_time = time.monotonic()
        for _ in range(count):
            message.header.stamp = ros.node.get_clock().now().to_msg()
            publisher.publish(message)
            next_time += 1.0 / rate
            time.sleep(max(0.0, next_time - time.monotonic()))
        return 0


class ProbeError(RuntimeError):
    """The probe's publisher failed or too few messages arrived."""


def probe_transport(size: int, count: int, rate: float, env: dict[str, str],
                    timeout_s: float = 30.0) -> dict[str, Any]:
    """
    Receive ``count`` Images of ``size`` bytes from a child publisher; count and time them.

    :param env: the child's environment (DDS kept on this machine, see
        :func:`~eigen_depth_ros.node.ros_env.local_dds_env`); this process joins DDS in it.
    :return: ``sent`` (``count``), ``received``, ``lost`` (sent - received: a transport
        that drops camera-size messages shows here, not in the times) and ``ages``, the age
        at receipt [s] of each message after the first :data:`SKIPPED_FIRST`.
    :raises ProbeError: one line, when the child failed (no subscriber matched, ...).
    """
    from sensor_msgs.msg import Image

    from eigen_depth_ros.node.qos import camera_input_qos

    keep_large_buffers()
    ages: list[float] = []
    with RosSide('eigen_depth_transport_receiver', env=env) as ros:
        def on_image(msg: Any, _: float) -> None:
            ages.append((ros.node.get_clock().now().nanoseconds - stamp_ns(msg)) / 1e9)

        ros.subscribe(TOPIC, Image, camera_input_qos(), keep=False, on_message=on_image)
        child = NodeProcess([sys.executable, '-m', 'eigen_depth_ros.tools.transport_probe',
                             str(size), str(count), str(rate)], env, label='probe')
        try:
            child.wait(timeout_s + count / rate)
            # the last messages may still be on their way
            ros.wait(lambda: ros.counts[TOPIC] >= count, 0.5, 'the last messages')
        except (subprocess.TimeoutExpired, HarnessTimeout):
            pass
        finally:
            code = child.stop()
    if code != 0:
        raise ProbeError(f'probe exited {code}, {len(ages)} of {count} received: '
                         f'{child.tail(1)}')
    return {'sent': count, 'received': len(ages), 'lost': count - len(ages),
            'ages': ages[SKIPPED_FIRST:]}


def measure_transport(size: int, count: int, rate: float, env: dict[str, str],
                      timeout_s: float = 30.0) -> list[float]:
    """
    Receive ``count`` Images of ``size`` bytes from a child publisher; return their ages.

    :param env: as for :func:`probe_transport`.
    :return: age at receipt [s] of each message after the first :data:`SKIPPED_FIRST`.
    :raises ProbeError: one line, when the child failed or fewer than two were timed.
    """
    result = probe_transport(size, count, rate, env, timeout_s)
    if len(result['ages']) < 2:
        raise ProbeError(f"probe exited 0, {result['received']} of {count} received: "
                         'too few to time (the transport lost them)')
    return result['ages']


if __name__ == '__main__':
    sys.exit(publish(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))

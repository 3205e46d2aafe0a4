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
The managed (lifecycle) ``depth_node`` over real DDS, driven through ``lifecycle_msgs``.

Two node processes start together: ``/managed/eigen_depth`` (unconfigured at start; one
test walks it through every transition, as Nav2's lifecycle_manager would) and
``/auto/eigen_depth`` (``--autostart``: configures and activates itself). The test process
is the camera, the consumer and the lifecycle client (one
:class:`~eigen_depth_ros.node.harness.RosSide`).
"""
from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

from eigen_depth_ros.node.harness import (camera_image, camera_info, HarnessTimeout,
                                          node_command, NodeProcess, RosSide)
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image
from support import subscribe_rosout, wait_log

pytestmark = [pytest.mark.ros, pytest.mark.slow]

MANAGED, AUTO = '/managed', '/auto'
W, H = 416, 128
START_S = 90.0                 # two nodes importing torch at once, on 2 shared cores
STAMPS = itertools.count(1)


def start(checkpoint: Path, namespace: str, autostart: bool) -> NodeProcess:
    """Start the managed node in ``namespace`` (conftest's loopback DDS settings)."""
    cmd = node_command(checkpoint, namespace=namespace, params={'device': 'cpu'},
                       module='eigen_depth_ros.node.lifecycle')
    if autostart:
        cmd.insert(3, '--autostart')
    return NodeProcess(cmd, os.environ)


@pytest.fixture(scope='module')
def nodes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, NodeProcess]:
    from support import write_small_checkpoint
    checkpoint = write_small_checkpoint(tmp_path_factory.mktemp('lifecycle') / 'small.pt')
    procs = {MANAGED: start(checkpoint, MANAGED, False), AUTO: start(checkpoint, AUTO, True)}
    yield procs
    for proc in procs.values():
        proc.stop()
    for proc in procs.values():
        assert 'Traceback' not in proc.log_text(), proc.log_text()[-3000:]


@pytest.fixture(scope='module')
def ros(nodes: dict[str, NodeProcess]) -> RosSide:
    with RosSide('lifecycle_test') as side:
        subscribe_rosout(side)
        for ns in nodes:
            side.subscribe(f'{ns}/depth/image', Image)
        yield side


def call(ros: RosSide, service: str, kind: type, request: Any) -> Any:
    """Call a service of the node and return the response."""
    client = ros.node.create_client(kind, service)
    try:
        ros.wait(client.service_is_ready, START_S, f'the service {service}')
        future = client.call_async(request)
        ros.wait(future.done, what=f'the answer of {service}')
        return future.result()
    finally:
        ros.node.destroy_client(client)


def state(ros: RosSide, ns: str) -> int:
    """Return the id of the node's lifecycle state."""
    return call(ros, f'{ns}/eigen_depth/get_state', GetState, GetState.Request()).current_state.id


def change(ros: RosSide, ns: str, transition: int) -> bool:
    """Ask for a transition; return whether it succeeded."""
    request = ChangeState.Request(transition=Transition(id=transition))
    return call(ros, f'{ns}/eigen_depth/change_state', ChangeState, request).success


def frame(ros: RosSide, ns: str) -> int:
    """Publish one frame and its camera_info at once; return its stamp in seconds."""
    sec = next(STAMPS)
    msg = camera_image(np.full((H, W, 3), 120, np.uint8), frame_id='camera')
    msg.header.stamp.sec = sec
    info = camera_info(W, H, 300.0)
    info.header = msg.header
    ros.publish(f'{ns}/camera_info', info, wait_s=None)
    ros.publish(f'{ns}/image', msg, wait_s=None)
    return sec


def answered(ros: RosSide, ns: str, tries: int = 20) -> int:
    """Send frames until one is answered, as best effort may drop one; return its stamp."""
    ros.publisher(f'{ns}/image', Image)
    ros.publisher(f'{ns}/camera_info', CameraInfo)
    for _ in range(tries):
        sec = frame(ros, ns)
        try:
            ros.wait_for(f'{ns}/depth/image', sec=sec, timeout=2.0)
            return sec
        except HarnessTimeout:
            continue
    raise AssertionError(f'no depth from {ns} after {tries} frames')


def test_every_transition_and_no_depth_while_inactive(ros: RosSide, nodes: dict) -> None:
    ns, log = MANAGED, 'managed.eigen_depth'
    assert state(ros, ns) == State.PRIMARY_STATE_UNCONFIGURED
    # the wrong state: refused as rclpy refuses it, and the node keeps running
    assert not change(ros, ns, Transition.TRANSITION_ACTIVATE)
    assert state(ros, ns) == State.PRIMARY_STATE_UNCONFIGURED
    # a checkpoint that cannot load fails configure with one error; the node stays
    # unconfigured and configures once the parameter is right
    good = ros.get_parameter(f'{ns}/eigen_depth', 'checkpoint')
    (result,) = ros.set_parameters(f'{ns}/eigen_depth', checkpoint='/missing.pt')
    assert result.successful, result.reason       # unconfigured: kept for configure
    assert not change(ros, ns, Transition.TRANSITION_CONFIGURE)
    wait_log(ros, log, 'cannot configure: /missing.pt: checkpoint file not found')
    assert state(ros, ns) == State.PRIMARY_STATE_UNCONFIGURED
    (result,) = ros.set_parameters(f'{ns}/eigen_depth', checkpoint=good)
    assert result.successful, result.reason
    # configure: the network is loaded, the publishers exist, the camera is not subscribed
    assert change(ros, ns, Transition.TRANSITION_CONFIGURE)
    assert state(ros, ns) == State.PRIMARY_STATE_INACTIVE
    assert ros.node.count_publishers(f'{ns}/depth/image') == 1
    assert ros.node.count_subscribers(f'{ns}/image') == 0
    # activate: frames are answered
    assert change(ros, ns, Transition.TRANSITION_ACTIVATE)
    ros.wait(lambda: ros.node.count_subscribers(f'{ns}/image') == 1, what='the subscription')
    answered(ros, ns)
    # deactivate: no frame is taken (the subscription stays); the first frame after
    # activating again is answered, the one sent while inactive never is
    assert change(ros, ns, Transition.TRANSITION_DEACTIVATE)
    wait_log(ros, log, 'inactive: camera frames ignored until activated')
    inactive = frame(ros, ns)
    assert ros.node.count_subscribers(f'{ns}/image') == 1
    assert change(ros, ns, Transition.TRANSITION_ACTIVATE)
    answered(ros, ns)
    assert ros.find(f'{ns}/depth/image', sec=inactive) is None
    # deactivate, cleanup (network freed), configure again, then shut down: exit status 0
    assert change(ros, ns, Transition.TRANSITION_DEACTIVATE)
    assert change(ros, ns, Transition.TRANSITION_CLEANUP)
    assert state(ros, ns) == State.PRIMARY_STATE_UNCONFIGURED
    wait_log(ros, log, 'unconfigured: network freed')
    assert ros.node.count_publishers(f'{ns}/depth/image') == 0
    ros.wait(lambda: ros.node.count_subscribers(f'{ns}/image') == 0, what='unsubscribed')
    assert change(ros, ns, Transition.TRANSITION_CONFIGURE)
    assert change(ros, ns, Transition.TRANSITION_INACTIVE_SHUTDOWN)
    assert nodes[ns].wait(timeout=30) == 0, nodes[ns].tail()


def test_autostart_answers_without_transitions(ros: RosSide, nodes: dict) -> None:
    ns = AUTO
    ros.wait(lambda: ros.node.count_subscribers(f'{ns}/image') == 1, START_S,
             'the autostarted node to subscribe')
    assert state(ros, ns) == State.PRIMARY_STATE_ACTIVE
    answered(ros, ns)

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
The Fast DDS profile on Jazzy (Fast DDS 2.14) and Kilted (Fast DDS 3.2).

Fast DDS 2.x reads its profile from FASTRTPS_DEFAULT_PROFILES_FILE only, 3.x from
FASTDDS_DEFAULT_PROFILES_FILE: on Jazzy a profile under Kilted's name was ignored and 1.4 MB
best-effort images were lost (2 of 20 arrived). These tests run in whichever venv runs the
suite (``make test`` Kilted, ``make test DISTRO=jazzy`` Jazzy), so the live ones check the
Fast DDS that is installed.
"""
from __future__ import annotations

import os
from pathlib import Path

from eigen_depth_ros.node import ros_env as dds_env
from eigen_depth_ros.node.harness import node_command, NodeProcess
from eigen_depth_ros.node.ros_env import (check_profile_env, FASTDDS_VARIABLE, FASTRTPS_VARIABLE,
                                          local_dds_env, profile_problem)
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / 'config' / 'fastdds_shm.xml'
VARIABLES = (FASTDDS_VARIABLE, FASTRTPS_VARIABLE)


def run_node(cmd: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run a node that is expected to stop by itself; its exit code and output."""
    node = NodeProcess(cmd, env)
    try:
        node.wait(timeout=120)
    finally:
        code = node.stop()
    return code, node.log_text()


def bare_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in VARIABLES}


def profiles(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k in VARIABLES}


def test_the_installed_fast_dds_is_known() -> None:
    """Fast DDS 2 comes with Jazzy's rclpy 7, Fast DDS 3 with Kilted's rclpy 9."""
    pytest.importorskip('rclpy')
    from importlib.metadata import version
    major = dds_env.fastdds_major()
    rclpy_wheel = {2: 'ros-jazzy-rclpy', 3: 'ros-kilted-rclpy'}[major]
    assert version(rclpy_wheel).split('.')[0] == {2: '7', 3: '9'}[major]


@pytest.mark.parametrize('major, name', [(2, FASTRTPS_VARIABLE), (3, FASTDDS_VARIABLE)])
def test_local_env_sets_the_variable_this_fast_dds_reads(monkeypatch: pytest.MonkeyPatch,
                                                         major: int, name: str) -> None:
    monkeypatch.setattr(dds_env, 'fastdds_major', lambda env=None: major)
    env = local_dds_env(150, bare_env())
    assert profiles(env) == {name: str(SHIPPED)}
    assert env['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST' and env['ROS_DOMAIN_ID'] == '150'
    # the user's profile wins, under whichever name it was exported
    for given in VARIABLES:
        env = local_dds_env(150, {**bare_env(), given: '/mine.xml'})
        assert env[name] == '/mine.xml', given
    if major == 3:  # not loaded twice, no deprecation warning from Kilted's rmw
        assert profiles(local_dds_env(150, {**bare_env(), FASTRTPS_VARIABLE: '/mine.xml'})) \
            == {FASTDDS_VARIABLE: '/mine.xml'}


def test_unknown_fast_dds_gets_both_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dds_env, 'fastdds_major', lambda env=None: None)
    assert profiles(local_dds_env(150, bare_env())) == {n: str(SHIPPED) for n in VARIABLES}


def test_distro_decides_without_pip_wheels(monkeypatch: pytest.MonkeyPatch) -> None:
    """An apt install has no ros-fastdds/ros-fastrtps wheel: ROS_DISTRO tells."""
    from importlib import metadata

    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)
    monkeypatch.setattr(metadata, 'version', missing)
    assert dds_env.fastdds_major({'ROS_DISTRO': 'jazzy'}) == 2
    assert dds_env.fastdds_major({'ROS_DISTRO': 'humble'}) == 2
    assert dds_env.fastdds_major({'ROS_DISTRO': 'kilted'}) == 3
    assert dds_env.fastdds_major({}) is None


def test_profile_problems_are_named(tmp_path: Path) -> None:
    assert profile_problem(SHIPPED) is None
    assert profile_problem(tmp_path / 'none.xml') == 'file not found'
    assert profile_problem(tmp_path) == 'not a regular file'
    text = SHIPPED.read_text()
    cases = {
        'cut.xml': (text[:len(text) // 2], 'not well-formed XML: '),
        'root.xml': ('<dds_profiles/>', 'root element is <dds_profiles>'),
        'size.xml': (text.replace('67108864', '64M'), "<segment_size> is '64M'"),
        'id.xml': (text.replace('<transport_id>shm_big</transport_id>\n      <type>',
                                '<transport_id>shm</transport_id>\n      <type>'),
                   "uses transport_id 'shm_big', which no <transport_descriptor> declares"),
    }
    for name, (content, expected) in cases.items():
        (tmp_path / name).write_text(content)
        problem = profile_problem(tmp_path / name)
        assert problem is not None and expected in problem, (name, problem)
    if os.geteuid() != 0:
        unreadable = tmp_path / 'unreadable.xml'
        unreadable.write_text(text)
        unreadable.chmod(0)
        assert profile_problem(unreadable).startswith('cannot read it: ')


@pytest.mark.parametrize('major', [2, 3])
def test_check_profile_env_levels(monkeypatch: pytest.MonkeyPatch, major: int) -> None:
    monkeypatch.setattr(dds_env, 'fastdds_major', lambda env=None: major)
    name, other = ((FASTRTPS_VARIABLE, FASTDDS_VARIABLE) if major == 2
                   else (FASTDDS_VARIABLE, FASTRTPS_VARIABLE))
    level, message = check_profile_env({name: str(SHIPPED)})
    assert level == 'info' and message == f'Fast DDS profile {SHIPPED} ({name}, ' \
                                          f'Fast DDS {major}.x)'
    level, message = check_profile_env({})
    assert level == 'warning' and f'{name} is not set' in message
    level, message = check_profile_env({other: str(SHIPPED)})
    if major == 2:  # the trap this issue was about
        assert level == 'warning'
        assert f'{FASTDDS_VARIABLE}={SHIPPED} is ignored by Fast DDS 2.x' in message
    else:  # Kilted's rmw still reads the old name
        assert level == 'info' and FASTRTPS_VARIABLE in message
    assert check_profile_env({'RMW_IMPLEMENTATION': 'rmw_cyclonedds_cpp'})[0] == 'info'


def test_node_refuses_a_bad_profile_naming_it(tmp_path: Path, ros_env: dict,
                                              small_checkpoint: Path) -> None:
    """The node's start-up log names the file, what is wrong and what Fast DDS said."""
    pytest.importorskip('rclpy')
    broken = tmp_path / 'broken.xml'
    broken.write_text(SHIPPED.read_text().replace(
        '<transport_id>shm_big</transport_id>\n      <type>',
        '<transport_id>shm</transport_id>\n      <type>'))
    env = {k: v for k, v in ros_env.items() if k not in VARIABLES}
    names = dds_env.profile_variables()
    for name in names:
        env[name] = str(broken)
    code, output = run_node(node_command(small_checkpoint), env)
    assert code == 1, output
    assert f'cannot start: Fast DDS profile {broken} ({names[0]}): ' in output
    assert "uses transport_id 'shm_big'" in output
    assert 'Fast DDS said: [XMLPARSER Error] Transport Node not found' in output, output
    assert 'Traceback' not in output


def test_node_names_its_profile_at_start_up(tmp_path: Path, ros_env: dict) -> None:
    """With the shipped profile the first log line names it (the node then stops: no model)."""
    pytest.importorskip('rclpy')
    _, output = run_node(node_command(tmp_path / 'missing.pt'), ros_env)
    name = dds_env.profile_variables()[0]
    assert f'Fast DDS profile {SHIPPED} ({name}, Fast DDS ' in output, output


def test_camera_size_images_all_arrive(ros_env: dict) -> None:
    """20 of 20 best-effort 1242x375 rgb8 images between two processes, at 30 Hz."""
    pytest.importorskip('rclpy')
    from eigen_depth_ros.tools.transport_probe import probe_transport
    result = probe_transport(1242 * 375 * 3, 20, 30.0, ros_env)
    assert (result['sent'], result['received'], result['lost']) == (20, 20, 0), result


def test_private_domain_ids_stay_in_range_and_session_honours_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    ids = {dds_env.private_domain_id(salt) for salt in range(200)}
    assert min(ids) == 10 and max(ids) == 99
    monkeypatch.setenv('ROS_DOMAIN_ID', '42')
    assert dds_env.session_domain_id() == 42
    monkeypatch.delenv('ROS_DOMAIN_ID')
    assert dds_env.session_domain_id() == dds_env.private_domain_id()

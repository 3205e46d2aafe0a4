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
Environment for processes that talk DDS: loopback only, large messages over shared memory.

Fast DDS reads its XML profile from an environment variable whose name depends on its major
version: Fast DDS 2.x (ROS 2 Humble, Jazzy) reads only ``FASTRTPS_DEFAULT_PROFILES_FILE``,
Fast DDS 3.x (Kilted and later) only ``FASTDDS_DEFAULT_PROFILES_FILE`` (its rmw still takes
the old name, with a deprecation warning). A profile exported under the other name is
ignored without a word, and the default transports then lose camera-size best-effort
messages (Jazzy: 4 of 20 1.4 MB images arrived). :func:`local_dds_env` therefore sets the
variable that the installed Fast DDS reads, and :func:`check_profile_env` tells the node
what it runs with.
"""
from __future__ import annotations

import os
from pathlib import Path
import re
import subprocess
import sys
from typing import Mapping
import xml.etree.ElementTree as ElementTree

FASTDDS_PROFILE_NAME = 'fastdds_shm.xml'
FASTDDS_VARIABLE = 'FASTDDS_DEFAULT_PROFILES_FILE'
"""Where Fast DDS 3.x (Kilted, Rolling) looks for its XML profile."""
FASTRTPS_VARIABLE = 'FASTRTPS_DEFAULT_PROFILES_FILE'
"""Where Fast DDS 2.x (Humble, Jazzy) looks for its XML profile."""
FAST_DDS_2_DISTROS = frozenset({'foxy', 'galactic', 'humble', 'iron', 'jazzy'})
"""ROS 2 distributions whose Fast DDS is 2.x."""
_INTEGER_FIELDS = frozenset({'segment_size', 'port_queue_capacity', 'maxMessageSize',
                             'sendBufferSize', 'receiveBufferSize', 'healthy_check_timeout_ms',
                             'maxInitialPeersRange', 'TTL'})


def config_file(name: str) -> Path:
    """Path of a shipped file of ``config/``: the source tree's, else the install's share/."""
    source = Path(__file__).resolve().parent.parent.parent / 'config' / name
    if source.is_file():
        return source
    from ament_index_python.packages import get_package_share_directory
    return Path(get_package_share_directory('eigen_depth_ros')) / 'config' / name


def fastdds_profile_path() -> Path:
    """Path of the shipped Fast DDS shared-memory profile."""
    return config_file(FASTDDS_PROFILE_NAME)


def fastdds_major(env: Mapping[str, str] | None = None) -> int | None:
    """
    Return the major version of the Fast DDS that rclpy loads here: 2, 3 or None.

    The pip wheels say it by their names (``ros-fastrtps`` is 2.x, ``ros-fastdds`` 3.x); an
    apt install by ``ROS_DISTRO``.
    """
    from importlib.metadata import PackageNotFoundError, version
    for distribution, major in (('ros-fastdds', 3), ('ros-fastrtps', 2)):
        try:
            version(distribution)
            return major
        except PackageNotFoundError:
            continue
    distro = (os.environ if env is None else env).get('ROS_DISTRO', '').strip().lower()
    if distro:
        return 2 if distro in FAST_DDS_2_DISTROS else 3
    return None


def profile_variables(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Return the profile variable(s) the Fast DDS found here reads (both when unknown)."""
    major = fastdds_major(env)
    if major == 2:
        return (FASTRTPS_VARIABLE,)
    if major == 3:
        return (FASTDDS_VARIABLE,)
    return (FASTDDS_VARIABLE, FASTRTPS_VARIABLE)


def with_profile(env: dict[str, str], default: str | None) -> dict[str, str]:
    """
    Point the variable the installed Fast DDS reads at the profile ``env`` already names.

    A profile set under either name is kept (the user's wins) and moved to the name that
    counts here; with none set, ``default`` is used (None or '' sets nothing). On Fast DDS 3
    the old name is dropped once copied, so its rmw neither warns nor loads the file twice.
    Changes and returns ``env``.
    """
    names = profile_variables(env)
    profile = next((env[name] for name in (*names, FASTDDS_VARIABLE, FASTRTPS_VARIABLE)
                    if env.get(name)), None) or default
    if not profile:
        return env
    for name in names:
        env.setdefault(name, profile)
        if not env[name]:
            env[name] = profile
    if names == (FASTDDS_VARIABLE,) and env.get(FASTRTPS_VARIABLE) == profile:
        del env[FASTRTPS_VARIABLE]
    return env


def private_domain_id(salt: int = 0) -> int:
    """
    Return a ROS domain id in 10..99 derived from this process's pid (plus ``salt``).

    For a node a tool starts for itself (bag playback, soak, bench), so that tools running
    side by side, and a robot on its usual domain, do not hear each other.
    """
    return 10 + (os.getpid() + salt) % 90


def session_domain_id() -> int:
    """Return ``$ROS_DOMAIN_ID`` when set, else :func:`private_domain_id`."""
    return int(os.environ.get('ROS_DOMAIN_ID') or private_domain_id())


def local_dds_env(domain_id: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """
    Return a copy of ``base`` (default ``os.environ``) that keeps DDS on this machine.

    Sets ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``, ``ROS_DOMAIN_ID=domain_id``, the Fast
    DDS rmw, and the profile variable of the installed Fast DDS
    (``FASTDDS_DEFAULT_PROFILES_FILE`` on Kilted, ``FASTRTPS_DEFAULT_PROFILES_FILE`` on
    Jazzy) to the shared-memory profile, unless a profile is set already under either name.
    """
    env = dict(os.environ if base is None else base)
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env['ROS_DOMAIN_ID'] = str(domain_id)
    env.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    return with_profile(env, str(fastdds_profile_path()))


def _local(tag: str) -> str:
    return tag.rpartition('}')[2]


def profile_problem(path: str | os.PathLike) -> str | None:
    """
    Say what is wrong with the Fast DDS XML profile ``path``, in one line; None if nothing.

    Checks what makes Fast DDS drop a profile and fall back to its default transports: a
    missing or unreadable file, XML that is not well formed, a root other than
    ``<profiles>``/``<dds>``, a ``userTransports`` id with no ``transport_descriptor``, a
    non-integer size, and no transport at all.
    """
    path = Path(path)
    if not path.is_file():
        return 'file not found' if not path.exists() else 'not a regular file'
    try:
        text = path.read_bytes()
    except OSError as exc:
        return f'cannot read it: {exc.strerror or exc}'
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        return f'not well-formed XML: {exc}'
    if _local(root.tag) == 'dds':
        root = next((e for e in root if _local(e.tag) == 'profiles'), root)
    if _local(root.tag) != 'profiles':
        return f'root element is <{_local(root.tag)}>, Fast DDS expects <profiles> or <dds>'
    declared = set()
    for element in root.iter():
        name = _local(element.tag)
        if name == 'transport_descriptor':
            for field in element:
                field_name = _local(field.tag)
                value = (field.text or '').strip()
                if field_name == 'transport_id':
                    declared.add(value)
                elif field_name in _INTEGER_FIELDS and not value.isdigit():
                    return f'<{field_name}> is {value!r}, not a non-negative integer'
    for participant in (e for e in root.iter() if _local(e.tag) == 'participant'):
        used = [(e.text or '').strip() for e in participant.iter()
                if _local(e.tag) == 'transport_id']
        for transport in used:
            if transport not in declared:
                return (f"participant '{participant.get('profile_name')}' uses transport_id "
                        f"'{transport}', which no <transport_descriptor> declares")
        builtin = [(e.text or '').strip().lower() for e in participant.iter()
                   if _local(e.tag) == 'useBuiltinTransports']
        if builtin == ['false'] and not used:
            return (f"participant '{participant.get('profile_name')}' turns the built-in "
                    'transports off and names no userTransports')
    return None


_ANSI = re.compile(r'\x1b\[[0-9;]*m')


def fastdds_messages(path: str | os.PathLike, env: Mapping[str, str] | None = None,
                     timeout_s: float = 30.0) -> list[str]:
    """
    Return what Fast DDS itself says when it loads the profile ``path``: its XML errors.

    Starts a node in a child process with only this profile and loopback
    discovery, and returns the ``XMLPARSER``/``DDS_DOMAIN`` lines of its log, without the
    colours (empty when Fast DDS had nothing to say, or rclpy could not start).
    """
    child_env = dict(os.environ if env is None else env)
    for name in (FASTDDS_VARIABLE, FASTRTPS_VARIABLE):
        child_env.pop(name, None)
    for name in profile_variables(child_env):
        child_env[name] = str(path)
    child_env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    code = ('import rclpy\nrclpy.init()\n'  # the participant, hence the profile, comes
            "rclpy.create_node('eigen_depth_profile_check').destroy_node()\n"  # with a node
            'rclpy.shutdown()\n')
    try:
        result = subprocess.run([sys.executable, '-c', code], env=child_env,
                                capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired):
        return []
    lines = []
    for line in _ANSI.sub('', result.stdout + result.stderr).splitlines():
        if 'XMLPARSER' in line or 'DDS_DOMAIN' in line:
            line = line[line.index('['):] if '[' in line else line
            if line not in lines:
                lines.append(line.strip())
    return lines


def check_profile_env(env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """
    Describe the Fast DDS profile this process runs with, as ``(level, message)``.

    ``level`` is ``'info'`` (a profile that looks fine, named with its variable),
    ``'warning'`` (none: Fast DDS's default transports, which lose camera-size best-effort
    messages; or one set only under the name this Fast DDS ignores) or ``'error'`` (a wrong
    or unreadable file: the message names it, says what is wrong and what Fast DDS said).
    """
    env = os.environ if env is None else env
    rmw = env.get('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    if not rmw.startswith('rmw_fastrtps'):
        return 'info', f'RMW {rmw}: no Fast DDS profile used'
    names = profile_variables(env)
    major = fastdds_major(env)
    if major == 3 and not env.get(FASTDDS_VARIABLE) and env.get(FASTRTPS_VARIABLE):
        names = (FASTRTPS_VARIABLE,)  # Kilted's rmw still reads the old name
    name = next((n for n in names if env.get(n)), None)
    version = f'Fast DDS {major}.x' if major else 'Fast DDS'
    if name is None:
        ignored = next((n for n in (FASTDDS_VARIABLE, FASTRTPS_VARIABLE) if env.get(n)), None)
        needed = ' or '.join(names)
        default = ('running on the default transports, which lose camera-size best-effort '
                   'messages between processes')
        if ignored:
            return 'warning', (f'{ignored}={env[ignored]} is ignored by {version}, which '
                               f'reads {needed}: {default}; export {needed} instead '
                               '(docs/node.md)')
        return 'warning', (f'no Fast DDS profile ({needed} is not set): {default}; set it to '
                           'config/fastdds_shm.xml (docs/node.md)')
    path = env[name]
    problem = profile_problem(path)
    if problem is None:
        return 'info', f'Fast DDS profile {path} ({name}, {version})'
    said = fastdds_messages(path, env)
    return 'error', (f'Fast DDS profile {path} ({name}): {problem}; Fast DDS said: '
                     + (' | '.join(said) if said else 'nothing') +
                     '. Fix the file or unset the variable; the node does not run on the '
                     'default transports behind your back')

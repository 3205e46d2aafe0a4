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

"""The node harness without a node: the command line and the process wrapper."""
from __future__ import annotations

from pathlib import Path
import signal
import subprocess
import sys

from eigen_depth_ros.node.harness import HarnessError, node_command, NodeProcess
import pytest
import yaml

IGNORES = """
import signal, sys, time
# as a node does (rclpy installs its handler): a job started in the background inherits an
# ignored SIGINT, which Python would otherwise keep
signal.signal(signal.SIGINT, signal.default_int_handler)
for name in sys.argv[1:]:
    signal.signal(getattr(signal, name), signal.SIG_IGN)
print('ready', flush=True)
time.sleep(60)
"""


def test_node_command_order_and_values() -> None:
    cmd = node_command(Path('/m #1/a: b.pt'), params={'compressed': True, 'max_depth': 10.0},
                       remaps={'image': '/cam/image'}, namespace='/ns', name='n',
                       params_file='/p.yaml')
    assert cmd[:5] == [sys.executable, '-m', 'eigen_depth_ros.node', '--ros-args',
                       '--params-file']
    assert cmd[5:12] == ['/p.yaml', '-r', '__ns:=/ns', '-r', '__node:=n', '-r',
                         'image:=/cam/image']
    params = [arg for arg, before in zip(cmd[1:], cmd) if before == '-p']
    assert [p.split(':=')[0] for p in params] == ['checkpoint', 'compressed', 'max_depth']
    assert [yaml.safe_load(p.split(':=', 1)[1]) for p in params] == [
        '/m #1/a: b.pt', True, 10.0]
    assert '--params-file' not in node_command() and not any(
        a.startswith('checkpoint:=') for a in node_command())


@pytest.mark.parametrize('ignored, code', [((), -signal.SIGINT),
                                           (('SIGINT',), -signal.SIGTERM),
                                           (('SIGINT', 'SIGTERM'), -signal.SIGKILL)])
def test_stop_escalates_from_sigint(ignored: tuple[str, ...], code: int) -> None:
    proc = NodeProcess([sys.executable, '-u', '-c', IGNORES, *ignored], label='sleeper')
    try:
        while 'ready' not in proc.log_text():   # until its handlers are set
            with pytest.raises(subprocess.TimeoutExpired):
                proc.wait(timeout=0.05)
    finally:
        assert proc.stop(timeout_s=3.0) == code   # time for a loaded machine to act on it
    # the temporary log is gone, its text kept
    assert 'ready' in proc.log_text() and not proc.log_path.exists()


def test_check_alive_names_the_exit_and_the_log_tail() -> None:
    proc = NodeProcess([sys.executable, '-c', 'print("one"); print("two"); raise SystemExit(3)'],
                       label='child')
    assert proc.wait(timeout=30) == 3
    with pytest.raises(HarnessError, match=r'^child exited with code 3: one \| two$'):
        proc.check_alive()
    assert proc.stop() == 3

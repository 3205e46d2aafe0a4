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
``eigen-depth soak`` in a very short mode: a real node process, both rates, real numbers.

The soak's verdict on latency flatness needs minutes to mean anything; here only the
figures' presence and the absence of a crash are checked. The real soak figures are in
docs/reliability.md (``EIGEN_DEPTH_SOAK_SECONDS=60`` runs this test at that length).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]

SECONDS = float(os.environ.get('EIGEN_DEPTH_SOAK_SECONDS', '3'))


def real(value: object) -> bool:
    """Whether ``value`` is a finite number."""
    return isinstance(value, (int, float)) and math.isfinite(value)


def test_short_soak_reports_real_numbers(tmp_path: Path, ros_env: dict[str, str],
                                         small_checkpoint: Path) -> None:
    out = tmp_path / 'soak.json'
    cmd = [sys.executable, '-m', 'eigen_depth_ros.tools.cli', 'soak', '--rates', '30,100',
           '--duration', str(SECONDS), '--warmup', '0.5', '--subscribers', '2',
           '--checkpoint', str(small_checkpoint), '--device', 'cpu',
           '--domain-id', ros_env['ROS_DOMAIN_ID'], '--out', str(out)]
    proc = subprocess.run(cmd, env=ros_env, capture_output=True, text=True,
                          timeout=120 + 4 * SECONDS)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr   # 2 = could not run
    assert 'Traceback' not in proc.stderr
    report = json.loads(out.read_text())
    assert report['verdicts']['no_crash'], report['node']
    assert report['node']['exit_code'] == 0 and not report['node']['traceback_in_log']
    assert report['subscribers'] == 2 and len(report['rates']) == 2
    for phase, rate in zip(report['rates'], (30, 100)):
        assert phase['rate_hz'] == rate
        # the camera kept (about) its rate and every frame is accounted for
        assert phase['input_rate_hz'] > 0.5 * rate
        assert phase['frames_sent'] >= rate * SECONDS * 0.5
        assert 0 < phase['depth_received'] <= phase['frames_sent']
        assert phase['output_rate_hz'] > 0
        assert [r['depth'] > 0 and r['points'] > 0
                for r in phase['received_per_subscriber']] == [True, True]
        for key in ('p50_ms', 'p99_ms', 'max_ms'):
            assert real(phase['latency'][key]) and 0 < phase['latency'][key] < 10_000
        assert phase['latency']['p50_ms'] <= phase['latency']['p99_ms']
        assert len(phase['windows']) >= 2 and real(phase['p99_last_over_first'])
        # resident memory of the node, read from /proc/PID/status
        assert 50 < phase['rss_mb']['start'] < 20_000 and real(phase['memory_growth'])
        assert len(phase['rss_mb']['samples']) >= 2
        assert set(phase['verdicts']) == {'answered', 'latency_flat', 'memory_flat'}
    assert real(report['memory']['growth'])
    # the printed table has one row per rate
    rows = [line for line in proc.stdout.splitlines() if line.split()[:1] in (['30'], ['100'])]
    assert len(rows) == 2, proc.stdout


def test_bad_options_give_one_line(tmp_path: Path) -> None:
    from eigen_depth_ros.tools import soak
    assert soak.main(['--rates', '30,-1', '--out', str(tmp_path / 'x.json')]) == 2
    assert soak.parse_rates('30, 100') == [30.0, 100.0]
    windows = soak.latency_windows([(0.1, 0.01), (0.6, 0.02), (1.2, 0.04)], 1.5, 0.5)
    assert [w['count'] for w in windows] == [1, 1, 1]
    assert windows[-1]['p99_ms'] == pytest.approx(40.0)
    assert soak.window_length(600, None) == 60 and soak.window_length(20, None) == 5
    assert soak.read_rss_mb(os.getpid()) > 1

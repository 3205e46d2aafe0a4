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

"""glibc malloc thresholds: set through mallopt, or left to the user's environment."""
import os
import subprocess
import sys

import pytest

CHILD = ('from eigen_depth_ros.core.malloc_tuning import keep_large_buffers; '
         'print(keep_large_buffers())')


def run_child(extra_env: dict[str, str]) -> str:
    """Call keep_large_buffers in a fresh interpreter (mallopt is process-wide)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(('MALLOC_', 'GLIBC_'))}
    env.update(extra_env)
    done = subprocess.run([sys.executable, '-c', CHILD], env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    return done.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc mallopt')
def test_thresholds_are_raised() -> None:
    assert run_child({}) == ('malloc: buffers up to 16 MiB reused from the heap '
                             '(M_MMAP_THRESHOLD), 64 MiB kept free (M_TRIM_THRESHOLD)')


def test_the_users_setting_wins() -> None:
    line = run_child({'MALLOC_MMAP_THRESHOLD_': '131072'})
    assert line == 'malloc thresholds left as set by MALLOC_MMAP_THRESHOLD_'
    line = run_child({'GLIBC_TUNABLES': 'glibc.malloc.trim_threshold=1048576'})
    assert line == 'malloc thresholds left as set by GLIBC_TUNABLES'


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc mallopt')
def test_other_glibc_tunables_do_not_count() -> None:
    assert run_child({'GLIBC_TUNABLES': 'glibc.pthread.rseq=0'}).startswith(
        'malloc: buffers up to 16 MiB')

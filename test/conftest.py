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
Shared fixtures. Every DDS participant started by the tests stays on loopback.

Plain helpers that test modules import live in ``support.py`` (pytest advises against
importing from conftest).
"""
from __future__ import annotations

import os

from eigen_depth_ros.node.ros_env import local_dds_env, private_domain_id
import pytest
from support import write_small_checkpoint
import torch

# One domain per test session (pid-based), so sessions running side by side never meet.
TEST_DOMAIN_ID = private_domain_id()
os.environ.update(local_dds_env(TEST_DOMAIN_ID))


@pytest.fixture
def one_torch_thread():
    """Use one torch thread during a test: the test machine's cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def ros_env() -> dict[str, str]:
    """Environment for child processes: loopback DDS on this session's domain."""
    return local_dds_env(TEST_DOMAIN_ID)


@pytest.fixture(scope='session')
def small_checkpoint(tmp_path_factory):
    """Provide the path of a :func:`support.write_small_checkpoint` checkpoint (read only)."""
    return write_small_checkpoint(tmp_path_factory.mktemp('ckpt') / 'small.pt')

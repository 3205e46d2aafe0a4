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

"""Shared fixtures. Every DDS participant started by the tests stays on loopback."""
from __future__ import annotations

import os

from eigen_depth_ros.core.checkpoint import save_checkpoint
from eigen_depth_ros.core.model import EigenDepthConfig, EigenDepthNet, KITTI
from eigen_depth_ros.node.ros_env import local_dds_env, private_domain_id
import pytest
import torch

# One domain per test session (pid-based), so sessions running side by side never meet.
TEST_DOMAIN_ID = private_domain_id()
os.environ.update(local_dds_env(TEST_DOMAIN_ID))

# The KITTI sizes with narrow layers: same geometry, milliseconds per forward pass.
SMALL_KITTI = EigenDepthConfig('kitti-small', KITTI.input_width, KITTI.input_height,
                               KITTI.fine_row_start, KITTI.fine_input_height,
                               coarse_channels=(8, 16, 16, 16, 16), fc_width=64,
                               fine_channels=8)


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


def write_small_checkpoint(path):
    """
    Write a checkpoint of :data:`SMALL_KITTI` predicting about 10 m everywhere.

    Its output is log(10 m) plus a little structure, so predictions are finite and positive.
    """
    torch.manual_seed(0)
    model = EigenDepthNet(SMALL_KITTI)
    with torch.no_grad():
        model.fine.conv4.bias.fill_(float(torch.log(torch.tensor(10.0))))
    return save_checkpoint(path, model)


@pytest.fixture(scope='session')
def small_checkpoint(tmp_path_factory):
    """Provide the path of a :func:`write_small_checkpoint` checkpoint (do not modify it)."""
    return write_small_checkpoint(tmp_path_factory.mktemp('ckpt') / 'small.pt')

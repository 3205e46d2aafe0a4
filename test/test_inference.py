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

"""The inference helper: RGB uint8 in, metres out, devices."""
from eigen_depth_ros.inference import DepthEstimator, select_device
import numpy as np
import pytest
import torch


def test_predict_shapes_and_values(small_checkpoint):
    est = DepthEstimator.from_checkpoint(small_checkpoint, device='cpu')
    rgb = np.random.default_rng(0).integers(0, 255, (375, 1242, 3), dtype=np.uint8)
    pred = est.predict(rgb)
    assert pred.depth.shape == (27, 142) and pred.depth.dtype == np.float32
    assert np.all(pred.depth > 0) and np.all(np.isfinite(pred.depth))
    log_depth, _ = est.predict_log(rgb)
    assert np.allclose(np.log(pred.depth), log_depth, atol=1e-5)
    full = est.predict(rgb, resolution='input')
    assert full.depth.shape == (375, 1242)
    assert np.isnan(full.depth[0, 0]) and np.isfinite(full.depth[300, 600])
    assert full.intrinsics(700, 700, 600, 180) == (700, 700, 600, 180)
    assert pred.intrinsics(700, 700, 600, 180) == \
        pred.geometry.output_intrinsics(700, 700, 600, 180)


def test_channel_order_matters(small_checkpoint):
    est = DepthEstimator.from_checkpoint(small_checkpoint, device='cpu')
    rgb = np.zeros((120, 400, 3), np.uint8)
    rgb[..., 0] = 255
    a = est.predict(rgb).depth
    b = est.predict(rgb[..., ::-1].copy()).depth
    assert not np.allclose(a, b)


def test_bad_inputs(small_checkpoint):
    est = DepthEstimator.from_checkpoint(small_checkpoint, device='cpu')
    with pytest.raises(ValueError, match='RGB uint8'):
        est.predict(np.zeros((100, 100), np.uint8))
    with pytest.raises(ValueError, match='resolution'):
        est.predict(np.zeros((100, 300, 3), np.uint8), resolution='full')


def test_select_device():
    assert select_device('cpu') == torch.device('cpu')
    assert select_device('auto').type == ('cuda' if torch.cuda.is_available() else 'cpu')
    with pytest.raises(ValueError, match='got'):
        select_device('tpu')
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='not available'):
            select_device('cuda:0')

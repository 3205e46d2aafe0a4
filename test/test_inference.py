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
from eigen_depth_ros.core.inference import DepthEstimator, select_device
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


def test_normalize_constants_are_cached_per_device_and_dtype():
    from eigen_depth_ros.core.model import IMAGENET_MEAN, IMAGENET_STD, normalize_constants
    from eigen_depth_ros.core.model import normalize_image

    with torch.inference_mode():  # made inside inference mode, still usable outside
        scale, shift = normalize_constants('cpu', torch.float32)
    assert normalize_constants(torch.device('cpu'), torch.float32)[0] is scale
    assert normalize_constants('cpu', torch.float64)[0] is not scale
    assert not scale.is_inference() and scale.shape == (1, 3, 1, 1)
    assert torch.allclose(shift.flatten(), -torch.tensor(IMAGENET_MEAN) / torch.tensor(
        IMAGENET_STD))
    rgb = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    expected = (1.0 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(normalize_image(rgb)[0, :, 0, 0], expected, atol=1e-6)


def test_gpu_memory_in_diagnostics(monkeypatch):
    from eigen_depth_ros.core.inference import GPU_RESERVED_KEY, gpu_memory_pairs
    from eigen_depth_ros.tools.soak import gpu_memory_flat

    assert gpu_memory_pairs(torch.device('cpu')) == []
    monkeypatch.setattr(torch.cuda, 'memory_reserved', lambda device=None: 64 * 2 ** 20)
    monkeypatch.setattr(torch.cuda, 'memory_allocated', lambda device=None: 3 * 2 ** 19)
    pairs = dict(gpu_memory_pairs(torch.device('cuda', 1)))
    assert pairs[GPU_RESERVED_KEY] == '64.0' and pairs['gpu memory allocated (MiB)'] == '1.5'
    # the soak's verdict: flat within 5 % or one 2 MiB block, a leak is not
    assert gpu_memory_flat(None, None) and gpu_memory_flat(64.0, 66.0)
    assert gpu_memory_flat(1000.0, 1040.0) and not gpu_memory_flat(64.0, 80.0)


def test_soak_phase_verdict_sees_a_gpu_leak():
    from eigen_depth_ros.core.inference import GPU_RESERVED_KEY
    from eigen_depth_ros.tools.soak import Phase, summarize_phase

    def phase(reserved_end):
        p = Phase(10.0, measure_start=0.0, measure_end=10.0, sent=2,
                  latency=[(1.0, 0.02), (6.0, 0.02)], rss=[(0.0, 100.0), (10.0, 100.0)],
                  received=[{'depth': 2, 'points': 2}])
        p.diag_start = {GPU_RESERVED_KEY: '40.0'}
        p.diag_end = {GPU_RESERVED_KEY: reserved_end}
        return summarize_phase(p, 5.0)

    flat, leak = phase('40.0'), phase('90.0')
    assert flat['verdicts']['memory_flat'] and flat['gpu_reserved_mb'] == {'start': 40.0,
                                                                           'end': 40.0}
    assert not leak['verdicts']['memory_flat']  # the RSS alone would have passed


def test_camera_focal_scales_depth_by_f_in_over_f_train(small_checkpoint, tmp_path):
    from eigen_depth_ros.core.checkpoint import load_checkpoint, save_checkpoint
    from eigen_depth_ros.core.geometry import kitti_train_focal
    # A checkpoint without f_train: KITTI's, with a warning.
    with pytest.warns(UserWarning, match='records no f_train'):
        est = DepthEstimator.from_checkpoint(small_checkpoint, device='cpu')
    assert est.train_focal == kitti_train_focal(est.config)
    assert 'records no f_train' in est.train_focal_note
    rgb = np.random.default_rng(1).integers(0, 255, (128, 416, 3), dtype=np.uint8)
    plain = est.predict(rgb)
    assert plain.scale == 1.0 and plain.f_in is None
    geometry = est.geometry(416, 128)
    fx, fy = 300.0, 305.0
    f_in = geometry.input_focal(fx, fy)
    one = est.predict(rgb, camera_focal=(fx, fy))
    two = est.predict(rgb, camera_focal=(2 * fx, 2 * fy))
    assert one.f_in == pytest.approx(f_in) and one.scale == pytest.approx(f_in / est.train_focal)
    np.testing.assert_allclose(one.depth, plain.depth * one.scale, rtol=1e-6)
    np.testing.assert_array_equal(two.depth, 2 * one.depth)  # exactly doubled
    full = est.predict(rgb, 'input', camera_focal=(2 * fx, 2 * fy))
    np.testing.assert_allclose(full.depth, est.predict(rgb, 'input').depth * two.scale,
                               rtol=1e-6)
    with pytest.raises(ValueError):
        est.predict(rgb, camera_focal=(0.0, fy))
    # A checkpoint recording f_train loads it, silently.
    model, _ = load_checkpoint(small_checkpoint)
    path = save_checkpoint(tmp_path / 'focal.pt', model, f_train=f_in)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error', UserWarning)
        recorded = DepthEstimator.from_checkpoint(path, device='cpu')
    assert recorded.train_focal == f_in and recorded.train_focal_note is None
    np.testing.assert_array_equal(recorded.predict(rgb, camera_focal=(fx, fy)).depth,
                                  plain.depth)

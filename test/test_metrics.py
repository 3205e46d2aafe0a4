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

"""Metrics on hand-made arrays and crop masks against the protocol's fractions."""
import math

from eigen_depth_ros.core.metrics import (compute_depth_metrics, eigen_crop_mask, evaluate_depth,
                                          format_metric_table, garg_crop_mask, json_safe,
                                          mean_metrics, median_scale, valid_depth_mask)
import numpy as np
import pytest
import torch


def test_hand_made_values():
    gt = np.array([[1.0, 2.0], [4.0, 0.0]])       # the 0 is ignored
    pred = np.array([[1.0, 3.0], [2.0, 7.0]])
    m = compute_depth_metrics(pred, gt)
    assert m['n'] == 3
    assert m['abs_rel'] == pytest.approx((0 + 0.5 + 0.5) / 3)
    assert m['sq_rel'] == pytest.approx((0 + 1 / 2 + 4 / 4) / 3)
    assert m['rmse'] == pytest.approx(math.sqrt((0 + 1 + 4) / 3))
    d = np.log([1.0, 1.5, 0.5])
    assert m['rmse_log'] == pytest.approx(math.sqrt(np.mean(d ** 2)))
    assert m['si_rmse_log'] == pytest.approx(math.sqrt(np.mean(d ** 2) - np.mean(d) ** 2))
    # ratios 1, 1.5, 2: < 1.25 -> 1/3; < 1.5625 -> 2/3; < 1.953 -> 2/3
    assert (m['a1'], m['a2'], m['a3']) == pytest.approx((1 / 3, 2 / 3, 2 / 3))


def test_torch_input_nan_and_mask():
    gt = torch.tensor([[2.0, float('nan'), 5.0]])
    pred = torch.tensor([[2.0, 1.0, 50.0]])
    m = compute_depth_metrics(pred, gt, mask=np.array([[True, True, False]]))
    assert m['n'] == 1 and m['abs_rel'] == 0.0 and m['a1'] == 1.0


def test_scale_invariant_rmse_ignores_scale():
    rng = np.random.default_rng(0)
    gt = rng.uniform(1, 50, (20, 30))
    pred = gt * rng.uniform(0.8, 1.2, gt.shape)
    assert compute_depth_metrics(pred * 3, gt)['si_rmse_log'] == \
        pytest.approx(compute_depth_metrics(pred, gt)['si_rmse_log'])


def test_no_valid_pixel_is_an_error():
    with pytest.raises(ValueError, match='no valid pixel'):
        compute_depth_metrics(np.ones((2, 2)), np.zeros((2, 2)))


@pytest.mark.parametrize('fn, rows', [(garg_crop_mask, (0.40810811, 0.99189189)),
                                      (eigen_crop_mask, (0.3324324, 0.91351351))])
def test_crop_masks_follow_the_fractions(fn, rows):
    h, w = 375, 1242
    mask = fn(h, w)
    ys, xs = np.nonzero(mask)
    assert ys.min() == int(rows[0] * h) and ys.max() == int(rows[1] * h) - 1
    assert xs.min() == int(0.03594771 * w) and xs.max() == int(0.96405229 * w) - 1
    assert mask.sum() == (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)


def test_caps_crop_and_median_scaling():
    gt = np.full((375, 1242), 10.0)
    gt[200, 600] = 90.0                       # beyond the 80 m cap: not evaluated
    assert not valid_depth_mask(gt, max_depth=80)[200, 600]
    assert not valid_depth_mask(gt, crop='garg')[10, 600]
    assert not valid_depth_mask(gt, max_depth=50)[200, 600]
    m = evaluate_depth(gt * 2.0, gt, median_scaling=True)
    assert m['scale'] == pytest.approx(0.5) and m['abs_rel'] == pytest.approx(0.0)
    capped = evaluate_depth(np.full_like(gt, 500.0), gt, max_depth=80)
    assert capped['abs_rel'] == pytest.approx(7.0)   # prediction capped to 80 m


def test_mean_and_table():
    agg = mean_metrics([dict.fromkeys(('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'a1', 'a2',
                                       'a3', 'si_rmse_log'), 1.0),
                        dict.fromkeys(('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'a1', 'a2',
                                       'a3', 'si_rmse_log'), 3.0)])
    assert agg['rmse'] == 2.0 and agg['n'] == 2
    table = format_metric_table({'coarse': agg})
    assert 'd<1.25' in table and 'RMSE log sc.-inv.' in table and '2.000' in table


def test_valid_depth_mask_keeps_both_caps_and_defaults_to_1mm_and_80m():
    gt = np.array([[0.0005, 0.001, 0.5, 80.0, 80.5, np.nan, np.inf]])
    np.testing.assert_array_equal(valid_depth_mask(gt),
                                  [[False, True, True, True, False, False, False]])
    np.testing.assert_array_equal(valid_depth_mask(gt, min_depth=0.5, max_depth=0.5),
                                  [[False, False, True, False, False, False, False]])


def test_valid_depth_mask_crops_and_stacks():
    gt = np.full((375, 1242), 10.0)
    np.testing.assert_array_equal(valid_depth_mask(gt, crop='eigen'), eigen_crop_mask(375, 1242))
    np.testing.assert_array_equal(valid_depth_mask(gt, crop='garg'), garg_crop_mask(375, 1242))
    # a stack of images gets the crop of one image in each
    stack = np.stack([gt, gt * 9.0])   # the second is 90 m: beyond the cap everywhere
    masks = valid_depth_mask(stack, crop='eigen')
    assert masks.shape == (2, 375, 1242)
    np.testing.assert_array_equal(masks[0], eigen_crop_mask(375, 1242))
    assert not masks[1].any()
    with pytest.raises(ValueError) as info:
        valid_depth_mask(gt, crop='kitti')
    assert str(info.value) == "crop must be 'garg', 'eigen' or None, got 'kitti'"


def test_median_scale_over_the_mask_only():
    gt = np.array([[1.0, 2.0, 100.0]])
    pred = np.array([[2.0, 2.0, 1.0]])
    # median(1, 2) / median(2, 2) = 0.75; the masked-out 100 m / 1 m pixel does not count
    assert median_scale(pred, gt, np.array([[True, True, False]])) == 0.75
    assert median_scale(pred, gt, np.array([[1, 1, 0]])) == 0.75   # a 0/1 mask is a mask
    assert median_scale(pred, gt, np.ones((1, 3), bool)) == 1.0


def test_mean_of_no_image_is_an_error():
    with pytest.raises(ValueError) as info:
        mean_metrics([])
    assert str(info.value) == 'no image to average'


def test_metric_table_has_the_columns_of_the_papers_table_2():
    row = {'a1': 0.611, 'a2': 0.887, 'a3': 0.971, 'abs_rel': 0.215, 'sq_rel': 1.515,
           'rmse': 7.156, 'rmse_log': 0.27, 'si_rmse_log': 0.246}
    lines = format_metric_table({'coarse': row, 'coarse + fine': {**row, 'a1': 0.692}}
                                ).split('\n')
    assert lines == [
        'method        |    d<1.25 |  d<1.25^2 |  d<1.25^3 |   abs rel |   sqr rel |      RMSE '
        '|  RMSE log | RMSE log sc.-inv.',
        '-' * 117,
        'coarse        |     0.611 |     0.887 |     0.971 |     0.215 |     1.515 |     7.156 '
        '|     0.270 |     0.246',
        'coarse + fine |     0.692 |     0.887 |     0.971 |     0.215 |     1.515 |     7.156 '
        '|     0.270 |     0.246']


def test_json_safe_rounds_floats_and_makes_nan_and_inf_none():
    report = {'abs_rel': 0.123456789, 'rows': [math.nan, math.inf, -math.inf, 3, 'x'],
              'pair': (2.5, 1 / 3), 'nested': {'a1': 0.98765432}}
    assert json_safe(report) == {'abs_rel': 0.123457, 'rows': [None, None, None, 3, 'x'],
                                 'pair': [2.5, 0.333333], 'nested': {'a1': 0.987654}}
    assert json_safe(report, digits=2)['nested'] == {'a1': 0.99}
    kept = json_safe(report, digits=None)
    assert kept['abs_rel'] == 0.123456789 and kept['pair'] == [2.5, 1 / 3]
    assert kept['rows'][:3] == [None, None, None]
    assert json_safe(True) is True and json_safe(None) is None


def test_evaluate_depth_gates_crops_and_caps_each_pixel():
    gt = np.full((375, 1242), 10.0)
    pred = gt.copy()
    pred[10, 600] = 1000.0     # outside the Garg crop (its rows start at 153): not scored
    gt[200, 600] = pred[200, 600] = 0.5      # 0.5 m truth is above the 1 mm floor: scored
    gt[200, 601] = 80.5                       # beyond the 80 m cap: not scored
    pred[200, 602] = -1.0                     # no prediction: not scored
    pred[200, 603] = 0.0                      # no prediction either
    pred[200, 604] = 0.5                      # 0.5 m for 10 m: |0.5 - 10| / 10 = 0.95
    pred[200, 605] = 1e-5                     # capped to 1 mm: |0.001 - 10| / 10 = 0.9999
    m = evaluate_depth(pred, gt)
    n = int(garg_crop_mask(375, 1242).sum()) - 3
    assert m['n'] == n and m['scale'] == 1.0
    assert m['abs_rel'] == pytest.approx((0.95 + 0.9999) / n, rel=1e-9)
    with pytest.raises(ValueError) as info:
        evaluate_depth(np.ones((375, 1242)), np.zeros((375, 1242)))
    assert str(info.value) == 'no valid pixel to evaluate'


def test_threshold_accuracies_are_strict_at_powers_of_1_25():
    # ratios exactly 1.25, 1.25^2 and 1.25^3 (5/4, 25/16, 125/64 are exact in binary)
    m = compute_depth_metrics(np.array([[5.0, 25.0, 125.0]]), np.array([[4.0, 16.0, 64.0]]))
    assert (m['a1'], m['a2'], m['a3']) == (0.0, 1 / 3, 2 / 3)


def test_compute_depth_metrics_inputs():
    gt = np.array([[2.0, 4.0, 8.0]])
    # a zero prediction is no prediction; a 0/1 mask of ints is a mask
    m = compute_depth_metrics(np.array([[0.0, 4.0, 4.0]]), gt, mask=[[1, 1, 0]])
    assert m['n'] == 1 and m['abs_rel'] == 0.0
    # a tensor that requires grad is read through detach()
    pred = torch.tensor([[2.0, 4.0, 16.0]], requires_grad=True)
    assert compute_depth_metrics(pred, gt)['abs_rel'] == pytest.approx(1 / 3)
    # float32 in, float64 arithmetic: the same numbers as for float64 copies of the inputs
    rng = np.random.default_rng(4)
    gt32 = rng.uniform(1, 80, (60, 70)).astype(np.float32)
    pred32 = (gt32 * rng.uniform(0.7, 1.3, gt32.shape)).astype(np.float32)
    assert compute_depth_metrics(pred32, gt32) == \
        compute_depth_metrics(pred32.astype(np.float64), gt32.astype(np.float64))
    with pytest.raises(ValueError) as info:
        compute_depth_metrics(np.ones((2, 2)), np.ones((2, 3)))
    assert str(info.value) == 'prediction (2, 2) and ground truth (2, 3) differ in shape'
    with pytest.raises(ValueError) as info:
        compute_depth_metrics(np.ones((2, 2)), np.zeros((2, 2)))
    assert str(info.value) == 'no valid pixel to evaluate'

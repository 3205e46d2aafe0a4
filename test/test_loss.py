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

"""Properties of the scale-invariant loss (Eq. 4)."""
import math

from eigen_depth_ros.core.loss import scale_invariant_loss
import pytest
import torch


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(1)
    gt = torch.rand(3, 1, 6, 7, generator=g) * 3
    pred = gt + torch.randn(3, 1, 6, 7, generator=g) * 0.3
    return pred, gt


def test_zero_at_equality(pair):
    _, gt = pair
    assert scale_invariant_loss(gt, gt).item() == pytest.approx(0.0, abs=1e-7)


def test_lambda_zero_is_mean_squared_log_error(pair):
    pred, gt = pair
    assert scale_invariant_loss(pred, gt, lam=0.0).item() == \
        pytest.approx(((pred - gt) ** 2).mean().item(), rel=1e-6)


def test_lambda_one_ignores_a_global_scale(pair):
    pred, gt = pair
    scaled = pred + math.log(3.7)  # depth times 3.7 = log depth plus log 3.7
    assert scale_invariant_loss(scaled, gt, lam=1.0).item() == \
        pytest.approx(scale_invariant_loss(pred, gt, lam=1.0).item(), rel=1e-5)
    assert scale_invariant_loss(scaled, gt, lam=0.5).item() > \
        scale_invariant_loss(pred, gt, lam=0.5).item()


def test_masked_pixels_have_no_effect(pair):
    pred, gt = pair
    mask = torch.rand(gt.shape, generator=torch.Generator().manual_seed(2)) > 0.4
    wild_gt = torch.where(mask, gt, torch.full_like(gt, 1e6))
    wild_pred = torch.where(mask, pred, torch.full_like(pred, -1e6))
    assert scale_invariant_loss(wild_pred, wild_gt, mask).item() == \
        pytest.approx(scale_invariant_loss(pred, gt, mask).item(), rel=1e-6)
    nan_gt = torch.where(mask, gt, torch.full_like(gt, float('nan')))
    assert scale_invariant_loss(pred, nan_gt).item() == \
        pytest.approx(scale_invariant_loss(pred, gt, mask).item(), rel=1e-6)


def test_hand_computed_value():
    # one image, d = (1, 2, 3) on three valid pixels, a fourth masked:
    # L = (1 + 4 + 9) / 3 - 0.5 * 6^2 / 9 = 14/3 - 2
    pred = torch.tensor([[[[1.0, 2.0, 3.0, 100.0]]]])
    gt = torch.zeros_like(pred)
    mask = torch.tensor([[[[True, True, True, False]]]])
    assert scale_invariant_loss(pred, gt, mask).item() == pytest.approx(14 / 3 - 2)


def test_each_image_uses_its_own_n():
    # image 1: one valid pixel with d = 2 -> 4 - 0.5 * 4 = 2; image 2: d = (1, 1) -> 1 - 0.5 = 0.5
    pred = torch.tensor([[[[2.0, 0.0]]], [[[1.0, 1.0]]]])
    gt = torch.zeros_like(pred)
    mask = torch.tensor([[[[True, False]]], [[[True, True]]]])
    assert scale_invariant_loss(pred, gt, mask).item() == pytest.approx((2 + 0.5) / 2)


def test_empty_mask_gives_zero_and_gradients_flow():
    pred = torch.zeros(2, 1, 2, 2, requires_grad=True)
    loss = scale_invariant_loss(pred, torch.zeros(2, 1, 2, 2), torch.zeros(2, 1, 2, 2, dtype=bool))
    assert loss.item() == 0.0
    loss.backward()
    assert pred.grad is not None


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match='differ in shape'):
        scale_invariant_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 3))


def test_a_zero_one_mask_of_another_dtype_counts_as_bool():
    # the hand-computed case above with the mask as float 1/0: still 14/3 - 2
    pred = torch.tensor([[[[1.0, 2.0, 3.0, 100.0]]]])
    mask = torch.tensor([[[[1.0, 1.0, 1.0, 0.0]]]])
    assert scale_invariant_loss(pred, torch.zeros_like(pred), mask).item() == \
        pytest.approx(14 / 3 - 2)


def test_an_image_without_valid_pixels_is_left_out_of_the_mean():
    # image 1: one valid pixel with d = 2 -> 4 - 0.5 * 4 = 2; image 2: nothing valid.
    # The mean runs over image 1 only: 2, not (2 + 0) / 2.
    pred = torch.tensor([[[[2.0, 0.0]]], [[[1.0, 1.0]]]])
    mask = torch.tensor([[[[True, False]]], [[[False, False]]]])
    assert scale_invariant_loss(pred, torch.zeros_like(pred), mask).item() == pytest.approx(2.0)


def test_a_mask_of_another_shape_is_an_error_naming_both_shapes():
    with pytest.raises(ValueError) as info:
        scale_invariant_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2),
                             torch.ones(1, 1, 2, 3, dtype=torch.bool))
    assert str(info.value) == 'mask (1, 1, 2, 3) and prediction (1, 1, 2, 2) differ in shape'

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

"""The network against the paper's Fig. 1 table (sizes are width x height)."""
from eigen_depth_ros.core.model import (config_from_dict, config_to_dict, EigenDepthConfig,
                                        EigenDepthNet, KITTI, normalize_image, NYU, resolve_config)
import pytest
import torch
from torch import nn


def layer_sizes(net: EigenDepthNet, x: torch.Tensor) -> list[tuple[int, int]]:
    """(width, height) after each pool of the coarse feature stack."""
    sizes = []
    for layer in net.coarse.features:
        x = layer(x)
        if isinstance(layer, nn.MaxPool2d):
            sizes.append((x.shape[3], x.shape[2]))
    return sizes


@pytest.mark.parametrize('name, in_wh, pooled, out_wh', [
    ('kitti', (576, 172), [(71, 20), (35, 9), (17, 4)], (142, 27)),
    ('nyu', (304, 228), [(37, 27), (18, 13), (8, 6)], (74, 55)),
])
def test_sizes_match_the_paper(name, in_wh, pooled, out_wh):
    net = EigenDepthNet(name).eval()
    x = torch.randn(2, 3, in_wh[1], in_wh[0])
    with torch.no_grad():
        assert layer_sizes(net, x) == pooled
        assert net(x).shape == (2, 1, out_wh[1], out_wh[0])
        assert net(x, stage='coarse').shape == (2, 1, out_wh[1], out_wh[0])
    assert net.config.output_size == out_wh


def test_layers_match_the_paper_table():
    net = EigenDepthNet('kitti')
    convs = [m for m in net.coarse.features if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (96, (11, 11), (4, 4)), (256, (5, 5), (1, 1)), (384, (3, 3), (1, 1)),
        (384, (3, 3), (1, 1)), (256, (3, 3), (1, 1))]
    assert net.coarse.fc6.in_features == 256 * 17 * 4
    assert net.coarse.fc6.out_features == 4096
    assert net.coarse.fc7.out_features == 142 * 27
    assert net.coarse.dropout.p == 0.5
    fine1 = net.fine.conv1[0]
    assert (fine1.out_channels, fine1.kernel_size, fine1.stride) == (63, (9, 9), (2, 2))
    assert isinstance(net.fine.conv1[2], nn.MaxPool2d) and net.fine.conv1[2].kernel_size == 2
    fine3 = net.fine.conv3[0]
    assert (fine3.in_channels, fine3.out_channels, fine3.kernel_size, fine3.padding) == \
        (64, 64, (5, 5), (2, 2))
    assert (net.fine.conv4.out_channels, net.fine.conv4.kernel_size, net.fine.conv4.padding) \
        == (1, (5, 5), (2, 2))


def test_fine_stack_uses_coarse_output_and_only_its_rows():
    torch.manual_seed(0)
    net = EigenDepthNet('kitti').eval()
    x = torch.randn(1, 3, 172, 576)
    with torch.no_grad():
        base = net(x)
        above = x.clone()
        above[:, :, :KITTI.fine_row_start] = 0  # rows only the coarse stack sees
        coarse_changed = net(above, stage='coarse')
        assert not torch.allclose(coarse_changed, net(x, stage='coarse'))
        net.coarse.fc7.bias.add_(1.0)  # shifting the coarse map must move the fine output
        assert not torch.allclose(net(x), base)


def test_parameter_groups_cover_every_parameter_once():
    net = EigenDepthNet('nyu')
    groups = net.parameter_groups()
    ids = [id(p) for params, _ in groups.values() for p in params]
    assert len(ids) == len(set(ids)) == len(list(net.parameters()))
    assert {k: lr for k, (_, lr) in groups.items()} == {
        'coarse_conv': 1e-3, 'coarse_fc': 0.1, 'fine_outer': 1e-3, 'fine_middle': 1e-2}


def test_config_round_trip_and_errors():
    assert config_from_dict(config_to_dict(NYU)) == NYU
    assert resolve_config('kitti') is KITTI
    with pytest.raises(ValueError, match='unknown network configuration'):
        resolve_config('cityscapes')
    with pytest.raises(ValueError, match='outside the input height'):
        EigenDepthConfig('bad', 576, 172, fine_row_start=100, fine_input_height=115)
    with pytest.raises(ValueError, match='expected input'):
        EigenDepthNet('nyu')(torch.zeros(1, 3, 172, 576))


def test_normalisation_is_imagenet_statistics():
    rgb = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
    assert torch.allclose(normalize_image(rgb), torch.zeros(1, 3, 1, 1), atol=1e-6)
    white = normalize_image(torch.full((1, 3, 1, 1), 255, dtype=torch.uint8))
    assert torch.allclose(white.flatten(), torch.tensor([(1 - 0.485) / 0.229,
                                                         (1 - 0.456) / 0.224,
                                                         (1 - 0.406) / 0.225]))

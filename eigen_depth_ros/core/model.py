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
The multi-scale depth network of Eigen, Puhrsch & Fergus (NIPS 2014).

Two stacks look at the same normalised image (see :func:`normalize_image`):

* the **coarse** stack (conv 1-5 then two fully connected layers) sees the whole input and
  predicts a global log-depth map; its last layer learns its own upsampling to the output map;
* the **fine** stack convolves the image (layer 1), takes the coarse prediction in as one extra
  feature map (layer 2, the concatenation) and refines it locally (layers 3 and 4).

Both stacks predict **log depth** (natural log of metres) at 1/4 of the input resolution.

Layer sizes (width x height) reproduced exactly from the paper's Fig. 1 table:

============  ==========  ==========
..            NYU Depth   KITTI
============  ==========  ==========
input         304x228     576x172
coarse 1      37x27       71x20
coarse 2-4    18x13       35x9
coarse 5      8x6         17x4
output        74x55       142x27
============  ==========  ==========

Two details the table implies but does not spell out:

* The pools after coarse layers 2 and 5 are 3x3 with stride 2 (overlapping, as in the
  ImageNet networks whose weights initialised conv 1-5): a 2x2 pool cannot turn KITTI's 71x20
  into 35x9 nor NYU's 18x13 into 8x6. The pool after coarse layer 1 is 2x2, stride 2.
  Coarse conv 2-5 are zero-padded so they keep their size.
* KITTI: the coarse stack sees the whole 576x172 input; the fine stack sees only rows
  ``fine_row_start .. fine_row_start + fine_input_height`` (57..172, the bottom 115 rows, where
  the Velodyne has ground truth), which its 9x9 stride-2 conv and 2x2 pool turn into 142x27.
  NYU's fine stack sees the whole input (rows 0..228 -> 74x55). The output map of both stacks
  covers that fine region; :mod:`eigen_depth_ros.core.geometry` maps its pixels back to the camera.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

# Input normalisation, the one place it is defined: RGB in [0, 1], minus the ImageNet mean,
# divided by the ImageNet standard deviation (per channel). The ImageNet statistics are kept
# so that user-supplied ImageNet-pretrained conv 1-5 weights fit the input.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Stage = Literal['coarse', 'fine']


_NORMALIZE_CONSTANTS: dict[tuple[str, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}


def normalize_constants(device: torch.device | str, dtype: torch.dtype
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Return ``(scale, shift)`` of :func:`normalize_image`, each (1, 3, 1, 1), cached.

    ``scale = 1 / (255 std)`` and ``shift = -mean / std``, computed in float64 and cast to
    ``dtype`` on ``device`` once per (device, dtype), so that a frame on a GPU costs no
    host-to-device copy of the constants (two blocking copies per frame before).
    """
    key = (str(torch.device(device)), dtype)
    cached = _NORMALIZE_CONSTANTS.get(key)
    if cached is None:
        with torch.inference_mode(False):  # normal tensors, usable in autograd code too
            cached = _normalize_constants(torch.device(device), dtype)
        _NORMALIZE_CONSTANTS[key] = cached
    return cached


def _normalize_constants(device: torch.device, dtype: torch.dtype
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Compute ``(scale, shift)`` of :func:`normalize_image` on ``device`` in ``dtype``."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float64)
    scale = (1.0 / (255.0 * std)).to(dtype=dtype, device=device).view(1, 3, 1, 1)
    shift = (-mean / std).to(dtype=dtype, device=device).view(1, 3, 1, 1)
    return scale, shift


def normalize_image(rgb: torch.Tensor) -> torch.Tensor:
    """
    Turn RGB images into the network's input.

    ``x = (rgb / 255 - mean) / std`` per channel, with the ImageNet mean and std, computed
    in one pass as ``x = rgb * (1 / (255 std)) + (-mean / std)`` (constants cached per
    device and dtype, see :func:`normalize_constants`).

    :param rgb: uint8 or float tensor (N, 3, H, W) with values in 0..255, channels R, G, B.
    :return: float tensor (N, 3, H, W) of the dtype of a floating ``rgb``, else float32, in
        ``rgb``'s memory format.
    """
    dtype = rgb.dtype if rgb.is_floating_point() else torch.float32
    scale, shift = normalize_constants(rgb.device, dtype)
    return torch.addcmul(shift, rgb, scale)


@dataclass(frozen=True)
class EigenDepthConfig:
    """
    Hyperparameters of one configuration of the network (sizes are width x height).

    :param name: configuration name, ``'kitti'``, ``'nyu'`` or a user's own.
    :param input_width: width of the network input in pixels.
    :param input_height: height of the network input in pixels.
    :param fine_row_start: first input row the fine stack sees.
    :param fine_input_height: number of input rows the fine stack sees.
    :param coarse_channels: output channels of coarse conv 1-5 (default: the paper's full
        width; the narrow variant scales them).
    :param fc_width: width of the coarse fully connected layer 6 (default: full width).
    :param fine_channels: channels of fine layers 1-3 (layer 1 has one less; the coarse map
        is concatenated as the last channel; default: full width).
    :param dropout: dropout probability after coarse layer 6.
    """

    name: str
    input_width: int
    input_height: int
    fine_row_start: int
    fine_input_height: int
    coarse_channels: tuple[int, int, int, int, int] = (96, 256, 384, 384, 256)
    fc_width: int = 4096
    fine_channels: int = 64
    dropout: float = 0.5

    def __post_init__(self) -> None:
        def positive_int(value: object) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and value > 0

        for name in ('input_width', 'input_height', 'fine_input_height', 'fc_width'):
            if not positive_int(getattr(self, name)):
                raise ValueError(f'{name} must be a positive integer, got '
                                 f'{getattr(self, name)!r}')
        if not (positive_int(self.fine_channels) and self.fine_channels >= 2):
            raise ValueError(f'fine_channels must be an integer >= 2, got '
                             f'{self.fine_channels!r}')
        if not (isinstance(self.fine_row_start, int) and self.fine_row_start >= 0):
            raise ValueError(f'fine_row_start must be an integer >= 0, got '
                             f'{self.fine_row_start!r}')
        if len(self.coarse_channels) != 5 or not all(map(positive_int, self.coarse_channels)):
            raise ValueError(f'coarse_channels must be 5 positive integers, got '
                             f'{self.coarse_channels!r}')
        if not (isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1):
            raise ValueError(f'dropout must be in [0, 1), got {self.dropout!r}')
        if self.fine_row_start < 0 or \
                self.fine_row_start + self.fine_input_height > self.input_height:
            raise ValueError(
                f'fine rows {self.fine_row_start}..'
                f'{self.fine_row_start + self.fine_input_height} lie outside the input height '
                f'{self.input_height}')
        for size in (self.coarse_top_size, self.output_size):
            if min(size) < 1:
                raise ValueError(f'input {self.input_width}x{self.input_height} is too small')

    @property
    def coarse_top_size(self) -> tuple[int, int]:
        """(width, height) of the coarse layer-5 map after its pool."""
        def shrink(n: int) -> int:
            n = (n - 11) // 4 + 1  # conv 1, 11x11 stride 4
            n = n // 2             # 2x2 pool
            n = (n - 3) // 2 + 1   # 3x3 stride-2 pool after conv 2
            return (n - 3) // 2 + 1  # 3x3 stride-2 pool after conv 5
        return shrink(self.input_width), shrink(self.input_height)

    @property
    def output_size(self) -> tuple[int, int]:
        """(width, height) of the output map: fine conv 1 (9x9, stride 2) then a 2x2 pool."""
        def shrink(n: int) -> int:
            return ((n - 9) // 2 + 1) // 2
        return shrink(self.input_width), shrink(self.fine_input_height)


KITTI = EigenDepthConfig('kitti', 576, 172, fine_row_start=57, fine_input_height=115)
NYU = EigenDepthConfig('nyu', 304, 228, fine_row_start=0, fine_input_height=228)
CONFIGS = {'kitti': KITTI, 'nyu': NYU}


def resolve_config(config: str | EigenDepthConfig) -> EigenDepthConfig:
    """Return the configuration named ``config`` (``'kitti'`` or ``'nyu'``) or ``config``."""
    if isinstance(config, EigenDepthConfig):
        return config
    try:
        return CONFIGS[config]
    except (KeyError, TypeError):
        raise ValueError(
            f'unknown network configuration {config!r}; choose one of {sorted(CONFIGS)}'
        ) from None


def config_to_dict(config: EigenDepthConfig) -> dict:
    """Plain-type dictionary of ``config`` (what a checkpoint stores as ``model_args``)."""
    args = dataclasses.asdict(config)
    args['coarse_channels'] = list(args['coarse_channels'])
    return args


def config_from_dict(args: dict) -> EigenDepthConfig:
    """Inverse of :func:`config_to_dict`; raises ``ValueError`` on unknown or missing keys."""
    try:
        args = dict(args)
        args['coarse_channels'] = tuple(args['coarse_channels'])
        return EigenDepthConfig(**args)
    except (TypeError, KeyError) as exc:
        raise ValueError(f'bad model_args {args!r}: {exc}') from None


class CoarseStack(nn.Module):
    """Coarse (global) stack: conv 1-5 and fully connected layers 6-7."""

    def __init__(self, config: EigenDepthConfig) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = config.coarse_channels
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, 11, stride=4), nn.ReLU(inplace=True),     # coarse 1
            nn.MaxPool2d(2, 2),
            nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(inplace=True),    # coarse 2
            nn.MaxPool2d(3, 2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(inplace=True),    # coarse 3
            nn.Conv2d(c3, c4, 3, padding=1), nn.ReLU(inplace=True),    # coarse 4
            nn.Conv2d(c4, c5, 3, padding=1), nn.ReLU(inplace=True),    # coarse 5
            nn.MaxPool2d(3, 2),
        )
        top_w, top_h = config.coarse_top_size
        self.output_size = config.output_size
        out_w, out_h = self.output_size
        self.fc6 = nn.Linear(c5 * top_w * top_h, config.fc_width)
        self.dropout = nn.Dropout(config.dropout)
        self.fc7 = nn.Linear(config.fc_width, out_w * out_h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Coarse log depth (N, 1, H_out, W_out) of the normalised input x (N, 3, H, W)."""
        out_w, out_h = self.output_size
        top = self.features(x).flatten(1)                 # (N, c5 * top_h * top_w)
        hidden = self.dropout(torch.relu(self.fc6(top)))  # (N, fc_width)
        return self.fc7(hidden).view(-1, 1, out_h, out_w)  # (N, 1, H_out, W_out)


class FineStack(nn.Module):
    """Fine (local) stack: conv 1 + pool, concat of the coarse map, conv 3, conv 4."""

    def __init__(self, config: EigenDepthConfig) -> None:
        super().__init__()
        channels = config.fine_channels
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, channels - 1, 9, stride=2), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2))
        self.conv3 = nn.Sequential(nn.Conv2d(channels, channels, 5, padding=2),
                                   nn.ReLU(inplace=True))
        self.conv4 = nn.Conv2d(channels, 1, 5, padding=2)

    def forward(self, x_fine: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        """Refined log depth (N, 1, H_out, W_out) from the fine input rows and coarse map."""
        local = self.conv1(x_fine)                 # (N, fine_channels - 1, H_out, W_out)
        merged = torch.cat([local, coarse], dim=1)  # (N, fine_channels, H_out, W_out): layer 2
        return self.conv4(self.conv3(merged))      # (N, 1, H_out, W_out)


class EigenDepthNet(nn.Module):
    """
    Coarse + fine network predicting log depth (natural log of metres).

    :param config: ``'kitti'``, ``'nyu'`` or an :class:`EigenDepthConfig`.
    """

    def __init__(self, config: str | EigenDepthConfig = 'kitti') -> None:
        super().__init__()
        self.config = resolve_config(config)
        self.coarse = CoarseStack(self.config)
        self.fine = FineStack(self.config)

    def forward(self, x: torch.Tensor, stage: Stage = 'fine') -> torch.Tensor:
        """
        Predict log depth.

        :param x: normalised images (N, 3, input_height, input_width), see
            :func:`normalize_image`.
        :param stage: ``'fine'`` for the full network, ``'coarse'`` for the coarse stack alone.
        :return: log depth (N, 1, H_out, W_out), e.g. (N, 1, 27, 142) for KITTI.
        """
        cfg = self.config
        if x.dim() != 4 or x.shape[1:] != (3, cfg.input_height, cfg.input_width):
            raise ValueError(
                f'expected input (N, 3, {cfg.input_height}, {cfg.input_width}), '
                f'got {tuple(x.shape)}')
        coarse = self.coarse(x)  # (N, 1, H_out, W_out)
        if stage == 'coarse':
            return coarse
        if stage != 'fine':
            raise ValueError(f"stage must be 'coarse' or 'fine', got {stage!r}")
        rows = slice(cfg.fine_row_start, cfg.fine_row_start + cfg.fine_input_height)
        return self.fine(x[:, :, rows, :], coarse)

    def init_from_scratch(self, mean_log_depth: float = 0.0) -> None:
        r"""
        Initialise every layer for training from scratch (He et al., 2015).

        * Layers followed by a ReLU get :math:`w \sim N(0, 2 / n_{in})` (fan-in, ReLU gain)
          and zero bias, so the activations keep their scale through coarse conv 1-5 and FC 6.
        * Coarse FC 7 (linear output) starts near zero, :math:`w \sim N(0, 10^{-6})`, with
          its bias at ``mean_log_depth``: the first prediction is the training set's mean log
          depth everywhere.
        * The fine stack starts as the identity on the coarse map: channel 0 of fine conv 3
          copies the coarse map (centre tap 1) and fine conv 4 copies channel 0 (centre tap
          1, other weights near zero). Log depth is positive beyond 1 m, so the ReLU between
          them passes it. The fine stage thus starts from the coarse prediction.

        PyTorch's default initialisation (uniform, :math:`1/\sqrt{3}` of He's gain) roughly
        halves the activations at every layer: at FC 6 they are about 100 times smaller than
        at He's, the convolutions get almost no gradient, and the coarse stack learns little
        more than FC 7's bias, a mean depth map (measured in docs/training.md).
        """
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity='relu')
                nn.init.zeros_(module.bias)
        with torch.no_grad():
            fc7 = self.coarse.fc7
            nn.init.normal_(fc7.weight, std=1e-3)
            fc7.bias.fill_(float(mean_log_depth))
            conv3, conv4 = self.fine.conv3[0], self.fine.conv4
            centre = conv3.kernel_size[0] // 2
            conv3.weight[0].zero_()
            conv3.weight[0, -1, centre, centre] = 1.0  # the coarse map, the last channel
            nn.init.normal_(conv4.weight, std=1e-3)
            conv4.weight[0, 0, centre, centre] = 1.0
            conv4.bias.zero_()

    def parameter_groups(self, coarse_conv_lr: float = 1e-3, coarse_fc_lr: float = 0.1,
                         fine_outer_lr: float = 1e-3, fine_middle_lr: float = 1e-2
                         ) -> dict[str, tuple[list[nn.Parameter], float]]:
        """
        Parameters grouped by the paper's learning rates.

        Coarse conv 1-5: 0.001; coarse FC 6-7: 0.1; fine layers 1 and 4 (the convolutions
        before the concat and the output one): 0.001; fine layer 3 (the middle convolution,
        right after the concat): 0.01.

        :return: ``{group name: (parameters, learning rate)}``.
        """
        return {
            'coarse_conv': (list(self.coarse.features.parameters()), coarse_conv_lr),
            'coarse_fc': (list(self.coarse.fc6.parameters()) + list(self.coarse.fc7.parameters()),
                          coarse_fc_lr),
            'fine_outer': (list(self.fine.conv1.parameters()) + list(self.fine.conv4.parameters()),
                           fine_outer_lr),
            'fine_middle': (list(self.fine.conv3.parameters()), fine_middle_lr),
        }

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
Where the network looks: camera image -> network input -> output map, and back.

The chain, per axis, in pixel-centre coordinates (pixel k has its centre at k):

1. **resize** the camera image (w x h) by ``scale`` to ``round(w * scale) x round(h * scale)``;
   a resized pixel u_r sits at camera coordinate ``(u_r + 0.5) / s - 0.5`` where ``s`` is the
   exact per-axis ratio of the rounded size to the camera size (the convention of OpenCV
   and of ``torch.nn.functional.interpolate`` with ``align_corners=False``);
2. **crop** the network input (``input_width x input_height``) out of the resized image at
   ``(crop_x, crop_y)``;
3. the network's output pixel j is the receptive-field centre of the fine stack's 9x9
   stride-2 conv and 2x2 pool: input coordinate ``4 j + 5`` (columns) and
   ``4 i + 5 + fine_row_start`` (rows).

So output pixel (j, i) sits at camera pixel ``(a_x j + b_x, a_y i + b_y)`` with
``a = 4 / s`` and ``b = (5 + offset + crop + 0.5) / s - 0.5``, and a pinhole camera
(fx, fy, cx, cy) seen through the output map has ``fx' = fx / a_x``,
``cx' = (cx - b_x) / a_x`` (likewise for y): see :meth:`InputGeometry.output_intrinsics`.

By default the image is scaled so the input window just fits inside it and the window is
centred (the paper's single centre crop at test time); training moves and scales it.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .model import EigenDepthConfig
from .projection import nearest_depth_image

OUTPUT_STRIDE = 4  # input pixels per output pixel (fine conv stride 2, pool 2)
OUTPUT_OFFSET = 5  # input coordinate of output pixel 0 (receptive-field centre)
KITTI_FOCAL = 721.5377  # px, fx = fy of KITTI's rectified colour cameras (2011_09_26)
KITTI_IMAGE_SIZE = (1242, 375)  # (width, height) of those cameras
FOCAL_RATIO_RANGE = (0.25, 4.0)  # f_in / f_train the network can be expected to handle


def image_tensor(image: np.ndarray) -> torch.Tensor:
    """
    View an (H, W, C) numpy image as a (1, C, H, W) tensor (channels-last memory order).

    No copy, except for images PyTorch cannot view: negative strides (``rgb[..., ::-1]``,
    flipped images) or read-only memory (``np.frombuffer`` of a message).
    """
    if any(stride < 0 for stride in image.strides) or not image.flags.writeable:
        image = np.array(image, order='C')
    return torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0)


def resize_image(pixels: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """
    Resize images (N, C, H, W) to ``width x height``: bilinear, antialiased, pixel centres.

    The resampling of :meth:`InputGeometry.resize_crop` (see there): ``align_corners=False``
    and PyTorch's ``antialias=True``; uint8 stays uint8 on the CPU (PyTorch's vectorised
    path) and is resized as float32 on other devices.

    :return: (N, C, height, width), uint8 on the CPU for uint8 input, else float.
    """
    if pixels.dtype == torch.uint8 and pixels.device.type != 'cpu':
        pixels = pixels.float()
    return F.interpolate(pixels, size=(height, width), mode='bilinear', align_corners=False,
                         antialias=True)


@dataclass(frozen=True)
class InputGeometry:
    """
    Resize-and-crop of one camera image size onto the network input.

    :param image_width: camera image width in pixels.
    :param image_height: camera image height in pixels.
    :param resized_width: width of the resized image the input is cropped from.
    :param resized_height: height of the resized image.
    :param crop_x: column of the input window in the resized image.
    :param crop_y: row of the input window in the resized image.
    :param config: the network configuration (input and output sizes, fine rows).
    """

    image_width: int
    image_height: int
    resized_width: int
    resized_height: int
    crop_x: int
    crop_y: int
    config: EigenDepthConfig

    @classmethod
    def fit(cls, image_width: int, image_height: int, config: EigenDepthConfig,
            extra_scale: float = 1.0, crop_fraction: tuple[float, float] = (0.5, 0.5)
            ) -> 'InputGeometry':
        """
        Scale the image so the input window fits, and place the window.

        The scale is the smallest that fits, times ``extra_scale`` >= 1; the window sits at
        ``crop_fraction`` of the free room (0.5, 0.5 = centre crop).

        :raises ValueError: for a non-positive image size or an ``extra_scale`` below 1.
        """
        if image_width < 1 or image_height < 1:
            raise ValueError(f'image size {image_width}x{image_height} is empty')
        if extra_scale < 1.0:
            raise ValueError(f'extra_scale must be >= 1, got {extra_scale}')
        scale = extra_scale * max(config.input_width / image_width,
                                  config.input_height / image_height)
        resized_w = max(config.input_width, round(image_width * scale))
        resized_h = max(config.input_height, round(image_height * scale))
        fx, fy = crop_fraction
        return cls(image_width, image_height, resized_w, resized_h,
                   int(round(fx * (resized_w - config.input_width))),
                   int(round(fy * (resized_h - config.input_height))), config)

    @property
    def output_size(self) -> tuple[int, int]:
        """(width, height) of the network output map."""
        return self.config.output_size

    def input_focal(self, fx: float, fy: float) -> float:
        r"""
        Return the focal length of a camera (fx, fy) at the network input's scale, in pixels.

        :math:`f = (f_x s_x + f_y s_y) / 2` with the per-axis resize ratios
        :math:`s_x = w_r / w`, :math:`s_y = h_r / h`. :meth:`fit` resizes with one scale for
        both axes, so :math:`s_x` and :math:`s_y` differ only by the rounding of the resized
        size (under half a pixel in ``w_r``); the network predicts one depth per pixel and
        cannot honour two focal lengths, so the two are averaged (for square pixels they
        are equal, and a camera with :math:`f_x \ne f_y` gets their mean).

        :raises ValueError: when fx or fy is not a positive finite number.
        """
        if not all(math.isfinite(f) and f > 0 for f in (fx, fy)):
            raise ValueError(f'focal lengths must be positive and finite, got fx={fx}, '
                             f'fy={fy}')
        sx = self.resized_width / self.image_width
        sy = self.resized_height / self.image_height
        return 0.5 * (float(fx) * sx + float(fy) * sy)

    def output_to_image_affine(self) -> tuple[float, float, float, float]:
        """
        Return ``(a_x, b_x, a_y, b_y)`` of the output-to-camera pixel map.

        Output pixel (j, i) lies at camera pixel ``(a_x j + b_x, a_y i + b_y)``.
        """
        sx = self.resized_width / self.image_width
        sy = self.resized_height / self.image_height
        off_x = OUTPUT_OFFSET + self.crop_x
        off_y = OUTPUT_OFFSET + self.config.fine_row_start + self.crop_y
        return (OUTPUT_STRIDE / sx, (off_x + 0.5) / sx - 0.5,
                OUTPUT_STRIDE / sy, (off_y + 0.5) / sy - 0.5)

    def output_intrinsics(self, fx: float, fy: float, cx: float, cy: float
                          ) -> tuple[float, float, float, float]:
        """
        Return the intrinsics ``(fx', fy', cx', cy')`` of the output map.

        For a camera (fx, fy, cx, cy): ``fx' = fx / a_x``, ``cx' = (cx - b_x) / a_x``,
        likewise for y.
        """
        a_x, b_x, a_y, b_y = self.output_to_image_affine()
        return fx / a_x, fy / a_y, (cx - b_x) / a_x, (cy - b_y) / a_y

    def resize_crop(self, pixels: torch.Tensor) -> torch.Tensor:
        """
        Resize camera images (N, C, H, W) and cut out the network input windows.

        The resize is bilinear with antialiasing (PyTorch's ``antialias=True``): when
        shrinking by ``s < 1`` each output pixel is the triangle-filter average
        ``sum_k w(k) I(k) / sum_k w(k)`` with ``w(k) = max(0, 1 - |k - c| s)`` around its
        centre ``c = (u_r + 0.5) / s - 0.5``, so fine texture does not alias; when enlarging
        it is plain bilinear interpolation. The work runs on ``pixels``' device. On the CPU
        uint8 images stay uint8 (rounded), which takes PyTorch's vectorised uint8 path;
        elsewhere they are resized as float32 (PyTorch has the antialiased uint8 resize on
        the CPU only), which differs from the CPU result by less than one grey level (the
        uint8 path rounds and uses fixed-point weights).

        :param pixels: (N, C, image_height, image_width) tensor, uint8 or float.
        :return: (N, C, input_height, input_width), a view of the resized images.
        """
        *_, h, w = pixels.shape
        if (w, h) != (self.image_width, self.image_height):
            raise ValueError(f'image is {w}x{h}, geometry is for '
                             f'{self.image_width}x{self.image_height}')
        resized = resize_image(pixels, self.resized_width, self.resized_height)
        cfg = self.config
        return resized[:, :, self.crop_y:self.crop_y + cfg.input_height,
                       self.crop_x:self.crop_x + cfg.input_width]

    def crop_input(self, rgb: np.ndarray) -> np.ndarray:
        """
        Resize an (H, W, C) camera image and cut out the network input window.

        The same resampling as :meth:`resize_crop`, for a numpy image.

        :return: (input_height, input_width, C) of ``rgb``'s dtype.
        """
        if rgb.ndim != 3:
            raise ValueError(f'expected an (H, W, C) image, got shape {rgb.shape}')
        return self.resize_crop(image_tensor(rgb))[0].permute(1, 2, 0).numpy()

    def output_to_image(self, output_map: np.ndarray, fill_outside: bool = False
                        ) -> np.ndarray:
        """
        Resample an output map (H_out, W_out) to the camera size (H, W), bilinearly.

        :param fill_outside: False puts NaN where the output map does not reach (what the
            node publishes); True extends its border values (what evaluation needs, as the
            protocol resizes predictions to the whole ground-truth image).
        """
        a_x, b_x, a_y, b_y = self.output_to_image_affine()
        # Camera pixel (u, v) -> output coordinates ((u - b_x) / a_x, (v - b_y) / a_y).
        inverse = np.array([[1 / a_x, 0, -b_x / a_x], [0, 1 / a_y, -b_y / a_y]])
        # Replicated even when cutting: a NaN border would reach into the map's last column
        # and row, as warpAffine samples a camera pixel within 1/64 px of them with weight 0
        # on the pixel beyond (and NaN * 0 is NaN).
        out = cv2.warpAffine(np.ascontiguousarray(output_map, dtype=np.float32), inverse,
                             (self.image_width, self.image_height),
                             flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REPLICATE)
        if not fill_outside:
            # Cut exactly where the map ends.
            u = (np.arange(self.image_width) - b_x) / a_x
            v = (np.arange(self.image_height) - b_y) / a_y
            w_out, h_out = self.output_size
            out[:, (u < 0) | (u > w_out - 1)] = np.nan
            out[(v < 0) | (v > h_out - 1), :] = np.nan
        return out

    def sparse_depth_to_output(self, depth: np.ndarray) -> np.ndarray:
        """
        Bin a sparse camera-size depth map (0 = no point) into the output grid.

        The nearest point of each cell is kept (as the KITTI devkit keeps the nearest per
        pixel).

        :return: (H_out, W_out) float32, 0 where no point falls into a cell.
        """
        a_x, b_x, a_y, b_y = self.output_to_image_affine()
        v, u = np.nonzero(depth > 0)
        return nearest_depth_image(np.rint((u - b_x) / a_x), np.rint((v - b_y) / a_y),
                                   depth[v, u], *self.output_size)


def kitti_train_focal(config: EigenDepthConfig) -> float:
    """
    Return KITTI's focal length at the network input's scale (about 334.6 px for ``kitti``).

    The f_train assumed for checkpoints written before they recorded one: KITTI's
    721.5377 px at 1242x375 through :meth:`InputGeometry.fit`.
    """
    geometry = InputGeometry.fit(*KITTI_IMAGE_SIZE, config)
    return geometry.input_focal(KITTI_FOCAL, KITTI_FOCAL)


def focal_scale(f_in: float, f_train: float) -> float:
    r"""
    Return the factor that turns network depth into metres for this camera: ``f_in / f_train``.

    The canonical-focal rule (as Metric3D's canonical camera): a network trained on one
    camera learns the depth of an object from its apparent size, which is proportional to
    :math:`f / Z`. Another camera at the same input scale sees the object
    :math:`f_{in} / f_{train}` times bigger, so

    .. math:: Z = \hat Z \cdot f_{in} / f_{train}, \qquad
              \log Z = \log \hat Z + \log (f_{in} / f_{train})

    with both focal lengths in pixels at the network input's scale
    (:meth:`InputGeometry.input_focal`). The paper's scale augmentation is this rule applied
    to the training targets: zooming by :math:`s` makes :math:`f_{in} = s f_{train}`, and the
    target :math:`Z / s` is the canonical depth that the rule maps back to :math:`Z`.

    :raises ValueError: when either focal length is not a positive finite number.
    """
    if not (math.isfinite(f_in) and f_in > 0 and math.isfinite(f_train) and f_train > 0):
        raise ValueError(f'focal lengths must be positive and finite, got f_in={f_in}, '
                         f'f_train={f_train}')
    return float(f_in) / float(f_train)

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

r"""
The paper's KITTI augmentation of a whole batch, in torch, on the device that trains.

Input: frames of a :class:`~eigen_depth_training.prepared.PreparedSet` (uint8 images stored
at the largest zoom :math:`s_{max}`, LiDAR points at camera resolution) and one
:class:`~eigen_depth_training.dataset.Augmentation` draw per frame, drawn exactly as the
per-sample path draws it (same seeds, same distributions: :math:`s \sim U[1, s_{max}]`,
crop ~ U[0, 1]^2, :math:`c \sim U[0.8, 1.2]^3`, flip with p = 0.5).

Per draw, :meth:`~eigen_depth_ros.core.geometry.InputGeometry.fit` gives the geometry the
per-sample path uses (:func:`~eigen_depth_training.dataset.apply_augmentation`), and then

- **image**: the stored image is resized to that geometry's size (bilinear, antialiased,
  pixel centres: the same resampling as ``resize_crop``, from the stored image instead of
  the camera image, so the window differs from the per-sample one only by the
  interpolation of an already resampled image) and the window is cut at the crop; a flip
  cuts the mirrored window and mirrors it (resizing commutes with mirroring); then, for the
  batch at once, colour :math:`\min(c_k x, 255)` and the ImageNet normalisation;
- **target**: every LiDAR point (column :math:`u`, mirrored to :math:`W - 1 - u` when
  flipped; row :math:`v`) goes to output cell
  :math:`(\mathrm{rint}((u - b_x) / a_x), \mathrm{rint}((v - b_y) / a_y))` with the
  geometry's output-to-camera affine map, the nearest point per cell is kept (one
  ``scatter_reduce`` with ``amin`` over the batch), and the depth is divided by :math:`s`
  and rescaled to the canonical focal length, :math:`Z F / f_i`. These are the operations
  of ``sparse_depth_to_output`` in the same precision, so every target cell equals the
  per-sample path's bit for bit.

Only the image resize and window cut run once per frame (32 small resizes of at most
691x209 pixels) and the points' cells are computed per frame (with that frame's scalars);
colour, normalisation and the binning of the whole batch are single batched operations.
Data-loading workers only copy frames and points out of the prepared set
(:class:`PreparedBatches`); the training process augments on its device.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

from eigen_depth_ros.core.geometry import InputGeometry, resize_image
from eigen_depth_ros.core.model import EigenDepthConfig, normalize_constants
import numpy as np
import torch
from torch.utils.data import Dataset

from .dataset import Augmentation
from .prepared import PreparedSet


class PreparedBatches(Dataset):
    """
    Raw training batches of a prepared set: stored images, points and augmentation draws.

    Indexed like :class:`~eigen_depth_training.dataset.KittiDepthDataset` by ``(frame,
    seed)`` pairs (what :class:`~eigen_depth_training.dataset.ResumableSampler` yields); a
    :class:`~torch.utils.data.DataLoader` with a batch size fetches a whole batch through
    :meth:`__getitems__` (use ``collate_fn=`` :func:`keep_batch`), raw, for
    :func:`augment_batch` on the training device. This is all a data-loading worker does:
    copying out of the memory-mapped set, about 0.2 ms of host CPU a sample.

    :param prepared: the prepared frames, in the order of ``draw``'s frame indices.
    :param draw: the dataset whose :meth:`~eigen_depth_training.dataset.KittiDepthDataset.
        augmentation` draws each frame's augmentation.
    """

    def __init__(self, prepared: PreparedSet, draw: Any) -> None:
        """Keep the prepared set and the draws' source."""
        self.prepared = prepared
        self.draw = draw

    def __len__(self) -> int:
        """Return the number of frames."""
        return len(self.prepared)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        """Return the raw batch of one frame (see :meth:`__getitems__`)."""
        return self.__getitems__([key])

    def __getitems__(self, keys: Sequence[tuple[int, int]]) -> dict[str, Any]:
        """
        Return one batch of the frames ``keys`` (``(frame index, augmentation seed)``).

        Raw: ``images`` (B, H_max, W_max, 3) uint8, ``stored_size`` and ``image_size``
        (B, 2), ``points_uv`` (P, 2) int32 and ``points_z`` (P,) float32 (the frames' points
        one after another), ``points_count`` (B,) int64 (how many each frame has), ``focal``
        (B,) float64, ``index`` (B,) and ``draws`` (the
        :class:`~eigen_depth_training.dataset.Augmentation` of each).
        """
        prepared = self.prepared
        indices = [int(index) for index, _ in keys]
        draws = [self.draw.augmentation(int(index), int(seed)) for index, seed in keys]
        images = torch.from_numpy(np.stack([prepared.images[i] for i in indices]))
        uv, z = zip(*(prepared.points(i) for i in indices))
        return {
            'images': images,                                               # (B, Hc, Wc, 3)
            'stored_size': torch.from_numpy(prepared.stored_size[indices].astype(np.int64)),
            'image_size': torch.from_numpy(prepared.image_size[indices].astype(np.int64)),
            'points_uv': torch.from_numpy(np.concatenate(uv).astype(np.int32)),   # (P, 2)
            'points_z': torch.from_numpy(np.concatenate(z)),                       # (P,)
            'points_count': torch.tensor([len(part) for part in z]),              # (B,)
            'focal': torch.from_numpy(prepared.focal[indices]),
            'index': torch.tensor(indices),
            'draws': draws,
        }


def keep_batch(batch: dict[str, Any]) -> dict[str, Any]:
    """``collate_fn`` for :class:`PreparedBatches`: the batch is whole already."""
    return batch


def _window_origin(geometry: InputGeometry, flip: bool) -> int:
    """Column of the window in the resized image of the *unflipped* frame."""
    if not flip:
        return geometry.crop_x
    return geometry.resized_width - geometry.crop_x - geometry.config.input_width


def _split_over_threads(work: Callable[[range], None], count: int,
                        device: torch.device) -> None:
    """
    Run ``work`` over ``range(count)``: on the CPU split over one thread per core.

    The per-frame operations are too small for PyTorch's own intra-op threads, so on the CPU
    each of ``torch.get_num_threads()`` Python threads takes a share of the frames with
    PyTorch single-threaded (its operations release the GIL); elsewhere (a GPU, where they
    are only kernel launches) in this thread.
    """
    threads = torch.get_num_threads() if device.type == 'cpu' else 1
    if threads <= 1 or count <= 1:
        work(range(count))
        return
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, (range(k, count, threads) for k in range(threads))))
    finally:
        torch.set_num_threads(threads)


def augmented_images(raw: dict[str, Any], geometries: list[InputGeometry],
                     draws: list[Augmentation], device: torch.device,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    r"""
    Cut the augmented, normalised input windows of a raw batch.

    Per frame: the stored image is resized to the draw's size, the window cut (mirrored when
    flipped), and colour and normalisation applied in one pass while the window is in cache,
    :math:`\min(c_k x, 255) s_k + t_k = \min(x (c_k s_k) + t_k, 255 s_k + t_k)` with the
    normalisation's :math:`s_k = 1 / (255 \sigma_k) > 0` and :math:`t_k = -\mu_k / \sigma_k`.

    :param dtype: dtype of the result (bfloat16 when the step autocasts to it: the first
        convolution would round to it anyway, and half the bytes are written).
    :return: (B, 3, input_height, input_width) on ``device``, channels-last.
    """
    cfg = geometries[0].config
    height, width = cfg.input_height, cfg.input_width
    images = raw['images'].to(device, non_blocking=True)                   # (B, Hc, Wc, 3)
    out = torch.empty((len(draws), 3, height, width), dtype=dtype, device=device,
                      memory_format=torch.channels_last)                   # (B, 3, h, w)
    scale, shift = (t.view(3, 1, 1) for t in normalize_constants(device, torch.float32))
    ceiling = 255.0 * scale + shift                                        # (3, 1, 1)
    colours = torch.tensor([d.colour for d in draws], dtype=torch.float32,
                           device=device).view(-1, 3, 1, 1) * scale        # (B, 3, 1, 1)

    def fill(frames: range) -> None:
        window = torch.empty((3, height, width), device=device)            # (3, h, w) f32
        for b in frames:
            geometry, draw = geometries[b], draws[b]
            stored_w, stored_h = (int(n) for n in raw['stored_size'][b])
            stored = images[b, :stored_h, :stored_w].permute(2, 0, 1).unsqueeze(0)
            resized = resize_image(stored, geometry.resized_width,
                                   geometry.resized_height)[0]             # (3, rh, rw)
            x0, y0 = _window_origin(geometry, draw.flip), geometry.crop_y
            pixels = resized[:, y0:y0 + height, x0:x0 + width]             # (3, h, w)
            if draw.flip:
                pixels = pixels.flip(-1)
            torch.addcmul(shift, pixels, colours[b], out=window)
            torch.minimum(window, ceiling, out=window)
            out[b] = window

    _split_over_threads(fill, len(draws), device)
    return out


def binned_targets(raw: dict[str, Any], geometries: list[InputGeometry],
                   draws: list[Augmentation], device: torch.device,
                   canonical_focal: float | None) -> torch.Tensor:
    r"""
    Bin every frame's LiDAR points into its output grid, nearest point per cell.

    Output cell of a point: :math:`j = \mathrm{rint}((u' - b_x) / a_x)`,
    :math:`i = \mathrm{rint}((v - b_y) / a_y)` in float64, with :math:`u' = W - 1 - u` for
    a flipped frame; then depth :math:`/ s` and :math:`\times F / f_i` in float32, as the
    per-sample path computes them.

    :return: (B, 1, H_out, W_out) float32 metres on ``device``, 0 where no point falls.
    """
    out_w, out_h = geometries[0].output_size
    batch = len(geometries)
    uv = raw['points_uv'].to(device, non_blocking=True).double()           # (P, 2)
    depth = raw['points_z'].to(device, non_blocking=True)                  # (P,)
    offsets = [0] + torch.cumsum(raw['points_count'], 0).tolist()
    cells: list[torch.Tensor] = [uv.new_empty(0)] * batch

    def bin_frames(frames: range) -> None:
        for b in frames:
            geometry = geometries[b]
            a_x, b_x, a_y, b_y = geometry.output_to_image_affine()
            u, v = uv[offsets[b]:offsets[b + 1]].unbind(1)                 # (P_b,)
            if draws[b].flip:
                u = (geometry.image_width - 1.0) - u
            col = torch.round((u - b_x) / a_x)
            row = torch.round((v - b_y) / a_y)
            outside = (col < 0) | (row < 0) | (col >= out_w) | (row >= out_h)
            cell = (b * out_h + row.long()) * out_w + col.long()
            cells[b] = cell.masked_fill_(outside, batch * out_h * out_w)  # past the end

    _split_over_threads(bin_frames, batch, device)
    target = torch.full((batch * out_h * out_w + 1,), float('inf'), device=device)
    target.scatter_reduce_(0, torch.cat(cells), depth, reduce='amin')
    target = target[:-1]
    target[torch.isinf(target)] = 0.0
    target = target.view(batch, 1, out_h, out_w)
    scale = torch.tensor([d.scale for d in draws], dtype=torch.float32, device=device)
    target = target / scale.view(-1, 1, 1, 1)
    if canonical_focal is not None:
        ratio = canonical_focal / raw['focal'].double()                    # (B,)
        factor = torch.where((ratio - 1.0).abs() > 1e-9, ratio, torch.ones_like(ratio))
        target = target * factor.float().to(device).view(-1, 1, 1, 1)
    return target


def augment_batch(raw: dict[str, Any], config: EigenDepthConfig, device: torch.device,
                  min_depth: float, max_depth: float, canonical_focal: float | None,
                  dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """
    Turn a raw batch (:meth:`PreparedBatches.__getitems__`) into a training batch on ``device``.

    :return: the keys the training step reads, like a collated
        :class:`~eigen_depth_training.dataset.KittiDepthDataset` batch: ``image`` (B, 3, h,
        w) normalised, channels-last, in ``dtype``; ``depth``, ``log_depth`` and ``mask``
        (B, 1, H_out, W_out), with ``mask = min_depth <= depth <= max_depth`` and
        ``log_depth = log(depth)`` there (0 elsewhere); ``ok`` (all true: a prepared frame
        always decodes); ``index``.
    """
    draws = raw['draws']
    geometries = [InputGeometry.fit(int(w), int(h), config, extra_scale=d.scale,
                                    crop_fraction=d.crop)
                  for (w, h), d in zip(raw['image_size'].tolist(), draws)]
    image = augmented_images(raw, geometries, draws, device, dtype)
    depth = binned_targets(raw, geometries, draws, device, canonical_focal)
    mask = (depth >= min_depth) & (depth <= max_depth)                      # (B, 1, Ho, Wo)
    log_depth = torch.where(mask, torch.log(torch.clamp_min(depth, min_depth)),
                            torch.zeros_like(depth))
    return {'image': image, 'depth': depth, 'log_depth': log_depth, 'mask': mask,
            'ok': torch.ones(len(draws), dtype=torch.bool), 'index': raw['index']}

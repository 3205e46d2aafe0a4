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
KITTI raw frames as training samples: image window, log-depth target and mask.

One sample is one frame of a split (:class:`~eigen_depth_training.splits.SplitEntry`): the
colour image of its side (``l``: ``image_02``, ``r``: ``image_03``) and the Velodyne scan
projected into that camera (:func:`~eigen_depth_training.kitti.velodyne_depth_map`, the
Eigen protocol's ground truth). Targets live on the network's output grid (142x27 for
KITTI): the camera-size sparse depth is binned into it, nearest point per cell, by
:meth:`~eigen_depth_ros.core.geometry.InputGeometry.sparse_depth_to_output`, through exactly the
geometry that cut the input window, so image and target stay aligned.

Augmentation (training only, the paper's KITTI set; no rotation for KITTI), applied to image
and depth together, in this order:

1. horizontal flip with probability 0.5 of the camera image **and** its depth map;
2. zoom by :math:`s \sim U[1, 1.2]` (``InputGeometry.fit(extra_scale=s)``) with every depth
   divided by :math:`s` (an object seen :math:`s` times larger looks :math:`s` times
   nearer);
3. random crop: the input window at a uniform random fraction of the free room;
4. colour: each RGB channel multiplied by :math:`c_k \sim U[0.8, 1.2]`, clipped to 255.

At test time there is one centre crop and no augmentation (as
:class:`~eigen_depth_ros.core.inference.DepthEstimator` does).

Canonical focal length: with ``canonical_focal`` F (pixels at the network input's scale),
each frame's target is rescaled to the camera of focal length F, by the canonical-focal rule
(:func:`~eigen_depth_ros.core.geometry.focal_scale`) read backwards:
:math:`Z_{target} = Z \, F / f_i`, where :math:`f_i` (:meth:`KittiDepthDataset.frame_focal`)
is the frame's ``P_rect`` focal length at the input scale of the centre crop. KITTI's dates
differ by under 0.5 %; cameras of other fields of view become trainable together. The zoom
of step 2 is the same rule again: it makes :math:`f = s f_i`, and :math:`Z / s` is the depth
for :math:`f_i`.

Projecting a scan costs more than reading a PNG, so each frame's sparse depth is projected
once and cached: one ``.npz`` per frame (rows, columns, depths) under a cache folder, rebuilt
when the scan or calibration changes, or in memory when no folder is given.

Bad input never stops training: frames whose image or scan file is missing are left out and
counted; a scan that cannot be read (size not a multiple of 16 bytes, ...) or an image that
is empty or not a PNG is left out and counted when the dataset is built; an image that fails
to decode later gives a sample with ``ok`` False and an empty mask (it adds nothing to the
loss) that the trainer counts. Drives absent from the root raise an error listing them, and
so does an empty split.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import math
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

from eigen_depth_ros.core.geometry import InputGeometry
from eigen_depth_ros.core.model import EigenDepthConfig, normalize_image
import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from .kitti import (Calibration, KittiFormatError, load_calibration, load_velodyne_points,
                    read_image, velodyne_depth_map)
from .splits import check_drives_present, evenly_spread, SplitEntry, SplitError

PathLike = str | os.PathLike

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
CACHE_VERSION = 1


@dataclass(frozen=True)
class Augmentation:
    r"""
    One draw of the paper's KITTI augmentations (the identity by default).

    :param scale: zoom factor :math:`s \ge 1`; depths are divided by it.
    :param crop: where the input window sits in the free room of the zoomed image, as
        fractions (x, y) in [0, 1]; (0.5, 0.5) is the centre crop.
    :param colour: RGB channel multipliers.
    :param flip: mirror image and depth left-right before anything else.
    """

    scale: float = 1.0
    crop: tuple[float, float] = (0.5, 0.5)
    colour: tuple[float, float, float] = (1.0, 1.0, 1.0)
    flip: bool = False

    @classmethod
    def sample(cls, rng: np.random.Generator, scale_max: float = 1.2,
               colour_range: tuple[float, float] = (0.8, 1.2),
               flip_prob: float = 0.5) -> 'Augmentation':
        """Draw s ~ U[1, scale_max], crop ~ U[0, 1]^2, c ~ U[colour_range]^3, flip ~ B(p)."""
        scale = float(rng.uniform(1.0, scale_max)) if scale_max > 1.0 else 1.0
        crop = (float(rng.uniform()), float(rng.uniform()))
        colour = tuple(float(c) for c in rng.uniform(*colour_range, size=3))
        flip = bool(rng.uniform() < flip_prob)
        return cls(scale, crop, colour, flip)  # type: ignore[arg-type]


def apply_augmentation(rgb: np.ndarray, depth: np.ndarray, config: EigenDepthConfig,
                       augmentation: Augmentation = Augmentation()
                       ) -> tuple[np.ndarray, np.ndarray, InputGeometry]:
    """
    Cut the network input and its depth target out of one camera frame.

    :param rgb: camera image (H, W, 3) uint8, RGB.
    :param depth: sparse depth (H, W) float32 metres of the same camera, 0 = no point.
    :param config: network configuration (input and output sizes).
    :param augmentation: what to do; the default is the test-time centre crop.
    :return: ``(window, target, geometry)``: the input window (input_height, input_width, 3)
        float32 in 0..255, the target depth (H_out, W_out) float32 metres (0 = no point,
        already divided by the zoom), and the geometry used (of the flipped frame).
    """
    if rgb.shape[:2] != depth.shape:
        raise ValueError(f'image {rgb.shape[:2]} and depth {depth.shape} differ in size')
    if augmentation.flip:
        rgb = rgb[:, ::-1]
        depth = depth[:, ::-1]
    height, width = depth.shape
    geometry = InputGeometry.fit(width, height, config, extra_scale=augmentation.scale,
                                 crop_fraction=augmentation.crop)
    window = geometry.crop_input(np.ascontiguousarray(rgb)).astype(np.float32)  # (h, w, 3)
    if augmentation.colour != (1.0, 1.0, 1.0):
        window = np.minimum(window * np.asarray(augmentation.colour, np.float32), 255.0)
    target = geometry.sparse_depth_to_output(np.ascontiguousarray(depth))  # (H_out, W_out)
    target = target / np.float32(augmentation.scale)
    return window, target.astype(np.float32), geometry


def expand_sides(entries: Sequence[SplitEntry], sides: str = 'listed') -> list[SplitEntry]:
    """
    Choose the cameras of a split.

    :param sides: ``'listed'`` keeps the entries, ``'left'`` turns every entry into its left
        frame, ``'both'`` adds the other camera of every frame (the paper trains on both);
        duplicates are dropped, first occurrence kept.
    """
    if sides not in ('listed', 'left', 'both'):
        raise ValueError(f"sides must be 'listed', 'left' or 'both', got {sides!r}")
    out: dict[SplitEntry, None] = {}
    for entry in entries:
        if sides == 'listed':
            out[entry] = None
        elif sides == 'left':
            out[SplitEntry(entry.drive, entry.frame, 'l')] = None
        else:
            out[entry] = None
            out[SplitEntry(entry.drive, entry.frame, 'r' if entry.side == 'l' else 'l')] = None
    return list(out)


@dataclass
class DatasetReport:
    """
    What a :class:`KittiDepthDataset` left out while it was built.

    :ivar listed: frames the split listed (after side expansion).
    :ivar usable: frames kept.
    :ivar missing: frames whose image or scan file does not exist.
    :ivar corrupt_image: frames whose image is empty or not a PNG.
    :ivar corrupt_velodyne: frames whose scan (or calibration) cannot be read.
    :ivar examples: a few ``"<frame>: <reason>"`` lines for the log.
    """

    listed: int = 0
    usable: int = 0
    missing: int = 0
    corrupt_image: int = 0
    corrupt_velodyne: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, kind: str, line: str) -> None:
        """Count one frame left out for ``kind`` and keep the first few reasons."""
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.examples) < 5:
            self.examples.append(line)

    @property
    def skipped(self) -> int:
        """Frames left out, whatever the reason."""
        return self.missing + self.corrupt_image + self.corrupt_velodyne

    def summary(self) -> str:
        """Return one line, e.g. ``120 of 124 frames usable; 3 missing, 1 corrupt scan``."""
        text = f'{self.usable} of {self.listed} frames usable'
        counts = ((self.missing, 'missing'), (self.corrupt_image, 'corrupt image'),
                  (self.corrupt_velodyne, 'corrupt scan'))
        parts = [f'{n} {what}' for n, what in counts if n]
        return text + ('; skipped: ' + ', '.join(parts) if parts else '')

    def as_dict(self) -> dict[str, Any]:
        """Return a plain-type copy for JSON logs."""
        return {'listed': self.listed, 'usable': self.usable, 'missing': self.missing,
                'corrupt_image': self.corrupt_image, 'corrupt_velodyne': self.corrupt_velodyne,
                'examples': list(self.examples)}


class DepthCache:
    """
    Sparse projected LiDAR depth of frames, on disk (one ``.npz`` each) or in memory.

    A cached frame is stored as its non-zero pixels (rows and columns as uint16, depths as
    float32) with the image size and a stamp of the scan and calibration files (size and
    modification time); a stale or unreadable cache file is rebuilt.

    :param root: KITTI raw root.
    :param cache_dir: cache folder, or None to keep everything in memory.
    """

    def __init__(self, root: PathLike, cache_dir: PathLike | None = None) -> None:
        """Start an empty cache (files already in ``cache_dir`` are reused)."""
        self.root = Path(root)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self._memory: dict[SplitEntry, tuple[np.ndarray, ...]] = {}
        self._calibrations: dict[tuple[str, int], Calibration] = {}

    def path(self, entry: SplitEntry) -> Path | None:
        """Return the cache file of ``entry`` (None for the in-memory cache)."""
        if self.cache_dir is None:
            return None
        return (self.cache_dir / entry.drive / f'image_0{entry.cam}' /
                f'{entry.frame:010d}.npz')

    def _stamp(self, entry: SplitEntry) -> np.ndarray:
        stats = [entry.velodyne_path(self.root).stat()]
        calib_dir = entry.calib_dir(self.root)
        stats += [(calib_dir / name).stat()
                  for name in ('calib_cam_to_cam.txt', 'calib_velo_to_cam.txt')]
        return np.array([CACHE_VERSION] + [v for s in stats for v in (s.st_size, s.st_mtime_ns)],
                        dtype=np.int64)

    def calibration(self, entry: SplitEntry) -> Calibration:
        """Return the calibration of ``entry``'s camera (read once per date and camera)."""
        key = (entry.date, entry.cam)
        if key not in self._calibrations:
            self._calibrations[key] = load_calibration(entry.calib_dir(self.root), entry.cam)
        return self._calibrations[key]

    def _project(self, entry: SplitEntry) -> tuple[np.ndarray, ...]:
        points = load_velodyne_points(entry.velodyne_path(self.root))
        depth = velodyne_depth_map(points, self.calibration(entry))  # (H, W)
        rows, cols = np.nonzero(depth)
        return (rows.astype(np.uint16), cols.astype(np.uint16), depth[rows, cols],
                np.array(depth.shape, dtype=np.int64))

    def ensure(self, entry: SplitEntry) -> None:
        """
        Project and cache ``entry`` unless a fresh copy is cached.

        :raises KittiFormatError: the scan or calibration cannot be read.
        """
        path = self.path(entry)
        if path is None:
            if entry not in self._memory:
                self._memory[entry] = self._project(entry)
            return
        try:
            stamp = self._stamp(entry)
        except OSError as exc:
            raise KittiFormatError(f'{entry.velodyne_path(self.root)}: {exc}') from exc
        if path.is_file():
            try:
                with np.load(path) as cached:
                    if np.array_equal(cached['stamp'], stamp):
                        return
            except (OSError, ValueError, KeyError, EOFError):
                pass  # unreadable or old cache file: rebuild it
        rows, cols, depth, shape = self._project(entry)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f'.{path.stem}.{os.getpid()}.tmp.npz')
        np.savez_compressed(tmp, rows=rows, cols=cols, depth=depth, shape=shape, stamp=stamp)
        os.replace(tmp, path)

    def load(self, entry: SplitEntry) -> np.ndarray:
        """Return the dense sparse-depth map (H, W) float32 metres of ``entry``, 0 = no point."""
        path = self.path(entry)
        if path is None:
            self.ensure(entry)
            rows, cols, values, shape = self._memory[entry]
        else:
            try:
                with np.load(path) as cached:
                    rows, cols, values, shape = (cached['rows'], cached['cols'],
                                                 cached['depth'], cached['shape'])
            except (OSError, ValueError, KeyError, EOFError):
                self.ensure(entry)
                return self.load(entry)
        depth = np.zeros(tuple(int(n) for n in shape), dtype=np.float32)
        depth[rows.astype(np.int64), cols.astype(np.int64)] = values
        return depth


def _looks_like_png(path: Path) -> bool:
    try:
        with path.open('rb') as f:
            return f.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE
    except OSError:
        return False


class KittiDepthDataset(Dataset):
    """
    KITTI raw frames of a split as network samples.

    Each sample is a dict with the keys

    ========== ================================= =============================================
    key        type, shape                       meaning
    ========== ================================= =============================================
    image      float32 (3, in_h, in_w)           normalised input window
                                                 (:func:`~eigen_depth_ros.core.model.normalize_image`),
                                                 (3, 172, 576) for KITTI
    depth      float32 (1, H_out, W_out)         target depth in metres on the output grid
                                                 (0 where no LiDAR point), (1, 27, 142) KITTI
    log_depth  float32 (1, H_out, W_out)         natural log of ``depth`` where ``mask``, else 0
    mask       bool (1, H_out, W_out)            valid target: min_depth <= depth <= max_depth
    ok         bool                              False when the image could not be decoded
                                                 (then image, depth and mask are all zero)
    index      int64                             position of the frame in :attr:`entries`
    scale      float32                           zoom s of the augmentation (1 at test time)
    flip       bool                              whether the frame was mirrored
    colour     float32 (3,)                      RGB multipliers of the augmentation
    crop       float32 (2,)                      crop fractions (x, y) of the augmentation
    name       str                               the split line, e.g. ``<drive> 0000000069 l``
    ========== ================================= =============================================

    Indexing takes a frame position, or ``(position, seed)`` to fix the augmentation draw
    (what :class:`ResumableSampler` yields, so that a resumed run sees the same draws).

    :param root: KITTI raw root.
    :param entries: the frames (e.g. from
        :func:`~eigen_depth_training.splits.read_split_file`).
    :param config: network configuration.
    :param train: apply random augmentation (else: centre crop, nothing else).
    :param cache_dir: folder of the depth cache, or None for an in-memory cache.
    :param min_depth: smallest valid target depth (m).
    :param max_depth: largest valid target depth (m), after the zoom's division.
    :param scale_max: zoom range upper bound (training).
    :param colour_range: colour multiplier range (training).
    :param flip_prob: flip probability (training).
    :param seed: seed of the augmentation draws for plain integer indices.
    :param progress: show a progress bar while the depth cache is built.
    :param canonical_focal: F, focal length in pixels at the network input's scale that every
        target is rescaled to (:math:`Z F / f_i`); None leaves the targets as measured.
    :param preload: decode every image and load every depth map once, while the dataset is
        built, and keep them in memory (about 1.4 MB a 1242x375 frame): samples then cost
        only the augmentation, no PNG decoding or cache reading. A frame whose image cannot
        be decoded is left out and counted as a corrupt image.
    :raises ValueError: (a :class:`~eigen_depth_training.splits.SplitError`) when the split
        is empty, names drives absent from ``root`` (all listed), or keeps no usable frame.
    """

    def __init__(self, root: PathLike, entries: Sequence[SplitEntry], config: EigenDepthConfig,
                 train: bool = False, cache_dir: PathLike | None = None,
                 min_depth: float = 1e-3, max_depth: float = 80.0, scale_max: float = 1.2,
                 colour_range: tuple[float, float] = (0.8, 1.2), flip_prob: float = 0.5,
                 seed: int = 0, progress: bool = False, preload: bool = False,
                 canonical_focal: float | None = None) -> None:
        """Check the split, leave out unusable frames and fill the depth cache."""
        if canonical_focal is not None and not (math.isfinite(canonical_focal)
                                                and canonical_focal > 0):
            raise ValueError(f'canonical_focal must be positive, got {canonical_focal}')
        self.canonical_focal = None if canonical_focal is None else float(canonical_focal)
        self.root = Path(root)
        self.config = config
        self.train = train
        self.min_depth = float(min_depth)
        self.max_depth = float(max_depth)
        self.scale_max = float(scale_max)
        self.colour_range = (float(colour_range[0]), float(colour_range[1]))
        self.flip_prob = float(flip_prob)
        self.seed = int(seed)
        if not entries:
            raise SplitError('the split lists no frame')
        check_drives_present(self.root, sorted({e.drive for e in entries}))
        self.cache = DepthCache(self.root, cache_dir)
        self.preload = bool(preload)
        self._frames: dict[SplitEntry, tuple[np.ndarray, np.ndarray]] = {}
        self.report = DatasetReport(listed=len(entries))
        self.entries = self._usable(list(entries), progress)
        self.report.usable = len(self.entries)
        if not self.entries:
            raise SplitError(f'{self.root}: no usable frame in the split '
                             f'({self.report.summary()}; e.g. {self.report.examples[:2]})')

    def _usable(self, entries: list[SplitEntry], progress: bool) -> list[SplitEntry]:
        """Leave out (and count) frames with missing or unreadable files; fill the cache."""
        from tqdm import tqdm

        kept = []
        for entry in tqdm(entries, desc='projecting LiDAR', unit='frame', leave=False,
                          disable=not progress):
            image, scan = entry.image_path(self.root), entry.velodyne_path(self.root)
            if not image.is_file() or not scan.is_file():
                what = 'image' if not image.is_file() else 'scan'
                self.report.add('missing', f'{entry.line()}: no {what} file')
                continue
            if not _looks_like_png(image):
                self.report.add('corrupt_image', f'{entry.line()}: {image} is not a PNG')
                continue
            try:
                self.cache.ensure(entry)
            except KittiFormatError as exc:
                self.report.add('corrupt_velodyne', f'{entry.line()}: {exc}')
                continue
            if self.preload:
                try:
                    self._frames[entry] = (read_image(image), self.cache.load(entry))
                except KittiFormatError as exc:
                    self.report.add('corrupt_image', f'{entry.line()}: {exc}')
                    continue
            kept.append(entry)
        return kept

    def __len__(self) -> int:
        """Return the number of usable frames."""
        return len(self.entries)

    def frame(self, entry: SplitEntry) -> tuple[np.ndarray, np.ndarray]:
        """
        Return the camera image (H, W, 3) uint8 RGB and sparse depth (H, W) of ``entry``.

        From memory when preloaded, else read from the PNG and the depth cache.

        :raises KittiFormatError: the image cannot be decoded.
        """
        if entry in self._frames:
            return self._frames[entry]
        return read_image(entry.image_path(self.root)), self.cache.load(entry)

    def centre_target(self, entry: SplitEntry) -> tuple[np.ndarray, np.ndarray]:
        """
        Return the test-time target of ``entry`` on the output grid and its valid cells.

        The centre crop's LiDAR depth (H_out, W_out) float32 metres, 0 where no point, and
        the mask ``min_depth <= depth <= max_depth``; as measured, without augmentation or
        focal rescaling.
        """
        depth = self.cache.load(entry)                                     # (H, W)
        geometry = InputGeometry.fit(depth.shape[1], depth.shape[0], self.config)
        target = geometry.sparse_depth_to_output(depth)                    # (H_out, W_out)
        return target, (target >= self.min_depth) & (target <= self.max_depth)

    def output_intrinsics(self, index: int) -> tuple[float, float, float, float]:
        """
        Return ``(fx, fy, cx, cy)`` of the centre-crop output grid of frame ``index``.

        From the frame's rectified ``P_rect`` (KITTI's 1-based principal point made 0-based)
        through :meth:`~eigen_depth_ros.core.geometry.InputGeometry.output_intrinsics`.
        """
        entry = self.entries[index]
        calib = self.cache.calibration(entry)
        width, height = calib.image_size
        p_rect = calib.P_rect
        geometry = InputGeometry.fit(width, height, self.config)
        return geometry.output_intrinsics(float(p_rect[0, 0]), float(p_rect[1, 1]),
                                          float(p_rect[0, 2]) - 1.0, float(p_rect[1, 2]) - 1.0)

    def frame_focal(self, index: int) -> float:
        """
        Return frame ``index``'s focal length in pixels at the network input's scale.

        ``mean(fx, fy)`` of its ``P_rect`` through the centre-crop resize
        (:meth:`~eigen_depth_ros.core.geometry.InputGeometry.input_focal`), about 334.7 px for
        KITTI's 721.5 px at 1242x375 and the ``kitti`` network.
        """
        calib = self.cache.calibration(self.entries[index])
        geometry = InputGeometry.fit(*calib.image_size, self.config)
        return geometry.input_focal(float(calib.P_rect[0, 0]), float(calib.P_rect[1, 1]))

    def mean_focal(self) -> float:
        """Return the mean of :meth:`frame_focal` over the frames (the default f_train)."""
        return math.fsum(self.frame_focal(i) for i in range(len(self))) / len(self)

    def augmentation(self, index: int, seed: int | None = None) -> Augmentation:
        """
        Draw the augmentation of frame ``index`` (the identity unless training).

        The draw comes from ``seed`` or, when None, from (dataset seed, index).
        """
        if not self.train:
            return Augmentation()
        rng = np.random.default_rng([self.seed, index] if seed is None else [seed])
        return Augmentation.sample(rng, self.scale_max, self.colour_range, self.flip_prob)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        """Return the sample of frame ``key`` or ``(frame, augmentation seed)``."""
        index, seed = (int(key[0]), int(key[1])) if isinstance(key, tuple) else (int(key), None)
        entry = self.entries[index]
        augmentation = self.augmentation(index, seed)
        try:
            rgb, depth = self.frame(entry)                         # (H, W, 3), (H, W)
            window, target, _ = apply_augmentation(rgb, depth, self.config, augmentation)
            if self.canonical_focal is not None:
                ratio = self.canonical_focal / self.frame_focal(index)
                if abs(ratio - 1.0) > 1e-9:  # the same camera: targets stay bit-identical
                    target = target * np.float32(ratio)            # (H_out, W_out)
            ok = True
        except (KittiFormatError, ValueError):
            cfg = self.config
            window = np.zeros((cfg.input_height, cfg.input_width, 3), np.float32)
            target = np.zeros(cfg.output_size[::-1], np.float32)
            ok = False
        image = torch.from_numpy(np.ascontiguousarray(window.transpose(2, 0, 1)))  # (3, h, w)
        image = normalize_image(image.unsqueeze(0))[0] if ok else torch.zeros_like(image)
        mask = (target >= self.min_depth) & (target <= self.max_depth)  # (H_out, W_out)
        log_depth = np.where(mask, np.log(np.maximum(target, self.min_depth)), 0.0)
        return {
            'image': image.float(),
            'depth': torch.from_numpy(target).unsqueeze(0),
            'log_depth': torch.from_numpy(log_depth.astype(np.float32)).unsqueeze(0),
            'mask': torch.from_numpy(mask).unsqueeze(0),
            'ok': ok,
            'index': index,
            'scale': torch.tensor(augmentation.scale, dtype=torch.float32),
            'flip': augmentation.flip,
            'colour': torch.tensor(augmentation.colour, dtype=torch.float32),
            'crop': torch.tensor(augmentation.crop, dtype=torch.float32),
            'name': entry.line(),
        }


class ResumableSampler(DistributedSampler):
    """
    A :class:`~torch.utils.data.DistributedSampler` that can start mid-epoch.

    It also fixes every sample's augmentation seed by its place in the stream. It yields
    ``(frame index, seed)`` pairs: the order of epoch ``e`` is the sampler's shuffle with
    ``seed + e`` (the same on every process, each taking its share), and the seed of the
    k-th sample of this process in epoch ``e`` is a hash of (seed, e, rank, k). So a run
    resumed at ``(epoch, position)`` sees exactly the samples and augmentations the
    uninterrupted run would have seen, whatever the number of data workers. Without
    torch.distributed, pass ``num_replicas=1, rank=0``.
    """

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        """Sample like :class:`DistributedSampler`, from the start of epoch 0."""
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle,
                         seed=seed, drop_last=drop_last)
        self.start = 0

    def set_position(self, epoch: int, start: int = 0) -> None:
        """Start epoch ``epoch`` at its ``start``-th sample (of this process)."""
        self.set_epoch(epoch)
        self.start = int(start)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """Yield ``(index, augmentation seed)`` from the current position to the epoch's end."""
        indices = list(super().__iter__())
        for k in range(self.start, len(indices)):
            seed = np.random.SeedSequence([self.seed, self.epoch, self.rank, k])
            yield indices[k], int(seed.generate_state(1)[0])

    def __len__(self) -> int:
        """Return the number of samples left in the current epoch for this process."""
        return max(0, self.num_samples - self.start)


def mean_depth_map(dataset: KittiDepthDataset, progress: bool = False) -> np.ndarray:
    """
    Compute the per-pixel mean of the centre-crop targets of ``dataset`` on the output grid.

    Cells never hit by a LiDAR point get the mean over all valid target pixels. This is the
    paper's "mean" baseline: it predicts the training set's mean depth map for every image.

    :return: (H_out, W_out) float32 metres.
    """
    from tqdm import tqdm

    total = np.zeros(dataset.config.output_size[::-1], np.float64)
    count = np.zeros_like(total)
    for entry in tqdm(dataset.entries, desc='mean depth', unit='frame', leave=False,
                      disable=not progress):
        target, valid = dataset.centre_target(entry)
        total[valid] += target[valid]
        count[valid] += 1
    if not count.any():
        raise ValueError('no valid target pixel to average')
    overall = total.sum() / count.sum()
    return np.where(count > 0, total / np.maximum(count, 1), overall).astype(np.float32)


def estimated_frame_bytes(root: PathLike, entries: Sequence[SplitEntry]) -> int:
    """
    Estimate the memory the decoded frames of ``entries`` take when preloaded.

    The first readable image's size stands for all: ``H * W * 3`` bytes of RGB plus a
    float32 depth map ``H * W * 4`` per frame.
    """
    import cv2

    for entry in entries[:8]:
        image = cv2.imread(str(entry.image_path(root)), cv2.IMREAD_UNCHANGED)
        if image is not None:
            return len(entries) * image.shape[0] * image.shape[1] * 7
    return 0


def mean_log_target(dataset: KittiDepthDataset, frames: int = 64) -> float:
    """
    Return the mean log depth (natural log of metres) of the centre-crop targets.

    Over at most ``frames`` frames evenly spread over ``dataset``; the starting value of the
    network's output layer (:meth:`~eigen_depth_ros.core.model.EigenDepthNet.init_from_scratch`).

    :raises ValueError: no valid target pixel among them.
    """
    total, count = 0.0, 0
    for index in evenly_spread(len(dataset), frames):
        target, valid = dataset.centre_target(dataset.entries[index])
        total += float(np.log(target[valid]).sum())
        count += int(valid.sum())
    if count == 0:
        raise ValueError('no valid target pixel to average')
    return total / count

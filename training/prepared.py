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
A prepared training set: every frame of a split decoded, resized and written once.

Decoding a KITTI PNG costs about 10 ms and the full Eigen/Zhou list (39,810 frames) does not
fit in memory decoded, so training from the raw layout spends most of its time on the host.
Preparing writes, once, for every usable frame of a :class:`~eigen_depth_training.dataset.
KittiDepthDataset`:

- the image as uint8 RGB resized to the **largest zoom** the augmentation draws,
  :math:`s_{max}` times the smallest scale at which the network input fits
  (``InputGeometry.fit(extra_scale=scale_max)``; 691x209 for a 1242x375 frame and
  ``--scale-max 1.2``), so every draw :math:`s \in [1, s_{max}]` is a downscale of it by
  :math:`s / s_{max}` (:mod:`~eigen_depth_training.batch_augment`); a camera image smaller
  than that (the demo's half-size drives) is stored as it is;
- the frame's projected LiDAR points at camera resolution (column, row as uint16, depth as
  float32), so zoom, crop and flip can move them and bin them to the output grid exactly as
  the per-sample path does;
- the frame's camera size and focal length at the network input's scale.

Layout of the folder (plain numpy files, memory-mapped read-only by every data worker and
every DDP rank, so nothing is copied per process):

=================  ==========================================================================
``images.npy``     (N, H_max, W_max, 3) uint8; frame k in the top-left (H_k, W_k) corner
``points_uv.npy``  (P, 2) uint16 camera column and row of every point, frames one after another
``points_z.npy``   (P,) float32 depth in metres
``frames.npz``     ``image_size`` (N, 2), ``stored_size`` (N, 2), ``point_offset`` (N + 1),
                   ``focal`` (N,) float64
``manifest.json``  format version, fingerprint, geometry, counts, split lines; written last
=================  ==========================================================================

The **fingerprint** hashes the format version, the network geometry, ``scale_max`` and, per
frame, its split line and the size and modification time of its image, scan and calibration
files. A folder whose manifest is missing, whose fingerprint differs (stale source files,
another split, another geometry) or whose arrays are shorter than the manifest says
(truncated) is never used: :func:`ensure_prepared` says why in one line and rebuilds it.
A build writes into a temporary sibling folder and renames it into place only when
complete, so an interrupted preparation leaves nothing that looks finished; before the first
byte it checks that the disk has room and refuses with the size it needs.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
import shutil
import time
from typing import Any, Callable, Sequence

from eigen_depth_ros.core.geometry import image_tensor, InputGeometry, resize_image
from eigen_depth_ros.core.model import EigenDepthConfig
import numpy as np
from torch.utils.data import DataLoader, Dataset

from .kitti import KittiFormatError
from .splits import SplitEntry

PathLike = str | os.PathLike

FORMAT = 'eigen_depth_ros/prepared/1'
MANIFEST = 'manifest.json'
#: Bytes kept free on the disk beyond the prepared set's own size.
DISK_MARGIN = 256 << 20
#: Frames whose points are counted to estimate the size of all points before writing.
SIZE_PROBE_FRAMES = 16


class PreparedSetError(ValueError):
    """A prepared set cannot be used or written; the message names the folder and why."""


def _file_stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def fingerprint(root: PathLike, entries: Sequence[SplitEntry], config: EigenDepthConfig,
                scale_max: float) -> str:
    """
    Return the hash that a prepared set of ``entries`` must carry to be used.

    It covers :data:`FORMAT`, the network geometry (input size, fine rows, output size),
    ``scale_max`` and, per frame in order, the split line and the size and modification time
    (ns) of its image, its scan and its date's two calibration files.

    :raises PreparedSetError: a source file cannot be read (named).
    """
    root = Path(root)
    digest = hashlib.sha256()
    head = {'format': FORMAT, 'input': [config.input_width, config.input_height],
            'fine_row_start': config.fine_row_start, 'output': list(config.output_size),
            'scale_max': float(scale_max)}
    digest.update(json.dumps(head, sort_keys=True).encode())
    calib: dict[Path, list[int]] = {}
    for entry in entries:
        calib_dir = entry.calib_dir(root)
        try:
            if calib_dir not in calib:
                calib[calib_dir] = [v for name in ('calib_cam_to_cam.txt',
                                                   'calib_velo_to_cam.txt')
                                    for v in _file_stamp(calib_dir / name)]
            stamp = (_file_stamp(entry.image_path(root)) +
                     _file_stamp(entry.velodyne_path(root)) + calib[calib_dir])
        except OSError as exc:
            raise PreparedSetError(f'{entry.line()}: {exc}') from exc
        digest.update(f'{entry.line()} {stamp}\n'.encode())
    return digest.hexdigest()


class PreparedSet:
    """
    A prepared folder opened read-only (see the module docstring for the files).

    :ivar folder: the folder.
    :ivar manifest: its manifest (format, fingerprint, counts, geometry, lines).
    :ivar images: (N, H_max, W_max, 3) uint8, memory-mapped.
    :ivar points_uv: (P, 2) uint16 camera column and row, memory-mapped.
    :ivar points_z: (P,) float32 metres, memory-mapped.
    :ivar image_size: (N, 2) camera (width, height) of each frame.
    :ivar stored_size: (N, 2) stored (width, height) of each frame's image.
    :ivar point_offset: (N + 1,) start of each frame's points.
    :ivar focal: (N,) focal length at the network input's scale (px) of each frame.
    """

    def __init__(self, folder: PathLike, expected_fingerprint: str | None = None) -> None:
        """
        Open ``folder``, checking its manifest, fingerprint and array sizes.

        :raises PreparedSetError: the folder is not a complete prepared set, was prepared
            from other files or another geometry, or is truncated (one line saying which).
        """
        self.folder = Path(folder)
        try:
            self.manifest = json.loads((self.folder / MANIFEST).read_text(encoding='utf-8'))
        except (OSError, ValueError) as exc:
            raise PreparedSetError(f'{self.folder}: not a complete prepared set '
                                   f'({MANIFEST}: {exc.__class__.__name__})') from exc
        if self.manifest.get('format') != FORMAT:
            raise PreparedSetError(f'{self.folder}: format {self.manifest.get("format")!r}, '
                                   f'expected {FORMAT!r}')
        if expected_fingerprint is not None and \
                self.manifest.get('fingerprint') != expected_fingerprint:
            raise PreparedSetError(f'{self.folder}: prepared from other source files, another '
                                   'split or another network geometry (fingerprint differs)')
        frames, points = int(self.manifest['frames']), int(self.manifest['points'])
        try:
            self.images = np.load(self.folder / 'images.npy', mmap_mode='r')
            self.points_uv = np.load(self.folder / 'points_uv.npy', mmap_mode='r')
            self.points_z = np.load(self.folder / 'points_z.npy', mmap_mode='r')
            with np.load(self.folder / 'frames.npz') as table:
                self.image_size = table['image_size']
                self.stored_size = table['stored_size']
                self.point_offset = table['point_offset']
                self.focal = table['focal']
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise PreparedSetError(f'{self.folder}: truncated or unreadable ({exc})') from exc
        expected = {'images': (frames, *self.manifest['canvas'][::-1], 3),
                    'points_uv': (points, 2), 'points_z': (points,),
                    'point_offset': (frames + 1,), 'focal': (frames,)}
        for name, shape in expected.items():
            if getattr(self, name).shape != tuple(shape):
                raise PreparedSetError(f'{self.folder}: {name} has shape '
                                       f'{getattr(self, name).shape}, the manifest says '
                                       f'{tuple(shape)} (truncated or mixed files)')

    def __len__(self) -> int:
        """Return the number of frames."""
        return len(self.focal)

    def image(self, index: int) -> np.ndarray:
        """Return the stored pixels of frame ``index``: (H_k, W_k, 3) uint8, read-only."""
        width, height = (int(n) for n in self.stored_size[index])
        return self.images[index, :height, :width]

    def points(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Return frame ``index``'s points: (P_k, 2) uint16 (column, row), (P_k,) metres."""
        start, stop = int(self.point_offset[index]), int(self.point_offset[index + 1])
        return self.points_uv[start:stop], self.points_z[start:stop]


class _DecodedFrames(Dataset):
    """Frame k of a dataset decoded and resized to its stored size (for a parallel build)."""

    def __init__(self, dataset: Any, stored_sizes: list[tuple[int, int]]) -> None:
        self.dataset = dataset
        self.stored_sizes = stored_sizes

    def __len__(self) -> int:
        return len(self.dataset.entries)

    def __getitem__(self, index: int) -> tuple[int, Any, np.ndarray, np.ndarray]:
        entry = self.dataset.entries[index]
        try:
            rgb, depth = self.dataset.frame(entry)                     # (H, W, 3), (H, W)
        except KittiFormatError as exc:
            return index, str(exc), np.zeros((0, 2), np.uint16), np.zeros(0, np.float32)
        width, height = self.stored_sizes[index]
        stored = resize_image(image_tensor(rgb), width, height)[0].permute(1, 2, 0).numpy()
        rows, cols = np.nonzero(depth > 0)
        uv = np.stack([cols, rows], axis=1).astype(np.uint16)          # (P_k, 2)
        return index, stored, uv, depth[rows, cols].astype(np.float32)


def stored_size(image_size: tuple[int, int], config: EigenDepthConfig,
                scale_max: float) -> tuple[int, int]:
    """
    Return the (width, height) a frame of ``image_size`` is stored at.

    The resized size of ``InputGeometry.fit(extra_scale=scale_max)``, the largest zoom the
    augmentation draws, so that every draw only shrinks the stored image; but never larger
    than the camera image: a frame that small is stored as it is, and every draw resizes
    the camera image itself, exactly as the per-sample path does.
    """
    geometry = InputGeometry.fit(*image_size, config, extra_scale=max(1.0, scale_max))
    if geometry.resized_width >= image_size[0] or geometry.resized_height >= image_size[1]:
        return int(image_size[0]), int(image_size[1])
    return geometry.resized_width, geometry.resized_height


def _image_sizes(dataset: Any) -> list[tuple[int, int]]:
    """Each frame's camera (width, height), from its calibration (``S_rect``)."""
    return [tuple(int(n) for n in dataset.cache.calibration(entry).image_size)
            for entry in dataset.entries]


def _estimate_point_bytes(dataset: Any) -> int:
    """Estimate the bytes of all points from the first frames' point counts (plus 25 %)."""
    probe = dataset.entries[:SIZE_PROBE_FRAMES]
    counts = [int(np.count_nonzero(dataset.cache.load(entry))) for entry in probe]
    per_frame = max(counts) if counts else 0
    return int(1.25 * per_frame * len(dataset.entries) * 8)


def _layout(dataset: Any, scale_max: float
            ) -> tuple[list[tuple[int, int]], list[tuple[int, int]], tuple[int, int]]:
    """Return each frame's camera size, its stored size, and the (width, height) canvas."""
    image_sizes = _image_sizes(dataset)
    sizes = [stored_size(size, dataset.config, scale_max) for size in image_sizes]
    return image_sizes, sizes, (max(w for w, _ in sizes), max(h for _, h in sizes))


def _bytes_needed(dataset: Any, canvas: tuple[int, int]) -> int:
    """Images exactly (N x H_max x W_max x 3), points from the first frames' counts."""
    return (len(dataset.entries) * canvas[0] * canvas[1] * 3 + _estimate_point_bytes(dataset)
            + (1 << 20))


def required_bytes(dataset: Any, scale_max: float) -> int:
    """
    Return the disk space a prepared set of ``dataset`` needs, in bytes (an upper estimate).

    Images exactly (N x H_max x W_max x 3), points from the first frames' counts.
    """
    return _bytes_needed(dataset, _layout(dataset, scale_max)[2])


def build_prepared(dataset: Any, folder: PathLike, scale_max: float, workers: int = 0,
                   progress: bool = False, expected_fingerprint: str | None = None
                   ) -> PreparedSet:
    """
    Write the prepared set of ``dataset`` to ``folder``, atomically, and open it.

    ``dataset`` is a :class:`~eigen_depth_training.dataset.KittiDepthDataset`.

    Frames are decoded and resized by ``workers`` processes (0: in this one). A frame whose
    image fails to decode now stops the build with its name (the dataset already left out
    the files that are missing or not PNGs).

    :param expected_fingerprint: :func:`fingerprint` of ``dataset``, when the caller has it
        (it reads every source file's stamp).
    :raises PreparedSetError: too little disk space (before anything is written), or a
        frame that cannot be decoded.
    """
    from tqdm import tqdm

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    image_sizes, sizes, canvas = _layout(dataset, scale_max)
    needed = _bytes_needed(dataset, canvas)
    free = shutil.disk_usage(folder.parent).free
    if needed + DISK_MARGIN > free:
        raise PreparedSetError(f'{folder}: preparing {len(dataset.entries)} frames needs about '
                               f'{needed / 1e9:.2f} GB, {free / 1e9:.2f} GB free on that disk '
                               '(use --prepared-dir elsewhere or --data-pipeline raw)')
    frames = len(sizes)
    for stale in folder.parent.glob(f'.{folder.name}.partial-*'):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = folder.parent / f'.{folder.name}.partial-{os.getpid()}-{time.time_ns()}'
    tmp.mkdir()
    try:
        images = np.lib.format.open_memmap(tmp / 'images.npy', mode='w+', dtype=np.uint8,
                                           shape=(frames, canvas[1], canvas[0], 3))
        offsets = np.zeros(frames + 1, np.int64)
        uv_parts: list[np.ndarray] = []
        z_parts: list[np.ndarray] = []
        loader = DataLoader(_DecodedFrames(dataset, sizes), batch_size=None,
                            num_workers=workers)
        for index, stored, uv, z in tqdm(loader, total=frames, desc='preparing frames',
                                         unit='frame', leave=False, disable=not progress):
            if isinstance(stored, str):
                raise PreparedSetError(f'{folder}: {stored}')
            stored = np.asarray(stored)
            images[index, :stored.shape[0], :stored.shape[1]] = stored
            offsets[index + 1] = len(z)
            uv_parts.append(np.asarray(uv))
            z_parts.append(np.asarray(z))
        images.flush()
        del images
        np.cumsum(offsets, out=offsets)
        uv_all = np.concatenate(uv_parts) if uv_parts else np.zeros((0, 2), np.uint16)
        z_all = np.concatenate(z_parts) if z_parts else np.zeros(0, np.float32)
        np.save(tmp / 'points_uv.npy', uv_all)
        np.save(tmp / 'points_z.npy', z_all)
        np.savez(tmp / 'frames.npz', image_size=np.array(image_sizes, np.int32),
                 stored_size=np.array(sizes, np.int32), point_offset=offsets,
                 focal=np.array([dataset.frame_focal(i) for i in range(frames)], np.float64))
        manifest = {'format': FORMAT,
                    'fingerprint': expected_fingerprint or fingerprint(
                        dataset.root, dataset.entries, dataset.config, scale_max),
                    'frames': frames, 'points': int(len(z_all)), 'canvas': list(canvas),
                    'scale_max': float(scale_max), 'config': dataset.config.name,
                    'lines': [entry.line() for entry in dataset.entries]}
        (tmp / MANIFEST).write_text(json.dumps(manifest), encoding='utf-8')
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return PreparedSet(folder)


def ensure_prepared(dataset: Any, folder: PathLike, scale_max: float, workers: int = 0,
                    progress: bool = False, say: Callable[[str], None] = print
                    ) -> PreparedSet:
    """
    Open the prepared set of ``dataset`` in ``folder``, (re)building it when needed.

    A folder that is missing, stale, from another geometry or truncated is rebuilt, after
    one line through ``say`` that names it and the reason.

    :raises PreparedSetError: see :func:`build_prepared`.
    """
    expected = fingerprint(dataset.root, dataset.entries, dataset.config, scale_max)
    try:
        return PreparedSet(folder, expected)
    except PreparedSetError as exc:
        if Path(folder).exists():
            say(f'{exc}: preparing it again')
    started = time.perf_counter()
    prepared = build_prepared(dataset, folder, scale_max, workers, progress, expected)
    size = sum(p.stat().st_size for p in Path(folder).iterdir())
    say(f'prepared {len(prepared)} frames in {folder} ({size / 1e6:.0f} MB, '
        f'{time.perf_counter() - started:.1f} s)')
    return prepared


def open_prepared(dataset: Any, folder: PathLike, scale_max: float) -> PreparedSet:
    """
    Open the prepared set of ``dataset`` in ``folder`` without building it (other ranks).

    :raises PreparedSetError: missing, stale or truncated.
    """
    return PreparedSet(folder, fingerprint(dataset.root, dataset.entries, dataset.config,
                                           scale_max))

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
Depth from one RGB image, without ROS: uint8 (H, W, 3) in, float32 metres out.

The camera image is resized and centre-cropped onto the network input as
:class:`~eigen_depth_ros.core.geometry.InputGeometry` describes; the prediction comes back at the
output-map resolution (with :meth:`DepthPrediction.intrinsics` for its pinhole model)
or resampled to the camera image (NaN where the network does not see).

Depth in metres follows the canonical-focal rule
(:func:`~eigen_depth_ros.core.geometry.focal_scale`): the network predicts depth for the training
camera, whose focal length at the network input's scale is the checkpoint's ``f_train``; for
a camera of focal length ``f_in`` at that scale, ``depth = exp(log_depth) * f_in / f_train``.
:meth:`DepthEstimator.predict` applies it when given the camera's ``(fx, fy)``.

The forward pass runs on one of the backends of :mod:`eigen_depth_ros.core.backends`
(``backend='eager'``, float32 PyTorch, unless asked otherwise; ``'auto'`` picks the fastest
measured one for the device, see docs/speed.md).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
import os
from typing import Iterator, Literal
import warnings

import cv2
import numpy as np
import torch

from .backends import Backend, build_backend, device_context
from .checkpoint import load_checkpoint, train_focal
from .geometry import focal_scale, image_tensor, InputGeometry, kitti_train_focal
from .model import EigenDepthNet, normalize_image, Stage

Resolution = Literal['network', 'input']

BACKEND_ENV = 'EIGEN_DEPTH_BACKEND'
"""
Environment variable naming the backend :meth:`DepthEstimator.from_checkpoint` uses when
its ``backend`` argument is None (e.g. ``EIGEN_DEPTH_BACKEND=auto ros2 run ...``)."""


def select_device(spec: str = 'auto') -> torch.device:
    """
    Resolve a device spec.

    ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.

    :raises ValueError: for an unknown spec or a CUDA device that is not there.
    """
    spec = spec.strip().lower()
    if spec == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if spec == 'cpu':
        return torch.device('cpu')
    if spec == 'cuda' or (spec.startswith('cuda:') and spec[5:].isdigit()):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(spec[5:]) if ':' in spec else 0
        if index >= count:
            raise ValueError(f'device {spec!r} is not available ({count} CUDA device(s) here)')
        return torch.device(spec)
    raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {spec!r}")


GPU_RESERVED_KEY = 'gpu memory reserved (MiB)'
"""``/diagnostics`` key of ``torch.cuda.memory_reserved`` (the soak's GPU memory verdict)."""
GPU_ALLOCATED_KEY = 'gpu memory allocated (MiB)'
"""``/diagnostics`` key of ``torch.cuda.memory_allocated``."""


def gpu_memory_pairs(device: torch.device) -> list[tuple[str, str]]:
    """
    Return the GPU memory of ``device`` as ``/diagnostics`` key-value pairs (MiB).

    ``memory_reserved`` (what PyTorch's caching allocator holds; a leak makes it grow)
    and ``memory_allocated`` (what live tensors use). Empty on other devices.
    """
    if device.type != 'cuda':
        return []
    reserved = torch.cuda.memory_reserved(device) / 2 ** 20
    allocated = torch.cuda.memory_allocated(device) / 2 ** 20
    return [(GPU_RESERVED_KEY, f'{reserved:.1f}'), (GPU_ALLOCATED_KEY, f'{allocated:.1f}')]


@contextmanager
def single_threaded(device: torch.device) -> Iterator[None]:
    """
    Run PyTorch's CPU operations of the block on the calling thread alone.

    PyTorch's OpenMP runtime (GNU libgomp) gives every thread that runs a parallel operation
    its own pool of worker threads. A node builds its estimator in one thread and predicts
    in another; when both have run parallel operations, the process has two pools for two
    cores, and every forward pass in the predicting thread took 1.7x as long (30 instead of
    18 ms for bf16_int8 KITTI at 10 Hz, docs/speed.md). Building single-threaded leaves the
    building thread without a pool. On CUDA devices it does nothing.
    """
    if device.type != 'cpu':
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass
class DepthPrediction:
    """
    One prediction: ``depth`` in metres and the geometry that places it in the camera.

    ``scale`` is the canonical-focal factor ``f_in / f_train`` already applied to ``depth``
    (1 when no camera focal length was given); ``f_in`` is the camera's focal length at the
    network input's scale (None when none was given).
    """

    depth: np.ndarray  # (H_out, W_out) float32 metres, or (H, W) when resampled to the image
    geometry: InputGeometry
    resolution: Resolution
    scale: float = 1.0
    f_in: float | None = None

    def intrinsics(self, fx: float, fy: float, cx: float, cy: float
                   ) -> tuple[float, float, float, float]:
        """Return the pinhole intrinsics of :attr:`depth` for a camera (fx, fy, cx, cy)."""
        if self.resolution == 'input':
            return fx, fy, cx, cy
        return self.geometry.output_intrinsics(fx, fy, cx, cy)


class DepthEstimator:
    """
    Runs an :class:`EigenDepthNet` on camera images.

    :param model: the float32 network; it is converted in place for the backend (moved to
        ``device``, cast, quantised), so hand over a model you do not use elsewhere.
    :param device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    :param half: run in float16 (CUDA only; ignored on CPU). Kept for compatibility: on
        CUDA it turns ``backend='eager'`` into ``'fp16'``.
    :param backend: a name from :data:`eigen_depth_ros.core.backends.BACKENDS`, ``'auto'``, or on
        CUDA a name with ``+graph`` (see :mod:`eigen_depth_ros.core.backends`).
    :param onnx_path: for ``backend='onnx'``, an exported file to run instead of exporting
        the model on the fly.
    :param train_focal: f_train, the training camera's focal length in pixels at the network
        input's scale (a checkpoint's ``f_train``); None assumes KITTI's camera
        (:func:`~eigen_depth_ros.core.geometry.kitti_train_focal`).
    :raises ValueError: for a bad device or backend name, or a backend the device cannot run.

    On a CPU device, OpenCV is set to one thread (``cv2.setNumThreads(1)``, process-wide):
    OpenCV's worker threads keep spinning after a call (a resize, a warp) and slowed the next
    PyTorch operation by about 20 ms on the 2-core development machine (docs/speed.md). The
    backend is built single-threaded (see :func:`single_threaded`), so that the thread which
    builds the estimator gets no OpenMP thread pool of its own when another thread runs it.
    """

    def __init__(self, model: EigenDepthNet, device: str = 'auto', half: bool = False,
                 backend: str = 'eager', onnx_path: str | os.PathLike | None = None,
                 train_focal: float | None = None) -> None:
        self.device = select_device(device)
        self.train_focal = float(train_focal) if train_focal is not None \
            else kitti_train_focal(model.config)
        if not (np.isfinite(self.train_focal) and self.train_focal > 0):
            raise ValueError(f'train_focal must be positive and finite, got {train_focal}')
        # Set by from_checkpoint when the checkpoint records no f_train (KITTI's assumed).
        self.train_focal_note: str | None = None
        if half and self.device.type == 'cuda' and backend == 'eager':
            backend = 'fp16'
        self.config = model.config
        with single_threaded(self.device):
            self.backend: Backend = build_backend(backend, model, self.device,
                                                  onnx_path=onnx_path)
        self.dtype = self.backend.input_dtype
        self.half = self.dtype == torch.float16
        self.model = self.backend.module if self.backend.module is not None else model
        self._geometries: dict[tuple[int, int], InputGeometry] = {}
        self._pinned: torch.Tensor | None = None  # CUDA: page-locked staging buffer
        self._copied: torch.cuda.Event | None = None
        if self.device.type == 'cpu':
            cv2.setNumThreads(1)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str = 'auto',
                        half: bool = False, backend: str | None = None,
                        onnx_path: str | os.PathLike | None = None) -> 'DepthEstimator':
        """
        Load a checkpoint (see :func:`~eigen_depth_ros.core.checkpoint.load_checkpoint`).

        Its ``f_train`` becomes :attr:`train_focal`; a checkpoint without one gets KITTI's
        value, a :class:`UserWarning` and the warning's text in :attr:`train_focal_note`.

        :param backend: as for :class:`DepthEstimator`; None means the environment variable
            :data:`BACKEND_ENV` when set, else ``'eager'``.
        """
        if backend is None:
            backend = os.environ.get(BACKEND_ENV, '').strip() or 'eager'
        with single_threaded(select_device(device)):  # the network's random init included
            model, meta = load_checkpoint(path, map_location='cpu')
        focal, note = train_focal(meta, model.config)
        if note is not None:
            warnings.warn(f'{path}: {note}', UserWarning, stacklevel=2)
        estimator = cls(model, device=device, half=half, backend=backend, onnx_path=onnx_path,
                        train_focal=focal)
        estimator.train_focal_note = note
        return estimator

    def geometry(self, width: int, height: int) -> InputGeometry:
        """Return the (cached) centre-crop geometry for camera images of ``width x height``."""
        key = (width, height)
        if key not in self._geometries:
            self._geometries[key] = InputGeometry.fit(width, height, self.config)
        return self._geometries[key]

    def preprocess(self, rgb: np.ndarray) -> tuple[torch.Tensor, InputGeometry]:
        """
        Resize/crop an RGB uint8 (H, W, 3) image into the normalised input (1, 3, h, w).

        One antialiased resize of the uint8 image (:meth:`InputGeometry.resize_crop`) and
        one fused normalising pass, both in PyTorch (the HWC -> NCHW permute and the crop
        are views). On CUDA the camera image goes through a page-locked buffer, is copied
        asynchronously and resized and normalised on the GPU, with the estimator's device
        made current (``cuda:N`` included); the normalising constants stay on the device.
        """
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f'expected an RGB uint8 (H, W, 3) image, got {rgb.dtype} '
                             f'{rgb.shape}')
        geometry = self.geometry(rgb.shape[1], rgb.shape[0])
        with device_context(self.device):
            if self.device.type == 'cuda':
                pixels = self._to_gpu(rgb).permute(2, 0, 1).unsqueeze(0)
            else:
                pixels = image_tensor(rgb)                       # (1, 3, H, W), a view
            window = geometry.resize_crop(pixels)                # (1, 3, h, w)
            return normalize_image(window).to(self.dtype), geometry

    def _to_gpu(self, rgb: np.ndarray) -> torch.Tensor:
        """
        Copy a uint8 (H, W, 3) image to the GPU through a reused page-locked buffer.

        The copy is queued on the device's current stream, and an event recorded on that
        stream marks when it has left the buffer (the next frame waits for it).
        """
        shape = tuple(rgb.shape)
        if self._pinned is None or tuple(self._pinned.shape) != shape:
            self._pinned = torch.empty(shape, dtype=torch.uint8, pin_memory=True)
            self._copied = None
        if self._copied is not None:
            self._copied.synchronize()  # the previous frame's copy has left the buffer
        self._pinned.numpy()[...] = rgb
        stream = torch.cuda.current_stream(self.device)
        pixels = self._pinned.to(self.device, non_blocking=True)
        self._copied = torch.cuda.Event()
        self._copied.record(stream)
        return pixels

    @torch.inference_mode()
    def predict_log(self, rgb: np.ndarray, stage: Stage = 'fine'
                    ) -> tuple[np.ndarray, InputGeometry]:
        """Log depth (H_out, W_out) float32 of one RGB image, and its geometry."""
        x, geometry = self.preprocess(rgb)
        log_depth = self.backend(x, stage)[0, 0]  # (H_out, W_out) float32
        return log_depth.cpu().numpy(), geometry

    def focal_scale(self, geometry: InputGeometry, fx: float, fy: float) -> tuple[float, float]:
        """
        Return ``(f_in / f_train, f_in)`` for a camera (fx, fy) seen through ``geometry``.

        ``f_in`` is :meth:`InputGeometry.input_focal`; the factor is
        :func:`~eigen_depth_ros.core.geometry.focal_scale` against :attr:`train_focal`.

        :raises ValueError: for a zero, negative or non-finite focal length.
        """
        f_in = geometry.input_focal(fx, fy)
        return focal_scale(f_in, self.train_focal), f_in

    def predict(self, rgb: np.ndarray, resolution: Resolution = 'network',
                stage: Stage = 'fine', camera_focal: tuple[float, float] | None = None
                ) -> DepthPrediction:
        r"""
        Metric depth of one RGB uint8 (H, W, 3) image.

        :param resolution: ``'network'`` for the output map (e.g. 142x27 for KITTI),
            ``'input'`` for the camera image size (NaN where the network does not see).
        :param stage: ``'fine'`` (coarse + fine) or ``'coarse'``.
        :param camera_focal: ``(fx, fy)`` of the camera image in pixels: the depth then
            follows the canonical-focal rule, :math:`Z = e^{\log \hat Z} f_{in} / f_{train}`.
            None keeps the network's depth (the camera is taken to be the training camera).
        :raises ValueError: for a bad ``resolution`` or a non-positive ``camera_focal``.
        """
        if resolution not in ('network', 'input'):
            raise ValueError(f"resolution must be 'network' or 'input', got {resolution!r}")
        log_depth, geometry = self.predict_log(rgb, stage)
        scale, f_in = 1.0, None
        if camera_focal is not None:
            scale, f_in = self.focal_scale(geometry, *camera_focal)
        depth = np.exp(log_depth, dtype=np.float32)                # (H_out, W_out)
        if scale != 1.0:
            depth *= np.float32(scale)
        if resolution == 'input':
            depth = geometry.output_to_image(depth)
        return DepthPrediction(depth, geometry, resolution, scale, f_in)

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
Checkpoints: one ``torch.save`` file of plain types and tensors, loaded without pickled code.

A checkpoint is a dict holding at least

- ``format``: the string :data:`CHECKPOINT_FORMAT`,
- ``model_args``: the :class:`~eigen_depth_ros.core.model.EigenDepthConfig` as a plain dict,
- ``state_dict``: the network's tensors,

plus whatever the caller adds (training step, optimiser state, options, metrics), among them
:data:`TRAIN_FOCAL_KEY` (``f_train``): the training camera's focal length in pixels at the
network input's scale, which the canonical-focal rule divides by
(:func:`~eigen_depth_ros.core.geometry.focal_scale`; read with :func:`train_focal`). Saving is
atomic (a temporary file in the same folder, flushed, then renamed over the target), so a
crash or a full disk never leaves a half-written checkpoint under the final name. Loading uses
``torch.load(weights_only=True)``, which refuses pickles that would run code.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
import pickle
import tempfile
from typing import Any
import zipfile

import torch

from .geometry import kitti_train_focal
from .model import config_from_dict, config_to_dict, EigenDepthConfig, EigenDepthNet

CHECKPOINT_FORMAT = 'eigen_depth_ros/1'
TRAIN_FOCAL_KEY = 'f_train'
"""Checkpoint entry: training focal length (px at the network input's scale), a float."""


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, of another format or does not fit the net."""


def save_checkpoint(path: str | os.PathLike, model: EigenDepthNet, **extra: Any) -> Path:
    """
    Write ``model`` (and ``extra`` entries) to ``path`` atomically.

    :param path: destination file; its folder is created if needed.
    :param model: the network (a DDP wrapper's ``.module`` is taken).
    :param extra: further plain-type or tensor entries (step, optimizer, options, ...).
    :return: the path written.
    """
    path = Path(path)
    model = getattr(model, 'module', model)
    payload = dict(extra)
    payload.update(format=CHECKPOINT_FORMAT, model_args=config_to_dict(model.config),
                   state_dict={k: v.detach().cpu() for k, v in model.state_dict().items()})
    write_atomically(path, payload)
    return path


class _WholeWrites:
    """
    A write-only file over a descriptor that keeps the system's error of a failed write.

    ``torch.save`` swallows an exception raised by a file object's ``write`` and reports
    ``RuntimeError: unexpected pos`` instead; :func:`write_atomically` raises the kept
    ``OSError`` (``File too large``, ``No space left on device``) in its place.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        """Write all of ``data``; keep and raise the system's ``OSError`` when that fails."""
        view = memoryview(data).cast('B')
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except OSError as exc:
            self.error = exc
            raise
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered here."""

    def fileno(self) -> int:
        """Return the descriptor written to."""
        return self.fd


def write_atomically(path: Path, payload: Any) -> None:
    """``torch.save`` ``payload`` into a temporary file beside ``path``, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        writer = _WholeWrites(fd)
        try:
            torch.save(payload, writer)
            os.fsync(fd)
        except RuntimeError:
            if writer.error is not None:
                raise writer.error from None
            raise
        finally:
            os.close(fd)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = 'cpu'
                    ) -> dict[str, Any]:
    """
    Load and check a checkpoint dict without building the network.

    :raises CheckpointError: naming the file, when it is missing, truncated or corrupt,
        would run code when unpickled, or lacks the format marker or a required entry.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'{path}: checkpoint file not found')
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive since torch 1.6
        raise CheckpointError(f'{path}: not a checkpoint (not a torch.save zip archive; '
                              'truncated, corrupt or another kind of file)')
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else 'refused'
        raise CheckpointError(f'{path}: refused, the file holds more than plain data and '
                              f'tensors ({first_line})') from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise CheckpointError(f'{path}: not a readable checkpoint (truncated or corrupt: '
                              f'{str(exc).strip().splitlines()[0] if str(exc) else exc!r})'
                              ) from None
    if not isinstance(payload, dict) or payload.get('format') != CHECKPOINT_FORMAT:
        found = payload.get('format') if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f'{path}: format is {found!r}, expected {CHECKPOINT_FORMAT!r}')
    for key in ('model_args', 'state_dict'):
        if key not in payload:
            raise CheckpointError(f'{path}: missing entry {key!r}')
    return payload


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = 'cpu'
                    ) -> tuple[EigenDepthNet, dict[str, Any]]:
    """
    Rebuild the network from a checkpoint and load its weights strictly.

    :param path: checkpoint file written by :func:`save_checkpoint`.
    :param map_location: where the tensors go (``'cpu'``, ``'cuda:0'``, ...).
    :return: ``(model in eval mode, the rest of the checkpoint dict)``.
    :raises CheckpointError: naming the file and the problem (see :func:`read_checkpoint`;
        also bad ``model_args`` and missing, unexpected or mis-shaped weights).
    """
    payload = read_checkpoint(path, map_location)
    try:
        config = config_from_dict(payload['model_args'])
        # Built without memory: the checkpoint's own tensors become the weights below, so
        # model_args asking for a huge network cannot allocate anything by themselves.
        with torch.device('meta'):
            model = EigenDepthNet(config)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f'{path}: {exc}') from None
    state_dict = payload.pop('state_dict')
    try:
        model.load_state_dict(state_dict, strict=True, assign=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise CheckpointError(f'{path}: weights do not fit the network: '
                              f'{" ".join(lines[1:3]) or lines[0]}') from None
    model.to(map_location).eval()
    return model, payload


def train_focal(meta: dict[str, Any], config: EigenDepthConfig) -> tuple[float, str | None]:
    """
    Return a checkpoint's f_train, and a warning when it had to be assumed.

    :param meta: the checkpoint dict (or the ``meta`` of :func:`load_checkpoint`).
    :param config: the network's configuration (for the input scale of the assumed value).
    :return: ``(f_train in px at the network input's scale, None)``, or for a checkpoint
        written before the field existed (or holding a bad value) ``(KITTI's focal length
        at that scale, a one-line warning)``.
    """
    value = meta.get(TRAIN_FOCAL_KEY)
    try:
        focal = float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        focal = math.nan
    if math.isfinite(focal) and focal > 0:
        return focal, None
    assumed = kitti_train_focal(config)
    what = 'records no f_train' if value is None else f'has a bad f_train {value!r}'
    return assumed, (f'checkpoint {what} (written before the canonical-focal rule): assuming '
                     f"KITTI's camera, f_train = {assumed:.1f} px at the network input")

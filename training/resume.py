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
``--resume``: find and check the training checkpoint, and where its sampler stood.

What a training checkpoint holds is written by
:meth:`~eigen_depth_training.train.Trainer.save`; this module reads it back before the
run starts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from eigen_depth_ros.core.checkpoint import CheckpointError, read_checkpoint

TRAINING_KEYS = ('stage', 'step', 'optimizer', 'sampler', 'rng')
"""Entries that make a checkpoint a training checkpoint (beside the weights)."""


def read_resume_checkpoint(resume: str | None, out: Path, stages: list[str],
                           stage_option: str) -> dict[str, Any] | None:
    """
    Read the training checkpoint that ``--resume`` names; None without ``--resume``.

    :param resume: ``--resume``: ``'last'`` (``<out>/last.pt``) or a path.
    :param out: the output folder.
    :param stages: the stages this run trains.
    :param stage_option: ``--stage``, for the message.
    :return: the checkpoint's payload, with its ``path`` added.
    :raises CheckpointError: no such file, not a training checkpoint, or one that stopped
        in a stage this run does not train.
    """
    if resume is None:
        return None
    path = out / 'last.pt' if resume == 'last' else Path(resume)
    if not path.is_file():
        raise CheckpointError(f'{path}: no checkpoint to resume from')
    payload = read_checkpoint(path)
    missing = [k for k in TRAINING_KEYS if k not in payload]
    if missing:
        raise CheckpointError(f'{path}: not a training checkpoint (no {", ".join(missing)})')
    if payload['stage'] not in stages:
        raise CheckpointError(f"{path}: stopped in stage {payload['stage']!r}, which "
                              f'--stage {stage_option} does not run')
    payload['path'] = str(path)
    return payload


def resume_position(payload: dict[str, Any], world_size: int, batch: int
                    ) -> tuple[int, int, bool]:
    """
    Return where the sampler continues: ``(epoch, position, same_layout)``.

    With the checkpoint's process count and per-process batch (``same_layout``) the run
    continues at the saved epoch and batch position, bit-exact; otherwise at the start of
    the next epoch.
    """
    sampler = payload['sampler']
    same_layout = (int(payload.get('world_size', 1)) == world_size and
                   int(sampler.get('batch', batch)) == batch)
    if same_layout:
        return int(sampler['epoch']), int(sampler['position']), True
    return int(sampler['epoch']) + 1, 0, False

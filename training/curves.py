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
Learning curves of a training run, as one PNG a person can read at a glance.

Three panels against the global optimiser step (coarse steps first, then fine): the training
loss (Eq. 4, mean over each logging window) with the validation loss; the validation abs rel
on the output grid; and the validation obstacle F1 within 10 m and 20 m
(:mod:`eigen_depth_ros.core.obstacles`). A dotted line marks where the fine stage starts.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence


def write_learning_curves(path: str | os.PathLike, train_history: Sequence[Sequence[float]],
                          val_history: Sequence[dict[str, Any]], steps: dict[str, int]
                          ) -> Path:
    """
    Draw the learning curves to ``path`` (PNG), written atomically.

    :param train_history: ``(global step, mean training loss)`` pairs.
    :param val_history: validation results with ``stage``, ``step``, ``loss``, ``abs_rel``
        and ``obstacle_f1_10m`` / ``obstacle_f1_20m`` (missing or NaN values are skipped).
    :param steps: optimiser steps of each stage, in order (``{'coarse': n, 'fine': m}``).
    """
    from matplotlib.figure import Figure

    offsets, done = {}, 0
    for stage, count in steps.items():
        offsets[stage] = done
        done += count

    def series(key: str) -> tuple[list[int], list[float]]:
        xs, ys = [], []
        for row in val_history:
            value = row.get(key)
            if value is not None and math.isfinite(value):
                xs.append(offsets.get(row['stage'], 0) + int(row['step']))
                ys.append(float(value))
        return xs, ys

    fig = Figure(figsize=(12, 3.6))
    loss_ax, rel_ax, f1_ax = fig.subplots(1, 3)
    if train_history:
        loss_ax.plot(*zip(*[(s, v) for s, v in train_history]), lw=1, label='train')
    loss_ax.plot(*series('loss'), 'o-', label='validation')
    loss_ax.set_title('loss (Eq. 4, lambda 0.5)')
    rel_ax.plot(*series('abs_rel'), 'o-', color='tab:red')
    rel_ax.set_title('validation abs rel (output grid)')
    for key, label in (('obstacle_f1_10m', 'within 10 m'), ('obstacle_f1_20m', 'within 20 m')):
        f1_ax.plot(*series(key), 'o-', label=label)
    f1_ax.set_title('validation obstacle F1')
    f1_ax.set_ylim(0, 1)
    for ax in (loss_ax, rel_ax, f1_ax):
        ax.set_xlabel('optimiser step')
        ax.grid(alpha=0.3)
        if 'fine' in offsets and offsets['fine'] > 0:
            ax.axvline(offsets['fine'], color='0.5', ls=':', lw=1)
    loss_ax.legend()
    f1_ax.legend()
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f'.{path.stem}.tmp.png')
    fig.savefig(tmp, dpi=80)
    os.replace(tmp, path)
    return path

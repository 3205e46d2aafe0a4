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
Seeds and RNG states of a training run, so that ``--resume`` continues exactly.

Every checkpoint holds the python, numpy, torch (and CUDA) RNG states of every process
(:func:`process_rng_states`); a resumed process restores its own (:func:`set_rng_state`).
Deterministic GPU kernels, the other half of a bit-exact resume, are
:func:`~eigen_depth_training.distributed.determinism`.
"""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from .distributed import all_gather, DistContext


def rng_state(device: torch.device) -> dict[str, Any]:
    """Return the python, numpy, torch (and CUDA) RNG states as checkpoint-safe data."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {'python': random.getstate(),
             'numpy': {'kind': kind, 'keys': torch.from_numpy(keys.astype(np.int64)),
                       'pos': int(pos), 'has_gauss': int(has_gauss),
                       'cached_gaussian': float(gauss)},
             'torch': torch.get_rng_state()}
    if device.type == 'cuda':
        state['cuda'] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Restore what :func:`rng_state` returned."""
    python = state['python']
    random.setstate((python[0], tuple(python[1]), python[2]))
    npy = state['numpy']
    np.random.set_state((npy['kind'], npy['keys'].numpy().astype(np.uint32), npy['pos'],
                         npy['has_gauss'], npy['cached_gaussian']))
    torch.set_rng_state(state['torch'])
    if device.type == 'cuda' and 'cuda' in state:
        torch.cuda.set_rng_state(state['cuda'], device)


def process_rng_states(ctx: DistContext) -> list[dict[str, Any]]:
    """Return the :func:`rng_state` of every process of the job, in rank order."""
    return all_gather(ctx, rng_state(ctx.device))


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def seed_process(seed: int, rank: int) -> None:
    """
    Seed this process's RNGs for training, apart from the other processes.

    Dropout masks then differ between processes; resuming restores these states exactly.
    """
    seed_everything(seed * 1000 + 17 + rank)

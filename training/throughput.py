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
Training throughput: samples per second of the real training loop, side by side.

Each variant runs :func:`~eigen_depth_training.train.train` for a few coarse steps on the
same split, in this process, one after the other, so the figures share a machine and a
moment: the data pipeline as it was (every sample decodes its PNG and reads its depth
cache file; float32), with the frames preloaded in memory, and preloaded with bfloat16
autocast (the ``--amp auto`` choice on CPUs with native bfloat16). ``eigen-depth bench
--train-data ROOT SPLIT`` runs it and writes the JSON.
"""
from __future__ import annotations

import os
import tempfile
import time
from typing import Any

#: (name, --preload, --amp) of each variant, the pipeline before this comparison first.
VARIANTS = (('png per sample, fp32 (before)', 'off', 'off'),
            ('preloaded, fp32', 'on', 'off'),
            ('preloaded, bf16 autocast', 'on', 'on'))


def bench_training(data_root: str | os.PathLike, split: str | os.PathLike,
                   width_mult: float = 0.125, batch_size: int = 32, steps: int = 40,
                   workers: int = 1, device: str = 'cpu') -> list[dict[str, Any]]:
    """
    Measure coarse-stage training samples/s of every variant of :data:`VARIANTS`.

    :param steps: timed optimiser steps per variant (after the workers' start-up).
    :return: one dict per variant: ``name``, ``preload``, ``amp``, ``samples_per_second``
        (optimiser steps times batch over the loop's time) and ``setup_s`` (building the
        dataset, including the preloading).
    """
    from .options import default_options
    from .train import train

    rows = []
    for name, preload, amp in VARIANTS:
        with tempfile.TemporaryDirectory(prefix='eigen_depth_train_bench_') as out:
            options = default_options(
                data_root=data_root, train_split=split, out=out, width_mult=width_mult,
                batch_size=batch_size, stage='coarse', coarse_samples=steps * batch_size,
                val_every=0, checkpoint_every=steps + 1, workers=workers, preload=preload,
                amp=amp, device=device, no_tensorboard=True, no_progress=True)
            started = time.perf_counter()
            result = train(options)
            total = time.perf_counter() - started
        loop = steps * batch_size / result.samples_per_second
        rows.append({'name': name, 'preload': preload, 'amp': amp,
                     'samples_per_second': round(result.samples_per_second, 1),
                     'setup_s': round(total - loop, 2)})
        print(f'  training [{name}]: {result.samples_per_second:.1f} samples/s', flush=True)
    return rows

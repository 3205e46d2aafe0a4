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
Training throughput: samples per second of the real loop against its compute alone.

``eigen-depth bench --train-data ROOT SPLIT`` runs every variant of :data:`VARIANTS` in this
process, one after the other, so the figures share a machine and a moment. Each variant
builds a real :class:`~eigen_depth_training.train.Trainer` (coarse stage, the network,
batch, optimiser and number format ``train`` uses) and times its steady state, after
``warmup`` steps:

- **compute only**: one batch taken from the loader, already on the device, stepped again
  and again: the rate the hardware allows, the reference of every ratio;
- **prepared**: the real loop on the prepared set (``--data-pipeline prepared``);
- **raw**: the real loop augmenting sample by sample in numpy (``--data-pipeline raw``, the
  path before the prepared set), decoding a PNG per sample (``--preload off``, what a data
  set too large for memory gets) or from frames preloaded in memory (what the demo used).

Each row has ``samples_per_second`` and ``ratio`` (to the compute-only row of the same
number format). The host CPU time of the data path per sample (:func:`host_cost`) is
measured apart, in this process on one thread, so that the cores a GPU needs can be read
off: ``ms per sample x samples/s of the GPU / 1000`` cores.
"""
from __future__ import annotations

import tempfile
import time
from typing import Any

from eigen_depth_ros.core.inference import select_device
import torch

#: (name, --data-pipeline, --preload, --amp, compute only) of each variant.
VARIANTS = (('compute only', 'prepared', 'off', 'auto', True),
            ('prepared (batched torch augmentation)', 'prepared', 'off', 'auto', False),
            ('raw, PNG per sample (before)', 'raw', 'off', 'auto', False),
            ('raw, preloaded (before, the demo)', 'raw', 'on', 'auto', False),
            ('compute only, float32', 'prepared', 'off', 'off', True),
            ('prepared, float32', 'prepared', 'off', 'off', False))


def _trainer(data_root: str, split: str, out: str, width_mult: float, batch_size: int,
             pipeline: str, preload: str, amp: str, workers: int, device: str,
             prepared_dir: str) -> Any:
    """Build and set up a coarse-stage Trainer (no validation, no TensorBoard)."""
    from .distributed import setup_distributed
    from .options import default_options
    from .train import Trainer

    options = default_options(
        data_root=data_root, train_split=split, out=out, width_mult=width_mult,
        batch_size=batch_size, stage='coarse', coarse_samples=10 ** 9, val_every=0,
        workers=workers, preload=preload, data_pipeline=pipeline, prepared_dir=prepared_dir,
        amp=amp, device=device, no_tensorboard=True, no_progress=True)
    trainer = Trainer(options, None, setup_distributed(options.device, 'auto', 10.0))
    trainer.setup()
    trainer._begin_stage('coarse')
    return trainer


def _timed_steps(trainer: Any, batches: Any, steps: int, warmup: int) -> float:
    """Return samples/s of ``steps`` training steps on ``batches`` after ``warmup`` steps."""
    from .interrupts import StopRequest

    with StopRequest() as stop:
        for _ in range(warmup):
            trainer._train_step(next(batches), stop)  # (loss, finite, stop, time up)
        started = time.perf_counter()
        for _ in range(steps):
            trainer._train_step(next(batches), stop)
        elapsed = time.perf_counter() - started
    return steps * trainer.batch / elapsed


def _repeat(batch: dict[str, Any]) -> Any:
    while True:
        yield batch


def host_cost(trainer: Any, batches: int = 4) -> dict[str, float]:
    """
    Measure the host CPU time per sample of the prepared data path, on one thread.

    ``gather``: reading the frames and points of a batch out of the prepared set (what a
    data-loading worker does; all the host does for a GPU, which augments on the device);
    ``gather + augment``: the same plus the augmentation on the CPU (what a CPU run adds to
    its training process).

    :return: milliseconds of CPU time per sample of each.
    """
    from .batch_augment import augment_batch, PreparedBatches

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        keys = [(i % len(trainer.prepared), i) for i in range(trainer.batch)]
        source = PreparedBatches(trainer.prepared, trainer.train_set)
        data = trainer.train_set
        steps = {'gather': lambda: source.__getitems__(keys),
                 'gather + augment': lambda: augment_batch(
                     source.__getitems__(keys), trainer.config, torch.device('cpu'),
                     data.min_depth, data.max_depth, data.canonical_focal, trainer.amp_dtype)}
        out = {}
        for name, step in steps.items():
            step()
            started = time.process_time()
            for _ in range(batches):
                step()
            out[name] = round(1000 * (time.process_time() - started) /
                              (batches * trainer.batch), 3)
        return out
    finally:
        torch.set_num_threads(threads)


def bench_training(data_root: str, split: str, width_mult: float = 0.125,
                   batch_size: int = 32, steps: int = 40, warmup: int = 5,
                   workers: int | None = None, device: str = 'cpu', variants: tuple = VARIANTS
                   ) -> dict[str, Any]:
    """
    Measure coarse-stage training samples/s of every variant of ``variants``.

    :param workers: data-loading workers (None: none on a CPU, where a worker process
        pre-empts the step's threads for less work than it takes over, as the demo runs;
        four on a GPU).
    :param variants: rows of :data:`VARIANTS` to run; each number format's compute-only row
        must come before the rows measured against it.

    :return: ``{'rows': [...], 'host_ms_per_sample': {...}}``; each row has ``name``,
        ``pipeline``, ``amp``, ``samples_per_second`` and ``ratio`` (to the compute-only row
        of its number format).
    """
    if workers is None:
        workers = 0 if select_device(device).type == 'cpu' else 4
    rows: list[dict[str, Any]] = []
    reference: dict[str, float] = {}
    host: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix='eigen_depth_train_bench_') as out:
        prepared_dir = f'{out}/prepared'
        for name, pipeline, preload, amp, compute_only in variants:
            trainer = _trainer(data_root, split, f'{out}/{len(rows)}', width_mult, batch_size,
                               pipeline, preload, amp, workers, device, prepared_dir)
            loader = trainer._batches()
            try:
                batches = _repeat(next(loader)) if compute_only else loader
                rate = _timed_steps(trainer, batches, steps, warmup)
            finally:
                loader.close()
            if compute_only:
                reference[amp] = rate
            if not host and trainer.prepared is not None:
                host = host_cost(trainer)
            rows.append({'name': name, 'pipeline': pipeline, 'preload': preload, 'amp': amp,
                         'bf16_or_fp16': trainer.use_amp,
                         'samples_per_second': round(rate, 1),
                         'ratio': round(rate / reference[amp], 3)})
            print(f'  training [{name}]: {rate:.1f} samples/s, '
                  f'{rate / reference[amp]:.2f}x compute only', flush=True)
    return {'width_mult': width_mult, 'batch': batch_size, 'steps': steps, 'warmup': warmup,
            'workers': workers, 'rows': rows, 'host_ms_per_sample': host}

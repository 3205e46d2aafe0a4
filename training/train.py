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
``eigen-depth train``: the paper's two-stage training on KITTI raw, resumable and distributed.

Recipe (Eigen, Puhrsch & Fergus, NIPS 2014, section 3.3; every number is an option of
:mod:`eigen_depth_training.options`):

1. the **coarse** stack is trained alone on its own output for ``--coarse-samples``
   (1.5M) samples;
2. the **fine** stack is trained for ``--fine-samples`` (1M) with the coarse stack frozen
   (eval mode, no gradients) and feeding its prediction into fine layer 2.

Both stages minimise Eq. 4 on the LiDAR pixels of the output grid only,

.. math::

    L = \frac{1}{n}\sum_i d_i^2 - \frac{\lambda}{n^2}\Big(\sum_i d_i\Big)^2,\qquad
    d_i = \log y_i - \log y^*_i,\ \lambda = 0.5,

in batches of 32, by default with the measured from-scratch recipe (``--recipe scratch``: He
initialisation, Adam at 3e-4; docs/training.md says why), or with the paper's (``--recipe
paper``: SGD, momentum 0.9, its per-layer learning rates held constant). No gradient clipping
(the paper has none). Validation on held-out drives (``--val-split``,
centre crop) runs at the start and end of each stage and every ``--val-every`` steps.

Output folder: ``last.pt`` (every ``--checkpoint-every`` steps, at the end of each stage
and when stopped), ``coarse.pt`` (end of the coarse stage), ``final.pt`` (end of the run),
``options.json`` (the resolved options, beside them), ``train_log.jsonl`` (one JSON event per
line: start, val, save, stop, finish) and ``tb/`` (TensorBoard: loss, learning rates,
validation metrics, sample images). Every checkpoint loads with
:func:`~eigen_depth_ros.core.checkpoint.load_checkpoint` and also holds the stage and step, the
optimiser and gradient-scaler state, the RNG states of every process (python, numpy, torch,
CUDA), the sampler's epoch and position and the options, so ``--resume`` continues exactly:
N steps in one go and N/2 + resume + N/2 give the same weights. On the CPU that holds as it
is; on a GPU it needs deterministic kernels, which ``--deterministic auto`` turns on for
CUDA (:func:`~eigen_depth_training.distributed.determinism`; ``eigen-depth gpu-check``
compares a resumed run with an uninterrupted one).

Devices: CPU; one CUDA GPU (``--amp``: bfloat16 autocast where the GPU has it, else float16
with a GradScaler); many GPUs or nodes through ``torchrun`` (DistributedDataParallel, one
process per GPU, the global batch split evenly, rank 0 logs and saves; nccl on CUDA, gloo on
CPU; collectives wait up to ``--dist-timeout`` minutes). Devices, processes and determinism
are set up by :mod:`eigen_depth_training.distributed`. A non-finite loss stops the run
without saving (the last checkpoint stays the last good one) and exits with status 3 (under
float16 autocast, where the forward pass can overflow, up to
:data:`~eigen_depth_training.options.MAX_SKIPPED_STEPS` such steps in a row are skipped
first); Ctrl-C (SIGINT) or SIGTERM finishes the current step, saves ``last.pt`` and exits
with 130.

This module holds the loop (:class:`Trainer`); its machinery lives beside it: devices and
processes in :mod:`~eigen_depth_training.distributed`, seeds and RNG states in
:mod:`~eigen_depth_training.reproducibility`, signals in
:mod:`~eigen_depth_training.interrupts`, reading a checkpoint back for ``--resume`` in
:mod:`~eigen_depth_training.resume`, the validation pass in
:mod:`~eigen_depth_training.validation` and its TensorBoard pictures in
:mod:`~eigen_depth_training.sample_images`.
"""
from __future__ import annotations

import argparse
from contextlib import nullcontext
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import sys
import time
from typing import Any, Iterator

from eigen_depth_ros.core.backends import cpu_has_native_bf16
from eigen_depth_ros.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from eigen_depth_ros.core.loss import scale_invariant_loss
from eigen_depth_ros.core.metrics import METRIC_NAMES
from eigen_depth_ros.core.model import (config_from_dict, config_to_dict, EigenDepthConfig,
                                        EigenDepthNet)
import numpy as np
import torch
from torch.utils.data import DataLoader

from .batch_augment import augment_batch, keep_batch, PreparedBatches
from .curves import write_learning_curves
from .dataset import (estimated_frame_bytes, expand_sides, KittiDepthDataset, mean_log_target,
                      ResumableSampler)
from .distributed import (all_reduce as _all_reduce, amp_dtype_for, barrier as _barrier,
                          data_parallel, determinism, deterministic_wanted, DistContext,
                          leave_distributed, setup_distributed)
from .interrupts import ignore_stop_signals, StopRequest
from .kitti import KittiFormatError
from .options import (learning_rates, MAX_SKIPPED_STEPS, model_config, options_to_dict,
                      parse_options, PRELOAD_AUTO_LIMIT, save_options_json, STAGE_GROUPS,
                      stage_steps)
from .prepared import ensure_prepared, open_prepared, PreparedSet
from .reproducibility import process_rng_states, seed_everything, seed_process, set_rng_state
from .resume import read_resume_checkpoint, resume_position
from .sample_images import add_sample_images
from .splits import read_split_file, SplitError
from .validation import validation_pass

EXIT_NONFINITE = 3
EXIT_INTERRUPTED = 130


class NonFiniteLossError(RuntimeError):
    """
    Training stopped on a NaN or infinite loss.

    Nothing was saved after the last good checkpoint (:attr:`last_checkpoint`, None when
    there is none).
    """

    def __init__(self, message: str, last_checkpoint: Path | None) -> None:
        """Keep the message and the path of the last good checkpoint."""
        super().__init__(message)
        self.last_checkpoint = last_checkpoint


@dataclass
class TrainResult:
    """
    What :func:`train` did.

    :ivar status: ``'finished'``, ``'stopped'`` (``--stop-after``) or ``'interrupted'``
        (SIGINT/SIGTERM); a non-finite loss raises :class:`NonFiniteLossError` instead.
    :ivar out_dir: the output folder.
    :ivar checkpoints: ``{'last': path, 'coarse': path, 'final': path}`` as far as written.
    :ivar stage: the stage running when the run ended.
    :ivar step: optimiser steps done in that stage.
    :ivar steps: planned steps per stage.
    :ivar train_loss: mean training loss of the last logging window.
    :ivar val_history: one dict per validation (stage, step, loss and metrics).
    :ivar samples_per_second: training throughput of this invocation (all processes).
    :ivar data_report: what the training set left out (see
        :class:`~eigen_depth_training.dataset.DatasetReport`) plus ``bad_samples``, samples
        whose image failed to decode during training.
    :ivar model_args: the network configuration as a plain dict.
    """

    status: str
    out_dir: Path
    checkpoints: dict[str, Path]
    stage: str
    step: int
    steps: dict[str, int]
    train_loss: float | None
    val_history: list[dict[str, Any]]
    samples_per_second: float
    data_report: dict[str, Any]
    model_args: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- data

def dataset_arguments(options: argparse.Namespace, config: EigenDepthConfig, split: Path,
                      train: bool) -> dict[str, Any]:
    """
    Return the :class:`~eigen_depth_training.dataset.KittiDepthDataset` arguments of a split.

    The training split takes ``--sides``; the frames are preloaded (``--preload``) unless
    the training split is read from a prepared set (``--data-pipeline prepared``).
    """
    entries = read_split_file(split)
    if train:
        entries = expand_sides(entries, options.sides)
    prepared = train and getattr(options, 'data_pipeline', 'prepared') == 'prepared'
    preload = not prepared and (options.preload == 'on' or (
        options.preload == 'auto' and
        estimated_frame_bytes(options.data_root, entries) <= PRELOAD_AUTO_LIMIT))
    augment = not options.no_augment
    return {'root': options.data_root, 'entries': entries, 'config': config, 'train': train,
            'cache_dir': options.cache_dir or (Path(options.out) / 'depth_cache'),
            'min_depth': options.min_depth, 'max_depth': options.max_depth,
            'scale_max': options.scale_max if augment else 1.0,
            'colour_range': tuple(options.colour_range) if augment else (1.0, 1.0),
            'flip_prob': options.flip_prob if augment else 0.0, 'seed': options.seed,
            'preload': preload}


def prepared_location(options: argparse.Namespace) -> tuple[Path, float]:
    """Return the prepared set's folder (``--prepared-dir`` or ``<out>/prepared``) and zoom."""
    folder = options.prepared_dir or (Path(options.out) / 'prepared')
    return Path(folder), (1.0 if options.no_augment else options.scale_max)


# --------------------------------------------------------------------------- the trainer

class Trainer:
    """
    State and loop of one training run (see the module docstring).

    :param options: resolved options (:func:`~eigen_depth_training.options.parse_options`
        or :func:`~eigen_depth_training.options.default_options`).
    :param config: the network configuration; default from the options (ignored when
        resuming: the checkpoint's configuration is used).
    :param ctx: the process's place in the job.
    """

    def __init__(self, options: argparse.Namespace, config: EigenDepthConfig | None,
                 ctx: DistContext) -> None:
        """Resolve the plan (stages, steps, batch per process) and read a resumed state."""
        self.options = options
        self.ctx = ctx
        self.out = Path(options.out)
        self.steps = stage_steps(options)
        self.stages = list(self.steps)
        if options.batch_size % ctx.world_size:
            raise ValueError(f'--batch-size {options.batch_size} is not divisible by the '
                             f'{ctx.world_size} processes')
        self.batch = options.batch_size // ctx.world_size  # per process
        self.resume_payload = read_resume_checkpoint(options.resume, self.out, self.stages,
                                                     options.stage)
        if self.resume_payload is not None:
            config = config_from_dict(self.resume_payload['model_args'])
        self.config = config or model_config(options)
        self.lrs = learning_rates(options)
        self.use_amp = options.amp == 'on' or (options.amp == 'auto' and (
            ctx.device.type == 'cuda' or cpu_has_native_bf16()))
        self.amp_dtype = amp_dtype_for(ctx.device) if self.use_amp else torch.float32
        # channels-last pays with bfloat16/float16 convolutions (oneDNN, cuDNN), not fp32 CPU
        self.memory_format = torch.channels_last if self.use_amp else torch.contiguous_format
        self.prepared_pipeline = getattr(options, 'data_pipeline', 'prepared') == 'prepared'
        self.prepared: PreparedSet | None = None
        # float16 autocast can overflow in the forward pass, which GradScaler does not guard
        self.skip_nonfinite = self.use_amp and self.amp_dtype == torch.float16
        self.nonfinite_in_row = 0
        self.writer: Any = None
        self.checkpoints: dict[str, Path] = {}
        self.val_history: list[dict[str, Any]] = []
        self.train_history: list[tuple[int, float]] = []  # (global step, mean loss)
        self.bad_samples = 0
        self.last_saved: tuple[Path, str, int] | None = None
        # position of the run
        self.stage = self.stages[0]
        self.step = 0
        self.stages_done: list[str] = []
        self.epoch = 0
        self.position = 0  # batches of this process consumed in the current epoch
        self.samples_seen = 0
        self.train_loss: float | None = None
        self.stage_deadline: float | None = None  # perf_counter() at which --time-budget ends

    # ----------------------------------------------------------------- set-up

    def _log_event(self, event: str, **fields: Any) -> None:
        if not self.ctx.is_main:
            return
        record = {'event': event, 'time': time.time(), 'rank': self.ctx.rank,
                  'stage': self.stage, 'step': self.step, **fields}
        with (self.out / 'train_log.jsonl').open('a', encoding='utf-8') as f:
            f.write(json.dumps(record, default=str) + '\n')

    def _say(self, text: str) -> None:
        if self.ctx.is_main:
            from tqdm import tqdm
            tqdm.write(f'eigen-depth train: {text}', file=sys.stderr)

    def _build_dataset(self, split: Path, train: bool,
                       canonical_focal: float | None = None) -> KittiDepthDataset:
        opts = self.options
        kwargs = dataset_arguments(opts, self.config, split, train)
        kwargs['canonical_focal'] = canonical_focal
        # rank 0 projects and caches the LiDAR once; the others then find the cache filled
        dataset = None
        if self.ctx.is_main:
            dataset = KittiDepthDataset(progress=not opts.no_progress, **kwargs)
        _barrier(self.ctx)
        if dataset is None:
            dataset = KittiDepthDataset(**kwargs)
        return dataset

    def setup(self) -> None:
        """Set up the output folder, datasets, network, and the resumed state if any."""
        opts = self.options
        if self.ctx.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        _barrier(self.ctx)
        self.train_set = self._build_dataset(opts.train_split, train=True)
        # f_train: every target is rescaled to this focal length (the canonical-focal rule),
        # and the checkpoint records it for the node, eval and bag-eval.
        self.f_train = float(getattr(opts, 'canonical_focal', None)
                             or self.train_set.mean_focal())
        self.train_set.canonical_focal = self.f_train
        self.val_set = None if opts.val_split is None else \
            self._build_dataset(opts.val_split, train=False, canonical_focal=self.f_train)
        if self.prepared_pipeline:
            self.prepared = self._prepare()
        if len(self.train_set) < opts.batch_size:
            raise ValueError(f'the training split has {len(self.train_set)} usable frames, '
                             f'fewer than one batch of {opts.batch_size}')
        self._say(f'training data: {self.train_set.report.summary()}')
        self._say(f'f_train {self.f_train:.2f} px at the network input ('
                  + ('--canonical-focal' if getattr(opts, 'canonical_focal', None)
                     else 'mean over the training frames') + '); targets rescaled to it')
        for line in self.train_set.report.examples:
            self._say(f'  skipped {line}')
        if self.val_set is not None:
            self._say(f'validation data: {self.val_set.report.summary()}')
        self.sampler = ResumableSampler(self.train_set, num_replicas=self.ctx.world_size,
                                        rank=self.ctx.rank, shuffle=True, seed=opts.seed)
        seed_everything(opts.seed)
        self.model = EigenDepthNet(self.config)
        if opts.init is None and self.resume_payload is None:
            self.model.init_from_scratch(mean_log_target(self.train_set))
        if opts.init is not None and self.resume_payload is None:
            init_model, _ = load_checkpoint(opts.init)
            if config_to_dict(init_model.config) != config_to_dict(self.config):
                raise CheckpointError(f'{opts.init}: network {init_model.config.name!r} does '
                                      f'not match the one trained ({self.config.name!r})')
            self.model.load_state_dict(init_model.state_dict(), strict=True)
        self.model.to(self.ctx.device, memory_format=self.memory_format)
        seed_process(opts.seed, self.ctx.rank)
        if self.resume_payload is not None:
            self._restore(self.resume_payload)
        if self.ctx.is_main:
            save_options_json(self.out / 'options.json', opts,
                              model_args=config_to_dict(self.config),
                              world_size=self.ctx.world_size, steps=self.steps,
                              command=sys.argv)
            if not opts.no_tensorboard:
                from torch.utils.tensorboard import SummaryWriter
                self.writer = SummaryWriter(str(self.out / 'tb'))
        self._log_event('start', world_size=self.ctx.world_size, steps=self.steps,
                        resumed_from=(self.resume_payload or {}).get('path'),
                        data=self.train_set.report.as_dict())

    def _prepare(self) -> PreparedSet:
        """
        Open the prepared training set; rank 0 builds it first when needed.

        (:func:`~eigen_depth_training.prepared.ensure_prepared`; the other processes open it
        after a barrier, read-only, without copying.)
        """
        opts = self.options
        folder, scale_max = prepared_location(opts)
        prepared = None
        if self.ctx.is_main:
            prepared = ensure_prepared(self.train_set, folder, scale_max,
                                       workers=opts.workers, progress=not opts.no_progress,
                                       say=self._say)
        _barrier(self.ctx)
        return prepared or open_prepared(self.train_set, folder, scale_max)

    def _restore(self, payload: dict[str, Any]) -> None:
        """Restore the weights, position, sampler and RNG states of a training checkpoint."""
        self.model.load_state_dict(payload['state_dict'], strict=True)
        self.stage = payload['stage']
        self.step = int(payload['step'])
        self.stages_done = list(payload.get('stages_done', []))
        self.samples_seen = int(payload.get('samples_seen', 0))
        self.val_history = list(payload.get('val_history', []))
        self.train_history = [tuple(row) for row in payload.get('train_history', [])]
        self.bad_samples = int(payload.get('bad_samples', 0))
        self.epoch, self.position, same_layout = resume_position(
            payload, self.ctx.world_size, self.batch)
        if not same_layout:
            self._say('the process count or batch differs from the checkpoint: continuing '
                      'with the next epoch (not bit-exact)')
        states = payload['rng']
        if same_layout and self.ctx.rank < len(states):
            set_rng_state(states[self.ctx.rank], self.ctx.device)
        self.checkpoints['last'] = Path(payload['path'])
        self.last_saved = (Path(payload['path']), self.stage, self.step)

    # ----------------------------------------------------------------- stages

    def _begin_stage(self, stage: str) -> None:
        """Freeze what the stage does not train, build its optimiser (and DDP wrapper)."""
        self.stage = stage
        model = self.model
        groups = model.parameter_groups(**{f'{name}_lr': lr for name, lr in self.lrs.items()})
        model.requires_grad_(False)
        trained = STAGE_GROUPS[stage]
        for name in trained:
            for p in groups[name][0]:
                p.requires_grad_(True)
        self._set_train_mode()
        param_groups = [{'params': groups[name][0], 'lr': groups[name][1], 'name': name}
                        for name in trained]
        # fused: one kernel for the whole update instead of one per tensor (CPU and CUDA)
        if self.options.recipe == 'scratch':
            self.optimizer: torch.optim.Optimizer = torch.optim.Adam(
                param_groups, lr=groups[trained[0]][1], weight_decay=self.options.weight_decay,
                fused=True)
        else:
            self.optimizer = torch.optim.SGD(
                param_groups, lr=groups[trained[0]][1], momentum=self.options.momentum,
                weight_decay=self.options.weight_decay, fused=True)
        self.scaler = torch.amp.GradScaler(
            'cuda', enabled=self.use_amp and self.ctx.device.type == 'cuda' and
            self.amp_dtype == torch.float16)
        payload = self.resume_payload
        if payload is not None and payload['stage'] == stage and \
                not payload.get('stage_done', False):
            self.optimizer.load_state_dict(payload['optimizer'])
            if payload.get('scaler'):
                self.scaler.load_state_dict(payload['scaler'])
        self.net = data_parallel(model, self.ctx)
        budget_min = getattr(self.options, 'time_budget', 0.0)
        if budget_min:
            # the stages share the budget in proportion to their planned steps
            share = self.steps[stage] / sum(self.steps.values())
            self.stage_deadline = time.perf_counter() + 60.0 * budget_min * share

    def _set_train_mode(self) -> None:
        """Set train mode for the stage being trained; the frozen coarse stack stays in eval."""
        self.model.train()
        if self.stage == 'fine':
            self.model.coarse.eval()

    def _batches(self) -> Iterator[dict[str, Any]]:
        """
        Yield training batches, epoch after epoch, from the saved position on.

        The workers persist over epochs (they are started once per stage); the sampler,
        which runs in this process, is moved to each epoch's position before its pass.
        """
        workers = self.options.workers
        device = self.ctx.device
        generator = torch.Generator()
        generator.manual_seed(self.options.seed)  # keeps the global torch RNG untouched
        if self.prepared is None:
            dataset, collate = self.train_set, None
        else:
            # the workers gather uint8 frames and points; the training device augments them
            dataset, collate = PreparedBatches(self.prepared, self.train_set), keep_batch
        loader = DataLoader(dataset, batch_size=self.batch, sampler=self.sampler,
                            drop_last=True, num_workers=workers, generator=generator,
                            collate_fn=collate,
                            worker_init_fn=ignore_stop_signals if workers else None,
                            persistent_workers=workers > 0,
                            pin_memory=device.type == 'cuda')
        ts = self.train_set
        while True:
            self.sampler.set_position(self.epoch, self.position * self.batch)
            if len(self.sampler) >= self.batch:
                for batch in loader:
                    if self.prepared is not None:
                        batch = augment_batch(batch, self.config, device, ts.min_depth,
                                              ts.max_depth, ts.canonical_focal,
                                              self.amp_dtype)
                    yield batch
            self.epoch += 1
            self.position = 0

    def _autocast(self) -> Any:
        if not self.use_amp:
            return nullcontext()
        return torch.autocast(self.ctx.device.type, dtype=self.amp_dtype)

    def _train_step(self, batch: dict[str, Any], stop: StopRequest
                    ) -> tuple[float, bool, bool, bool]:
        """
        Take one optimiser step.

        :return: (loss, finite on every process, stop requested on any process, the stage's
            share of ``--time-budget`` spent on any process); nothing is updated when a loss
            is not finite.
        """
        device = self.ctx.device
        x = batch['image'].to(device, non_blocking=True,
                              memory_format=self.memory_format)   # (B, 3, h, w)
        gt = batch['log_depth'].to(device, non_blocking=True)     # (B, 1, H_out, W_out)
        mask = batch['mask'].to(device, non_blocking=True)        # (B, 1, H_out, W_out)
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            pred = self.net(x, stage=self.stage)                  # (B, 1, H_out, W_out)
        loss = scale_invariant_loss(pred.float(), gt, mask, lam=self.options.lam)
        # one exchange per step: non-finite losses, stop requests, undecodable images, time
        time_up = self.stage_deadline is not None and time.perf_counter() > self.stage_deadline
        flags = torch.tensor([0.0 if torch.isfinite(loss) else 1.0,
                              1.0 if stop.requested else 0.0,
                              float((~batch['ok']).sum()), float(time_up)], device=device)
        flags = _all_reduce(self.ctx, flags).cpu()
        self.bad_samples += int(flags[2])
        stop_now, time_up = bool(flags[1] > 0), bool(flags[3] > 0)
        if flags[0] > 0:
            return float(loss.detach()), False, stop_now, time_up
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(loss.detach()), True, stop_now, time_up

    # ----------------------------------------------------------------- validation

    def validate(self) -> dict[str, Any] | None:
        """
        Compute the mean loss and output-grid metrics on the validation set.

        Each process takes its share; the sums are reduced over all processes and rank 0
        logs them (:func:`~eigen_depth_training.validation.validation_pass`).
        """
        if self.val_set is None:
            return None
        self.model.eval()
        scores, first = validation_pass(self.model, self.stage, self.val_set, self.ctx,
                                        self.batch, self.options, self._autocast)
        self._set_train_mode()
        if scores is None:
            self._say('validation: no frame with ground truth')
            return None
        result = {'stage': self.stage, 'step': self.step, **scores}
        self.val_history.append(result)
        if self.ctx.is_main:
            self._log_event('val', **result)
            if self.writer is not None:
                gstep = self._global_step()
                for name in ('loss',) + METRIC_NAMES + ('obstacle_f1_10m', 'obstacle_f1_20m'):
                    self.writer.add_scalar(f'val/{name}', result[name], gstep)
                if first is not None:
                    add_sample_images(self.writer, *first, gstep)
            self._write_curves()
        return result

    def _write_curves(self) -> None:
        """Draw ``learning_curves.png`` beside the checkpoints (rank 0)."""
        write_learning_curves(self.out / 'learning_curves.png', self.train_history,
                              self.val_history, self.steps)

    # ----------------------------------------------------------------- checkpoints

    def _global_step(self) -> int:
        done = sum(self.steps[s] for s in self.stages[:self.stages.index(self.stage)])
        return done + self.step

    def save(self, names: tuple[str, ...], stage_done: bool = False) -> None:
        """
        Write the training state to ``<out>/<name>.pt`` for each name.

        Rank 0 writes; every process contributes its RNG states.
        """
        states = process_rng_states(self.ctx)
        if not self.ctx.is_main:
            return
        extra = {
            'stage': self.stage, 'step': self.step, 'stage_done': stage_done,
            'stages_done': list(self.stages_done), 'global_step': self._global_step(),
            'steps': dict(self.steps), 'samples_seen': self.samples_seen,
            'optimizer': self.optimizer.state_dict(), 'scaler': self.scaler.state_dict(),
            'rng': states, 'world_size': self.ctx.world_size,
            'sampler': {'epoch': self.epoch, 'position': self.position, 'batch': self.batch,
                        'seed': self.options.seed},
            'options': options_to_dict(self.options), 'val_history': self.val_history,
            'train_history': [list(row) for row in self.train_history],
            'bad_samples': self.bad_samples,
            'train_loss': self.train_loss,
            'f_train': self.f_train,
        }
        for name in names:
            path = save_checkpoint(self.out / f'{name}.pt', self.model, **extra)
            self.checkpoints[name] = path
            self._log_event('save', file=path.name)
        self.last_saved = (self.out / 'last.pt', self.stage, self.step)

    # ----------------------------------------------------------------- the loop

    def run(self) -> TrainResult:
        """Train every remaining stage; see :func:`train`."""
        opts = self.options
        start = self.stages.index(self.stage)
        self._steps_this_run = 0
        self._started = time.perf_counter()
        status = 'finished'
        with StopRequest() as stop:
            for stage in self.stages[start:]:
                if stage in self.stages_done:
                    continue
                if stage != self.stage:
                    self.step = 0
                self._begin_stage(stage)
                if self.step == 0:
                    self.validate()  # the stage's starting point
                status = self._run_stage(stop)
                if status != 'finished':
                    break
                self.stages_done.append(stage)
                self.validate()
                self.save(('last', 'coarse') if stage == 'coarse' else ('last',),
                          stage_done=True)
                self.resume_payload = None
            if status == 'finished':
                if not hasattr(self, 'optimizer'):  # resumed after every stage was done
                    self._begin_stage(self.stages[-1])
                self.save(('final',), stage_done=True)
                if self.ctx.is_main:
                    self._write_curves()
                self._log_event('finish')
        elapsed = time.perf_counter() - self._started
        rate = self._steps_this_run * opts.batch_size / elapsed if elapsed > 0 else 0.0
        if self.writer is not None:
            self.writer.close()
        report = self.train_set.report.as_dict()
        report['bad_samples'] = self.bad_samples
        return TrainResult(status, self.out, dict(self.checkpoints), self.stage, self.step,
                           dict(self.steps), self.train_loss, list(self.val_history), rate,
                           report, config_to_dict(self.config))

    def _run_stage(self, stop: StopRequest) -> str:
        """Run the current stage; return 'finished', 'stopped' or 'interrupted'."""
        from tqdm import tqdm

        opts = self.options
        total = self.steps[self.stage]
        bar = tqdm(total=total, initial=self.step, desc=f'{self.stage} stage', unit='step',
                   disable=not self.ctx.is_main or opts.no_progress, dynamic_ncols=True)
        window: list[float] = []
        batches = self._batches()
        try:
            while self.step < total:
                try:
                    batch = next(batches)
                except RuntimeError:
                    # a data worker killed by the same signal: stop at this step boundary
                    if not stop.requested:
                        raise
                    return self._stop_on_signal(stop)
                loss, finite, stop_now, time_up = self._train_step(batch, stop)
                if finite:
                    self.nonfinite_in_row = 0
                    window.append(loss)
                else:
                    self._skip_or_fail(loss)
                self.step += 1
                self.position += 1
                self.samples_seen += opts.batch_size
                self._steps_this_run += 1
                bar.update(1)
                if time_up and self.step < total:
                    total = self._end_stage_early(total)
                if self.step % opts.log_every == 0 or self.step == total:
                    self._log_train(window, bar)
                    window = []
                if opts.val_every and self.step % opts.val_every == 0 and self.step < total:
                    self.validate()
                if stop_now:
                    return self._stop_on_signal(stop)
                if opts.stop_after and self._steps_this_run >= opts.stop_after \
                        and self.step < total:
                    self.save(('last',))
                    self._log_event('stop', reason='stop-after')
                    return 'stopped'
                if self.step % opts.checkpoint_every == 0 and self.step < total:
                    self.save(('last',))
        finally:
            bar.close()
            batches.close()
        if window:
            self._log_train(window, bar)
        return 'finished'

    def _end_stage_early(self, planned: int) -> int:
        """End the stage at this step: its share of ``--time-budget`` is spent."""
        self.steps[self.stage] = self.step
        self._log_event('budget', planned_steps=planned)
        self._say(f'{self.stage} stage: its share of --time-budget is spent; ending it at step '
                  f'{self.step} of {planned}')
        return self.step

    def _stop_on_signal(self, stop: StopRequest) -> str:
        """Save ``last.pt`` at the current step boundary after SIGINT/SIGTERM."""
        name = stop.signal_name or 'signal'
        self.save(('last',))
        self._log_event('stop', reason=name)
        self._say(f'{name}: saved {self.out / "last.pt"} at {self.stage} step {self.step}; '
                  'continue with --resume')
        return 'interrupted'

    def _log_train(self, window: list[float], bar: Any) -> None:
        if not window:
            return
        self.train_loss = float(np.mean(window))
        self.train_history.append((self._global_step(), self.train_loss))
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        rate = self._steps_this_run * self.options.batch_size / elapsed
        bar.set_postfix(loss=f'{self.train_loss:.4f}', samples_s=f'{rate:.1f}')
        if self.writer is not None:
            gstep = self._global_step()
            self.writer.add_scalar('train/loss', self.train_loss, gstep)
            self.writer.add_scalar('train/samples_per_second', rate, gstep)
            for group in self.optimizer.param_groups:
                self.writer.add_scalar(f"lr/{group['name']}", group['lr'], gstep)

    def _skip_or_fail(self, loss: float) -> None:
        """
        Skip a step whose loss is not finite under float16 autocast, or stop the run.

        A float16 forward pass can overflow on an unusual batch; GradScaler guards only the
        backward pass. Such a step counts as taken without an update (as GradScaler's own
        skipped steps do), up to ``MAX_SKIPPED_STEPS`` in a row; any other non-finite loss
        stops the run (:meth:`_fail`).
        """
        self.nonfinite_in_row += 1
        if not self.skip_nonfinite or self.nonfinite_in_row > MAX_SKIPPED_STEPS:
            self._fail(loss)
        self._log_event('skip', reason='non-finite loss under float16 autocast',
                        loss=str(loss), in_row=self.nonfinite_in_row)
        self._say(f'non-finite loss ({loss}) at {self.stage} step {self.step + 1} under '
                  f'float16 autocast: step skipped ({self.nonfinite_in_row} in a row, at '
                  f'most {MAX_SKIPPED_STEPS})')

    def _fail(self, loss: float) -> None:
        """Stop on a non-finite loss without saving anything."""
        self._log_event('stop', reason='non-finite loss', loss=str(loss))
        if self.last_saved is None:
            kept = 'no checkpoint was written before it'
            last = None
        else:
            last, stage, step = self.last_saved
            kept = f'last good checkpoint: {last} ({stage} step {step})'
        raise NonFiniteLossError(
            f'non-finite loss ({loss}) at {self.stage} step {self.step + 1}; training '
            f'stopped without saving; {kept}', last)


# --------------------------------------------------------------------------- entry points

def train(options: argparse.Namespace, model_config: EigenDepthConfig | None = None
          ) -> TrainResult:
    """
    Train as the options say (the Python API of ``eigen-depth train``).

    Joins a torchrun job when the environment describes one (and leaves it at the end).

    :param options: from :func:`~eigen_depth_training.options.parse_options` or
        :func:`~eigen_depth_training.options.default_options` (``data_root``,
        ``train_split`` and ``out`` must be set).
    :param model_config: network configuration overriding ``--config``/``--width-mult``
        (e.g. a narrow test network); a resumed run uses its checkpoint's.
    :return: a :class:`TrainResult`.
    :raises NonFiniteLossError: the loss became NaN or infinite (nothing saved after the
        last good checkpoint, which the error names).
    :raises ValueError: bad input: options, split files (absent drives, empty split), no
        usable frame, a checkpoint that cannot be resumed
        (:class:`~eigen_depth_ros.core.checkpoint.CheckpointError`).
    """
    for flag in ('data_root', 'train_split', 'out'):
        if getattr(options, flag, None) is None:
            raise ValueError(f"option {flag} (--{flag.replace('_', '-')}) is required")
    ctx = setup_distributed(options.device, options.dist_backend, options.dist_timeout)
    try:
        with determinism(deterministic_wanted(options.deterministic, ctx.device)):
            trainer = Trainer(options, model_config, ctx)
            trainer.setup()
            return trainer.run()
    finally:
        leave_distributed(ctx)


def main(argv: list[str] | None = None) -> int:
    """
    Run ``eigen-depth train``: parse the options, train, return the exit status.

    0: done or stopped by ``--stop-after``; 2: bad input; 3: non-finite loss; 130:
    interrupted (SIGINT/SIGTERM).
    """
    options = parse_options(argv)
    rank = int(os.environ.get('RANK', '0'))
    try:
        result = train(options)
    except NonFiniteLossError as exc:
        if rank == 0:
            print(f'eigen-depth train: {exc}', file=sys.stderr)
        return EXIT_NONFINITE
    except (SplitError, KittiFormatError, CheckpointError, ValueError, OSError) as exc:
        if rank == 0:
            print(f'eigen-depth train: error: {exc}', file=sys.stderr)
        return 2
    if result.status == 'interrupted':
        return EXIT_INTERRUPTED
    if rank == 0:
        final = result.checkpoints.get('final') or result.checkpoints.get('last')
        val = result.val_history[-1] if result.val_history else None
        summary = (f'{result.status} at {result.stage} step {result.step}; '
                   f'{result.samples_per_second:.1f} samples/s; checkpoint {final}')
        if val is not None:
            summary += f"; val loss {val['loss']:.4f} abs_rel {val['abs_rel']:.3f}"
        print(f'eigen-depth train: {summary}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())

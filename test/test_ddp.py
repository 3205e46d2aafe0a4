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

"""Two CPU processes under torchrun (gloo): they train together and rank 0 saves once."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from eigen_depth_ros.core.checkpoint import load_checkpoint, read_checkpoint
from support import synthetic_kitti
import torch


def test_two_process_ddp_trains_and_saves_once(tmp_path):
    root, splits = synthetic_kitti()
    out = tmp_path / 'run'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'):
        env.pop(key, None)
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node',
           '2', '-m', 'eigen_depth_training.train',
           '--data-root', str(root), '--train-split', str(splits / 'train_files.txt'),
           '--val-split', str(splits / 'val_files.txt'), '--out', str(out),
           '--stage', 'coarse', '--coarse-samples', '24', '--batch-size', '4',
           '--width-mult', '0.0625', '--device', 'cpu', '--workers', '1',
           '--no-progress', '--no-tensorboard', '--checkpoint-every', '1000']
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [json.loads(line) for line in (out / 'train_log.jsonl').read_text().splitlines()]
    assert {e['rank'] for e in events} == {0}
    assert events[0]['event'] == 'start' and events[0]['world_size'] == 2
    saves = [e['file'] for e in events if e['event'] == 'save']
    assert sorted(saves) == ['coarse.pt', 'final.pt', 'last.pt']  # each exactly once
    assert sorted(p.name for p in out.glob('*.pt')) == ['coarse.pt', 'final.pt', 'last.pt']
    assert not list(out.glob('.*.tmp'))
    # rank 0 alone prints the summary
    assert proc.stderr.count('eigen-depth train: finished') == 1
    ckpt = read_checkpoint(out / 'final.pt')
    assert ckpt['world_size'] == 2 and ckpt['step'] == 6 and ckpt['samples_seen'] == 24
    assert ckpt['sampler']['batch'] == 2  # the global batch of 4 split over 2 processes
    # both processes' RNG states are kept (they differ: each has its own dropout stream)
    assert len(ckpt['rng']) == 2
    assert not torch.equal(ckpt['rng'][0]['torch'], ckpt['rng'][1]['torch'])
    model, _ = load_checkpoint(out / 'final.pt')
    assert all(torch.isfinite(p).all() for p in model.parameters())
    vals = [e for e in events if e['event'] == 'val']
    assert vals and all(e['images'] == 5 for e in vals)  # both shards counted once

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
Training under faults: SIGKILL at any moment, a full disk during a save, real divergence.

The training tests (test_train.py) already cover an injected NaN/inf loss (API and command
line), Ctrl-C and ``--stop-after``/``--resume`` equality; this file covers what they do not.
One run of ``eigen-depth train`` on the tiny synthetic drives of test_dataset (narrow
network, ``--checkpoint-every 1``) is hit by one fault after another, each in a new process:

* killed inside ``torch.save`` (half the bytes written), after the fsync but before the
  rename, right after the rename, and from outside as soon as a ``.last.pt.*.tmp`` appears;
* a save that fails with ``EFBIG`` (``RLIMIT_FSIZE`` below the checkpoint size, the kernel's
  own "disk full" for this process);

after each, ``last.pt`` must be the last complete checkpoint, and ``--resume`` must go on
from it; the final weights must equal those of one uninterrupted run.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

from eigen_depth_ros.core.checkpoint import read_checkpoint
from eigen_depth_training.train import EXIT_NONFINITE, main, train
import pytest
from support import cli_args, CLI_WIDTH_MULT, small_options
import torch

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures('one_torch_thread')]

COARSE_SAMPLES, FINE_SAMPLES = 40, 16           # batch 4: 10 coarse + 4 fine steps
RUN_TIMEOUT_S = 240

# Runs ``eigen-depth train`` with a fault armed by EIGEN_FAULT=<kind>:<n>, acting on the
# n-th write of last.pt in this process.
FAULT_RUNNER = r"""
import io, os, resource, signal, sys
import torch
import eigen_depth_ros.core.checkpoint as ck
from eigen_depth_training.train import main

kind, _, nth = os.environ.get('EIGEN_FAULT', ':0').partition(':')
nth = int(nth or 0)
state = {'writes': 0, 'armed': False}
real_write, real_save, real_replace = ck.write_atomically, torch.save, os.replace


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def write_atomically(path, payload):
    if path.name == 'last.pt':
        state['writes'] += 1
        state['armed'] = state['writes'] == nth
    try:
        real_write(path, payload)
    finally:
        state['armed'] = False
    if kind == 'after_rename' and path.name == 'last.pt' and state['writes'] == nth:
        die()


def save(payload, f, *args, **kwargs):
    if kind == 'mid_write' and state['armed']:
        buffer = io.BytesIO()
        real_save(payload, buffer)
        f.write(buffer.getvalue()[:len(buffer.getvalue()) // 2])
        f.flush()
        os.fsync(f.fileno())
        die()
    return real_save(payload, f, *args, **kwargs)


def replace(src, dst, *args, **kwargs):
    if kind == 'before_rename' and state['armed']:
        die()
    return real_replace(src, dst, *args, **kwargs)


ck.write_atomically, torch.save, os.replace = write_atomically, save, replace
if kind == 'fsize':   # writes beyond nth bytes fail with EFBIG instead of killing us
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nth, nth))
sys.exit(main(sys.argv[1:]))
"""


def tiny_options(out: Path) -> object:
    """Return the tiny run's options (``small_options``), checkpointing after every step."""
    return small_options(out, coarse_samples=COARSE_SAMPLES, fine_samples=FINE_SAMPLES,
                         checkpoint_every=1, val_split=None, width_mult=CLI_WIDTH_MULT)


def command(out: Path, resume: bool) -> list[str]:
    """Return the ``eigen-depth train`` arguments of the tiny run."""
    return cli_args(tiny_options(out)) + ['--checkpoint-every', '1'] + (
        ['--resume'] if resume else [])


def child_env() -> dict[str, str]:
    """Environment of a training child: one thread, the source tree importable."""
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    env.pop('EIGEN_FAULT', None)
    return env


def run_with_fault(out: Path, resume: bool, fault: str = '') -> subprocess.CompletedProcess:
    """Run the tiny training in a child with ``EIGEN_FAULT=fault`` armed."""
    env = child_env()
    if fault:
        env['EIGEN_FAULT'] = fault
    return subprocess.run([sys.executable, '-c', FAULT_RUNNER, *command(out, resume)],
                          env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)


def position(out: Path) -> tuple[str, int]:
    """(stage, step) of ``last.pt``; it must load completely."""
    payload = read_checkpoint(out / 'last.pt')
    assert all(torch.isfinite(v).all() for v in payload['state_dict'].values())
    return payload['stage'], payload['step']


def leftovers(out: Path) -> list[str]:
    """Temporary checkpoint files a killed save left behind."""
    return sorted(p.name for p in out.glob('.last.pt.*.tmp'))


def digest(path: Path) -> str:
    """SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def kill_when_a_checkpoint_is_being_written(out: Path) -> dict[str, object]:
    """Start the run, SIGKILL it the moment a ``.last.pt.*.tmp`` appears; what happened."""
    proc = subprocess.Popen([sys.executable, '-m', 'eigen_depth_ros.tools.cli', 'train',
                             *command(out, resume=True)], env=child_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stale = set(leftovers(out))   # earlier kills' leftovers do not count
    deadline = time.monotonic() + RUN_TIMEOUT_S
    seen = None
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            names = [e.name for e in os.scandir(out)
                     if e.name.startswith('.last.pt.') and e.name not in stale]
            if names:
                proc.send_signal(signal.SIGKILL)
                seen = names[0]
                break
            time.sleep(0.0005)
    finally:
        if proc.poll() is None and seen is None:
            proc.kill()
        code = proc.wait()
    return {'tmp_seen': seen, 'exit_code': code}


def test_killed_at_any_moment_resumes_from_the_last_good_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / 'run'
    report: dict[str, object] = {}

    # 1. killed inside torch.save of the 4th last.pt: half a file under the temporary name
    proc = run_with_fault(out, resume=False, fault='mid_write:4')
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert position(out) == ('coarse', 3)
    assert len(leftovers(out)) == 1   # nobody is left to delete it; it is never read
    report['mid_write'] = {'last.pt': position(out), 'leftover_tmp': leftovers(out)}

    # 2. resumed, then killed after the fsync of its 2nd save, before the rename
    proc = run_with_fault(out, resume=True, fault='before_rename:2')
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert position(out) == ('coarse', 4)
    report['before_rename'] = {'last.pt': position(out)}

    # 3. resumed, then killed right after the rename of its 1st save: that one counts
    proc = run_with_fault(out, resume=True, fault='after_rename:1')
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert position(out) == ('coarse', 5)
    report['after_rename'] = {'last.pt': position(out)}

    # 4. resumed, then killed from outside while a checkpoint is being written
    outcome = kill_when_a_checkpoint_is_being_written(out)
    stage, step = position(out)
    assert outcome['exit_code'] == -signal.SIGKILL, outcome
    assert (stage, step) >= ('coarse', 5) or stage == 'fine'
    report['external_kill'] = {**outcome, 'last.pt': (stage, step)}

    # 5. resumed with a full disk: every file this process writes may grow to half a
    #    checkpoint, no further; the first save fails, the previous one stays as it was
    before, stale = digest(out / 'last.pt'), leftovers(out)
    proc = run_with_fault(out, resume=True,
                          fault=f'fsize:{(out / "last.pt").stat().st_size // 2}')
    errors = [line for line in proc.stderr.splitlines() if 'error' in line]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(errors) == 1 and 'File too large' in errors[0], proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr
    assert digest(out / 'last.pt') == before and leftovers(out) == stale
    report['disk_full'] = {'exit_code': proc.returncode, 'error': errors[0][-120:],
                           'last.pt unchanged': True}

    # 6. resumed to the end: the same weights as one uninterrupted run
    proc = run_with_fault(out, resume=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    straight = train(tiny_options(tmp_path / 'straight'))
    assert straight.status == 'finished'
    a = read_checkpoint(out / 'final.pt')
    b = read_checkpoint(tmp_path / 'straight' / 'final.pt')
    assert (a['stage'], a['step'], a['samples_seen']) == \
        (b['stage'], b['step'], b['samples_seen'])
    for key, value in b['state_dict'].items():
        assert torch.equal(value, a['state_dict'][key]), key
    starts = [json.loads(line) for line in (out / 'train_log.jsonl').read_text().splitlines()
              if '"start"' in line]
    assert [s['resumed_from'] is not None for s in starts] == [False] + [True] * 5
    print('\ntraining fault report:', json.dumps(report, default=str))


def test_real_divergence_stops_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A learning rate a million times too large: no injected NaN, the real thing."""
    out = tmp_path / 'run'
    code = main(cli_args(tiny_options(out)) + ['--checkpoint-every', '1', '--lr-scale', '1e6'])
    err = capsys.readouterr().err
    assert code == EXIT_NONFINITE, err[-2000:]
    lines = [line for line in err.splitlines() if 'non-finite' in line]
    assert len(lines) == 1 and 'Traceback' not in err
    if (out / 'last.pt').exists():   # the last good checkpoint, finite
        position(out)
    assert not (out / 'final.pt').exists()

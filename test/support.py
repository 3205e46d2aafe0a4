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
Helpers shared by several test modules (plain functions; fixtures live in conftest.py).

- the narrow KITTI network of the fast tests (:data:`SMALL_KITTI`) and a checkpoint of it;
- the synthetic KITTI drives of the training and evaluation tests (written once per
  session) and the options of a seconds-long training run on them;
- the 3-frame synthetic drive of the bag tests and running ``eigen-depth bag-eval`` on a
  bag;
- what tests do over DDS beyond the harness (:mod:`eigen_depth_ros.node.harness`), which
  tools and bags share: read a node's ``/rosout`` (:func:`subscribe_rosout`, :func:`logs`,
  :func:`wait_log`) and repeat a best-effort message until it took effect
  (:func:`publish_until`).
"""
from __future__ import annotations

import argparse
import atexit
import functools
from pathlib import Path
import shutil
import tempfile
import time
from typing import Any, Callable

from eigen_depth_ros.bags import bag_eval
from eigen_depth_ros.core.checkpoint import save_checkpoint
from eigen_depth_ros.core.model import EigenDepthConfig, EigenDepthNet, KITTI
from eigen_depth_ros.node.harness import HarnessTimeout, RosSide, WAIT_S
from eigen_depth_training.options import default_options
from eigen_depth_training.splits import build_eigen_split
from eigen_depth_training.synth import write_synthetic_kitti
import numpy as np
import torch

SYNTH_SIZE = (414, 125)  # a third of KITTI's 1242x375: fast to render, same aspect
CLI_WIDTH_MULT = 0.0625  # the narrow network of cli_args
BAG_DRIVE = '2011_09_26_drive_0002'  # the drive of the bag tests (an Eigen test drive)
ROSOUT_DEPTH = 1000  # /rosout history kept by subscribe_rosout (also lines logged before)

# The KITTI sizes with narrow layers: same geometry, milliseconds per forward pass.
SMALL_KITTI = EigenDepthConfig('kitti-small', KITTI.input_width, KITTI.input_height,
                               KITTI.fine_row_start, KITTI.fine_input_height,
                               coarse_channels=(8, 16, 16, 16, 16), fc_width=64,
                               fine_channels=8)


# --------------------------------------------------------------------------- networks

def write_small_checkpoint(path: Path) -> Path:
    """
    Write a checkpoint of :data:`SMALL_KITTI` predicting about 10 m everywhere.

    Its output is log(10 m) plus a little structure, so predictions are finite and positive.

    :return: ``path``.
    """
    torch.manual_seed(0)
    model = EigenDepthNet(SMALL_KITTI)
    with torch.no_grad():
        model.fine.conv4.bias.fill_(float(torch.log(torch.tensor(10.0))))
    return save_checkpoint(path, model)


# --------------------------------------------------------------------------- training data

@functools.lru_cache(maxsize=None)
def synthetic_kitti() -> tuple[Path, Path]:
    """
    Write five synthetic drives x 5 frames once per test session.

    Shared by the training and evaluation tests; returns ``(KITTI root, folder with
    train/val/test_files.txt)``.

    Drives 0002 and 0009 are Eigen test drives; of 0001, 0003 and 0004 one is validation.
    """
    base = Path(tempfile.mkdtemp(prefix='eigen_depth_kitti_'))
    atexit.register(shutil.rmtree, base, True)
    root = base / 'raw'
    write_synthetic_kitti(root, drives=5, frames=5, seed=3, size=SYNTH_SIZE, stationary=0)
    split = build_eigen_split(root, val_fraction=0.3, seed=0, skip_stationary=False)
    split.write(base / 'splits')
    return root, base / 'splits'


def copy_drive(tmp_path: Path, drive: str) -> Path:
    """Copy one drive of the shared synthetic data into a private root (to damage it)."""
    root, _ = synthetic_kitti()
    date = drive.split('/')[0]
    dst = tmp_path / 'raw'
    (dst / date).mkdir(parents=True)
    for calib in (root / date).glob('calib_*.txt'):
        shutil.copy(calib, dst / date)
    shutil.copytree(root / drive, dst / drive)
    return dst


def small_options(out: Path, **overrides: Any) -> argparse.Namespace:
    """Return options for a seconds-long run on the shared synthetic drives."""
    root, splits = synthetic_kitti()
    values = {'data_root': root, 'train_split': splits / 'train_files.txt',
              'val_split': splits / 'val_files.txt', 'out': out,
              'cache_dir': out.parent / 'cache', 'batch_size': 4, 'coarse_samples': 16,
              'fine_samples': 16, 'workers': 0, 'checkpoint_every': 1000, 'val_every': 0,
              'no_progress': True, 'no_tensorboard': True, 'device': 'cpu'}
    values.update(overrides)
    return default_options(**values)


def cli_args(options: argparse.Namespace) -> list[str]:
    """Return the command line equivalent of (the path options of) ``small_options``."""
    return ['--data-root', str(options.data_root), '--train-split', str(options.train_split),
            '--out', str(options.out), '--cache-dir', str(options.cache_dir),
            '--batch-size', str(options.batch_size), '--width-mult', str(CLI_WIDTH_MULT),
            '--coarse-samples', str(options.coarse_samples), '--fine-samples',
            str(options.fine_samples), '--workers', '0', '--no-progress', '--no-tensorboard',
            '--device', 'cpu']


# --------------------------------------------------------------------------- bag tests

def write_bag_world(root: Path) -> Path:
    """Write the bag tests' world, :data:`BAG_DRIVE` with 3 frames, under ``root``."""
    write_synthetic_kitti(root, drives=1, frames=3, seed=4, drive_names=[BAG_DRIVE])
    return root


def dense_depth(kitti_root: Path, index: int) -> np.ndarray:
    """Load the synthetic world's dense true depth of one frame (inf where nothing is hit)."""
    return np.load(kitti_root / '2011_09_26' / f'{BAG_DRIVE}_sync' / 'synthetic_depth_02'
                   / f'{index:010d}.npy')


def error_lines(err: str) -> list[str]:
    """Return the error lines of a CLI's stderr (tqdm's progress lines left out)."""
    return [line for line in err.splitlines() if 'error:' in line]


def run_eval(tmp_path: Path, bag: Path, checkpoint: Path, *extra: str) -> tuple[int, Path]:
    """Run ``eigen-depth bag-eval`` offline on the CPU; return its exit code and out folder."""
    out = tmp_path / 'out'
    code = bag_eval.main([str(bag), '--checkpoint', str(checkpoint), '--out', str(out),
                          '--device', 'cpu', *extra])
    return code, out


# --------------------------------------------------------------------------- a node's log

def subscribe_rosout(ros: RosSide) -> Any:
    """Subscribe ``/rosout`` on ``ros``, also what was logged before (read with :func:`logs`)."""
    from rcl_interfaces.msg import Log
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    return ros.subscribe('/rosout', Log, QoSProfile(
        depth=ROSOUT_DEPTH, reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL))


def logs(ros: RosSide, node: str) -> list[str]:
    """Return what the node of logger name ``node`` (``ns.eigen_depth``) logged so far."""
    with ros.cond:
        return [a.msg.msg for a in ros.received.get('/rosout', ()) if a.msg.name == node]


def wait_log(ros: RosSide, node: str, text: str, start: int = 0,
             timeout: float = WAIT_S) -> str:
    """Wait for a log line of ``node`` containing ``text``, from its ``start``-th line."""
    return ros.wait(lambda: next((m for m in logs(ros, node)[start:] if text in m), None),
                    timeout, f'log {text!r} from {node}')


def publish_until(ros: RosSide, topic: str, msg: Any, predicate: Callable[[], Any],
                  what: str, period: float = 0.5, timeout: float = WAIT_S) -> Any:
    """
    Publish ``msg`` every ``period`` s until ``predicate()`` holds; return its value.

    Best effort may lose a first message while the node's side of discovery still lags
    ours, so a message that must arrive is repeated.

    :raises HarnessTimeout: after ``timeout`` s.
    """
    deadline = time.monotonic() + timeout
    while True:
        ros.publish(topic, msg)
        try:
            return ros.wait(predicate, period, what)
        except HarnessTimeout:
            if time.monotonic() > deadline:
                raise HarnessTimeout(f'timed out after {timeout:g} s waiting for {what}'
                                     ) from None

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
Command-line options of ``eigen-depth train``: one parser, grouped, every flag documented.

The defaults are the paper's KITTI recipe (Eigen, Puhrsch & Fergus, NIPS 2014, section 3.3)
except for the optimiser, whose default is the measured from-scratch recipe (``--recipe
scratch``: Adam, learning rate 3e-4, He initialisation; see docs/training.md). ``--recipe
paper`` restores the paper's optimiser: SGD with momentum 0.9, batch 32, per-layer learning
rates (coarse conv 1-5: 0.001, coarse
fully connected 6-7: 0.1, fine layers 1 and 4: 0.001, fine layer 3: 0.01), the coarse stack
trained for 1.5M samples, then the fine stack for 1M samples with the coarse stack frozen,
loss of Eq. 4 with lambda = 0.5, and the KITTI augmentations (scale s in [1, 1.2] with
depths divided by s, random crop, colour c in [0.8, 1.2]^3, horizontal flip p = 0.5).

Options resolve to an :class:`argparse.Namespace`; :func:`options_to_dict` turns it into the
plain dict stored in every checkpoint and written as ``options.json`` beside it.
"""
from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any

from eigen_depth_ros.core.model import CONFIGS, EigenDepthConfig, resolve_config

#: Paper learning rates per parameter group (:meth:`EigenDepthNet.parameter_groups` names).
PAPER_LEARNING_RATES = {'coarse_conv': 1e-3, 'coarse_fc': 0.1,
                        'fine_outer': 1e-3, 'fine_middle': 1e-2}

#: Learning rate of Adam in the from-scratch recipe (every parameter group).
SCRATCH_LEARNING_RATE = 3e-4

#: Preloading (``--preload auto``) keeps the decoded frames in memory up to this many bytes.
PRELOAD_AUTO_LIMIT = 6 * 1024 ** 3

#: Minutes a torchrun process may wait in a collective (``--dist-timeout``): rank 0 builds
#: the LiDAR depth cache of a first full-KITTI run while the others wait in a barrier,
#: longer than NCCL's default 10 minutes.
DEFAULT_DIST_TIMEOUT_MIN = 180.0

#: float16 autocast (GPUs without bfloat16): non-finite steps in a row skipped before stopping.
MAX_SKIPPED_STEPS = 5

#: Which parameter groups each stage trains.
STAGE_GROUPS = {'coarse': ('coarse_conv', 'coarse_fc'), 'fine': ('fine_outer', 'fine_middle')}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be a positive integer, got {text}')
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'must be >= 0, got {text}')
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f'must be a positive number, got {text}')
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f'must be in [0, 1], got {text}')
    return value


def build_parser(prog: str = 'eigen-depth train') -> argparse.ArgumentParser:
    """
    Build the training parser.

    Its groups: data, model, optimisation, schedule, logging and devices/distributed.
    """
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description='Train the Eigen et al. (NIPS 2014) depth network on KITTI raw drives. '
                    "Defaults are the paper's KITTI recipe. Works under torchrun "
                    '(DistributedDataParallel); see docs/training.md.')

    data = parser.add_argument_group('data')
    data.add_argument('--data-root', type=Path, default=None,
                      help='KITTI raw root (<root>/<date>/<date>_drive_NNNN_sync/...); '
                           'required')
    data.add_argument('--train-split', type=Path, default=None,
                      help='split file of the training frames, one "<date>/<drive> <frame> '
                           '<l|r>" line each; required')
    data.add_argument('--val-split', type=Path, default=None,
                      help='split file of the validation frames (held-out drives); no '
                           'validation when omitted')
    data.add_argument('--sides', choices=('listed', 'left', 'both'), default='listed',
                      help='cameras used for training: as the split lists them, the left '
                           'one (image_02) only, or both colour cameras for every listed '
                           'frame (the paper uses both as training shots)')
    data.add_argument('--cache-dir', type=Path, default=None,
                      help='folder for the projected LiDAR depth of every frame (one .npz '
                           'each, built once); default: <out>/depth_cache')
    data.add_argument('--min-depth', type=_positive_float, default=1e-3,
                      help='ground truth below this depth (m) is ignored')
    data.add_argument('--max-depth', type=_positive_float, default=80.0,
                      help='ground truth beyond this depth (m, after augmentation scaling) '
                           'is ignored')
    data.add_argument('--scale-max', type=float, default=1.2,
                      help='augmentation: images are zoomed by s ~ U[1, scale-max] and depths '
                           'divided by s (1 disables)')
    data.add_argument('--colour-range', type=float, nargs=2, default=(0.8, 1.2),
                      metavar=('LOW', 'HIGH'),
                      help='augmentation: each RGB channel is multiplied by c ~ U[LOW, HIGH]')
    data.add_argument('--flip-prob', type=_probability, default=0.5,
                      help='augmentation: probability of a horizontal flip of image and depth')
    data.add_argument('--canonical-focal', type=_positive_float, default=None,
                      metavar='F',
                      help='focal length (pixels at the network input scale, e.g. 334.7 for '
                           "KITTI's 721.5 px at 1242x375) that every target depth is rescaled "
                           'to (depth x F / f_frame) and that the checkpoint records as '
                           'f_train; default: the mean over the training frames')
    data.add_argument('--preload', choices=('auto', 'on', 'off'), default='auto',
                      help='decode every validation frame (and, with --data-pipeline raw, '
                           'every training frame) once and keep it in memory (auto: when the '
                           'frames fit in 6 GiB), so that samples cost only the augmentation')
    data.add_argument('--data-pipeline', choices=('prepared', 'raw'), default='prepared',
                      help='prepared: decode and resize every training frame once into a '
                           'memory-mapped prepared set (--prepared-dir; rebuilt when the '
                           'files, the split or the geometry change) and augment whole '
                           'batches in torch on the training device; raw: decode PNGs and '
                           'augment sample by sample in numpy (slower, no extra disk)')
    data.add_argument('--prepared-dir', type=Path, default=None,
                      help='folder of the prepared training set (default: <out>/prepared)')
    data.add_argument('--no-augment', action='store_true',
                      help='train on the centre crop without any augmentation')

    model = parser.add_argument_group('model')
    model.add_argument('--config', choices=sorted(CONFIGS), default='kitti',
                       help='network size: kitti (576x172 -> 142x27) or nyu (304x228 -> '
                            '74x55); the data loader reads the KITTI raw layout either way')
    model.add_argument('--width-mult', type=_positive_float, default=1.0,
                       help='NARROW VARIANT (not the paper): multiply every layer width '
                            '(conv channels, FC 6 width, fine channels) by this factor, e.g. '
                            '0.125 for CPU demos; sizes and geometry are unchanged')
    model.add_argument('--dropout', type=_probability, default=0.5,
                       help='dropout probability after coarse fully connected layer 6')
    model.add_argument('--init', type=Path, default=None,
                       help='checkpoint to start from (e.g. a trained coarse stack for '
                            '--stage fine, or user-supplied ImageNet-initialised weights); '
                            'weights only, training starts at step 0')

    optim = parser.add_argument_group('optimisation')
    optim.add_argument('--recipe', choices=('scratch', 'paper'), default='scratch',
                       help='scratch: Adam at --adam-lr for every layer (measured to learn '
                            "from random weights, docs/training.md); paper: the paper's SGD "
                            'with momentum and per-layer learning rates (--lr-*), which '
                            'assume ImageNet-initialised convolutions. Both start from He '
                            'initialisation unless --init gives weights')
    optim.add_argument('--adam-lr', type=_positive_float, default=SCRATCH_LEARNING_RATE,
                       help='learning rate of Adam (--recipe scratch), times --lr-scale')
    optim.add_argument('--batch-size', type=_positive_int, default=32,
                       help='global batch (split evenly over the processes of a torchrun '
                            'job; must be divisible by their number)')
    optim.add_argument('--momentum', type=float, default=0.9,
                       help='SGD momentum (--recipe paper)')
    optim.add_argument('--weight-decay', type=float, default=0.0,
                       help='SGD weight decay (the paper does not state one)')
    optim.add_argument('--lr-coarse-conv', type=_positive_float,
                       default=PAPER_LEARNING_RATES['coarse_conv'],
                       help='learning rate of coarse conv 1-5 (--recipe paper)')
    optim.add_argument('--lr-coarse-fc', type=_positive_float,
                       default=PAPER_LEARNING_RATES['coarse_fc'],
                       help='learning rate of coarse fully connected 6-7 (--recipe paper)')
    optim.add_argument('--lr-fine-outer', type=_positive_float,
                       default=PAPER_LEARNING_RATES['fine_outer'],
                       help='learning rate of fine conv 1 (before the concat) and the output '
                            'conv 4 (--recipe paper)')
    optim.add_argument('--lr-fine-middle', type=_positive_float,
                       default=PAPER_LEARNING_RATES['fine_middle'],
                       help='learning rate of fine conv 3 (right after the concat; '
                            '--recipe paper)')
    optim.add_argument('--lr-scale', type=_positive_float, default=1.0,
                       help='multiply all four learning rates (1 = the paper)')
    optim.add_argument('--lam', type=float, default=0.5,
                       help='lambda of the scale-invariant loss, Eq. 4 (0: L2 in log space, '
                            '1: the scale-invariant error D)')

    schedule = parser.add_argument_group('schedule')
    schedule.add_argument('--stage', choices=('coarse', 'fine', 'both'), default='both',
                          help='coarse stack only, fine stack only (coarse frozen; needs '
                               '--init or --resume), or both: coarse first, then fine')
    schedule.add_argument('--coarse-samples', type=_positive_int, default=1_500_000,
                          help='training samples seen by the coarse stage (steps = '
                               'ceil(samples / batch))')
    schedule.add_argument('--fine-samples', type=_positive_int, default=1_000_000,
                          help='training samples seen by the fine stage')
    schedule.add_argument('--time-budget', type=float, default=0.0, metavar='MIN',
                          help='train for at most MIN minutes (0: no limit); the stages share '
                               'it in proportion to their planned steps, and a stage whose '
                               'share is spent ends there, validated and saved as if complete '
                               '(for fixed-time runs such as eigen-depth gpu-run)')
    schedule.add_argument('--seed', type=int, default=0,
                          help='seed of initialisation, shuffling, augmentation and dropout')
    schedule.add_argument('--stop-after', type=_non_negative_int, default=0,
                          help='save and stop after this many optimiser steps of this '
                               'invocation (for time-limited job slots; --resume goes on); '
                               '0 = run to the end')

    logging = parser.add_argument_group('logging and checkpoints')
    logging.add_argument('--out', type=Path, default=None,
                         help='output folder: last.pt, coarse.pt, final.pt, options.json, '
                              'train_log.jsonl, tb/ (TensorBoard); required')
    logging.add_argument('--checkpoint-every', type=_positive_int, default=1000,
                         help='write last.pt every this many optimiser steps (and always at '
                              'the end of a stage)')
    logging.add_argument('--val-every', type=_non_negative_int, default=2000,
                         help='validate every this many steps, and at the start and end of '
                              'each stage (0: only at the start and end)')
    logging.add_argument('--val-max-frames', type=_non_negative_int, default=0,
                         help='validate on at most this many frames, evenly spread (0: all)')
    logging.add_argument('--log-every', type=_positive_int, default=20,
                         help='write training scalars every this many steps')
    logging.add_argument('--resume', nargs='?', const='last', default=None, metavar='CKPT',
                         help='continue a run exactly where a checkpoint left it (default: '
                              '<out>/last.pt)')
    logging.add_argument('--no-tensorboard', action='store_true',
                         help='do not write TensorBoard event files')
    logging.add_argument('--no-progress', action='store_true', help='no tqdm progress bar')

    run = parser.add_argument_group('devices and distributed')
    run.add_argument('--device', default='auto',
                     help="'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'; under "
                          'torchrun each process takes cuda:LOCAL_RANK')
    run.add_argument('--amp', nargs='?', const='on', choices=('auto', 'on', 'off'),
                     default='auto',
                     help='mixed precision: bfloat16 autocast on the CPU and on GPUs that '
                          'support it (Ampere and later; no overflow, no GradScaler); '
                          'float16 autocast with a GradScaler on older GPUs, where up to '
                          f'{MAX_SKIPPED_STEPS} non-finite steps in a row are skipped before '
                          'the run stops (auto: on CUDA, and on CPUs with native bfloat16, '
                          'AVX512-BF16 or AMX)')
    run.add_argument('--deterministic', choices=('auto', 'on', 'off'), default='auto',
                     help='deterministic cuDNN/cuBLAS kernels, so that --resume continues '
                          'bit-exactly on a GPU too (auto: on CUDA; the CPU is bit-exact '
                          'without it); off may be a little faster')
    run.add_argument('--workers', type=_non_negative_int, default=min(4, os.cpu_count() or 1),
                     help='data-loading worker processes per training process')
    run.add_argument('--dist-backend', choices=('auto', 'nccl', 'gloo'), default='auto',
                     help='torch.distributed backend under torchrun (auto: nccl on CUDA, '
                          'gloo on CPU)')
    run.add_argument('--dist-timeout', type=_positive_float, default=DEFAULT_DIST_TIMEOUT_MIN,
                     metavar='MIN',
                     help='minutes a process may wait for the others under torchrun (rank 0 '
                          'builds the LiDAR depth cache of a first full-KITTI run while the '
                          "others wait; NCCL's own default of 10 minutes is too short)")
    return parser


def add_train_arguments(group: Any, defaults: dict[str, Any],
                        notes: dict[str, str] | None = None) -> None:
    """
    Declare some of ``eigen-depth train``'s options on another parser (the demo's).

    Each keeps train's flag, type (with its validation), choices, metavar and help, so the two
    cannot drift apart; only its default is the one given.

    :param group: an :class:`argparse.ArgumentParser` or one of its argument groups.
    :param defaults: destination name -> default here, e.g. ``{'width_mult': 0.125}``.
    :param notes: destination name -> what the help says of the default, instead of its
        value (e.g. for a default of None that the caller resolves).
    """
    notes = notes or {}
    actions = {action.dest: action for action in build_parser()._actions}
    for dest, default in defaults.items():
        action = actions[dest]
        note = notes.get(dest, '%(default)s')
        group.add_argument(*action.option_strings, type=action.type, choices=action.choices,
                           metavar=action.metavar, default=default,
                           help=f'{action.help} (default here: {note})')


def parse_options(argv: list[str] | None = None, require_paths: bool = True
                  ) -> argparse.Namespace:
    """
    Parse and check training options.

    :param argv: arguments without the program name (default ``sys.argv[1:]``).
    :param require_paths: demand ``--data-root``, ``--train-split`` and ``--out``.
    :raises SystemExit: via argparse, with a one-line error, on bad options.
    """
    parser = build_parser()
    options = parser.parse_args(argv)
    problem = check_options(options, require_paths)
    if problem:
        parser.error(problem)
    return options


def check_options(options: argparse.Namespace, require_paths: bool = True) -> str | None:
    """Return a one-line description of the first problem in ``options``, or None."""
    if require_paths:
        for flag in ('data_root', 'train_split', 'out'):
            if getattr(options, flag) is None:
                return f"the option --{flag.replace('_', '-')} is required"
    if options.scale_max < 1.0:
        return f'--scale-max must be >= 1, got {options.scale_max}'
    low, high = options.colour_range
    if not 0 < low <= high:
        return f'--colour-range needs 0 < LOW <= HIGH, got {low} {high}'
    if not (math.isfinite(options.time_budget) and options.time_budget >= 0):
        return f'--time-budget must be >= 0 minutes, got {options.time_budget}'
    if options.min_depth >= options.max_depth:
        return '--min-depth must be below --max-depth'
    for stage, samples in (('coarse', options.coarse_samples), ('fine', options.fine_samples)):
        if options.stage in (stage, 'both') and samples < options.batch_size:
            return (f'--{stage}-samples {samples} is less than one batch of '
                    f'{options.batch_size} (--batch-size)')
    if options.stage == 'fine' and options.init is None and options.resume is None:
        return '--stage fine trains on a trained coarse stack: give --init CKPT or --resume'
    return None


def default_options(**overrides: Any) -> argparse.Namespace:
    """
    Return the defaults of every option (the paper's recipe) with ``overrides``.

    Keys are the attribute names (``batch_size``, ``coarse_samples``, ...); paths may be
    given as strings. Used by the Python API (:func:`eigen_depth_training.train.train`).

    :raises ValueError: for an unknown key or a combination :func:`check_options` rejects
        (paths are not required here).
    """
    options = build_parser().parse_args([])
    path_keys = {'data_root', 'train_split', 'val_split', 'cache_dir', 'init', 'out',
                 'prepared_dir'}
    for key, value in overrides.items():
        if not hasattr(options, key):
            raise ValueError(f'unknown training option {key!r}')
        if key in path_keys and value is not None:
            value = Path(value)
        setattr(options, key, value)
    problem = check_options(options, require_paths=False)
    if problem:
        raise ValueError(problem)
    return options


def learning_rates(options: argparse.Namespace) -> dict[str, float]:
    """
    Return the learning rate of each parameter group, ``--lr-scale`` applied.

    ``--recipe scratch``: ``--adam-lr`` for every group; ``--recipe paper``: the ``--lr-*``
    per-layer rates.
    """
    if options.recipe == 'scratch':
        lr = options.adam_lr * options.lr_scale
        return dict.fromkeys(PAPER_LEARNING_RATES, lr)
    return {'coarse_conv': options.lr_coarse_conv * options.lr_scale,
            'coarse_fc': options.lr_coarse_fc * options.lr_scale,
            'fine_outer': options.lr_fine_outer * options.lr_scale,
            'fine_middle': options.lr_fine_middle * options.lr_scale}


def model_config(options: argparse.Namespace) -> EigenDepthConfig:
    """
    Return the network configuration the options ask for.

    With ``--width-mult m`` != 1 this is the documented **narrow variant**: coarse conv
    channels, the FC 6 width and the fine channels are multiplied by m (rounded, at least 2);
    input, output and crop geometry stay those of ``--config``. Its name is e.g.
    ``kitti-narrow0.125``.
    """
    base = resolve_config(options.config)
    mult = float(options.width_mult)
    if mult == 1.0 and options.dropout == base.dropout:
        return base

    def scaled(n: int) -> int:
        return max(2, int(round(n * mult)))

    name = base.name if mult == 1.0 else f'{base.name}-narrow{mult:g}'
    return EigenDepthConfig(
        name, base.input_width, base.input_height, base.fine_row_start,
        base.fine_input_height,
        coarse_channels=tuple(scaled(c) for c in base.coarse_channels),  # type: ignore
        fc_width=scaled(base.fc_width), fine_channels=scaled(base.fine_channels),
        dropout=options.dropout)


def stage_steps(options: argparse.Namespace) -> dict[str, int]:
    """Return the optimiser steps of each stage to run: ``ceil(samples / batch)``."""
    stages = ('coarse', 'fine') if options.stage == 'both' else (options.stage,)
    samples = {'coarse': options.coarse_samples, 'fine': options.fine_samples}
    return {stage: math.ceil(samples[stage] / options.batch_size) for stage in stages}


def options_to_dict(options: argparse.Namespace) -> dict[str, Any]:
    """Return a plain-type dict of ``options`` (paths as strings, tuples as lists)."""
    out: dict[str, Any] = {}
    for key, value in sorted(vars(options).items()):
        if isinstance(value, os.PathLike):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


def save_options_json(path: str | os.PathLike, options: argparse.Namespace,
                      **extra: Any) -> Path:
    """Write the resolved options (plus ``extra`` entries) as indented JSON, atomically."""
    path = Path(path)
    payload = {'options': options_to_dict(options), **extra}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.tmp')
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + '\n', encoding='utf-8')
    os.replace(tmp, path)
    return path

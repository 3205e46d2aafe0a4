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
``eigen-depth prepare``: write the prepared training set before training.

It takes ``eigen-depth train``'s options and prepares exactly the set that ``train`` with the
same options reads (``--prepared-dir``, default ``<out>/prepared``), so the preparation can
run apart, e.g. on a machine with many cores before a multi-GPU job. ``train`` prepares on
first use anyway. Prints the folder, its size and the time it took.
"""
from __future__ import annotations

import sys

from .dataset import KittiDepthDataset
from .kitti import KittiFormatError
from .options import build_parser, check_options, model_config
from .prepared import ensure_prepared, PreparedSetError
from .splits import SplitError
from .train import dataset_arguments, prepared_location


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 when the set is ready, 2 with a one-line error on bad input."""
    parser = build_parser('eigen-depth prepare')
    parser.description = ("Write the prepared training set that 'eigen-depth train' with the "
                          'same options reads (train does it on first use).')
    options = parser.parse_args(argv)
    problem = check_options(options)
    if problem:
        parser.error(problem)

    def say(text: str) -> None:
        print(f'eigen-depth prepare: {text}', file=sys.stderr)

    try:
        kwargs = dataset_arguments(options, model_config(options), options.train_split,
                                   train=True)
        dataset = KittiDepthDataset(progress=not options.no_progress, **kwargs)
        folder, scale_max = prepared_location(options)
        prepared = ensure_prepared(dataset, folder, scale_max, workers=options.workers,
                                   progress=not options.no_progress, say=say)
    except (SplitError, KittiFormatError, PreparedSetError, ValueError, OSError) as exc:
        say(f'error: {exc}')
        return 2
    say(f'{len(prepared)} frames ready in {prepared.folder} '
        f'({dataset.report.summary()})')
    return 0

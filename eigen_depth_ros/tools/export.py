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
``eigen-depth export``: a checkpoint to ONNX or TorchScript, checked against PyTorch.

The exported graph takes ``image`` (N, 3, H_in, W_in) float32, normalised as
:func:`eigen_depth_ros.core.model.normalize_image` does (RGB / 255, minus the ImageNet mean,
divided by its std), and returns ``log_depth`` (N, 1, H_out, W_out) float32, the natural log
of metres: KITTI 576x172 -> 142x27, NYU 304x228 -> 74x55. The batch axis N is dynamic
(ONNX: named ``batch``) unless ``--static-batch`` is given. ONNX files use opset
:data:`~eigen_depth_ros.core.backends.ONNX_OPSET` by default and the TorchScript-based exporter.

After writing, the command runs the file (ONNX Runtime, or ``torch.jit.load``) on two
images and compares with the float32 PyTorch network; it exits non-zero, naming the largest
difference in log depth, when that is above ``--tolerance`` (default 1e-4), and removes the
file so a bad export is never left under the requested name.
"""
from __future__ import annotations

import argparse
from pathlib import Path
import sys
import time
import warnings

from eigen_depth_ros.core.backends import export_onnx, ONNX_OPSET, onnx_session, prepare_export
from eigen_depth_ros.core.checkpoint import CheckpointError, load_checkpoint
from eigen_depth_ros.core.model import EigenDepthNet, normalize_image, Stage
import numpy as np
import torch

DEFAULT_TOLERANCE = 1e-4


class ExportCheckError(RuntimeError):
    """The exported model's output differs from the PyTorch network's by too much."""


def export_torchscript(model: EigenDepthNet, path: str | Path, stage: Stage = 'fine') -> Path:
    """
    Trace the float32 network for ``stage`` and save it with ``torch.jit.save``.

    The traced module takes the normalised image (N, 3, H_in, W_in) (any N) and returns the
    log depth (N, 1, H_out, W_out).

    :return: the path written.
    """
    path, module, example = prepare_export(model, path, stage)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter('ignore')  # tracer warnings about the input-shape check
        traced = torch.jit.trace(module, (example,), check_trace=False)
    torch.jit.save(traced, str(path))
    return path


def check_inputs(model: EigenDepthNet, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """Normalised test inputs (batch, 3, H_in, W_in): a smooth scene-like image and noise."""
    cfg = model.config
    rng = np.random.default_rng(seed)
    rows = np.linspace(0, 255, cfg.input_height, dtype=np.float32)[:, None, None]
    cols = np.linspace(0, 255, cfg.input_width, dtype=np.float32)[None, :, None]
    smooth = np.broadcast_to((rows + cols * np.array([0.2, 0.5, 0.8], np.float32)) % 256,
                             (cfg.input_height, cfg.input_width, 3))
    images = [smooth] + [rng.integers(0, 256, smooth.shape).astype(np.float32)
                         for _ in range(batch - 1)]
    rgb = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)  # (B, 3, H, W) 0..255
    return normalize_image(rgb.contiguous())


def run_exported(path: str | Path, fmt: str, x: torch.Tensor) -> np.ndarray:
    """Run an exported file on ``x``; return the log depth as numpy."""
    if fmt == 'onnx':
        session = onnx_session(path, 'cpu')
        return session.run(None, {'image': x.numpy()})[0]
    module = torch.jit.load(str(path), map_location='cpu')
    with torch.no_grad():
        return module(x).numpy()


def verify_export(model: EigenDepthNet, path: str | Path, fmt: str, stage: Stage = 'fine',
                  batch: int = 2, tolerance: float = DEFAULT_TOLERANCE) -> float:
    """
    Compare an exported file with the float32 network on ``batch`` images.

    :return: the largest absolute difference in log depth.
    :raises ExportCheckError: when it exceeds ``tolerance`` (or the shapes differ).
    """
    x = check_inputs(model, batch)
    with torch.inference_mode():
        expected = model.to('cpu', torch.float32).eval()(x, stage=stage).numpy()
    got = run_exported(path, fmt, x)
    if got.shape != expected.shape:
        raise ExportCheckError(f'exported output has shape {got.shape}, PyTorch '
                               f'{expected.shape}')
    diff = float(np.max(np.abs(got - expected)))
    if not diff <= tolerance:
        raise ExportCheckError(f'max abs diff in log depth {diff:.3g} exceeds the tolerance '
                               f'{tolerance:g}')
    return diff


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of ``eigen-depth export``."""
    parser = argparse.ArgumentParser(
        prog='eigen-depth export',
        description='Export a checkpoint to ONNX or TorchScript and check the exported '
                    'model against the PyTorch network (float32).')
    parser.add_argument('--checkpoint', required=True, type=Path,
                        help='checkpoint (.pt) written by eigen-depth train')
    parser.add_argument('--format', required=True, choices=('onnx', 'torchscript'),
                        help='output format')
    parser.add_argument('--out', required=True, type=Path, help='file to write')
    parser.add_argument('--stage', default='fine', choices=('fine', 'coarse'),
                        help="'fine' (coarse + fine, default) or the coarse stack alone")
    parser.add_argument('--opset', type=int, default=ONNX_OPSET,
                        help=f'ONNX opset (default {ONNX_OPSET})')
    parser.add_argument('--static-batch', action='store_true',
                        help='ONNX: fix the batch size at 1 (default: dynamic batch axis)')
    parser.add_argument('--tolerance', type=float, default=DEFAULT_TOLERANCE,
                        help='largest accepted abs difference in log depth against PyTorch '
                             f'(default {DEFAULT_TOLERANCE:g})')
    return parser


def main(argv: list[str] | None = None) -> int:
    """
    Run ``eigen-depth export``.

    :return: 0 on success, 1 when the export or its check fails, 2 on bad input.
    """
    args = build_parser().parse_args(argv)
    try:
        model, _ = load_checkpoint(args.checkpoint)
    except CheckpointError as exc:
        print(f'eigen-depth export: error: {exc}', file=sys.stderr)
        return 2
    started = time.monotonic()
    print(f'exporting {args.checkpoint} ({model.config.name}, stage {args.stage}) to '
          f'{args.format} {args.out} ...', flush=True)
    try:
        if args.format == 'onnx':
            export_onnx(model, args.out, stage=args.stage, opset=args.opset,
                        dynamic_batch=not args.static_batch)
        else:
            export_torchscript(model, args.out, stage=args.stage)
    except (OSError, RuntimeError) as exc:
        print(f'eigen-depth export: error: export failed: {exc}', file=sys.stderr)
        return 1
    batch = 1 if args.format == 'onnx' and args.static_batch else 2
    try:
        diff = verify_export(model, args.out, args.format, args.stage, batch, args.tolerance)
    except (ExportCheckError, RuntimeError) as exc:
        args.out.unlink(missing_ok=True)
        print(f'eigen-depth export: error: check against PyTorch failed: {exc}; '
              f'{args.out} removed', file=sys.stderr)
        return 1
    size_mb = args.out.stat().st_size / 1e6
    cfg = model.config
    w_out, h_out = cfg.output_size
    print(f'wrote {args.out} ({size_mb:.1f} MB) in {time.monotonic() - started:.1f} s: input '
          f"'image' (N, 3, {cfg.input_height}, {cfg.input_width}) -> 'log_depth' "
          f'(N, 1, {h_out}, {w_out}), N {"= 1" if batch == 1 else "dynamic"}'
          + (f', opset {args.opset}' if args.format == 'onnx' else ''))
    print(f'check: max abs diff in log depth vs PyTorch float32 = {diff:.3g} over {batch} '
          f'image(s) (tolerance {args.tolerance:g}): ok')
    return 0


if __name__ == '__main__':
    sys.exit(main())

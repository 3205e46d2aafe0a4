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
``eigen-depth demo``: the whole system on the built-in synthetic world, in one command.

1. writes a synthetic world in the KITTI raw layout (training drives and one Eigen test
   drive) and scene-separated split files;
2. trains the network on it, or reuses the cached model (the paper's KITTI geometry; by
   default the documented *narrow variant*, ``--width-mult 0.125``, because the full network
   does not train in minutes on a 2-core CPU);
3. evaluates coarse, coarse + fine and the mean-depth baseline with the Eigen protocol, on
   the test drive and, in a second table, on further Eigen test drives (a steadier figure:
   one drive's 17 moving frames move by several hundredths with the training seed);
4. writes the test drive as a ROS 2 bag and plays it over DDS (loopback, shared memory) into
   ``depth_node`` started in its own process with the shipped ``config/depth.yaml``, then
   scores what the node published and times it;
5. prints a summary and draws pictures: input | prediction | ground truth, and a bird's-eye
   view of the node's point cloud over the true obstacles.

Every cached stage is built in a temporary folder and renamed into place when complete, so
an interrupted demo never leaves a half-written cache behind.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
from pathlib import Path
import shutil
import sys
import time

import numpy as np

MISSING_HINT = 'run `make venv` (or `pip install -r requirements.txt && pip install -e .`)'
REQUIRED_MODULES = ('torch', 'cv2', 'rclpy', 'sensor_msgs.msg', 'rosbags', 'matplotlib',
                    'tqdm', 'tensorboard', 'eigen_depth_training')


class DemoError(RuntimeError):
    """The demo cannot go on; the message says what is wrong and how to fix it."""


def check_environment() -> None:
    """Fail with what is missing and how to install it."""
    missing = []
    for name in REQUIRED_MODULES:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            missing.append(f'{name} ({exc})')
    if missing:
        raise DemoError(f'missing Python packages: {", ".join(missing)}; {MISSING_HINT}')


def build_parser() -> argparse.ArgumentParser:
    """Options of ``eigen-depth demo``."""
    from eigen_depth_training.options import add_train_arguments

    parser = argparse.ArgumentParser(
        prog='eigen-depth demo',
        description='Synthetic world -> training (cached) -> evaluation -> depth_node over '
                    'DDS -> summary and pictures.')
    parser.add_argument('--out', type=Path, default=Path('demo_out'),
                        help='output and cache folder (default: %(default)s)')
    world = parser.add_argument_group('synthetic world')
    world.add_argument('--train-drives', type=int, default=200,
                       help='drives outside the test split (2011_09_28); 10 %% of them are '
                            'held out for validation (default: %(default)s)')
    world.add_argument('--frames', type=int, default=4,
                       help='frames per training drive (default: %(default)s)')
    world.add_argument('--train-scale', type=float, default=0.5,
                       help="image size of the training drives as a fraction of KITTI's "
                            '1242x375 (intrinsics scale with it; the network input is '
                            '576x172 either way) (default: %(default)s)')
    world.add_argument('--test-frames', type=int, default=20,
                       help='frames of the test drive (default: %(default)s)')
    world.add_argument('--more-test-drives', type=int, default=8,
                       help='further Eigen test drives on 2011_09_26, scored offline in a '
                            'second table: one drive of 17 moving frames is a noisy judge '
                            '(0: none; default: %(default)s)')
    world.add_argument('--more-test-frames', type=int, default=5,
                       help='frames of each further test drive, all moving '
                            '(default: %(default)s)')
    world.add_argument('--seed', type=int, default=0, help='world seed (default: %(default)s)')
    model = parser.add_argument_group('model and training (the options of eigen-depth train)')
    add_train_arguments(model, {'width_mult': 0.125, 'coarse_samples': 38400,
                                'fine_samples': 12800, 'batch_size': 32, 'time_budget': 0.0,
                                'val_every': None, 'val_max_frames': 0},
                        notes={'val_every': 'about 20 times per run, at least 100 steps apart'})
    model.add_argument('--retrain', action='store_true', help='ignore the cached model')
    run = parser.add_argument_group('node run')
    run.add_argument('--rate', type=float, default=1.0,
                     help='camera playback speed factor (default: %(default)s, 10 Hz)')
    run.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N')
    run.add_argument('--skip-node', action='store_true',
                     help='evaluate offline only: no bag, no depth_node run')
    return parser


def _fingerprint(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def cached_stage(folder: Path, key: dict, build, label: str) -> Path:
    """
    Return ``folder`` if it was completed with the same ``key``; else build it.

    ``build(tmp)`` fills a temporary sibling folder, which is renamed to ``folder`` only when
    it succeeds, with ``key`` written into ``folder/stage.json``.
    """
    marker = folder / 'stage.json'
    if marker.is_file() and json.loads(marker.read_text()).get('key') == key:
        print(f'[demo] {label}: cached in {folder}')
        return folder
    for stale in folder.parent.glob(f'.{folder.name}.partial-*'):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = folder.parent / f'.{folder.name}.partial-{_fingerprint(key)}-{time.time_ns()}'
    tmp.mkdir(parents=True)
    print(f'[demo] {label} ...')
    try:
        build(tmp)
        (tmp / 'stage.json').write_text(json.dumps({'key': key}, indent=2))
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def check_world_options(args: argparse.Namespace) -> None:
    """
    Refuse a world too small for its split, or a training budget below one batch.

    :raises DemoError: naming the option and the value.
    """
    if args.train_drives < 2:
        raise DemoError(f'--train-drives {args.train_drives}: the split needs at least 2 '
                        'training drives (one is held out for validation)')
    if args.frames < 1 or args.test_frames < 4:
        raise DemoError(f'--frames {args.frames} / --test-frames {args.test_frames}: need at '
                        'least 1 frame per training drive and 4 test frames (the first 3 '
                        'are stationary and skipped)')
    available = len(more_test_drive_names(None))
    if not 0 <= args.more_test_drives <= available:
        raise DemoError(f'--more-test-drives {args.more_test_drives} is outside 0..{available} '
                        '(the other Eigen test drives on 2011_09_26)')
    if args.more_test_drives and args.more_test_frames < 1:
        raise DemoError(f'--more-test-frames {args.more_test_frames}: need at least 1 frame')
    if not 0.1 <= args.train_scale <= 1.0:
        raise DemoError(f'--train-scale {args.train_scale} is outside 0.1..1')
    for flag in ('coarse_samples', 'fine_samples'):
        if getattr(args, flag) < args.batch_size:
            raise DemoError(f'--{flag.replace("_", "-")} {getattr(args, flag)} is less than one '
                            f'batch of {args.batch_size} (--batch-size)')


def more_test_drive_names(count: int | None) -> list[str]:
    """
    Return the first ``count`` (None: all) Eigen test drives on 2011_09_26 after the demo's.

    The demo's test drive is the first of them (``default_drive_names(1)``).
    """
    from eigen_depth_training.splits import EIGEN_TEST_DRIVES
    from eigen_depth_training.synth import default_drive_names

    others = [d for d in EIGEN_TEST_DRIVES
              if d.startswith('2011_09_26/') and d != default_drive_names(1)[0]]
    return others if count is None else others[:count]


def make_world(args: argparse.Namespace) -> tuple[Path, str]:
    """
    Write (or reuse) the synthetic world and its splits; return its folder and test drive.

    The test drive is the Eigen test drive 2011_09_26_drive_0002 at KITTI's 1242x375; the
    training and validation drives are many short drives on 2011_09_28 (each a different
    street), at ``--train-scale`` of that size, so that rendering them stays cheap. The
    ``--more-test-drives`` further Eigen test drives (full size, every frame moving) have
    their own split file, ``splits/more_test_files.txt``; ``test_files.txt`` holds the test
    drive alone.
    """
    from dataclasses import replace

    from eigen_depth_training.splits import build_eigen_split, write_split_file
    from eigen_depth_training.synth import (DEFAULT_SIZE, default_drive_names,
                                            training_drive_names, write_synthetic_kitti)

    test_drive = default_drive_names(1)[0]
    train_drives = training_drive_names(args.train_drives)
    more_drives = more_test_drive_names(args.more_test_drives)
    train_size = tuple(round(n * args.train_scale) for n in DEFAULT_SIZE)
    key = {'train_drives': train_drives, 'test_drive': test_drive, 'frames': args.frames,
           'test_frames': args.test_frames, 'train_size': list(train_size), 'seed': args.seed,
           'more_test_drives': more_drives, 'more_test_frames': args.more_test_frames,
           'version': 3}

    workers = os.cpu_count() or 1  # the same bytes whatever the number of processes

    def build(tmp: Path) -> None:
        write_synthetic_kitti(tmp / 'kitti', frames=args.frames, seed=args.seed,
                              drive_names=train_drives, size=train_size, stationary=0,
                              progress=True, workers=workers)
        write_synthetic_kitti(tmp / 'kitti', frames=args.test_frames, seed=args.seed,
                              drive_names=[test_drive], progress=True)
        if more_drives:
            write_synthetic_kitti(tmp / 'kitti', frames=args.more_test_frames, seed=args.seed,
                                  drive_names=more_drives, stationary=0, progress=True,
                                  workers=workers)
        split = build_eigen_split(tmp / 'kitti', val_fraction=0.1, seed=args.seed)
        # the test drive alone in test_files.txt, the further ones in their own file
        replace(split, test=tuple(e for e in split.test if e.drive == test_drive)).write(
            tmp / 'splits')
        if more_drives:
            write_split_file(tmp / 'splits' / 'more_test_files.txt',
                             [e for e in split.test if e.drive != test_drive])

    folder = cached_stage(args.out / 'world', key, build, 'synthetic world')
    return folder, test_drive


def train_model(args: argparse.Namespace, world: Path) -> Path:
    """Train (or reuse) the demo model; return its final checkpoint."""
    from eigen_depth_training.options import default_options
    from eigen_depth_training.train import train

    world_key = json.loads((world / 'stage.json').read_text())['key']
    key = {'world': world_key, 'width_mult': args.width_mult, 'batch': args.batch_size,
           'coarse': args.coarse_samples, 'fine': args.fine_samples,
           'time_budget': args.time_budget, 'val_every': args.val_every,
           'val_max_frames': args.val_max_frames, 'version': 3}

    steps = (args.coarse_samples + args.fine_samples) // args.batch_size

    def build(tmp: Path) -> None:
        options = default_options(
            data_root=world / 'kitti', train_split=world / 'splits' / 'train_files.txt',
            val_split=world / 'splits' / 'val_files.txt', out=tmp, width_mult=args.width_mult,
            batch_size=args.batch_size, coarse_samples=args.coarse_samples,
            fine_samples=args.fine_samples,
            val_every=max(100, steps // 20) if args.val_every is None else args.val_every,
            val_max_frames=args.val_max_frames, time_budget=args.time_budget,
            checkpoint_every=200, prepared_dir=args.out / 'prepared',
            workers=demo_workers(args.device), device=args.device, seed=args.seed)
        result = train(options)
        if result.status != 'finished':
            raise DemoError(f'training ended as {result.status!r}')

    folder = cached_stage(args.out / 'model', key, build, 'training the model')
    return folder / 'final.pt'


def demo_workers(device: str) -> int:
    """
    Data-loading workers of the demo's training: none on a CPU, up to four on a GPU.

    With the prepared set a worker only copies frames out of it; on a CPU that the training
    step keeps busy on every core, a worker process costs more (it pre-empts the step's
    threads) than the copying it takes over.
    """
    from eigen_depth_ros.core.inference import select_device

    return 0 if select_device(device).type == 'cpu' else min(4, os.cpu_count() or 1)


def bird_eye_view(path: Path, clouds: dict[int, np.ndarray], world: Path, test_drive: str,
                  stamps_to_frames: dict[int, int]) -> Path:
    """
    Draw a top view (x right, z forward, metres) of the node's obstacles over the true ones.

    Both are the points a Nav2 obstacle layer would mark, 0.3-2.5 m above the road
    (:class:`~eigen_depth_ros.core.obstacles.ObstacleGridSpec`): the node's cloud and the frame's
    Velodyne scan in the camera frame. The node's points below that band (the road) are
    drawn faintly.
    """
    from eigen_depth_training import kitti
    from matplotlib.figure import Figure

    from eigen_depth_ros.core.obstacles import DEFAULT_SPEC, KITTI_CAMERA_HEIGHT
    from eigen_depth_ros.bags.synth_bag import camera_from_lidar

    stamp = min(clouds)
    cloud = clouds[stamp]
    frame = stamps_to_frames[stamp]
    root = world / 'kitti'
    name = kitti.normalise_drive(test_drive)
    calib = kitti.load_calibration(root / name.split('/')[0], cam=2)
    scan = kitti.load_velodyne_points(kitti.frame_path(root, name, 'velodyne_points', frame))
    transform = camera_from_lidar(calib)
    truth = scan[:, :3] @ transform[:3, :3].T + transform[:3, 3]

    def in_band(y: np.ndarray) -> np.ndarray:
        height = KITTI_CAMERA_HEIGHT - y
        return (height >= DEFAULT_SPEC.min_height) & (height <= DEFAULT_SPEC.max_height)

    truth = truth[in_band(truth[:, 1]) & (truth[:, 2] > 0)]
    node = np.stack([cloud['x'], cloud['y'], cloud['z']], axis=-1)
    node = node[np.isfinite(node).all(axis=1)]
    marked = in_band(node[:, 1])
    fig = Figure(figsize=(7, 7))
    ax = fig.add_subplot()
    ax.scatter(node[~marked, 0], node[~marked, 2], s=1, c='0.85', label='depth_node: road')
    ax.scatter(truth[:, 0], truth[:, 2], s=2, c='0.35', label='true obstacles (LiDAR)')
    ax.scatter(node[marked, 0], node[marked, 2], s=3, c='tab:red', alpha=0.6,
               label='depth_node: obstacle points')
    ax.set_xlim(-12.5, 12.5)
    ax.set_ylim(0, 25)
    ax.set_aspect('equal')
    ax.set_xlabel('x, right (m)')
    ax.set_ylabel('z, forward (m)')
    ax.set_title(f"bird's-eye view, frame {frame} of {test_drive}\n"
                 'points 0.3-2.5 m above the road, as a Nav2 obstacle layer marks them')
    ax.legend(loc='upper right', markerscale=4)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def play_into_node(args: argparse.Namespace, world: Path, test_drive: str,
                   checkpoint: Path) -> tuple[dict, Path]:
    """
    Write the test drive as a bag, play it into ``depth_node`` over DDS and score it.

    :return: ``bag-eval``'s result of the live run and the bird's-eye picture.
    """
    from eigen_depth_ros.bags import bag_eval, synth_bag

    bag = args.out / 'bag'
    shutil.rmtree(bag, ignore_errors=True)
    synth_bag.write_bag(world / 'kitti', test_drive, bag)
    print('[demo] playing the test drive into depth_node over DDS ...')
    live_args = bag_eval.build_parser().parse_args([
        str(bag), '--checkpoint', str(checkpoint), '--image-topic', '/camera/image_raw',
        '--camera-info-topic', '/camera/camera_info', '--lidar-topic', '/velodyne_points',
        '--crop', 'garg', '--live', '--rate', str(args.rate), '--device', args.device,
        '--backend', 'auto', '--out', str(args.out / 'live')])
    live_args.node_overrides = {'max_depth': 40.0}
    live, live_run = bag_eval.run(live_args)
    stamps = synth_bag.read_stamps(world / 'kitti' / test_drive.split('/')[0] /
                                   test_drive.split('/')[1] / 'image_02' / 'timestamps.txt')
    bird = bird_eye_view(args.out / 'birdseye.png', live_run.clouds, world,
                         test_drive, {s: i for i, s in enumerate(stamps)})
    return live, bird


def training_record(checkpoint: Path) -> dict:
    """
    Return what the training did: network, steps per stage, samples and samples/s.

    Read from the final checkpoint and ``train_log.jsonl`` beside it (the time from the
    run's start to its end, validation and saving included).
    """
    from eigen_depth_ros.core.checkpoint import load_checkpoint

    model, meta = load_checkpoint(checkpoint)
    events = [json.loads(line) for line in
              (checkpoint.parent / 'train_log.jsonl').read_text().splitlines()]
    times = {e['event']: e['time'] for e in events if e['event'] in ('start', 'finish')}
    seconds = times.get('finish', 0.0) - times.get('start', 0.0)
    samples = int(meta.get('samples_seen', 0))
    return {'network': model.config.name,
            'parameters': sum(p.numel() for p in model.parameters()),
            'steps': meta.get('steps'), 'samples': samples, 'seconds': round(seconds, 1),
            'samples_per_second': round(samples / seconds, 1) if seconds > 0 else None,
            'budget_ended': [e['stage'] for e in events if e['event'] == 'budget']}


def run_demo(args: argparse.Namespace) -> dict:
    """Run every stage; return the summary (also written to ``summary.json``)."""
    from eigen_depth_training.evaluate import evaluate, obstacle_table

    from eigen_depth_ros.core.metrics import format_metric_table, json_safe

    check_environment()
    check_world_options(args)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    world, test_drive = make_world(args)
    checkpoint = train_model(args, world)

    def evaluate_on(split: str, out: str) -> dict:
        # the training's depth cache: the mean map's training frames are projected already
        return evaluate(world / 'kitti', world / 'splits' / split, checkpoint,
                        stages=('coarse', 'fine'), baseline='mean',
                        train_split=world / 'splits' / 'train_files.txt', out=args.out / out,
                        device=args.device, cache_dir=checkpoint.parent / 'depth_cache',
                        progress=True)

    print('[demo] evaluating on the test drive (Eigen protocol, Garg crop, 80 m cap) ...')
    offline = evaluate_on('test_files.txt', 'eval')
    more = None
    if (world / 'splits' / 'more_test_files.txt').is_file():
        print(f'[demo] evaluating on {args.more_test_drives} more test drives ...')
        more = evaluate_on('more_test_files.txt', 'eval_more')
    rows = {name: result['aggregate'] for name, result in offline['results'].items()}
    summary = {
        'checkpoint': str(checkpoint), 'test_drive': test_drive,
        'training': training_record(checkpoint), 'metrics': rows,
        'obstacle_truth': {'offline': offline['obstacles']['truth']},
        'pictures': {'examples': str(args.out / 'eval' / 'examples.png'),
                     'learning_curves': str(checkpoint.parent / 'learning_curves.png')},
    }
    live = None
    if not args.skip_node:
        live, bird = play_into_node(args, world, test_drive, checkpoint)
        rows['depth_node (live)'] = live['aggregate']
        summary['obstacle_truth']['depth_node (live)'] = ('lidar (every point of the scan, not '
                                                          'the depth image)')
        summary['live'] = live['live']
        summary['pictures'].update(live_report=str(args.out / 'live' / 'report.png'),
                                   birdseye=str(bird))
    if more is not None:
        summary['more_test_drives'] = {
            'drives': more_test_drive_names(args.more_test_drives), 'frames': more['images'],
            'metrics': {name: result['aggregate'] for name, result in more['results'].items()}}
    summary['seconds'] = time.monotonic() - started
    (args.out / 'summary.json').write_text(json.dumps(json_safe(summary), indent=2))
    record = summary['training']
    print(f"\ntraining: {record['network']}, {record['samples']} samples in "
          f"{record['seconds']:.0f} s ({record['samples_per_second']} samples/s)")
    print('\n' + format_metric_table(rows))
    print('\nobstacle cells (0.3-2.5 m above the road, 0.5 m cells; '
          'eigen_depth_ros/core/obstacles.py):')
    print(obstacle_table({name: {'aggregate': row} for name, row in rows.items()}))
    if more is not None:
        print(f'\n{args.more_test_drives} more test drives, {more["images"]} frames (steadier '
              'than one drive; eval_more/):')
        print(format_metric_table(summary['more_test_drives']['metrics']))
        print(obstacle_table(more['results']))
    if live is not None:
        stats = live['live']
        print(f'\ndepth_node: {stats["frames_sent"]} frames in, {stats["depth_received"]} '
              f'depth out ({stats["dropped"]} dropped) at {stats["output_rate_hz"]:.1f} Hz; '
              f'latency p50 {stats["latency_depth"]["p50_ms"]:.1f} ms, p95 '
              f'{stats["latency_depth"]["p95_ms"]:.1f} ms')
    print(f'outputs: {args.out.resolve()} (summary.json; pictures: '
          f'{", ".join(summary["pictures"].values())}); {summary["seconds"]:.0f} s')
    return summary


def main(argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None
         ) -> int:
    """
    Entry point of ``eigen-depth demo`` (and, with its parser, of ``eigen-depth gpu-run``).

    :return: 0, or 1 with a one-line error naming the program.
    """
    parser = parser or build_parser()
    args = parser.parse_args(argv)
    try:
        run_demo(args)
    except (DemoError, ValueError, OSError, RuntimeError) as exc:
        print(f'{parser.prog}: error: {exc}', file=sys.stderr)
        return 1
    return 0

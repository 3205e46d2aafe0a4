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
Hostile files: damaged bags, damaged KITTI files, and checkpoints built to hurt.

Every reader must either work or stop with its documented one-line error naming the file:
``eigen-depth bag-eval`` exits 1 with one ``error:`` line (never a traceback), the KITTI
readers raise :class:`KittiFormatError`, checkpoint loading raises :class:`CheckpointError`
and never runs code from the file. Damage is deterministic: cuts at fixed fractions, and
corruptions aimed at the structures a reader trusts (MCAP magic, chunk CRC, summary record
length; SQLite header and b-tree pages; YAML metadata).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
import pickle
import shutil
import struct
import subprocess
import sys
import textwrap
from typing import Callable

from eigen_depth_ros.bags import bag_eval, synth_bag
from eigen_depth_ros.bags.ground_truth import BagGroundTruth
from eigen_depth_ros.core.checkpoint import (CHECKPOINT_FORMAT, CheckpointError, load_checkpoint,
                                             read_checkpoint, save_checkpoint)
from eigen_depth_ros.core.model import config_to_dict, EigenDepthNet
from eigen_depth_training import kitti
from eigen_depth_training.kitti import KittiFormatError
from eigen_depth_training.synth import write_synthetic_kitti
import numpy as np
import pytest
from support import SMALL_KITTI
import torch

pytestmark = pytest.mark.filterwarnings('ignore:invalid value encountered:RuntimeWarning',
                                        'ignore:Detected pickle protocol:UserWarning')

DRIVE = '2011_09_26_drive_0002'
DATE = DRIVE[:10]
COMMON = ['--image-topic', '/camera/image_raw', '--camera-info-topic', '/camera/camera_info',
          '--lidar-topic', '/velodyne_points', '--device', 'cpu']


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope='module')
def kitti_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp('kitti')
    write_synthetic_kitti(root, drives=1, frames=2, seed=4, drive_names=[DRIVE])
    return root


@pytest.fixture(scope='module')
def bags(kitti_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp('bags')
    return {storage: synth_bag.write_bag(kitti_root, DRIVE, folder / storage, storage=storage,
                                         progress=False)
            for storage in ('mcap', 'sqlite3')}


@pytest.fixture(scope='module')
def first_image(kitti_root: Path) -> np.ndarray:
    """Return the drive's first camera image, (H, W, 3) RGB, as the bags hold it (rgb8)."""
    return kitti.read_image(kitti.frame_path(kitti_root, f'{DATE}/{DRIVE}_sync', 'image_02', 0))


def data_file(bag: Path) -> Path:
    """Return the storage file of a one-file bag."""
    return next(p for p in bag.iterdir() if p.suffix in ('.mcap', '.db3'))


# ------------------------------------------------------------------------------ bags


def cut(fraction: float) -> Callable[[bytearray], bytearray]:
    """Keep the first ``fraction`` of the bytes."""
    return lambda data: data[:int(len(data) * fraction)]


def mcap_records(data: bytearray) -> list[tuple[int, int, int]]:
    """``(offset, opcode, length)`` of the top-level MCAP records after the magic."""
    out, pos = [], 8
    while pos + 9 <= len(data) - 8:
        opcode, length = data[pos], struct.unpack_from('<Q', data, pos + 1)[0]
        out.append((pos, opcode, length))
        if opcode == 0x02 or length > len(data):   # footer
            break
        pos += 9 + length
    return out


def mcap_chunk_crc(data: bytearray) -> bytearray:
    """Give the first chunk a wrong CRC of its uncompressed records."""
    pos = next(p for p, opcode, _ in mcap_records(data) if opcode == 0x06)
    struct.pack_into('<I', data, pos + 9 + 24, struct.unpack_from('<I', data, pos + 33)[0] ^ 1)
    return data


def mcap_summary_length(data: bytearray) -> bytearray:
    """Make the first summary record claim 2**62 bytes (read before any message)."""
    footer = len(data) - 8 - 29
    assert data[footer] == 0x02, 'not an MCAP footer'
    start = struct.unpack_from('<Q', data, footer + 9)[0]
    struct.pack_into('<Q', data, start + 1, 1 << 62)
    return data


def flip_magic(data: bytearray) -> bytearray:
    """Flip one bit of the file's leading magic (MCAP) or header string (SQLite)."""
    data[3] ^= 0x10
    return data


def sqlite_page(data: bytearray) -> bytearray:
    """Overwrite one b-tree page in the middle of the database with garbage."""
    page = len(data) // 2 // 4096 * 4096
    data[page:page + 4096] = b'\xa5' * 4096
    return data


PIXEL_FLIPS = range(0, 4000, 97)   # 42 bytes of the first image's rows 150 and 151
PIXEL_ROWS = slice(150, 152)


def pixels(data: bytearray, first_image: np.ndarray) -> bytearray:
    """Flip bits of the first camera image's pixel bytes: still a readable bag."""
    start = data.find(first_image[PIXEL_ROWS].tobytes())
    assert start > 0 and data.find(first_image[PIXEL_ROWS].tobytes(), start + 1) < 0
    for offset in PIXEL_FLIPS:
        data[start + offset] ^= 0x5A
    return data


BAG_CASES = [
    ('mcap', 'empty', cut(0.0)),
    ('mcap', 'cut_1pc', cut(0.01)),
    ('mcap', 'cut_half', cut(0.5)),
    ('mcap', 'cut_last_byte', cut(0.99999)),
    ('mcap', 'magic', flip_magic),
    ('mcap', 'pixels', pixels),
    ('mcap', 'chunk_crc', mcap_chunk_crc),
    ('mcap', 'summary_length', mcap_summary_length),
    ('sqlite3', 'empty', cut(0.0)),
    ('sqlite3', 'cut_half', cut(0.5)),
    ('sqlite3', 'header', flip_magic),
    ('sqlite3', 'btree_page', sqlite_page),
]


def run_bag_eval(bag: Path, checkpoint: Path, out: Path, capsys: pytest.CaptureFixture,
                 prefix: str = 'error:') -> tuple[int, list[str]]:
    """
    Run ``eigen-depth bag-eval`` in this process; any exception escaping fails the test.

    :return: the exit status and the stderr lines that hold ``prefix``.
    """
    code = bag_eval.main([str(bag), '--checkpoint', str(checkpoint), '--out', str(out),
                          *COMMON])
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if prefix in line]


@pytest.mark.parametrize('storage, name, damage', BAG_CASES,
                         ids=[f'{case[0]}-{case[1]}' for case in BAG_CASES])
def test_damaged_bag_gives_one_line_error(bags: dict[str, Path], tmp_path: Path,
                                          small_checkpoint: Path, first_image: np.ndarray,
                                          capsys: pytest.CaptureFixture, storage: str,
                                          name: str, damage: Callable) -> None:
    broken = tmp_path / f'{storage}_{name}'
    shutil.copytree(bags[storage], broken)
    target = data_file(broken)
    data = bytearray(target.read_bytes())
    target.write_bytes(bytes(damage(data, first_image) if name == 'pixels' else damage(data)))
    recoverable = storage == 'mcap' and name in ('cut_half', 'cut_last_byte', 'summary_length')
    code, errors = run_bag_eval(broken, small_checkpoint, tmp_path / 'out', capsys,
                                'truncated' if recoverable else 'error:')
    if recoverable:  # an MCAP cut off mid-write: its complete messages are evaluated
        assert code == 0 and len(errors) == 1 and 'recovered' in errors[0], errors
        assert json.loads((tmp_path / 'out' / 'metrics.json').read_text())['bag']['truncated']
        return
    if name == 'pixels':   # damaged pixels are still pixels: every frame is evaluated
        assert code == 0 and errors == [], errors
        result = json.loads((tmp_path / 'out' / 'metrics.json').read_text())
        assert result['frames_evaluated'] == 2 and result['skipped'] == {}
        source = BagGroundTruth(broken, '/camera/image_raw', '/camera/camera_info',
                                '/velodyne_points', None)
        first = next(source.frames())
        source.close()
        changed = first.rgb != first_image   # exactly the flipped bytes, nothing else
        assert int(changed.sum()) == int(changed[PIXEL_ROWS].sum()) == len(PIXEL_FLIPS)
        return
    assert code == 1
    assert len(errors) == 1 and str(broken) in errors[0], errors


@pytest.mark.parametrize('content', [b'', b'rosbag2_bagfile_information:\n  version: [',
                                     bytes(range(256)), b'rosbag2_bagfile_information: 7\n'])
def test_damaged_bag_metadata(bags: dict[str, Path], tmp_path: Path, small_checkpoint: Path,
                              capsys: pytest.CaptureFixture, content: bytes) -> None:
    for storage, bag in bags.items():
        broken = tmp_path / storage
        shutil.copytree(bag, broken)
        (broken / 'metadata.yaml').write_bytes(content)
        if storage == 'mcap':  # the MCAP file describes itself: its messages are recovered
            code, notes = run_bag_eval(broken, small_checkpoint, tmp_path / 'out', capsys,
                                       'recovered')
            assert code == 0 and len(notes) == 1 and str(broken) in notes[0], notes
        else:
            code, errors = run_bag_eval(broken, small_checkpoint, tmp_path / 'out', capsys)
            assert code == 1 and len(errors) == 1 and str(broken) in errors[0], errors
        shutil.rmtree(broken)


def test_bag_without_its_data_file(bags: dict[str, Path], tmp_path: Path,
                                   small_checkpoint: Path,
                                   capsys: pytest.CaptureFixture) -> None:
    broken = tmp_path / 'nodata'
    shutil.copytree(bags['mcap'], broken)
    data_file(broken).unlink()
    code, errors = run_bag_eval(broken, small_checkpoint, tmp_path / 'out', capsys)
    assert code == 1 and len(errors) == 1 and 'missing' in errors[0]


# ------------------------------------------------------------------------------ KITTI files


def damaged_copies(path: Path, tmp_path: Path) -> list[Path]:
    """Write damaged copies of ``path``: empty, 1 byte, half, last byte cut, bits flipped."""
    data = path.read_bytes()
    variants = [b'', data[:1], data[:len(data) // 2], data[:-1]]
    flipped = bytearray(data)
    for offset in range(0, min(len(data), 64), 5):
        flipped[offset] ^= 0xFF
    variants.append(bytes(flipped))
    copies = []
    for index, content in enumerate(variants):
        copy = tmp_path / f'{index}_{path.name}'
        copy.write_bytes(content)
        copies.append(copy)
    return copies


def drive(kitti_root: Path) -> Path:
    """Return the synthetic drive's folder."""
    return kitti_root / DATE / f'{DRIVE}_sync'


def test_damaged_png(kitti_root: Path, tmp_path: Path) -> None:
    for copy in damaged_copies(kitti.frame_path(kitti_root, DRIVE, 'image_02', 0), tmp_path):
        try:
            rgb = kitti.read_image(copy)
        except KittiFormatError as exc:
            assert str(copy) in str(exc)
            continue
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3


def test_damaged_velodyne_scan(kitti_root: Path, tmp_path: Path) -> None:
    scan = kitti.frame_path(kitti_root, DRIVE, 'velodyne_points', 0)
    calib_dir = kitti_root / DATE
    copies = damaged_copies(scan, tmp_path)
    garbage = tmp_path / 'garbage.bin'   # a multiple of 16 bytes: NaN, inf, huge values
    garbage.write_bytes(np.array([[np.nan, 1, 2, 0], [np.inf, -np.inf, 1, 1], [1e38, 0, 0, 0],
                                  [5, 1e-45, -3, 0]], '<f4').tobytes())
    for copy in copies + [garbage]:
        try:
            depth = kitti.generate_depth_map(calib_dir, copy)
        except KittiFormatError as exc:
            assert str(copy) in str(exc)
            continue
        assert depth.dtype == np.float32 and depth.ndim == 2
        assert np.all(np.isfinite(depth)) and np.all(depth >= 0)


@pytest.mark.parametrize('name', ['calib_cam_to_cam.txt', 'calib_velo_to_cam.txt'])
def test_damaged_calibration(kitti_root: Path, tmp_path: Path, name: str) -> None:
    original = kitti_root / DATE / name
    for copy in damaged_copies(original, tmp_path):
        folder = tmp_path / f'calib_{copy.name}'
        shutil.copytree(kitti_root / DATE, folder,
                        ignore=shutil.ignore_patterns(f'{DRIVE}_sync'))
        shutil.copy(copy, folder / name)
        try:
            calib = kitti.load_calibration(folder, cam=2)
        except KittiFormatError as exc:
            assert str(folder / name) in str(exc) and '\n' not in str(exc)
            continue
        # what survives the damage (a cut newline, an unused line) is still a calibration
        assert np.all(np.isfinite(calib.velo_to_image)) and min(calib.image_size) > 0
    not_finite = tmp_path / 'nan'
    shutil.copytree(kitti_root / DATE, not_finite,
                    ignore=shutil.ignore_patterns(f'{DRIVE}_sync'))
    text = (not_finite / name).read_text().splitlines()
    key = 'P_rect_02' if 'cam_to_cam' in name else 'R'
    text = [f'{key}: ' + ' '.join(['nan'] * (12 if key == 'P_rect_02' else 9))
            if line.startswith(f'{key}:') else line for line in text]
    (not_finite / name).write_text('\n'.join(text) + '\n')
    with pytest.raises(KittiFormatError, match=key):
        kitti.load_calibration(not_finite, cam=2)


def test_damaged_oxts(kitti_root: Path, tmp_path: Path) -> None:
    packet = drive(kitti_root) / 'oxts' / 'data' / '0000000000.txt'
    words = packet.read_text().split()
    extra = [' '.join(words[:29]), ' '.join(words + ['1']), ' '.join(['x'] * 30),
             ' '.join(['nan'] * 30)]
    copies = damaged_copies(packet, tmp_path)
    for index, text in enumerate(extra):
        copies.append(tmp_path / f'extra{index}.txt')
        copies[-1].write_text(text)
    for copy in copies:
        try:
            values = kitti.read_oxts_packet(copy)
        except KittiFormatError as exc:
            assert str(copy) in str(exc)
            continue
        assert len(values) == 30


def test_synth_bag_on_damaged_drive_gives_one_line(kitti_root: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / 'raw'
    shutil.copytree(kitti_root, root)
    image = kitti.frame_path(root, DRIVE, 'image_02', 1)
    image.write_bytes(image.read_bytes()[:100])
    code = synth_bag.main([str(tmp_path / 'bag'), '--kitti-root', str(root), '--drive', DRIVE])
    errors = [line for line in capsys.readouterr().err.splitlines() if 'error:' in line]
    assert code == 1 and len(errors) == 1 and str(image) in errors[0]


# ------------------------------------------------------------------------------ checkpoints


class TouchesMarker:
    """A pickled object whose unpickling would create a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


@pytest.fixture
def evil_checkpoints(tmp_path: Path) -> tuple[list[Path], Path]:
    """Three pickles that run code when loaded without weights_only, and their marker."""
    marker = tmp_path / 'code_ran'
    inside = tmp_path / 'evil_inside.pt'        # a valid-looking checkpoint with a payload
    model = EigenDepthNet(SMALL_KITTI)
    torch.save({'format': CHECKPOINT_FORMAT, 'model_args': config_to_dict(SMALL_KITTI),
                'state_dict': model.state_dict(), 'step': TouchesMarker(marker)}, inside)
    state = tmp_path / 'evil_state.pt'          # the payload inside the state dict
    torch.save({'format': CHECKPOINT_FORMAT, 'model_args': config_to_dict(SMALL_KITTI),
                'state_dict': {'coarse.conv1.weight': TouchesMarker(marker)}}, state)
    legacy = tmp_path / 'evil_legacy.pt'        # a plain (non-zip) pickle
    legacy.write_bytes(pickle.dumps(TouchesMarker(marker)))
    return [inside, state, legacy], marker


def test_code_running_pickles_never_run(evil_checkpoints: tuple[list[Path], Path],
                                        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    paths, marker = evil_checkpoints
    pickle.loads(pickle.dumps(TouchesMarker(tmp_path / 'control')))   # the payload works
    assert (tmp_path / 'control').exists()
    from eigen_depth_ros.tools import export
    from eigen_depth_training import train
    for path in paths:
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(path)
        assert str(path) in str(err.value)
        # the command lines that take a checkpoint refuse it with one line
        assert export.main(['--checkpoint', str(path), '--format', 'torchscript', '--out',
                            str(tmp_path / 'x.pt')]) == 2
        assert train.main(['--data-root', str(tmp_path), '--train-split', str(path),
                           '--out', str(tmp_path / 'run'), '--resume', str(path),
                           '--no-progress', '--device', 'cpu']) == 2
        err = capsys.readouterr().err
        assert str(path) in err and 'Traceback' not in err
    assert not marker.exists()


def test_truncated_checkpoints(small_checkpoint: Path, tmp_path: Path) -> None:
    data = small_checkpoint.read_bytes()
    for size in (0, 1, 30, 100, len(data) // 3, len(data) // 2, len(data) - 22, len(data) - 1):
        path = tmp_path / f'cut_{size}.pt'
        path.write_bytes(data[:size])
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(path)
        assert str(path) in str(err.value) and '\n' not in str(err.value)


def test_wrong_shapes_missing_and_extra_weights(tmp_path: Path) -> None:
    model = EigenDepthNet(SMALL_KITTI)
    good = model.state_dict()
    cases = {
        'transposed': {**good, 'coarse.fc6.weight': good['coarse.fc6.weight'].t()},
        'scalar': {**good, 'fine.conv4.bias': torch.tensor(1.0)},
        'missing': {k: v for k, v in good.items() if k != 'fine.conv4.weight'},
        'extra': {**good, 'backdoor.weight': torch.zeros(3)},
        'not_a_tensor': {**good, 'fine.conv4.bias': 'ten metres'},
    }
    for name, state_dict in cases.items():
        path = tmp_path / f'{name}.pt'
        torch.save({'format': CHECKPOINT_FORMAT, 'model_args': config_to_dict(SMALL_KITTI),
                    'state_dict': state_dict}, path)
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(path)
        assert str(path) in str(err.value), name
    # weights of one network under the arguments of another
    path = save_checkpoint(tmp_path / 'other.pt', model)
    payload = read_checkpoint(path)
    payload['model_args'] = {**payload['model_args'], 'fc_width': 32}
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match='weights do not fit'):
        load_checkpoint(path)


@pytest.mark.parametrize('change', [{'fc_width': -5}, {'fine_channels': 0},
                                    {'fc_width': 'wide'}, {'fc_width': 2.5}])
def test_malformed_model_args(tmp_path: Path, change: dict) -> None:
    path = tmp_path / 'args.pt'
    torch.save({'format': CHECKPOINT_FORMAT, 'state_dict': {},
                'model_args': {**config_to_dict(SMALL_KITTI), **change}}, path)
    with pytest.raises(CheckpointError, match='args.pt'):
        load_checkpoint(path)


SUBPROCESS_LOAD = textwrap.dedent("""
    import json, resource, sys, time
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))   # a runaway load fails here
    from eigen_depth_ros.core.checkpoint import CheckpointError, load_checkpoint
    results = {}
    for path in sys.argv[1:]:
        started = time.monotonic()
        try:
            load_checkpoint(path)
            outcome = 'loaded'
        except CheckpointError as exc:
            outcome = 'CheckpointError: ' + str(exc)
        except BaseException as exc:
            outcome = 'ESCAPED ' + type(exc).__name__ + ': ' + str(exc)[:200]
        results[path] = {'outcome': outcome, 'seconds': time.monotonic() - started}
    results['maxrss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(results))
""")


def load_in_subprocess(paths: list[Path]) -> dict:
    """Load checkpoints in a child with a 4 GiB address-space limit; its JSON report."""
    proc = subprocess.run([sys.executable, '-c', SUBPROCESS_LOAD, *map(str, paths)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_oversized_sparse_files_are_refused_quickly(small_checkpoint: Path,
                                                    tmp_path: Path) -> None:
    zeros = tmp_path / 'zeros.pt'            # 64 GiB of zeros, no disk used (sparse)
    with open(zeros, 'wb') as out:
        out.truncate(64 << 30)
    padded = tmp_path / 'padded.pt'         # a real checkpoint followed by 64 GiB of zeros
    shutil.copy(small_checkpoint, padded)
    os.truncate(padded, 64 << 30)
    assert zeros.stat().st_blocks * 512 < (64 << 20), 'the file system is not sparse'
    results = load_in_subprocess([zeros, padded])
    for path in (zeros, padded):
        result = results[str(path)]
        assert result['outcome'].startswith(f'CheckpointError: {path}'), result
        assert result['seconds'] < 10
    assert results['maxrss_mb'] < 2048


def test_checkpoint_asking_for_a_huge_network(tmp_path: Path) -> None:
    path = tmp_path / 'huge.pt'
    torch.save({'format': CHECKPOINT_FORMAT, 'state_dict': {},
                'model_args': {**config_to_dict(SMALL_KITTI), 'fc_width': 10 ** 6}}, path)
    result = load_in_subprocess([path])[str(path)]
    assert result['outcome'].startswith(f'CheckpointError: {path}'), result

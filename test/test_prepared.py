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

"""The prepared training set and the batched augmentation against the per-sample path."""
import os
from pathlib import Path

from eigen_depth_ros.core.model import normalize_image, resolve_config
from eigen_depth_training import prepared as prepared_module
from eigen_depth_training.batch_augment import augment_batch, PreparedBatches
from eigen_depth_training.dataset import apply_augmentation, Augmentation, KittiDepthDataset
from eigen_depth_training.prepared import (ensure_prepared, fingerprint, PreparedSet,
                                           PreparedSetError)
from eigen_depth_training.splits import read_split_file, SplitEntry
from eigen_depth_training.synth import default_drive_names, write_synthetic_kitti
from eigen_depth_training.train import train
import numpy as np
import pytest
from support import copy_drive, SMALL_KITTI, small_options, synthetic_kitti
import torch

CPU = torch.device('cpu')
GREY = 255 * 0.226  # one grey level in normalised units is about 1 / GREY
DRAWS = [Augmentation(1.13, (0.0, 1.0), (0.8, 1.2, 1.0), True),
         Augmentation(1.2, (1.0, 0.0), (1.2, 1.2, 1.2), False),
         Augmentation(1.0, (0.5, 0.5), (1.0, 1.0, 1.0), False),
         Augmentation(1.05, (0.3, 0.7), (0.9, 1.1, 0.85), True)]


def _train_set(root: Path, entries: list[SplitEntry], tmp_path: Path,
               canonical_focal: float | None = None) -> KittiDepthDataset:
    return KittiDepthDataset(root, entries, SMALL_KITTI, train=True,
                             cache_dir=tmp_path / 'cache', canonical_focal=canonical_focal)


def _batched(dataset: KittiDepthDataset, prepared: PreparedSet,
             draws: list[Augmentation]) -> dict:
    """Augment frames 0..len(draws)-1 with the given draws, in one batch."""
    raw = PreparedBatches(prepared, dataset).__getitems__([(i, 0) for i in range(len(draws))])
    raw['draws'] = draws
    return augment_batch(raw, dataset.config, CPU, dataset.min_depth, dataset.max_depth,
                         dataset.canonical_focal)


def _per_sample(dataset: KittiDepthDataset, index: int, draw: Augmentation
                ) -> tuple[torch.Tensor, np.ndarray]:
    """Return the per-sample path's normalised window (3, h, w) and target (H_out, W_out)."""
    rgb, depth = dataset.frame(dataset.entries[index])
    window, target, _ = apply_augmentation(rgb, depth, dataset.config, draw)
    image = normalize_image(torch.from_numpy(window.transpose(2, 0, 1).copy())[None])[0]
    if dataset.canonical_focal is not None:
        target = target * np.float32(dataset.canonical_focal / dataset.frame_focal(index))
    return image, target


def test_batches_match_the_per_sample_path_on_small_frames(tmp_path):
    root, splits = synthetic_kitti()
    entries = read_split_file(splits / 'train_files.txt')[:len(DRAWS)]
    dataset = _train_set(root, entries, tmp_path, canonical_focal=300.0)
    prepared = ensure_prepared(dataset, tmp_path / 'prepared', 1.2, say=lambda _: None)
    # a camera smaller than the largest zoom is stored as it is
    assert np.array_equal(prepared.stored_size, prepared.image_size)
    batch = _batched(dataset, prepared, DRAWS)
    assert batch['image'].shape == (len(DRAWS), 3, 172, 576)
    assert batch['image'].is_contiguous(memory_format=torch.channels_last)
    for b, draw in enumerate(DRAWS):
        image, target = _per_sample(dataset, b, draw)
        assert np.array_equal(batch['depth'][b, 0].numpy(), target), b  # every cell
        assert (target > 0).sum() > 100
        torch.testing.assert_close(batch['image'][b], image, atol=1e-5, rtol=0)
        valid = (target >= dataset.min_depth) & (target <= dataset.max_depth)
        assert np.array_equal(batch['mask'][b, 0].numpy(), valid)
        np.testing.assert_allclose(batch['log_depth'][b, 0].numpy()[valid],
                                   np.log(target[valid]), rtol=0, atol=1e-6)
    # the training step's samples draw exactly what the per-sample path draws
    raw = PreparedBatches(prepared, dataset).__getitems__([(2, 77)])
    assert raw['draws'] == [dataset.augmentation(2, 77)]


def test_full_size_frames_differ_only_by_resampling(tmp_path):
    root = tmp_path / 'raw'
    drive = default_drive_names(1)[0]
    write_synthetic_kitti(root, frames=1, seed=5, drive_names=[drive], stationary=0)
    dataset = _train_set(root, [SplitEntry(drive, 0, 'l')] * len(DRAWS), tmp_path)
    prepared = ensure_prepared(dataset, tmp_path / 'prepared', 1.2, say=lambda _: None)
    assert prepared.stored_size[0].tolist() == [691, 209]  # 1242x375 at the largest zoom
    batch = _batched(dataset, prepared, DRAWS)
    for b, draw in enumerate(DRAWS):
        image, target = _per_sample(dataset, b, draw)
        assert np.array_equal(batch['depth'][b, 0].numpy(), target), b
        grey = (batch['image'][b] - image).abs() * GREY
        if draw.scale == 1.2:  # the stored zoom itself: the same pixels
            assert float(grey.max()) < 1e-3
        else:  # one resampling more: blur at edges, on average about one grey level
            assert float(grey.mean()) < 1.5, (b, float(grey.mean()))


def test_stale_truncated_or_other_geometry_is_never_used(tmp_path):
    drive = '2011_09_26/2011_09_26_drive_0002_sync'
    root = copy_drive(tmp_path, drive)
    entries = [SplitEntry(drive, f, 'l') for f in range(3)]
    dataset = _train_set(root, entries, tmp_path)
    folder = tmp_path / 'prepared'
    said: list[str] = []
    ensure_prepared(dataset, folder, 1.2, say=said.append)
    assert said[-1].startswith(f'prepared 3 frames in {folder}')
    expected = fingerprint(root, entries, SMALL_KITTI, 1.2)
    PreparedSet(folder, expected)  # fresh: opens
    # another geometry or zoom range: another fingerprint, refused
    for config, scale_max in ((resolve_config('nyu'), 1.2), (SMALL_KITTI, 1.1)):
        other = fingerprint(root, entries, config, scale_max)
        with pytest.raises(PreparedSetError, match=str(folder)):
            PreparedSet(folder, other)
    # a source file changed: stale, rebuilt after one line naming the folder
    image = entries[1].image_path(root)
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10 ** 9))
    with pytest.raises(PreparedSetError, match='fingerprint differs'):
        PreparedSet(folder, fingerprint(root, entries, SMALL_KITTI, 1.2))
    said.clear()
    ensure_prepared(dataset, folder, 1.2, say=said.append)
    assert said[0] == (f'{folder}: prepared from other source files, another split or another '
                       'network geometry (fingerprint differs): preparing it again')
    # truncated arrays: refused, and rebuilt
    fresh = fingerprint(root, entries, SMALL_KITTI, 1.2)
    data = (folder / 'points_z.npy').read_bytes()
    (folder / 'points_z.npy').write_bytes(data[:len(data) // 2])
    with pytest.raises(PreparedSetError, match='truncated'):
        PreparedSet(folder, fresh)
    said.clear()
    rebuilt = ensure_prepared(dataset, folder, 1.2, say=said.append)
    assert 'truncated' in said[0] and len(rebuilt) == 3
    # no manifest (e.g. a folder of something else): refused
    (folder / 'manifest.json').unlink()
    with pytest.raises(PreparedSetError, match='not a complete prepared set'):
        PreparedSet(folder, fresh)


def test_no_room_is_refused_before_the_first_byte(tmp_path, monkeypatch):
    root, splits = synthetic_kitti()
    dataset = _train_set(root, read_split_file(splits / 'train_files.txt')[:4], tmp_path)
    needed = prepared_module.required_bytes(dataset, 1.2)
    assert needed >= 4 * 414 * 125 * 3  # the images alone
    usage = type('Usage', (), {'free': needed // 2})
    monkeypatch.setattr(prepared_module.shutil, 'disk_usage', lambda _: usage)
    target = tmp_path / 'out' / 'prepared'
    with pytest.raises(PreparedSetError, match=r'needs about .* GB, .* GB free'):
        ensure_prepared(dataset, target, 1.2, say=lambda _: None)
    assert list(target.parent.iterdir()) == []


def test_an_interrupted_preparation_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    root, splits = synthetic_kitti()
    dataset = _train_set(root, read_split_file(splits / 'train_files.txt')[:4], tmp_path)
    calls = []

    def decode(self, index):
        calls.append(index)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, index)

    original = prepared_module._DecodedFrames.__getitem__
    monkeypatch.setattr(prepared_module._DecodedFrames, '__getitem__', decode)
    with pytest.raises(KeyboardInterrupt):
        ensure_prepared(dataset, tmp_path / 'prepared', 1.2, say=lambda _: None)
    assert list(tmp_path.glob('*prepared*')) == []
    monkeypatch.undo()
    assert len(ensure_prepared(dataset, tmp_path / 'prepared', 1.2, say=lambda _: None)) == 4


def test_both_pipelines_train(tmp_path):
    folder = tmp_path / 'shared_prepared'
    prepared = train(small_options(tmp_path / 'prepared', stage='coarse',
                                   prepared_dir=folder), SMALL_KITTI)
    assert prepared.status == 'finished' and (folder / 'manifest.json').is_file()
    raw = train(small_options(tmp_path / 'raw', stage='coarse', data_pipeline='raw'),
                SMALL_KITTI)
    assert raw.status == 'finished' and not (tmp_path / 'raw' / 'prepared').exists()
    assert raw.data_report['usable'] == prepared.data_report['usable']


def test_bench_rows_compare_the_loop_with_its_compute(tmp_path):
    from eigen_depth_training.throughput import bench_training, VARIANTS
    root, splits = synthetic_kitti()
    report = bench_training(root, splits / 'train_files.txt', width_mult=0.0625, batch_size=4,
                            steps=2, warmup=1, workers=0)
    assert [row['name'] for row in report['rows']] == [v[0] for v in VARIANTS]
    for row in report['rows']:
        assert row['samples_per_second'] > 0
        assert row['ratio'] == 1.0 if row['name'].startswith('compute only') else row['ratio'] > 0
    host = report['host_ms_per_sample']
    assert 0 < host['gather'] < host['gather + augment']


def test_prepare_command_writes_what_train_then_reads(tmp_path):
    from support import cli_args
    from eigen_depth_training.prepare_cli import main as prepare_main
    options = small_options(tmp_path / 'run', stage='coarse')
    args = cli_args(options)
    assert prepare_main(args) == 0
    manifest = tmp_path / 'run' / 'prepared' / 'manifest.json'
    built = manifest.stat().st_mtime_ns
    from eigen_depth_training.train import main as train_main
    assert train_main(args + ['--stage', 'coarse']) == 0
    assert manifest.stat().st_mtime_ns == built  # reused, not prepared again
    assert prepare_main(args + ['--train-split', str(tmp_path / 'none.txt')]) == 2

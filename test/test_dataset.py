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

"""KITTI training samples: augmentation alignment, depth scaling, cache, bad input."""
from __future__ import annotations

from eigen_depth_ros.core.geometry import InputGeometry
from eigen_depth_ros.core.model import KITTI, normalize_image
from eigen_depth_training.dataset import (apply_augmentation, Augmentation, expand_sides,
                                          KittiDepthDataset, ResumableSampler)
from eigen_depth_training.kitti import generate_depth_map, read_image
from eigen_depth_training.splits import read_split_file, SplitEntry, SplitError
import numpy as np
import pytest
from support import copy_drive, synthetic_kitti
from support import SMALL_KITTI
import torch

pytestmark = pytest.mark.usefixtures('one_torch_thread')


# --------------------------------------------------------------------------- augmentation

def _depth_coded_frame(width: int = 1242, height: int = 375
                       ) -> tuple[np.ndarray, np.ndarray, callable]:
    """
    Make a camera frame whose red channel encodes the depth of every pixel.

    Also returns a sparse depth map (every other pixel) of the same scene and the analytic
    depth; depth grows left to right and downwards.
    """
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    depth = 5.0 + 25.0 * u / width + 10.0 * v / height        # 5 .. 40 m, asymmetric in u
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[..., 0] = np.round((depth - 5.0) * 6.0).astype(np.uint8)  # 0 .. 210
    rgb[..., 1] = 128
    sparse = np.zeros((height, width), np.float32)
    sparse[::2, ::2] = depth[::2, ::2]

    def truth(u_cam: np.ndarray, v_cam: np.ndarray) -> np.ndarray:
        return 5.0 + 25.0 * u_cam / width + 10.0 * v_cam / height

    return rgb, sparse, truth


@pytest.mark.parametrize('aug', [
    Augmentation(),
    Augmentation(scale=1.2, crop=(0.0, 1.0)),
    Augmentation(scale=1.13, crop=(0.8, 0.3), flip=True),
    Augmentation(scale=1.0, crop=(0.5, 0.5), flip=True),
])
def test_augmentation_keeps_image_and_depth_aligned(aug):
    rgb, sparse, truth = _depth_coded_frame()
    window, target, geometry = apply_augmentation(rgb, sparse, KITTI, aug)
    assert window.shape == (172, 576, 3) and target.shape == (27, 142)
    i, j = np.nonzero(target)
    assert len(i) > 0.9 * target.size  # every cell holds points
    # The image colour at the input pixel of each output cell encodes the cell's depth
    # before the zoom: target * s.
    x = 4 * j + 5
    y = 4 * i + 5 + KITTI.fine_row_start
    colour_depth = window[y, x, 0] / 6.0 + 5.0
    assert np.abs(colour_depth - target[i, j] * aug.scale).max() < 0.3
    # Independently of the image: the cell sits at camera pixel (a j + b) of the (flipped)
    # frame, whose depth divided by s is the target.
    a_x, b_x, a_y, b_y = geometry.output_to_image_affine()
    u, v = a_x * j + b_x, a_y * i + b_y
    if aug.flip:
        u = rgb.shape[1] - 1 - u
    expected = truth(u, v) / aug.scale
    # a cell (8.6 camera pixels wide) keeps its nearest point, slightly below the centre's
    # depth; a wrong flip or a missing 1/s would be metres off
    assert np.abs(target[i, j] - expected).max() < 0.35 / aug.scale


def test_augmentation_crop_moves_the_window():
    rgb, sparse, _ = _depth_coded_frame()
    left, _, g_left = apply_augmentation(rgb, sparse, KITTI, Augmentation(1.2, (0.0, 0.5)))
    right, _, g_right = apply_augmentation(rgb, sparse, KITTI, Augmentation(1.2, (1.0, 0.5)))
    assert g_left.crop_x == 0 and g_right.crop_x == g_right.resized_width - 576
    # depth (hence red) grows to the right, so the right window is redder
    assert right[..., 0].mean() > left[..., 0].mean() + 5


def test_colour_multiplies_channels_and_clips():
    rgb = np.full((375, 1242, 3), 100, np.uint8)
    depth = np.zeros((375, 1242), np.float32)
    window, _, _ = apply_augmentation(rgb, depth, KITTI, Augmentation(colour=(0.8, 1.0, 1.2)))
    assert np.allclose(window[..., 0], 80.0) and np.allclose(window[..., 1], 100.0)
    assert np.allclose(window[..., 2], 120.0)
    bright = np.full((375, 1242, 3), 240, np.uint8)
    window, _, _ = apply_augmentation(bright, depth, KITTI, Augmentation(colour=(1.2,) * 3))
    assert window.max() == 255.0


def test_sampled_augmentations_stay_in_the_paper_ranges():
    rng = np.random.default_rng(0)
    draws = [Augmentation.sample(rng) for _ in range(400)]
    scales = np.array([d.scale for d in draws])
    colours = np.array([d.colour for d in draws])
    assert scales.min() >= 1.0 and scales.max() <= 1.2 and scales.std() > 0.04
    assert colours.min() >= 0.8 and colours.max() <= 1.2
    assert 0.4 < np.mean([d.flip for d in draws]) < 0.6


# --------------------------------------------------------------------------- dataset

def test_samples_have_the_documented_keys_and_targets(tmp_path):
    root, splits = synthetic_kitti()
    entries = read_split_file(splits / 'val_files.txt')
    ds = KittiDepthDataset(root, entries, SMALL_KITTI, cache_dir=tmp_path / 'cache')
    sample = ds[0]
    assert sample['image'].shape == (3, 172, 576) and sample['image'].dtype == torch.float32
    for key in ('depth', 'log_depth', 'mask'):
        assert sample[key].shape == (1, 27, 142)
    mask = sample['mask']
    assert mask.dtype == torch.bool and mask.float().mean() > 0.5
    assert torch.allclose(sample['log_depth'][mask], sample['depth'][mask].log())
    assert (sample['log_depth'][~mask] == 0).all()
    assert sample['ok'] and not sample['flip'] and float(sample['scale']) == 1.0
    assert sample['name'] == entries[0].line()
    # test time = centre crop of the projected LiDAR, binned on the output grid
    gt = generate_depth_map(root / entries[0].date, entries[0].velodyne_path(root), cam=2)
    geometry = InputGeometry.fit(gt.shape[1], gt.shape[0], SMALL_KITTI)
    assert np.array_equal(sample['depth'][0].numpy(), geometry.sparse_depth_to_output(gt))
    # one cache file per frame
    assert len(list((tmp_path / 'cache').rglob('*.npz'))) == len(entries)


def test_right_camera_uses_its_own_image_and_projection():
    root, splits = synthetic_kitti()
    left = read_split_file(splits / 'val_files.txt')[:1]
    ds = KittiDepthDataset(root, expand_sides(left, 'both'), SMALL_KITTI)
    assert [e.side for e in ds.entries] == ['l', 'r']
    sample_l, sample_r = ds[0], ds[1]
    gt3 = generate_depth_map(root / left[0].date, left[0].velodyne_path(root), cam=3)
    geometry = InputGeometry.fit(gt3.shape[1], gt3.shape[0], SMALL_KITTI)
    assert np.array_equal(sample_r['depth'][0].numpy(), geometry.sparse_depth_to_output(gt3))
    assert not torch.equal(sample_l['image'], sample_r['image'])
    assert not torch.equal(sample_l['depth'], sample_r['depth'])


def test_training_samples_are_reproducible_draws():
    root, splits = synthetic_kitti()
    entries = read_split_file(splits / 'val_files.txt')[:2]
    test_ds = KittiDepthDataset(root, entries, SMALL_KITTI)
    train_ds = KittiDepthDataset(root, entries, SMALL_KITTI, train=True)
    a, b = train_ds[(0, 1234)], train_ds[(0, 1234)]
    assert torch.equal(a['image'], b['image']) and torch.equal(a['depth'], b['depth'])
    draws = [train_ds[(0, seed)] for seed in range(8)]
    assert len({float(d['scale']) for d in draws}) == 8
    assert {bool(d['flip']) for d in draws} == {True, False}
    # each sample is its recorded draw applied to image and LiDAR alike, depths over s
    gt = generate_depth_map(root / entries[0].date, entries[0].velodyne_path(root), cam=2)
    rgb = read_image(entries[0].image_path(root))
    for d in draws[:4]:
        s, flip = float(d['scale']), bool(d['flip'])
        crop = tuple(float(c) for c in d['crop'])
        geometry = InputGeometry.fit(gt.shape[1], gt.shape[0], SMALL_KITTI, s, crop)
        frame_gt, frame_rgb = (gt[:, ::-1], rgb[:, ::-1]) if flip else (gt, rgb)
        expected = geometry.sparse_depth_to_output(np.ascontiguousarray(frame_gt)) / s
        assert np.allclose(d['depth'][0].numpy(), expected, rtol=1e-6)
        window = geometry.crop_input(np.ascontiguousarray(frame_rgb)).astype(np.float32)
        window = np.minimum(window * d['colour'].numpy(), 255.0)
        x = normalize_image(torch.from_numpy(window).permute(2, 0, 1)[None])[0]
        assert torch.allclose(d['image'], x, atol=1e-5)
    assert not torch.equal(test_ds[0]['depth'], draws[0]['depth'])


def test_depth_cache_is_rebuilt_when_the_scan_changes(tmp_path):
    root = copy_drive(tmp_path, '2011_09_26/2011_09_26_drive_0001_sync')
    entries = [SplitEntry('2011_09_26/2011_09_26_drive_0001_sync', 0, 'l')]
    cache = tmp_path / 'cache'
    first = KittiDepthDataset(root, entries, SMALL_KITTI, cache_dir=cache)[0]['depth']
    scan = entries[0].velodyne_path(root)
    points = np.fromfile(scan, '<f4').reshape(-1, 4)
    points[:, 0] *= 2.0  # everything twice as far
    points.tofile(scan)
    second = KittiDepthDataset(root, entries, SMALL_KITTI, cache_dir=cache)[0]['depth']
    assert float(second.max()) > 1.5 * float(first.max())


def test_missing_frames_are_skipped_and_counted(tmp_path):
    drive = '2011_09_26/2011_09_26_drive_0001_sync'
    root = copy_drive(tmp_path, drive)
    entries = [SplitEntry(drive, f, 'l') for f in range(5)] + [SplitEntry(drive, 99, 'l')]
    entries[1].image_path(root).unlink()
    entries[2].velodyne_path(root).unlink()
    ds = KittiDepthDataset(root, entries, SMALL_KITTI)
    assert [e.frame for e in ds.entries] == [0, 3, 4]
    assert ds.report.missing == 3 and ds.report.listed == 6 and ds.report.usable == 3
    assert '3 missing' in ds.report.summary()


def test_corrupt_png_and_scan_are_counted(tmp_path):
    drive = '2011_09_26/2011_09_26_drive_0001_sync'
    root = copy_drive(tmp_path, drive)
    entries = [SplitEntry(drive, f, 'l') for f in range(5)]
    entries[0].image_path(root).write_bytes(b'not a png at all')
    scan = entries[1].velodyne_path(root)
    scan.write_bytes(scan.read_bytes()[:1001])                   # not a multiple of 16 bytes
    png = entries[2].image_path(root)
    png.write_bytes(png.read_bytes()[:200])                      # PNG header, data cut off
    ds = KittiDepthDataset(root, entries, SMALL_KITTI)
    assert ds.report.corrupt_image == 1 and ds.report.corrupt_velodyne == 1
    assert [e.frame for e in ds.entries] == [2, 3, 4]
    # the truncated PNG only shows when decoded: an empty sample flagged not ok
    bad = ds[0]
    assert not bad['ok'] and not bad['mask'].any() and float(bad['image'].abs().sum()) == 0
    assert ds[1]['ok']


def test_absent_drives_and_empty_split_raise(tmp_path):
    root, _ = synthetic_kitti()
    entries = [SplitEntry('2011_09_26/2011_09_26_drive_0001_sync', 0, 'l'),
               SplitEntry('2011_09_28/2011_09_28_drive_0037_sync', 0, 'l'),
               SplitEntry('2011_10_03/2011_10_03_drive_0042_sync', 5, 'r')]
    with pytest.raises(SplitError) as err:
        KittiDepthDataset(root, entries, SMALL_KITTI)
    assert '2011_09_28_drive_0037_sync' in str(err.value)
    assert '2011_10_03_drive_0042_sync' in str(err.value)
    with pytest.raises(ValueError, match='no frame'):
        KittiDepthDataset(root, [], SMALL_KITTI)
    (tmp_path / 'empty.txt').write_text('\n')
    with pytest.raises(ValueError):
        read_split_file(tmp_path / 'empty.txt')


def test_expand_sides():
    entries = [SplitEntry('2011_09_26/2011_09_26_drive_0001_sync', 3, 'l'),
               SplitEntry('2011_09_26/2011_09_26_drive_0001_sync', 4, 'r')]
    assert expand_sides(entries, 'listed') == entries
    assert [e.side for e in expand_sides(entries, 'left')] == ['l', 'l']
    both = expand_sides(entries, 'both')
    assert sorted((e.frame, e.side) for e in both) == [(3, 'l'), (3, 'r'), (4, 'l'), (4, 'r')]


def test_resumable_sampler_continues_mid_epoch_and_shards():
    data = list(range(23))
    full = ResumableSampler(data, num_replicas=1, rank=0, seed=5)
    full.set_position(2)
    stream = list(full)
    assert sorted(i for i, _ in stream) == data
    resumed = ResumableSampler(data, num_replicas=1, rank=0, seed=5)
    resumed.set_position(2, start=8)
    assert list(resumed) == stream[8:] and len(resumed) == len(stream) - 8
    other_epoch = ResumableSampler(data, num_replicas=1, rank=0, seed=5)
    other_epoch.set_position(3)
    assert [i for i, _ in other_epoch] != [i for i, _ in stream]
    ranks = [ResumableSampler(data, num_replicas=2, rank=r, seed=5) for r in (0, 1)]
    shards = [list(s) for s in ranks]
    assert len(shards[0]) == len(shards[1]) == 12
    assert {i for i, _ in shards[0]} | {i for i, _ in shards[1]} == set(data)
    assert not {s for _, s in shards[0]} & {s for _, s in shards[1]}

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

"""The Eigen split: test drives, split files, and scene-separated lists from a KITTI root."""
from eigen_depth_training import kitti, splits, synth
from hypothesis import given, settings, strategies as st
import pytest

TEST_DRIVE = '2011_09_26/2011_09_26_drive_0002_sync'
TRAIN_DRIVES = ['2011_09_26/2011_09_26_drive_0001_sync', '2011_09_26/2011_09_26_drive_0005_sync',
                '2011_09_26/2011_09_26_drive_0011_sync']


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    """
    Write one test drive and three training drives of four small frames.

    The first frame of each drive is at standstill.
    """
    path = tmp_path_factory.mktemp('kitti')
    synth.write_synthetic_kitti(path, drive_names=[TEST_DRIVE] + TRAIN_DRIVES, frames=4,
                                stationary=1, size=(64, 32))
    return path


def test_the_28_test_drives():
    drives = splits.EIGEN_TEST_DRIVES
    assert len(drives) == len(set(drives)) == 28
    assert sum(d.startswith('2011_09_26/') for d in drives) == 21
    for date, number in (('2011_09_26', 2), ('2011_09_26', 117), ('2011_09_28', 2),
                         ('2011_09_29', 71), ('2011_09_30', 27), ('2011_10_03', 47)):
        assert f'{date}/{date}_drive_{number:04d}_sync' in drives
    # any spelling of a drive names the same entry
    assert splits.normalise_drive('2011_09_30_drive_0016') in drives
    assert splits.normalise_drive('2011_09_26_drive_0001_sync') not in drives


def test_entry_line_and_paths():
    entry = splits.parse_split_line('2011_09_26/2011_09_26_drive_0002_sync 0000000069 l')
    assert entry == splits.SplitEntry('2011_09_26_drive_0002', 69, 'l')
    assert entry.line() == '2011_09_26/2011_09_26_drive_0002_sync 0000000069 l'
    right = splits.SplitEntry(TEST_DRIVE, 5, 'r')
    assert right.cam == 3 and right.date == '2011_09_26'
    assert right.image_path('/k').as_posix() == f'/k/{TEST_DRIVE}/image_03/data/0000000005.png'
    assert right.velodyne_path('/k').as_posix() == \
        f'/k/{TEST_DRIVE}/velodyne_points/data/0000000005.bin'
    assert right.calib_dir('/k').as_posix() == '/k/2011_09_26'
    for bad in ('2011_09_26/2011_09_26_drive_0002_sync 69', 'x 0000000001 l',
                f'{TEST_DRIVE} 00a l', f'{TEST_DRIVE} 0000000001 c', ''):
        with pytest.raises(splits.SplitError, match='f.txt:7'):
            splits.parse_split_line(bad, 'f.txt', 7)


def test_split_file_round_trip_and_errors(tmp_path):
    entries = [splits.SplitEntry(TEST_DRIVE, 69, 'l'),
               splits.SplitEntry('2011_10_03/2011_10_03_drive_0047_sync', 0, 'r')]
    path = splits.write_split_file(tmp_path / 'sub' / 'test_files.txt', entries)
    assert path.read_text() == ('2011_09_26/2011_09_26_drive_0002_sync 0000000069 l\n'
                                '2011_10_03/2011_10_03_drive_0047_sync 0000000000 r\n')
    assert splits.read_split_file(path) == entries
    path.write_text(path.read_text() + '\n\n')          # blank lines are ignored
    assert splits.read_split_file(path) == entries
    path.write_text(entries[0].line() + '\nnot a line\n')
    with pytest.raises(splits.SplitError, match='test_files.txt:2'):
        splits.read_split_file(path)
    path.write_text('\n')
    with pytest.raises(splits.SplitError, match='no frame'):
        splits.read_split_file(path)
    with pytest.raises(splits.SplitError, match='empty'):
        splits.write_split_file(tmp_path / 'empty.txt', [])
    with pytest.raises(splits.SplitError, match='missing.txt'):
        splits.read_split_file(tmp_path / 'missing.txt')


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(splits.EIGEN_TEST_DRIVES), st.integers(0, 10 ** 10 - 1),
                          st.sampled_from('lr')), min_size=1, max_size=20))
def test_any_entries_round_trip(tmp_path_factory, rows):
    entries = [splits.SplitEntry(*row) for row in rows]
    path = splits.write_split_file(tmp_path_factory.mktemp('split') / 's.txt', entries)
    assert splits.read_split_file(path) == entries


def test_build_separates_scenes_and_skips_stationary_frames(root):
    split = splits.build_eigen_split(root, val_fraction=0.3, seed=1)
    assert {e.drive for e in split.test} == {TEST_DRIVE}
    assert [e.frame for e in split.test] == [1, 2, 3] and {e.side for e in split.test} == {'l'}
    train_drives = {e.drive for e in split.train}
    assert len(split.val_drives) == 1 and {e.drive for e in split.val} == set(split.val_drives)
    assert train_drives | set(split.val_drives) == set(TRAIN_DRIVES)
    assert not train_drives & set(split.val_drives)
    assert not train_drives & set(splits.EIGEN_TEST_DRIVES)
    assert {e.side for e in split.train} == {'l', 'r'}
    assert all(e.frame != 0 for e in split.train + split.val + split.test)
    assert len(split.train) == 2 * 2 * 3
    skipped = [index for index in split.indexes if index.stationary]
    assert len(skipped) == len(split.indexes) == 2 * 2 + 1 + 1
    assert splits.build_eigen_split(root, val_fraction=0.3, seed=1) == split
    no_val = splits.build_eigen_split(root, val_fraction=0.0, skip_stationary=False,
                                      train_sides=('l',))
    assert no_val.val == () and len(no_val.train) == 3 * 4 and len(no_val.test) == 4


def test_build_writes_split_files(root, tmp_path):
    split = splits.build_eigen_split(root, val_fraction=0.3)
    written = split.write(tmp_path)
    assert [p.name for p in written] == ['train_files.txt', 'val_files.txt', 'test_files.txt']
    assert tuple(splits.read_split_file(tmp_path / 'train_files.txt')) == split.train
    assert tuple(splits.read_split_file(tmp_path / 'test_files.txt')) == split.test
    assert split.test[0].image_path(root).is_file()
    assert split.train[0].velodyne_path(root).is_file()


def test_build_errors(root, tmp_path):
    with pytest.raises(splits.SplitError) as info:
        splits.build_eigen_split(root, drives=[TEST_DRIVE, '2011_09_26_drive_0009',
                                               '2011_10_03_drive_0047_sync'])
    message = str(info.value)
    assert '2 drive(s) absent' in message and '2011_09_26/2011_09_26_drive_0009_sync' in message
    assert '2011_10_03/2011_10_03_drive_0047_sync' in message
    with pytest.raises(splits.SplitError, match='no usable test frame'):
        splits.build_eigen_split(root, drives=TRAIN_DRIVES)
    with pytest.raises(splits.SplitError, match='no usable training frame'):
        splits.build_eigen_split(root, drives=[TEST_DRIVE])
    with pytest.raises(ValueError):
        splits.build_eigen_split(root, val_fraction=1.0)
    with pytest.raises(ValueError):
        splits.build_eigen_split(root, train_sides=('x',))
    with pytest.raises(splits.SplitError, match='not found'):
        splits.discover_drives(tmp_path / 'nothing')
    (tmp_path / '2011_09_26' / 'not_a_drive').mkdir(parents=True)
    with pytest.raises(splits.SplitError, match='no <date>'):
        splits.discover_drives(tmp_path)


def test_discover_and_separation_checks(root):
    assert splits.discover_drives(root) == sorted([TEST_DRIVE] + TRAIN_DRIVES)
    splits.check_drives_present(root, TRAIN_DRIVES)
    train = [splits.SplitEntry(TRAIN_DRIVES[0], 1)]
    splits.check_scene_separation(train, [splits.SplitEntry(TEST_DRIVE, 1)])
    with pytest.raises(splits.SplitError, match='drive_0002'):
        splits.check_scene_separation(train + [splits.SplitEntry(TEST_DRIVE, 3, 'r')])
    with pytest.raises(splits.SplitError, match='drive_0001'):
        splits.check_scene_separation(train, [splits.SplitEntry(TRAIN_DRIVES[0], 2)])
    assert isinstance(kitti.list_drive_frames(root, TEST_DRIVE), kitti.DriveFrameIndex)


def test_splits_command_writes_files_and_reports(tmp_path, capsys):
    root = tmp_path / 'kitti'
    synth.write_synthetic_kitti(root, frames=4, seed=2,
                                drive_names=['2011_09_26_drive_0002', '2011_09_26_drive_0001',
                                             '2011_09_26_drive_0003'])
    assert splits.main([str(root), '--out', str(tmp_path / 's'), '--val-fraction', '0.5']) == 0
    out = capsys.readouterr().out
    test_lines = (tmp_path / 's' / 'test_files.txt').read_text().splitlines()
    assert test_lines and all(line.startswith('2011_09_26/2011_09_26_drive_0002_sync ')
                              for line in test_lines)
    train = splits.read_split_file(tmp_path / 's' / 'train_files.txt')
    assert {entry.side for entry in train} == {'l', 'r'}
    assert 'stationary skipped' in out and 'train,' in out
    assert splits.main([str(tmp_path / 'none'), '--out', str(tmp_path / 't')]) == 1
    assert 'eigen-depth splits: error:' in capsys.readouterr().err

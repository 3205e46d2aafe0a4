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

"""Checkpoint round trip and every bad-checkpoint case."""
import errno
import os
import pickle
import re
from types import SimpleNamespace
import zipfile

from eigen_depth_ros.core.checkpoint import (CHECKPOINT_FORMAT, CheckpointError, load_checkpoint,
                                             read_checkpoint, save_checkpoint)
from eigen_depth_ros.core.model import config_to_dict, EigenDepthNet
import pytest
from support import SMALL_KITTI
import torch


@pytest.fixture
def model():
    torch.manual_seed(3)
    return EigenDepthNet(SMALL_KITTI)


def test_round_trip(tmp_path, model):
    path = save_checkpoint(tmp_path / 'sub' / 'm.pt', model, step=7, options={'lr': 0.1})
    loaded, meta = load_checkpoint(path)
    assert meta['step'] == 7 and meta['options'] == {'lr': 0.1}
    assert meta['format'] == CHECKPOINT_FORMAT and 'state_dict' not in meta
    assert loaded.config == SMALL_KITTI and not loaded.training
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    assert [p.name for p in tmp_path.joinpath('sub').iterdir()] == ['m.pt']  # no temp left


def test_plain_dict_loads_with_weights_only(tmp_path, model):
    path = save_checkpoint(tmp_path / 'm.pt', model)
    raw = torch.load(path, weights_only=True)
    assert raw['model_args'] == config_to_dict(SMALL_KITTI)


def test_save_is_atomic_when_writing_fails(tmp_path, model, monkeypatch):
    path = save_checkpoint(tmp_path / 'm.pt', model, step=1)
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(torch, 'save', disk_full)
    with pytest.raises(OSError):
        save_checkpoint(path, model, step=2)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ['m.pt']


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match='nope.pt: checkpoint file not found'):
        load_checkpoint(tmp_path / 'nope.pt')


def test_truncated_file(tmp_path, model):
    path = save_checkpoint(tmp_path / 'm.pt', model)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r'm.pt: not a checkpoint .*truncated'):
        load_checkpoint(path)
    path.write_bytes(b'hello, not a model')
    with pytest.raises(CheckpointError, match=r'm.pt: not a checkpoint'):
        load_checkpoint(path)


def test_wrong_format(tmp_path, model):
    path = tmp_path / 'other.pt'
    torch.save({'format': 'someone-else/3', 'state_dict': model.state_dict()}, path)
    with pytest.raises(CheckpointError, match="other.pt: format is 'someone-else/3'"):
        load_checkpoint(path)
    torch.save(model.state_dict(), path)  # a bare state dict
    with pytest.raises(CheckpointError, match='other.pt: format is None'):
        load_checkpoint(path)


def test_mismatched_weights(tmp_path, model):
    path = tmp_path / 'm.pt'
    state = model.state_dict()
    state['coarse.fc7.weight'] = torch.zeros(3, 3)
    torch.save({'format': CHECKPOINT_FORMAT, 'model_args': config_to_dict(SMALL_KITTI),
                'state_dict': state}, path)
    with pytest.raises(CheckpointError, match=r'm.pt: weights do not fit.*coarse.fc7.weight'):
        load_checkpoint(path)
    del state['coarse.fc7.weight']
    torch.save({'format': CHECKPOINT_FORMAT, 'model_args': config_to_dict(SMALL_KITTI),
                'state_dict': state}, path)
    with pytest.raises(CheckpointError, match='Missing key'):
        load_checkpoint(path)


def test_bad_model_args(tmp_path, model):
    path = tmp_path / 'm.pt'
    torch.save({'format': CHECKPOINT_FORMAT, 'model_args': {'name': 'x'},
                'state_dict': model.state_dict()}, path)
    with pytest.raises(CheckpointError, match='m.pt: bad model_args'):
        load_checkpoint(path)


class RunsCode:
    def __reduce__(self):
        return (os.system, ('touch pwned',))


def test_code_running_pickle_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / 'evil.pt'
    torch.save({'format': CHECKPOINT_FORMAT, 'payload': RunsCode()}, path)
    with pytest.raises(CheckpointError, match='evil.pt: refused'):
        load_checkpoint(path)
    path.write_bytes(pickle.dumps(RunsCode()))  # a legacy plain pickle
    with pytest.raises(CheckpointError, match='evil.pt'):
        load_checkpoint(path)
    assert not (tmp_path / 'pwned').exists()


def test_f_train_is_read_or_assumed_with_a_warning(tmp_path):
    from eigen_depth_ros.core.checkpoint import train_focal, TRAIN_FOCAL_KEY
    from eigen_depth_ros.core.geometry import kitti_train_focal
    model = EigenDepthNet(SMALL_KITTI)
    _, meta = load_checkpoint(save_checkpoint(tmp_path / 'new.pt', model, f_train=472.5))
    assert TRAIN_FOCAL_KEY == 'f_train' and train_focal(meta, SMALL_KITTI) == (472.5, None)
    _, old = load_checkpoint(save_checkpoint(tmp_path / 'old.pt', model))  # before the field
    focal, note = train_focal(old, SMALL_KITTI)
    assert focal == kitti_train_focal(SMALL_KITTI) and 'records no f_train' in note
    for bad in (0.0, -3.0, float('nan'), 'x'):
        focal, note = train_focal({'f_train': bad}, SMALL_KITTI)
        assert focal == kitti_train_focal(SMALL_KITTI) and 'bad f_train' in note


def test_f_train_below_one_pixel_is_kept_and_the_warning_says_what_was_assumed():
    from eigen_depth_ros.core.checkpoint import train_focal
    from eigen_depth_ros.core.geometry import kitti_train_focal
    assert train_focal({'f_train': 0.5}, SMALL_KITTI) == (0.5, None)
    assert train_focal({'f_train': '472.5'}, SMALL_KITTI) == (472.5, None)
    assumed = kitti_train_focal(SMALL_KITTI)
    assert train_focal({}, SMALL_KITTI) == (assumed, (
        'checkpoint records no f_train (written before the canonical-focal rule): assuming '
        f"KITTI's camera, f_train = {assumed:.1f} px at the network input"))
    assert train_focal({'f_train': -3.0}, SMALL_KITTI)[1].startswith(
        'checkpoint has a bad f_train -3.0 (written before the canonical-focal rule)')


def test_a_wrapped_model_is_saved_as_the_network_inside(tmp_path, model):
    ddp_like = SimpleNamespace(module=model)      # DistributedDataParallel keeps it in .module
    loaded, _ = load_checkpoint(save_checkpoint(tmp_path / 'a' / 'b' / 'm.pt', ddp_like))
    assert loaded.config == SMALL_KITTI            # the missing folders a/b were made
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)


def test_the_temporary_file_is_hidden_beside_the_target(tmp_path, model, monkeypatch):
    seen = []
    real_save = torch.save

    def spy(payload, file):
        seen.extend(os.listdir(tmp_path))
        real_save(payload, file)
    monkeypatch.setattr(torch, 'save', spy)
    save_checkpoint(tmp_path / 'm.pt', model)
    assert len(seen) == 1 and re.fullmatch(r'\.m\.pt\.[^/]+\.tmp', seen[0])
    assert os.listdir(tmp_path) == ['m.pt']


def test_a_full_disk_is_reported_as_the_systems_error(tmp_path, model, monkeypatch):
    path = save_checkpoint(tmp_path / 'm.pt', model, step=1)
    before = path.read_bytes()
    real_write = os.write

    def disk_full_after_4_kib(fd, data):
        if os.fstat(fd).st_size >= 4096:
            raise OSError(errno.ENOSPC, 'No space left on device')
        return real_write(fd, data)
    monkeypatch.setattr(os, 'write', disk_full_after_4_kib)
    with pytest.raises(OSError) as info:       # not torch.save's "unexpected pos"
        save_checkpoint(path, model, step=2)
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ['m.pt']


def test_another_runtime_error_of_torch_save_is_raised_as_it_is(tmp_path, model, monkeypatch):
    def fails(payload, file):
        raise RuntimeError('serialisation failed')
    monkeypatch.setattr(torch, 'save', fails)
    with pytest.raises(RuntimeError, match='^serialisation failed$'):
        save_checkpoint(tmp_path / 'm.pt', model)
    assert os.listdir(tmp_path) == []


def test_read_checkpoint_maps_the_tensors_where_asked(tmp_path, model):
    path = save_checkpoint(tmp_path / 'm.pt', model)
    assert read_checkpoint(path)['state_dict']['coarse.fc7.weight'].device.type == 'cpu'
    meta = read_checkpoint(path, map_location='meta')
    assert meta['state_dict']['coarse.fc7.weight'].device.type == 'meta'


def test_unreadable_files_are_named_with_the_first_line_of_the_reason(tmp_path, monkeypatch):
    path = tmp_path / 'm.pt'
    path.write_bytes(b'hello, not a model')
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    assert str(info.value) == (f'{path}: not a checkpoint (not a torch.save zip archive; '
                               'truncated, corrupt or another kind of file)')
    with zipfile.ZipFile(path, 'w') as archive:   # a zip archive, but not torch's
        archive.writestr('hello.txt', 'not a model')
    with pytest.raises(RuntimeError) as raw:
        torch.load(path, weights_only=True)
    reason = str(raw.value).strip().splitlines()[0]
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    assert str(info.value) == f'{path}: not a readable checkpoint (truncated or corrupt: ' \
        f'{reason!r})'

    def raises(error):
        def load(*args, **kwargs):
            raise error
        return load
    monkeypatch.setattr(torch, 'load', raises(EOFError()))      # an error without a text
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    assert str(info.value) == f'{path}: not a readable checkpoint (truncated or corrupt: ' \
        'EOFError())'
    monkeypatch.setattr(torch, 'load', raises(pickle.UnpicklingError('')))
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    assert str(info.value) == f'{path}: refused, the file holds more than plain data and ' \
        'tensors (refused)'


def test_a_refused_pickle_names_the_first_line_of_torchs_reason(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / 'evil.pt'
    torch.save({'format': CHECKPOINT_FORMAT, 'payload': RunsCode()}, path)
    with pytest.raises(pickle.UnpicklingError) as raw:
        torch.load(path, weights_only=True)
    reason = str(raw.value).strip().splitlines()[0]
    assert reason                                   # torch says why
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    assert str(info.value) == f'{path}: refused, the file holds more than plain data and ' \
        f'tensors ({reason})'
    assert not (tmp_path / 'pwned').exists()


def test_other_payloads_and_missing_entries_are_named(tmp_path, model):
    path = tmp_path / 'm.pt'
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    assert str(info.value) == f"{path}: format is 'list', expected '{CHECKPOINT_FORMAT}'"
    torch.save({'format': CHECKPOINT_FORMAT, 'model_args': config_to_dict(SMALL_KITTI)}, path)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    assert str(info.value) == f"{path}: missing entry 'state_dict'"


def test_weights_that_do_not_fit_are_named_in_two_lines_at_most(tmp_path, model):
    path = tmp_path / 'm.pt'
    state = model.state_dict()
    del state['coarse.fc7.bias']
    state['extra'] = torch.zeros(1)
    state['coarse.fc7.weight'] = torch.zeros(3, 3)   # a third complaint, left out
    torch.save({'format': CHECKPOINT_FORMAT, 'model_args': config_to_dict(SMALL_KITTI),
                'state_dict': state}, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(info.value) == (f'{path}: weights do not fit the network: Missing key(s) in '
                               'state_dict: "coarse.fc7.bias". Unexpected key(s) in '
                               'state_dict: "extra".')
    torch.save({'format': CHECKPOINT_FORMAT, 'model_args': config_to_dict(SMALL_KITTI),
                'state_dict': [1, 2]}, path)           # a one-line complaint
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(info.value) == (f'{path}: weights do not fit the network: Expected state_dict '
                               "to be dict-like, got <class 'list'>.")

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

"""Training: options, a short run that learns, exact resume, NaN and Ctrl-C handling."""
from __future__ import annotations

import json
import math
import os
import signal

from eigen_depth_ros.core.checkpoint import load_checkpoint, read_checkpoint
from eigen_depth_ros.core.model import KITTI
from eigen_depth_training import train as train_module
from eigen_depth_training.options import (build_parser, default_options, learning_rates,
                                          model_config, parse_options, stage_steps)
from eigen_depth_training.train import main, NonFiniteLossError, train
import pytest
from support import cli_args, small_options, synthetic_kitti
from support import SMALL_KITTI
import torch


pytestmark = pytest.mark.usefixtures('one_torch_thread')


def poisoned_loss(monkeypatch, at_step, action):
    """Wrap the training loss so that training call number ``at_step`` runs ``action``."""
    real = train_module.scale_invariant_loss
    calls = {'n': 0}

    def wrapped(pred, gt, mask, lam=0.5):
        loss = real(pred, gt, mask, lam=lam)
        if pred.requires_grad:  # training steps only, not validation
            calls['n'] += 1
            if calls['n'] == at_step:
                return action(loss)
        return loss

    monkeypatch.setattr(train_module, 'scale_invariant_loss', wrapped)


def test_defaults_are_the_paper_recipe_but_the_optimiser():
    opts = default_options()
    assert (opts.batch_size, opts.momentum, opts.lam) == (32, 0.9, 0.5)
    assert opts.recipe == 'scratch'
    assert learning_rates(opts) == dict.fromkeys(
        ('coarse_conv', 'coarse_fc', 'fine_outer', 'fine_middle'), 3e-4)
    paper = default_options(recipe='paper')
    assert learning_rates(paper) == {'coarse_conv': 1e-3, 'coarse_fc': 0.1,
                                     'fine_outer': 1e-3, 'fine_middle': 1e-2}
    assert stage_steps(opts) == {'coarse': 46875, 'fine': 31250}  # 1.5M and 1M samples
    assert (opts.scale_max, tuple(opts.colour_range), opts.flip_prob) == (1.2, (0.8, 1.2), 0.5)
    assert opts.stage == 'both' and model_config(opts) == KITTI
    narrow = model_config(default_options(width_mult=0.125))
    assert narrow.coarse_channels == (12, 32, 48, 48, 32) and narrow.fc_width == 512
    assert narrow.output_size == KITTI.output_size and 'narrow' in narrow.name
    # every option has a help text
    for action in build_parser()._actions:
        assert action.help, action.dest
    with pytest.raises(SystemExit):
        parse_options(['--data-root', 'r', '--train-split', 's'])  # no --out
    with pytest.raises(ValueError, match='--init'):
        default_options(stage='fine')


def test_short_training_lowers_the_validation_loss(tmp_path):
    opts = small_options(tmp_path / 'run', coarse_samples=96, fine_samples=48,
                         checkpoint_every=10, no_tensorboard=False)
    result = train(opts, SMALL_KITTI)
    assert result.status == 'finished' and result.steps == {'coarse': 24, 'fine': 12}
    history = result.val_history
    assert [(v['stage'], v['step']) for v in history] == [
        ('coarse', 0), ('coarse', 24), ('fine', 0), ('fine', 12)]
    assert history[1]['loss'] < history[0]['loss']
    assert history[-1]['loss'] < 0.8 * history[0]['loss']
    assert history[-1]['abs_rel'] < history[0]['abs_rel']
    for name in ('last', 'coarse', 'final'):
        model, meta = load_checkpoint(tmp_path / 'run' / f'{name}.pt')
        assert set(meta) >= {'step', 'stage', 'optimizer', 'rng', 'sampler', 'options'}
    coarse, _ = load_checkpoint(tmp_path / 'run' / 'coarse.pt')
    final, meta = load_checkpoint(tmp_path / 'run' / 'final.pt')
    assert meta['stage'] == 'fine' and meta['step'] == 12
    # the fine stage left the frozen coarse stack untouched
    for (name, a), b in zip(coarse.coarse.state_dict().items(),
                            final.coarse.state_dict().values()):
        assert torch.equal(a, b), name
    assert not torch.equal(coarse.fine.conv3[0].weight, final.fine.conv3[0].weight)
    saved = json.loads((tmp_path / 'run' / 'options.json').read_text())
    assert saved['options']['batch_size'] == 4 and saved['model_args']['fc_width'] == 64
    assert list((tmp_path / 'run' / 'tb').glob('events.out.tfevents.*'))
    assert result.data_report['usable'] == 20 and result.samples_per_second > 0


def test_resume_gives_the_same_weights(tmp_path):
    common = {'coarse_samples': 16, 'fine_samples': 12, 'batch_size': 2, 'val_split': None,
              'checkpoint_every': 2}
    straight = train(small_options(tmp_path / 'a', **common), SMALL_KITTI)
    assert straight.status == 'finished'
    # the same run in three pieces: stop inside coarse, stop inside fine, finish
    first = train(small_options(tmp_path / 'b', stop_after=5, **common), SMALL_KITTI)
    assert first.status == 'stopped' and (first.stage, first.step) == ('coarse', 5)
    second = train(small_options(tmp_path / 'b', stop_after=6, resume='last', workers=1,
                                 **common))
    assert second.status == 'stopped' and (second.stage, second.step) == ('fine', 3)
    third = train(small_options(tmp_path / 'b', resume='last', **common))
    assert third.status == 'finished'
    a = read_checkpoint(tmp_path / 'a' / 'final.pt')
    b = read_checkpoint(tmp_path / 'b' / 'final.pt')
    for key, value in a['state_dict'].items():
        assert torch.equal(value, b['state_dict'][key]), key
    assert a['sampler'] == b['sampler'] and a['samples_seen'] == b['samples_seen']


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    opts = small_options(tmp_path / 'run', coarse_samples=40, checkpoint_every=2,
                         val_split=None)
    poisoned_loss(monkeypatch, 5, lambda loss: loss * float('nan'))
    with pytest.raises(NonFiniteLossError) as err:
        train(opts, SMALL_KITTI)
    assert 'coarse step 5' in str(err.value) and 'last.pt' in str(err.value)
    last = read_checkpoint(tmp_path / 'run' / 'last.pt')
    assert (last['stage'], last['step']) == ('coarse', 4)
    assert all(torch.isfinite(v).all() for v in last['state_dict'].values())
    assert not (tmp_path / 'run' / 'final.pt').exists()
    # the command line says so in one line and exits non-zero
    poisoned_loss(monkeypatch, 3, lambda loss: loss + float('inf'))
    code = main(cli_args(opts) + ['--out', str(tmp_path / 'cli'), '--checkpoint-every', '2'])
    assert code == 3
    lines = [ln for ln in capsys.readouterr().err.splitlines() if 'non-finite' in ln]
    assert len(lines) == 1 and 'coarse step 3' in lines[0] and 'coarse step 2' in lines[0]


def test_ctrl_c_saves_and_exits(tmp_path, monkeypatch):
    handler_before = signal.getsignal(signal.SIGINT)  # SIG_IGN when started in background
    opts = small_options(tmp_path / 'run', coarse_samples=40, val_split=None)
    poisoned_loss(monkeypatch, 3, lambda loss: (os.kill(os.getpid(), signal.SIGINT), loss)[1])
    result = train(opts, SMALL_KITTI)
    assert result.status == 'interrupted' and result.step == 3
    last = read_checkpoint(tmp_path / 'run' / 'last.pt')
    assert (last['stage'], last['step']) == ('coarse', 3)
    assert signal.getsignal(signal.SIGINT) is handler_before  # training restores it


def test_bad_input_gives_a_one_line_error(tmp_path, capsys):
    opts = small_options(tmp_path / 'run')
    split = tmp_path / 'absent.txt'
    split.write_text('2011_09_28/2011_09_28_drive_0037_sync 0000000001 l\n'
                     '2011_10_03/2011_10_03_drive_0042_sync 0000000002 l\n')
    args = cli_args(opts)
    args[args.index('--train-split') + 1] = str(split)
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and '2011_09_28_drive_0037_sync' in err[0] \
        and '2011_10_03_drive_0042_sync' in err[0]
    split.write_text('')
    assert main(args) == 2
    assert 'no frame' in capsys.readouterr().err
    args[args.index('--train-split') + 1] = str(opts.train_split)
    assert main(args + ['--batch-size', '64', '--coarse-samples', '64',
                        '--fine-samples', '64']) == 2
    assert 'fewer than one batch' in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:  # a budget below one batch: refused at once
        main(args + ['--coarse-samples', '4', '--batch-size', '8'])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()  # argparse's usage, then one line
    assert err[-1] == ('eigen-depth train: error: --coarse-samples 4 is less than one batch '
                       'of 8 (--batch-size)')
    assert not list(tmp_path.glob('run/*.pt'))


def test_overfits_a_few_frames_from_scratch(tmp_path):
    """The sanity check of a training loop: with nothing in the way it memorises 4 frames."""
    import dataclasses

    from eigen_depth_training.splits import read_split_file, write_split_file

    root, splits = synthetic_kitti()
    frames = tmp_path / 'four.txt'
    write_split_file(frames, read_split_file(splits / 'train_files.txt')[:4])
    opts = small_options(tmp_path / 'run', train_split=frames, val_split=frames,
                         stage='coarse', coarse_samples=4 * 150, no_augment=True)
    result = train(opts, dataclasses.replace(SMALL_KITTI, dropout=0.0))
    start, end = result.val_history[0], result.val_history[-1]
    assert result.status == 'finished' and result.steps == {'coarse': 150}
    assert end['abs_rel'] < 0.08 and end['abs_rel'] < 0.25 * start['abs_rel'], \
        (start['abs_rel'], end['abs_rel'])
    assert end['loss'] < 0.1 * start['loss']
    with open(tmp_path / 'run' / 'learning_curves.png', 'rb') as png:
        assert png.read(8) == b'\x89PNG\r\n\x1a\n'


def test_local_rank_beyond_the_visible_gpus_says_what_to_do(monkeypatch):
    from eigen_depth_training import distributed

    assert distributed.rank_cuda_index(1, 2) == 1
    with pytest.raises(ValueError, match='LOCAL_RANK=3 but this process sees 1') as err:
        distributed.rank_cuda_index(3, 1, '5')
    assert '--gpus-per-task' in str(err.value) and 'LOCAL_RANK=0' in str(err.value)
    # under torchrun on CUDA: the check runs before any device is touched
    monkeypatch.setenv('WORLD_SIZE', '4')
    monkeypatch.setenv('RANK', '3')
    monkeypatch.setenv('LOCAL_RANK', '3')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    monkeypatch.setattr(torch.cuda, 'set_device', lambda device: pytest.fail('set_device'))
    with pytest.raises(ValueError, match='LOCAL_RANK=3'):
        distributed.setup_distributed('cuda')
    code = main(['--data-root', 'r', '--train-split', 's', '--out', 'o', '--device', 'cuda'])
    assert code == 2


def test_process_group_gets_a_long_timeout(monkeypatch):
    from datetime import timedelta

    from eigen_depth_training import distributed

    seen = {}
    monkeypatch.setenv('WORLD_SIZE', '2')
    monkeypatch.setenv('RANK', '1')
    monkeypatch.setattr(distributed.dist, 'is_initialized', lambda: False)
    monkeypatch.setattr(distributed.dist, 'init_process_group',
                        lambda **kwargs: seen.update(kwargs))
    ctx = distributed.setup_distributed('cpu')
    assert ctx.distributed and seen['backend'] == 'gloo'
    assert seen['timeout'] == timedelta(minutes=180) > timedelta(minutes=10)
    assert default_options().dist_timeout == 180.0
    distributed.setup_distributed('cpu', timeout_min=30)
    assert seen['timeout'] == timedelta(minutes=30)


def test_deterministic_mode_and_amp_format():
    from eigen_depth_training import distributed

    cpu, cuda = torch.device('cpu'), torch.device('cuda', 0)
    assert distributed.deterministic_wanted('auto', cuda)
    assert not distributed.deterministic_wanted('auto', cpu)
    assert distributed.deterministic_wanted('on', cpu)
    assert not distributed.deterministic_wanted('off', cuda)
    before = torch.are_deterministic_algorithms_enabled()
    with distributed.determinism(True) as info:
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert os.environ['CUBLAS_WORKSPACE_CONFIG'] == info['cublas_workspace_config']
    assert torch.are_deterministic_algorithms_enabled() == before
    # bfloat16 wherever it exists (no overflow, no GradScaler), float16 only on old GPUs
    assert distributed.amp_dtype_for(cpu) == torch.bfloat16
    assert distributed.amp_dtype_for(cuda, bf16_supported=True) == torch.bfloat16
    assert distributed.amp_dtype_for(cuda, bf16_supported=False) == torch.float16


def test_float16_autocast_skips_a_few_non_finite_steps(tmp_path, monkeypatch):
    from eigen_depth_training.options import MAX_SKIPPED_STEPS

    monkeypatch.setattr(train_module, 'amp_dtype_for', lambda device: torch.float16)
    real = train_module.scale_invariant_loss
    poisoned = set()

    def wrapped(pred, gt, mask, lam=0.5):
        loss = real(pred, gt, mask, lam=lam)
        if pred.requires_grad:
            wrapped.calls += 1
            if wrapped.calls in poisoned:
                return loss * float('inf')
        return loss

    monkeypatch.setattr(train_module, 'scale_invariant_loss', wrapped)
    wrapped.calls, poisoned = 0, {2, 3}
    opts = small_options(tmp_path / 'skip', coarse_samples=20, stage='coarse', amp='on',
                         val_split=None)
    result = train(opts, SMALL_KITTI)
    assert result.status == 'finished' and result.step == 5
    events = [json.loads(line) for line in
              (tmp_path / 'skip' / 'train_log.jsonl').read_text().splitlines()]
    assert [e['in_row'] for e in events if e['event'] == 'skip'] == [1, 2]
    # more than MAX_SKIPPED_STEPS in a row stops the run as before
    wrapped.calls, poisoned = 0, set(range(1, 20))
    opts = small_options(tmp_path / 'stop', coarse_samples=40, stage='coarse', amp='on',
                         val_split=None)
    with pytest.raises(NonFiniteLossError, match=f'coarse step {MAX_SKIPPED_STEPS + 1}'):
        train(opts, SMALL_KITTI)


def test_resuming_a_finished_run_changes_nothing(tmp_path):
    opts = small_options(tmp_path / 'run', val_split=None)
    first = train(opts, SMALL_KITTI)
    weights = load_checkpoint(first.checkpoints['final'])[0].state_dict()
    again = train(small_options(tmp_path / 'run', val_split=None, resume='last'), SMALL_KITTI)
    assert again.status == 'finished' and again.stage == 'fine'
    for name, value in load_checkpoint(again.checkpoints['final'])[0].state_dict().items():
        assert torch.equal(value, weights[name]), name


def test_checkpoint_records_f_train_and_canonical_focal_rescales_targets(tmp_path):
    from eigen_depth_ros.core.geometry import InputGeometry
    from eigen_depth_training.dataset import KittiDepthDataset
    from eigen_depth_training.splits import read_split_file
    root, splits = synthetic_kitti()
    entries = read_split_file(splits / 'train_files.txt')[:2]
    plain = KittiDepthDataset(root, entries, SMALL_KITTI)
    # Synthetic calibration: KITTI's field of view at a third of the size.
    calib = plain.cache.calibration(entries[0])
    expected = InputGeometry.fit(*calib.image_size, SMALL_KITTI).input_focal(
        calib.P_rect[0, 0], calib.P_rect[1, 1])
    assert plain.frame_focal(0) == pytest.approx(expected) == pytest.approx(334.7, abs=0.5)
    assert plain.mean_focal() == pytest.approx(expected)
    same = KittiDepthDataset(root, entries, SMALL_KITTI, canonical_focal=plain.mean_focal())
    assert torch.equal(same[0]['depth'], plain[0]['depth'])  # same camera: untouched
    double = KittiDepthDataset(root, entries, SMALL_KITTI, canonical_focal=2 * expected,
                               max_depth=1e6)
    valid = plain[0]['mask']
    torch.testing.assert_close(double[0]['depth'][valid], 2 * plain[0]['depth'][valid])
    # Training records the mean focal length, or --canonical-focal.
    result = train(small_options(tmp_path / 'run'), SMALL_KITTI)
    assert result.status == 'finished'
    _, meta = load_checkpoint(tmp_path / 'run' / 'final.pt')
    assert meta['f_train'] == pytest.approx(expected)
    opts = small_options(tmp_path / 'canon', canonical_focal=400.0, stage='coarse')
    train(opts, SMALL_KITTI)
    _, meta = load_checkpoint(tmp_path / 'canon' / 'last.pt')
    assert meta['f_train'] == 400.0
    assert build_parser().parse_args(['--canonical-focal', '334.7']).canonical_focal == 334.7


def test_validation_metrics_are_the_evaluation_metrics_of_each_image():
    from eigen_depth_ros.core.metrics import compute_depth_metrics, METRIC_NAMES
    from eigen_depth_training.validation import output_grid_metrics

    g = torch.Generator().manual_seed(0)
    depth = torch.rand(5, 1, 6, 9, generator=g) * 30 + 1
    mask = torch.rand(5, 1, 6, 9, generator=g) < 0.5
    mask[:, 0, 0, 0] = True
    pred_log = torch.randn(5, 1, 6, 9, generator=g) * 0.5 + depth.log()
    pred_log[0] = (1.5 * depth[0]).log()              # 1.5 times the truth everywhere
    mask[1] = False                                   # no target pixel: left out
    pred_log[2, 0, 0, 0] = float('nan')               # non-finite on a target pixel
    pred_log[3][~mask[3]] = float('inf')              # non-finite off the targets only
    pred_log[4, 0, 0, 0] = -200.0                     # exp underflows to 0 on a target
    out = output_grid_metrics(pred_log, depth, mask)
    assert len(out) == 4
    scaled, nan, off_target, zero = out
    assert scaled['abs_rel'] == pytest.approx(0.5) and scaled['a1'] == 0.0
    assert scaled['a2'] == 1.0 and scaled['rmse_log'] == pytest.approx(math.log(1.5))
    assert scaled['si_rmse_log'] == pytest.approx(0.0, abs=1e-6)
    expected = compute_depth_metrics(pred_log[3, 0].exp(), depth[3, 0], mask[3, 0])
    assert all(math.isfinite(off_target[name]) for name in METRIC_NAMES)
    assert {name: off_target[name] for name in METRIC_NAMES} == \
        {name: expected[name] for name in METRIC_NAMES}
    for metrics in (nan, zero):
        assert all(math.isnan(metrics[name]) for name in METRIC_NAMES)


def test_frames_spread_evenly():
    from eigen_depth_training.splits import evenly_spread

    assert evenly_spread(4, 0) == [0, 1, 2, 3] == evenly_spread(4, 10)
    assert evenly_spread(10, 3) == [0, 4, 9]
    assert evenly_spread(100, 7)[-1] == 99 and len(evenly_spread(100, 7)) == 7
    assert evenly_spread(5, 1) == [0] and evenly_spread(0, 3) == []


def test_resume_position_is_exact_only_with_the_same_layout():
    from eigen_depth_training.resume import resume_position

    payload = {'world_size': 2, 'sampler': {'epoch': 3, 'position': 5, 'batch': 4}}
    assert resume_position(payload, 2, 4) == (3, 5, True)
    assert resume_position(payload, 1, 4) == (4, 0, False)
    assert resume_position(payload, 2, 8) == (4, 0, False)


def test_time_budget_ends_each_stage_early_as_if_complete(tmp_path):
    options = small_options(tmp_path / 'run', coarse_samples=400, fine_samples=400,
                            time_budget=1e-5)  # 0.6 ms: each stage ends after one step
    result = train(options, SMALL_KITTI)
    assert result.status == 'finished' and result.steps == {'coarse': 1, 'fine': 1}
    events = [json.loads(line) for line in
              (tmp_path / 'run' / 'train_log.jsonl').read_text().splitlines()]
    budget = [e for e in events if e['event'] == 'budget']
    assert [(e['stage'], e['step'], e['planned_steps']) for e in budget] == [
        ('coarse', 1, 100), ('fine', 1, 100)]
    _, meta = load_checkpoint(result.checkpoints['final'])
    assert meta['stage'] == 'fine' and meta['stages_done'] == ['coarse', 'fine']
    with pytest.raises(ValueError, match='--time-budget'):
        small_options(tmp_path / 'bad', time_budget=-1.0)

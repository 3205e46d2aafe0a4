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
In-process tests of the node's pure modules: parameter table, settings, backend choice, status.

No node runs here: :mod:`eigen_depth_ros.node.parameters`, :mod:`~.settings` and
:mod:`~.diagnostics` import without rclpy (the first two without torch too), and these tests
check them directly; test_node_camera.py does the same for the camera model modules.
"""
from __future__ import annotations

from dataclasses import fields
import math
from pathlib import Path
import subprocess
import sys

from eigen_depth_ros.core.backends import default_backend
from eigen_depth_ros.core.inference import BACKEND_ENV
from eigen_depth_ros.node.diagnostics import (Counters, depth_status, FocalState, Level,
                                              STAGES)
from eigen_depth_ros.node.parameters import (check_depth_resolution, check_rectify,
                                             choose_backend, DEPTH_RESOLUTIONS, DYNAMIC,
                                             NODE_NAME, PARAMETERS, RECTIFY_MODES)
from eigen_depth_ros.node.settings import Settings
import pytest
import yaml

PARAMS_FILE = Path(__file__).resolve().parents[1] / 'config' / 'depth.yaml'
DEFAULTS = {spec.name: spec.default for spec in PARAMETERS}


# ------------------------------------------------------------------------ the modules


def import_blocked(blocked: list[str], modules: list[str]) -> subprocess.CompletedProcess:
    """Import ``modules`` in a fresh Python where importing any of ``blocked`` fails."""
    code = ('import sys\n'
            f'for name in {blocked!r}:\n'
            '    sys.modules[name] = None  # any import of it raises ImportError\n'
            + ''.join(f'import {module}\n' for module in modules))
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=120)


def test_pure_modules_import_without_ros() -> None:
    """The node's pure modules import with rclpy and ROS messages blocked."""
    result = import_blocked(['rclpy', 'rcl_interfaces', 'diagnostic_msgs', 'sensor_msgs'],
                            [f'eigen_depth_ros.node.{name}' for name in (
                                'diagnostics', 'parameters', 'settings', 'focal', 'pairing',
                                'rectify')])
    assert result.returncode == 0, result.stderr


def test_parameter_table_imports_without_torch() -> None:
    """The table, the settings, pairing and rectification need neither torch nor rclpy."""
    result = import_blocked(['torch', 'rclpy'], [
        f'eigen_depth_ros.node.{name}' for name in ('diagnostics', 'parameters', 'settings',
                                                    'pairing', 'rectify')])
    assert result.returncode == 0, result.stderr


def test_the_table_names_the_backends_of_core() -> None:
    """The backend names written out in parameters.py are core.backends' own."""
    from eigen_depth_ros.core import backends
    from eigen_depth_ros.node import parameters
    assert parameters.BACKEND_NAMES == tuple(backends.BACKENDS)
    assert set(parameters.CPU_ONLY_NAMES) == backends.CPU_ONLY
    assert set(parameters.CUDA_ONLY_NAMES) == backends.CUDA_ONLY


# ------------------------------------------------------------------------ the table


def test_yaml_lists_the_table_in_order_with_its_defaults() -> None:
    """config/depth.yaml: one block named NODE_NAME, every parameter, its default and type."""
    document = yaml.safe_load(PARAMS_FILE.read_text())
    assert list(document) == [NODE_NAME]
    values = document[NODE_NAME]['ros__parameters']
    assert list(values) == [spec.name for spec in PARAMETERS]
    for spec in PARAMETERS:
        assert type(values[spec.name]) is type(spec.default), spec.name
        assert values[spec.name] == spec.default, spec.name


def test_table_names_ranges_and_dynamic_set_agree() -> None:
    names = [spec.name for spec in PARAMETERS]
    assert len(names) == len(set(names))
    for spec in PARAMETERS:
        assert spec.description and spec.describe().startswith(spec.description), spec.name
        if spec.unit:
            assert spec.describe().endswith(f' [{spec.unit}]'), spec.name
        if isinstance(spec.default, bool) or isinstance(spec.default, str):
            assert spec.min_value is None and spec.max_value is None, spec.name
        if spec.min_value is not None:
            assert spec.default >= spec.min_value, spec.name
        if spec.max_value is not None:
            assert spec.default <= spec.max_value, spec.name
    assert DYNAMIC == {spec.name for spec in PARAMETERS if not spec.read_only}
    assert DEFAULTS['depth_resolution'] in DEPTH_RESOLUTIONS


def test_every_runtime_parameter_but_checkpoint_reaches_the_settings() -> None:
    """A runtime parameter outside Settings would be accepted by param set and never used."""
    assert {field.name for field in fields(Settings)} == DYNAMIC - {'checkpoint'}


# ------------------------------------------------------------------------ settings


def test_settings_from_the_defaults_and_from_changes() -> None:
    settings = Settings.from_parameters(DEFAULTS)
    for field in fields(Settings):
        assert getattr(settings, field.name) == DEFAULTS[field.name], field.name
    changed = Settings.from_parameters({**DEFAULTS, 'max_depth': 8.0, 'clearing_range': 9.5,
                                        'points_stride': 3})
    assert (changed.max_depth, changed.clearing_range, changed.points_stride) == (8.0, 9.5, 3)
    assert changed.min_depth == DEFAULTS['min_depth']


@pytest.mark.parametrize('changes, match', [
    ({'points_stride': 0}, 'points_stride'),
    ({'min_depth': 5.0, 'max_depth': 5.0}, 'min_depth < max_depth'),
    ({'min_depth': -0.1}, 'min_depth'),
    ({'max_depth': 10.0, 'clearing_range': 10.0}, 'clearing_range'),
    ({'max_depth': 10.0, 'clearing_range': math.inf}, 'clearing_range'),
    ({'max_depth': 10.0, 'clearing_range': math.nan}, 'clearing_range'),
    ({'fallback_fx': -1.0}, 'fallback_fx'),
    ({'fallback_fy': -1.0}, 'fallback_fy'),
    ({'max_input_pixels': 0}, 'max_input_pixels'),
    ({'info_sync_tolerance': math.nan}, 'info_sync_tolerance'),
    ({'info_sync_tolerance': math.inf}, 'info_sync_tolerance'),
    ({'rectify': 'maybe'}, 'rectify'),
    ({'rectify': 'True'}, 'rectify'),
])
def test_settings_refuse_values_that_do_not_fit(changes: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Settings.from_parameters({**DEFAULTS, **changes})


def test_settings_need_every_field_without_a_default() -> None:
    values = dict(DEFAULTS)
    del values['max_depth']
    with pytest.raises(TypeError, match='max_depth'):
        Settings.from_parameters(values)


def test_rectify_takes_its_words_and_bools() -> None:
    """The words true and false arrive as bools from the command line and YAML: the same."""
    for value, mode in (('auto', 'auto'), ('true', 'true'), ('false', 'false'), (True, 'true'),
                        (False, 'false')):
        assert Settings.from_parameters({**DEFAULTS, 'rectify': value}).rectify == mode
    assert check_rectify(True) == 'true' and RECTIFY_MODES == ('auto', 'true', 'false')


def test_depth_resolution_is_network_or_input() -> None:
    for value in DEPTH_RESOLUTIONS:
        assert check_depth_resolution(value) == value
    for value in ('Network', 'output', ''):
        with pytest.raises(ValueError, match='depth_resolution'):
            check_depth_resolution(value)


# ------------------------------------------------------------------------ the backend


def test_backend_parameter_alone_chooses_without_warnings() -> None:
    assert choose_backend('auto', 'cpu') == (default_backend('cpu'), [])
    assert choose_backend('eager', 'cpu') == ('eager', [])
    assert choose_backend('auto', 'cuda') == ('fp16+graph', [])
    assert choose_backend('eager', 'cuda') == ('eager', [])


@pytest.mark.parametrize('requested, device, expected, effect', [
    ('eager', 'cuda', 'fp16', "backend 'eager' runs as 'fp16'"),
    ('eager', 'cuda:1', 'fp16', "backend 'eager' runs as 'fp16'"),
    ('auto', 'cuda', 'fp16+graph', "ignored: backend 'fp16+graph' on cuda sets"),
    ('bf16', 'cuda', 'bf16', "ignored: backend 'bf16' on cuda sets"),
    ('eager+graph', 'cuda', 'eager+graph', "ignored: backend 'eager+graph' on cuda sets"),
    ('eager', 'cpu', 'eager', "ignored: backend 'eager' on cpu sets"),
    ('auto', 'cpu', default_backend('cpu'), 'ignored'),
])
def test_half_is_a_deprecated_alias_with_one_warning(requested: str, device: str,
                                                     expected: str, effect: str) -> None:
    backend, notes = choose_backend(requested, device, half=True)
    assert backend == expected
    assert len(notes) == 1 and '\n' not in notes[0]
    assert notes[0].startswith('parameter half is deprecated') and effect in notes[0]


def test_the_environment_variable_never_chooses() -> None:
    backend, notes = choose_backend('eager', 'cpu', environment='int8')
    assert backend == 'eager'
    assert notes == [f'{BACKEND_ENV}=int8 is ignored: the node runs the backend parameter '
                     "('eager')"]
    assert choose_backend('eager', 'cpu', environment=' EAGER ') == ('eager', [])
    assert choose_backend('eager', 'cpu', environment='  ') == ('eager', [])
    backend, notes = choose_backend('eager', 'cuda', half=True, environment='bf16')
    assert backend == 'fp16' and len(notes) == 2


@pytest.mark.parametrize('requested, device, match', [
    ('fp17', 'cpu', 'unknown backend'),
    ('fp16', 'cpu', 'needs a CUDA device'),
    ('int8', 'cuda', 'CPU only'),
    ('eager+graph', 'cpu', 'CUDA graphs'),
])
def test_a_backend_the_device_cannot_run_is_refused(requested: str, device: str,
                                                    match: str) -> None:
    with pytest.raises(ValueError, match=match):
        choose_backend(requested, device, half=True)


# ------------------------------------------------------------------------ diagnostics


def counters(received: int = 0, processed: int = 0, dropped: int = 0, bad: int = 0,
             idle: int = 0, seconds: dict[str, list[float]] | None = None,
             end_to_end: list[float] | None = None) -> Counters:
    """Build counters; ``seconds`` gives some stages' times, the others stay empty."""
    result = Counters(received, processed, dropped, bad, idle)
    result.stage_s.update(seconds or {})
    result.end_to_end_s.extend(end_to_end or [])
    return result


def status(window: Counters, totals: Counters | None = None, elapsed_s: float = 2.0,
           rejected: bool = False, focal: FocalState = FocalState(), extra: tuple = ()):
    """Run depth_status with fixed device, backend and f_train."""
    return depth_status(window, totals or window, elapsed_s, camera_info_rejected=rejected,
                        device='cpu', backend='int8', focal=focal, f_train=721.5,
                        extra=extra)


KEYS = ['input rate (Hz)', 'output rate (Hz)', 'inference latency mean (ms)',
        'inference latency max (ms)', 'end-to-end latency mean (ms)',
        'end-to-end latency max (ms)', 'image age at receipt mean (ms)',
        'queue wait mean (ms)', 'image conversion mean (ms)', 'publishing mean (ms)',
        'dropped frames (period)', 'dropped frames (total)', 'bad frames (total)',
        'frames received (total)', 'frames processed (total)',
        'frames skipped, no subscriber (total)', 'camera_info unpaired (total)', 'device',
        'backend', 'focal scaling',
        'f_train (px)', 'f_in (px)', 'f_in source', 'depth scale f_in/f_train']


def test_levels_are_the_diagnostic_msgs_bytes() -> None:
    messages = pytest.importorskip('diagnostic_msgs.msg')
    assert bytes([Level.OK]) == messages.DiagnosticStatus.OK
    assert bytes([Level.WARN]) == messages.DiagnosticStatus.WARN


def test_healthy_status_reports_rates_latencies_and_counts() -> None:
    window = counters(received=20, processed=18, dropped=2, seconds={
        'inference': [0.010, 0.030], 'wait': [0.001, 0.003], 'age': [0.005],
        'conversion': [0.002, 0.002], 'publishing': [0.004, 0.006]},
        end_to_end=[0.020, 0.040])
    totals = counters(received=100, processed=90, dropped=7, bad=1, idle=3)
    focal = FocalState('camera_info', 360.75, 0.5)
    result = status(window, totals, elapsed_s=4.0, focal=focal,
                    extra=(('gpu memory reserved (MiB)', '12.0'),))
    assert result.level == Level.OK and result.message == 'ok'
    assert [key for key, _ in result.values] == KEYS + ['gpu memory reserved (MiB)']
    values = dict(result.values)
    assert values['input rate (Hz)'] == '5.00' and values['output rate (Hz)'] == '4.50'
    assert values['inference latency mean (ms)'] == '20.0'
    assert values['inference latency max (ms)'] == '30.0'
    assert values['end-to-end latency mean (ms)'] == '30.0'
    assert values['end-to-end latency max (ms)'] == '40.0'
    assert values['queue wait mean (ms)'] == '2.0'
    assert values['image age at receipt mean (ms)'] == '5.0'
    assert values['publishing mean (ms)'] == '5.0'
    assert values['dropped frames (period)'] == '2' and values['dropped frames (total)'] == '7'
    assert values['bad frames (total)'] == '1' and values['frames received (total)'] == '100'
    assert values['frames processed (total)'] == '90'
    assert values['frames skipped, no subscriber (total)'] == '3'
    assert (values['device'], values['backend']) == ('cpu', 'int8')
    assert values['focal scaling'] == 'on' and values['f_in source'] == 'camera_info'
    assert values['f_train (px)'] == '721.50' and values['f_in (px)'] == '360.75'
    assert values['depth scale f_in/f_train'] == '0.5000'
    assert values['gpu memory reserved (MiB)'] == '12.0'


def test_idle_status_is_ok_and_says_idle() -> None:
    result = status(counters(received=5, idle=5))
    assert result.level == Level.OK
    assert result.message == 'idle: no subscriber to any output'
    values = dict(result.values)
    assert values['output rate (Hz)'] == '0.00'
    assert all(values[key] == 'nan' for key in KEYS[2:10]), values


def test_degraded_status_warns_about_bad_frames() -> None:
    result = status(counters(received=10, processed=7, bad=3))
    assert result.level == Level.WARN and result.message == '3 bad input frame(s)'


def test_failing_status_names_every_problem() -> None:
    result = status(counters(bad=2, idle=0), rejected=True)
    assert result.level == Level.WARN
    assert result.message == 'no images received; 2 bad input frame(s); camera_info rejected'
    assert status(counters(received=4, processed=4), rejected=True).message == \
        'camera_info rejected'
    silent = status(counters(), elapsed_s=0.0)   # a zero-length period divides safely
    assert silent.message == 'no images received'
    assert dict(silent.values)['input rate (Hz)'] == '0.00'


def test_focal_pairs_before_a_frame_and_with_scaling_off() -> None:
    before = dict(FocalState().pairs(700.0))
    assert before['f_in (px)'] == 'nan' and before['f_in source'] == 'no frame yet'
    assert before['focal scaling'] == 'on' and before['depth scale f_in/f_train'] == '1.0000'
    off = dict(FocalState('off (scale_by_focal is false)', 350.0, 1.0).pairs(700.0))
    assert off['focal scaling'] == 'off' and off['f_in (px)'] == '350.00'


def test_counters_start_with_every_stage_empty() -> None:
    first, second = Counters(), Counters()
    assert list(first.stage_s) == list(STAGES) and not any(first.stage_s.values())
    first.stage_s['inference'].append(1.0)
    assert second.stage_s['inference'] == []   # no list shared between instances

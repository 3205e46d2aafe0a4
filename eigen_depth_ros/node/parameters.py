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
The parameters of ``depth_node``: one table, and the checks of the start-up ones.

Every parameter is declared once from :data:`PARAMETERS` (``config/depth.yaml`` lists them
with their defaults, docs/node.md describes them). The runtime parameters read per frame are
checked together by :class:`eigen_depth_ros.node.settings.Settings`; this module checks the
start-up ones that need more than a type and a range. Pure Python: importable without rclpy
and without torch (:func:`choose_backend` imports the backends when it is called).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eigen_depth_ros.msg.image_conversion import DEFAULT_MAX_PIXELS

NODE_NAME = 'eigen_depth'
"""The node name (the ``eigen_depth: ros__parameters:`` block of ``config/depth.yaml``)."""

DEPTH_RESOLUTIONS = ('network', 'input')
"""Values of ``depth_resolution``."""

RECTIFY_MODES = ('auto', 'true', 'false')
"""Values of ``rectify``."""

BACKEND_NAMES = ('eager', 'channels_last', 'bf16', 'int8', 'bf16_int8', 'compile', 'onnx', 'fp16')
"""
The backends ``backend`` names, as the parameter's description lists them.

Written out so that the table imports without torch; test_node_settings.py checks that they
are :data:`eigen_depth_ros.core.backends.BACKENDS`' names, and the CPU- and CUDA-only ones.
"""
CPU_ONLY_NAMES = ('int8', 'bf16_int8')
CUDA_ONLY_NAMES = ('fp16',)


@dataclass(frozen=True)
class ParameterSpec:
    """
    One node parameter: its default (which fixes its type), unit and description.

    :param name: parameter name.
    :param default: default value; its Python type is the parameter type.
    :param description: what it does (shown by ``ros2 param describe``).
    :param unit: unit of the value, empty when it has none.
    :param read_only: True when it is read once at start-up.
    :param min_value: lower bound for numbers (inclusive), None for none.
    :param max_value: upper bound for numbers (inclusive), None for none.
    :param dynamic_typing: True when a value of another type is accepted too (``rectify``
        takes ``true`` and ``false``, which the command line and YAML read as bools).
    """

    name: str
    default: Any
    description: str
    unit: str = ''
    read_only: bool = True
    min_value: float | None = None
    max_value: float | None = None
    dynamic_typing: bool = False

    def describe(self) -> str:
        """Return the description with its unit, as ``ros2 param describe`` shows it."""
        return self.description + (f' [{self.unit}]' if self.unit else '')


PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec('checkpoint', '', 'Network checkpoint file (.pt, written by eigen-depth '
                  'train); required. Set at runtime, the new network is loaded beside the '
                  'running one and replaces it only when it loaded; a bad file is refused and '
                  'the running network stays', read_only=False),
    ParameterSpec('device', 'auto', 'Where the network runs: auto (CUDA when present), cpu, '
                  'cuda or cuda:N'),
    ParameterSpec('half', False, 'Deprecated, use backend (fp16 on CUDA). True turns backend '
                  'eager on CUDA into fp16 and changes nothing else; a warning says which'),
    ParameterSpec('backend', 'auto', 'How the forward pass runs, and so its number format: '
                  'auto (the default for the device, named in the start-up log) or '
                  f"one of {', '.join(BACKEND_NAMES)} ({', '.join(CPU_ONLY_NAMES)} CPU only, "
                  f"{', '.join(CUDA_ONLY_NAMES)} CUDA only; on CUDA a +graph suffix "
                  'replays the network as a CUDA graph)'),
    ParameterSpec('onnx_path', '', 'ONNX file (eigen-depth export) run by backend onnx; '
                  'empty exports the network at start-up. Ignored by the other backends'),
    ParameterSpec('num_threads', 0, 'CPU threads of the network (torch.set_num_threads); 0 '
                  'keeps the PyTorch default of one per core', 'threads', min_value=0),
    ParameterSpec('compressed', False, 'Subscribe <image>/compressed '
                  '(sensor_msgs/CompressedImage) instead of image'),
    ParameterSpec('depth_resolution', 'network', 'Resolution of the published depth: '
                  "'network' (the output map, e.g. 142x27 for KITTI) or 'input' (the camera "
                  'image size, NaN where the network does not see)'),
    ParameterSpec('publish_points', True, 'Publish the point cloud on points',
                  read_only=False),
    ParameterSpec('points_stride', 1, 'Keep every N-th row and column of the depth image in '
                  'the cloud', 'pixels', read_only=False, min_value=1),
    ParameterSpec('points_rgb', True, 'Add the camera colour (packed rgb float) to the cloud',
                  read_only=False),
    ParameterSpec('min_depth', 0.1, 'Smallest depth kept in the cloud; nearest colour of '
                  'depth/colorized', 'm', read_only=False, min_value=0.0),
    ParameterSpec('max_depth', 20.0, 'Largest depth kept in the cloud; farthest colour of '
                  'depth/colorized', 'm', read_only=False, min_value=0.0),
    ParameterSpec('clearing_range', 0.0, 'Publish pixels deeper than max_depth as points at '
                  'this distance along their ray, so a costmap clears along them (set it '
                  'between obstacle_max_range and raytrace_max_range); 0 = off, else above '
                  'max_depth', 'm', read_only=False, min_value=0.0),
    ParameterSpec('publish_colorized', False, 'Publish a colour-mapped depth image '
                  '(rgb8) on depth/colorized', read_only=False),
    ParameterSpec('fallback_fx', 0.0, 'Focal length of the camera image used while no '
                  'camera_info has arrived; 0 disables the fallback (no cloud without '
                  'camera_info)', 'pixels', read_only=False, min_value=0.0),
    ParameterSpec('fallback_fy', 0.0, 'Fallback focal length along y; 0 means fallback_fx',
                  'pixels', read_only=False, min_value=0.0),
    ParameterSpec('fallback_cx', -1.0, 'Fallback principal point column; negative means the '
                  'image centre', 'pixels', read_only=False),
    ParameterSpec('fallback_cy', -1.0, 'Fallback principal point row; negative means the '
                  'image centre', 'pixels', read_only=False),
    ParameterSpec('scale_by_focal', True, 'Scale depth by f_in / f_train (the canonical-focal '
                  "rule): f_in is the camera's focal length at the network input's scale "
                  '(from camera_info, else fallback_fx), f_train that of the training camera '
                  '(from the checkpoint). False publishes the network depth unscaled',
                  read_only=False),
    ParameterSpec('info_sync_tolerance', 0.0, 'Largest stamp difference between an image and '
                  'the camera_info it is paired with; 0 pairs exact stamps only, negative turns '
                  'pairing off (the newest camera_info serves every image)', 's',
                  read_only=False),
    ParameterSpec('rectify', 'auto', 'Undistort the camera image with the camera_info '
                  'distortion (plumb_bob, rational_polynomial, equidistant) and R before the '
                  "network: 'auto' when D is not all zero, 'true' always, 'false' never (the "
                  'image is taken as rectified)', read_only=False, dynamic_typing=True),
    ParameterSpec('max_input_pixels', DEFAULT_MAX_PIXELS, 'Largest accepted camera image '
                  '(width x height); larger frames are dropped with an error', 'pixels',
                  read_only=False, min_value=1),
    ParameterSpec('diagnostics_period', 1.0, 'Period of the /diagnostics status', 's',
                  min_value=0.01),
)
"""Every parameter of the node, declared once from this table (docs/node.md lists them)."""

DYNAMIC = frozenset(spec.name for spec in PARAMETERS if not spec.read_only)
"""The parameters that may change while the node runs."""


def check_depth_resolution(value: str) -> str:
    """
    Return ``value`` when it is one of :data:`DEPTH_RESOLUTIONS`.

    :raises ValueError: naming the parameter and the accepted values.
    """
    if value not in DEPTH_RESOLUTIONS:
        raise ValueError(f"depth_resolution must be 'network' or 'input', got {value!r}")
    return value


def check_rectify(value: str | bool) -> str:
    """
    Return ``value`` as one of :data:`RECTIFY_MODES` (the bools true and false as strings).

    :raises ValueError: naming the parameter and the accepted values.
    """
    if isinstance(value, bool):
        return str(value).lower()
    if value not in RECTIFY_MODES:
        raise ValueError(f"rectify must be 'auto', 'true' or 'false', got {value!r}")
    return value


def choose_backend(requested: str, device: Any, half: bool = False,
                   environment: str = '') -> tuple[str, list[str]]:
    """
    Return the backend the node runs on ``device`` and the warnings to log at start-up.

    The ``backend`` parameter is the one way to choose how the network runs, and so its
    number format; ``auto`` resolves to the measured default of the device
    (:func:`~eigen_depth_ros.core.backends.check_backend`). ``half`` is a deprecated alias
    kept for old parameter files: ``half: true`` with ``backend: eager`` on CUDA runs
    ``fp16``, and with any other backend, or on a CPU, it changes nothing; either way one
    warning says so. The environment variable :data:`BACKEND_ENV`, which
    :meth:`DepthEstimator.from_checkpoint <eigen_depth_ros.core.inference.DepthEstimator>`
    reads when it is given no backend, never chooses the node's backend: a warning says it
    is ignored when it names another backend than ``requested``.

    :param requested: the ``backend`` parameter.
    :param device: the device the network runs on (a ``torch.device`` or its name).
    :param half: the deprecated ``half`` parameter.
    :param environment: the value of :data:`BACKEND_ENV` in the node's environment, ``''``
        when unset.
    :return: the resolved backend name (e.g. ``'int8'`` for ``'auto'`` on some CPUs) and
        the warnings, one line each.
    :raises ValueError: for an unknown backend, or one ``device`` cannot run.
    """
    from eigen_depth_ros.core.backends import check_backend
    from eigen_depth_ros.core.inference import BACKEND_ENV
    import torch
    resolved = check_backend(requested, device)
    notes = []
    from_env = environment.strip()
    if from_env and from_env.lower() != requested.strip().lower():
        notes.append(f'{BACKEND_ENV}={from_env} is ignored: the node runs the backend '
                     f"parameter ('{requested}')")
    if half:
        if torch.device(device).type == 'cuda' and resolved == 'eager':
            resolved, effect = 'fp16', "backend 'eager' runs as 'fp16'"
        else:
            effect = f"ignored: backend '{resolved}' on {device} sets the number format"
        notes.append(f'parameter half is deprecated ({effect}); set backend instead, '
                     'e.g. backend:=fp16 for float16 on CUDA')
    return resolved, notes

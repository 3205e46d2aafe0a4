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
A procedural driving world written in the exact KITTI raw layout (``eigen-depth synth``).

One concern per module:

- :mod:`.layout`: the KITTI raw writer (:func:`write_synthetic_kitti`): calibration, OXTS,
  folders, timestamps, and the dense true depth ``synthetic_depth_02/`` beside ``image_02``;
- :mod:`.world`: the procedural streets, each drive's motion, street, objects and light;
- :mod:`.render`: the ray tracer that turns a world into images, depth and LiDAR scans;
- :mod:`.cli`: the ``eigen-depth synth`` command line.

The names that other code imports are re-exported here, so
``from eigen_depth_training.synth import write_synthetic_kitti`` keeps working. See
``docs/kitti.md``.
"""
from .cli import build_parser, main
from .layout import calibration_values, default_drive_names, default_focal, DEFAULT_SIZE, \
    DriveInfo, SynthError, SYNTHETIC_DEPTH_DIR, training_drive_names, write_synthetic_kitti
from .render import LIDAR_AZIMUTH_STEP_DEG, LIDAR_ELEVATIONS_DEG, LIDAR_RANGE
from .world import CAMERA_HEIGHT, FRAME_PERIOD

__all__ = ['build_parser', 'calibration_values', 'CAMERA_HEIGHT', 'DEFAULT_SIZE',
           'default_drive_names', 'default_focal', 'DriveInfo', 'FRAME_PERIOD',
           'LIDAR_AZIMUTH_STEP_DEG', 'LIDAR_ELEVATIONS_DEG', 'LIDAR_RANGE', 'main',
           'SynthError', 'SYNTHETIC_DEPTH_DIR', 'training_drive_names', 'write_synthetic_kitti']

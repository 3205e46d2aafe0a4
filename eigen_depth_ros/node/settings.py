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
:class:`Settings`: the runtime parameters ``depth_node`` reads for each frame, checked.

The node builds one from its parameters at start-up and a new one on every accepted
``ros2 param set``; the worker takes the whole snapshot once per frame, so a frame never sees
half of a change. Pure Python: importable without rclpy.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
import math
from typing import Any

from .parameters import check_rectify


@dataclass(frozen=True)
class Settings:
    """The parameters the worker reads for each frame (swapped whole on a change)."""

    publish_points: bool
    points_stride: int
    points_rgb: bool
    min_depth: float
    max_depth: float
    clearing_range: float
    publish_colorized: bool
    fallback_fx: float
    fallback_fy: float
    fallback_cx: float
    fallback_cy: float
    max_input_pixels: int
    scale_by_focal: bool = True
    info_sync_tolerance: float = 0.0
    rectify: str = 'auto'

    @classmethod
    def from_parameters(cls, values: Mapping[str, Any]) -> Settings:
        """
        Build checked settings from parameter values (names that are no field are ignored).

        :param values: parameter name -> value, e.g. every parameter of the node.
        :raises ValueError: when the values do not fit together (see :meth:`check`).
        :raises TypeError: when a field without a default is missing.
        """
        given = {field.name: values[field.name] for field in fields(cls)
                 if field.name in values}
        if 'rectify' in given:  # true and false arrive as bools
            given['rectify'] = check_rectify(given['rectify'])
        settings = cls(**given)
        settings.check()
        return settings

    def check(self) -> None:
        """Raise ValueError when the values do not fit together."""
        if self.points_stride < 1:
            raise ValueError(f'points_stride must be >= 1, got {self.points_stride}')
        if not 0.0 <= self.min_depth < self.max_depth:
            raise ValueError(f'need 0 <= min_depth < max_depth, got min_depth='
                             f'{self.min_depth}, max_depth={self.max_depth}')
        if self.clearing_range and not (math.isfinite(self.clearing_range)
                                        and self.clearing_range > self.max_depth):
            raise ValueError(f'clearing_range must be 0 (off) or a finite distance above '
                             f'max_depth {self.max_depth}, got {self.clearing_range}')
        if self.fallback_fx < 0 or self.fallback_fy < 0:
            raise ValueError('fallback_fx and fallback_fy must be >= 0')
        if self.max_input_pixels < 1:
            raise ValueError(f'max_input_pixels must be >= 1, got {self.max_input_pixels}')
        if not math.isfinite(self.info_sync_tolerance):
            raise ValueError(f'info_sync_tolerance must be finite, got '
                             f'{self.info_sync_tolerance}')
        check_rectify(self.rectify)

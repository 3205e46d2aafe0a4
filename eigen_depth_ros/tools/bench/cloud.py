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

"""The point-cloud build time."""
from __future__ import annotations

from typing import Any

from eigen_depth_ros.msg import point_cloud
from eigen_depth_ros.tools.scenes import camera_size
import numpy as np

from .measure import summarize_ms, time_calls


def bench_point_cloud(config: Any, runs: int) -> dict[str, Any]:
    """
    Time building the point cloud of one prediction, as the node does.

    At the output map size and at the camera size; into a ``PointCloud2`` when the message
    types are importable, else the point array alone (``message`` says which).
    """
    try:
        from sensor_msgs.msg import PointCloud2, PointField
        from std_msgs.msg import Header
        message_classes: tuple[type, type] | None = (PointCloud2, PointField)
        header = Header(frame_id='camera')
    except ImportError:
        message_classes = header = None
    w_out, h_out = config.output_size
    width, height = camera_size(config)
    result: dict[str, Any] = {}
    rng = np.random.default_rng(0)
    for label, (w, h) in (('network', (w_out, h_out)), ('input', (width, height))):
        depth = rng.uniform(2.0, 50.0, (h, w)).astype(np.float32)
        colors = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        fx = 0.6 * w

        def cloud() -> Any:
            points = point_cloud.depth_to_points(depth, fx, fx, w / 2, h / 2, colors=colors)
            if message_classes is not None:
                return point_cloud.build_point_cloud2(points, header, *message_classes)
            return points
        stats = summarize_ms(time_calls(cloud, runs, 2, lambda: None))
        result[label] = stats | {'pixels': w * h, 'message': message_classes is not None}
    return result

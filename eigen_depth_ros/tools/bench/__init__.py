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
``eigen-depth bench``: how fast the network and the node are, and how fast they could be.

One run measures, for each backend asked for (so before and after sit side by side):

* **forward**: the bare forward pass on a prepared input, median and p95 over warm runs;
* **predict**: :meth:`DepthEstimator.predict` on a camera-size image (preprocessing,
  forward, exp), and the preprocessing alone;
* **accuracy**: the backend's log depth against the float32 ``eager`` one on scene-like
  images (largest difference, mean and p99 relative depth change);
* the **bounds**: network FLOPs / a measured matrix-multiply rate (compute bound), bytes of
  weights read per frame / a measured copy bandwidth (memory bound), and a per-layer
  roofline (sum over layers of the larger of the two);
* resident memory with the backend loaded, and the process peak (``ru_maxrss``);

then, once, the point-cloud build time (:mod:`eigen_depth_ros.msg.point_cloud`),
and with ``--node`` the end-to-end latency of ``depth_node`` under a camera stream: images
published at ``--rate`` with the current time as header stamp, ``depth`` received, latency =
receive time - stamp (p50, p95), and its ratio to the bare forward pass (``--node-points``
times frames to the point cloud instead, ``--node-resolution input`` publishes at the camera
size); with ``--transport`` the floor under that latency: how long a 100-byte and a
camera-size Image take from one rclpy process to another
(:mod:`eigen_depth_ros.tools.transport_probe`). Every figure comes with the machine (CPU
model, cores, threads, load average, torch version, device).

One module per concern: :mod:`.cli` (options, order, JSON), :mod:`.network` (backends),
:mod:`.bounds`, :mod:`.cloud`, :mod:`.node` (node and transport), :mod:`.measure` (timing,
memory, machine) and :mod:`.report` (the printed table).

Timing numbers on a shared machine are noisy: each is a median of many runs, and the load
average before and after is recorded beside them.
"""

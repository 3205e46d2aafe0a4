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
Integration tests of ``depth_node`` over real DDS (loopback, shared memory).

Node processes start together once for the module, each in its own namespace:

* ``/a/eigen_depth``: raw images, network resolution, no fallback intrinsics;
* ``/b/eigen_depth_b``: compressed images, input resolution, fallback intrinsics,
  decimated cloud, colourised depth;
* ``/first``, ``/idle`` and ``/term``: one test each, which needs a node in a state no
  other test may change (never sent a camera_info; no subscriber to its outputs; stopped
  with SIGTERM), so no test depends on the order in which they run.

The test process is the camera (publishes ``image`` and ``camera_info``) and the consumer
(subscribes every output, ``/diagnostics`` and ``/rosout``), one
:class:`~eigen_depth_ros.node.harness.RosSide`. Frames are told apart by
``header.stamp.sec``, unique in the module.
"""
from __future__ import annotations

import importlib.util
import itertools
import math
import os
import signal
import sys
import time
from typing import Any, Callable

import cv2
from eigen_depth_ros.core.checkpoint import save_checkpoint
from eigen_depth_ros.core.geometry import InputGeometry
from eigen_depth_ros.core.model import EigenDepthNet
from eigen_depth_ros.msg.image_conversion import image_to_depth
from eigen_depth_ros.msg.point_cloud import point_cloud2_to_array, points_to_pixels, unpack_rgb
from eigen_depth_ros.node.harness import (camera_info, HarnessTimeout, node_command,
                                          NodeProcess, RosSide)
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from support import logs, publish_until, subscribe_rosout, wait_log

pytestmark = [pytest.mark.ros, pytest.mark.slow]

W, H = 416, 128                        # camera image of the tests (KITTI-like aspect)
FX, FY, CX, CY = 300.0, 305.0, 207.5, 63.5
A_MAX_DEPTH = 10.8                     # node A's range gate (the small net predicts ~10 m)
A_MAX_PIXELS = 600_000
B_STRIDE, B_FALLBACK_FX = 3, 200.0
WAIT_S = 20.0                          # generous: the machine is shared
START_S = 90.0                         # five nodes importing torch at once, on 2 shared cores
STAMPS = itertools.count(1)
DEPTH = 'depth/image'                  # the depth image, image_transport style
OUTPUTS = (DEPTH, 'depth/camera_info', 'points', 'depth/colorized')


def small_config() -> Any:
    """Return the narrow KITTI-geometry network config of conftest."""
    from support import SMALL_KITTI
    return SMALL_KITTI


# ------------------------------------------------------------------------ the ROS side


def listen(ros: RosSide, namespace: str) -> None:
    """Subscribe every output of the node in ``namespace`` and wait for discovery."""
    subs = ros.subscribe_outputs(namespace, OUTPUTS)
    ros.wait_connected(subscriptions=subs, timeout=START_S, what=f'the outputs of {namespace}')


# ------------------------------------------------------------------------ messages


def stamped(msg: Any, sec: int, frame_id: str = 'camera_optical') -> Any:
    msg.header.stamp.sec = sec
    msg.header.stamp.nanosec = 250
    msg.header.frame_id = frame_id
    return msg


def image_msg(sec: int, color: tuple[int, int, int] = (90, 140, 200),
              encoding: str = 'rgb8', width: int = W, height: int = H,
              pad: int = 0) -> Image:
    """Build a uniform-colour Image in ``encoding``; ``pad`` garbage bytes end each row."""
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[:] = color
    if encoding == 'bgr8':
        pixels = rgb[:, :, ::-1]
    elif encoding in ('rgba8', 'bgra8'):
        base = rgb if encoding == 'rgba8' else rgb[:, :, ::-1]
        pixels = np.dstack([base, np.full((height, width), 17, np.uint8)])
    else:
        pixels = rgb
    rows = np.ascontiguousarray(pixels).reshape(height, -1)
    data = np.full((height, rows.shape[1] + pad), 0xEE, np.uint8)
    data[:, :rows.shape[1]] = rows
    msg = Image(height=height, width=width, encoding=encoding, step=data.shape[1])
    msg.data = data.tobytes()
    return stamped(msg, sec)


def mono_msg(sec: int, level: int, sixteen: bool, bigendian: bool = False) -> Image:
    dtype = np.dtype('>u2' if bigendian else '<u2') if sixteen else np.dtype('u1')
    pixels = np.full((H, W), level * 257 if sixteen else level, dtype)
    msg = Image(height=H, width=W, encoding='mono16' if sixteen else 'mono8',
                is_bigendian=int(bigendian), step=W * dtype.itemsize)
    msg.data = pixels.tobytes()
    return stamped(msg, sec)


def camera_info_msg(fx: float = FX, width: int = W, height: int = H, fy: float = FY
                    ) -> CameraInfo:
    return stamped(camera_info(width, height, fx, fy, CX, CY), 0)


def compressed_msg(sec: int, color: tuple[int, int, int], ext: str = '.png') -> CompressedImage:
    rgb = np.empty((H, W, 3), np.uint8)
    rgb[:] = color
    ok, blob = cv2.imencode(ext, np.ascontiguousarray(rgb[:, :, ::-1]))
    assert ok
    msg = CompressedImage(format='png' if ext == '.png' else 'jpeg')
    msg.data = blob.tobytes()
    return stamped(msg, sec)


# ------------------------------------------------------------------------ fixtures


def start_node(checkpoint: str, namespace: str, name: str, **params: Any) -> NodeProcess:
    """Start a node (conftest's loopback DDS settings are in ``os.environ``)."""
    return NodeProcess(node_command(checkpoint or None, namespace=namespace, name=name,
                                    params={'diagnostics_period': 0.25, **params}),
                       os.environ)


def stop_node(proc: NodeProcess) -> str:
    """Stop a node with Ctrl-C (if still running); return everything it printed."""
    proc.stop(timeout_s=15)
    return proc.log_text()


@pytest.fixture(scope='module')
def module_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> str:
    """
    Write the conftest ``small_checkpoint`` once, for the module's long-lived nodes.

    Its f_train is the test camera's focal length at the network input, so that node A,
    given the test camera_info, publishes the network's depth unscaled (f_in / f_train = 1).
    """
    import torch
    torch.manual_seed(0)
    model = EigenDepthNet(small_config())
    with torch.no_grad():
        model.fine.conv4.bias.fill_(float(np.log(10.0)))
    f_train = InputGeometry.fit(W, H, small_config()).input_focal(FX, FY)
    return str(save_checkpoint(tmp_path_factory.mktemp('ckpt') / 'small.pt', model,
                               f_train=f_train))


@pytest.fixture(scope='module')
def ros() -> RosSide:
    side = RosSide('depth_node_test')
    subscribe_rosout(side)
    side.subscribe_diagnostics()
    yield side
    side.close()


@pytest.fixture(scope='module')
def nodes(ros: RosSide, module_checkpoint: str) -> dict[str, NodeProcess]:
    """Every node process of the module, started together (each imports torch for seconds)."""
    node_a = {'max_depth': A_MAX_DEPTH, 'max_input_pixels': A_MAX_PIXELS}
    node_b = {'compressed': True, 'depth_resolution': 'input', 'fallback_fx': B_FALLBACK_FX,
              'points_stride': B_STRIDE, 'publish_colorized': True}
    # the idle node's depth image is overridden to best effort (test_qos_override)
    idle = {**node_b, f'qos_overrides./idle/{DEPTH}.publisher.reliability': 'best_effort'}
    procs = {
        'a': start_node(module_checkpoint, '/a', 'eigen_depth', **node_a),
        'b': start_node(module_checkpoint, '/b', 'eigen_depth_b', **node_b),
        'first': start_node(module_checkpoint, '/first', 'eigen_depth_first', **node_a),
        'idle': start_node(module_checkpoint, '/idle', 'eigen_depth_idle', **idle),
        'term': start_node(module_checkpoint, '/term', 'eigen_depth_term'),
    }
    yield procs
    outputs = {key: stop_node(proc) for key, proc in procs.items()}
    for key, output in outputs.items():
        assert 'Traceback' not in output, f'node {key} printed a traceback:\n{output}'


def warm_up(ros: RosSide, namespace: str, make: Callable[[int], Any], topic: str) -> None:
    """Send frames until one is answered: the node's side of discovery may lag ours."""
    listen(ros, namespace)
    for _ in range(20):
        sec = next(STAMPS)
        ros.publish(topic, make(sec))
        try:
            ros.wait_for(f'{namespace}/depth/image', sec=sec, timeout=1.0)
            return
        except HarnessTimeout:
            continue
    raise AssertionError(f'no depth from {namespace} after 20 frames')


@pytest.fixture(scope='module')
def node_a(ros: RosSide, nodes: dict) -> RosSide:
    warm_up(ros, '/a', image_msg, '/a/image')
    return ros


@pytest.fixture(scope='module')
def node_b(ros: RosSide, nodes: dict) -> RosSide:
    warm_up(ros, '/b', lambda sec: compressed_msg(sec, (5, 6, 7)), '/b/image/compressed')
    return ros


# ------------------------------------------------------------------------ checks

A_LOG, B_LOG = 'a.eigen_depth', 'b.eigen_depth_b'
A_STATUS = 'a/eigen_depth: depth estimation'   # node A's /diagnostics status
FIRST_LOG = 'first.eigen_depth_first'
CAMERA_INFO_USED: dict[str, tuple] = {}   # namespace -> the camera_info its node logged


def send_frame(ros: RosSide, topic: str, msg: Any, outputs: str = 'depth/image'
               ) -> int:
    sec = msg.header.stamp.sec
    ros.publish(topic, msg)
    namespace = '/' + topic.split('/')[1]
    ros.wait_for(f'{namespace}/{outputs}', sec=sec)
    return sec


def check_header(msg: Any, sec: int) -> None:
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (sec, 250)
    assert msg.header.frame_id == 'camera_optical'


def check_depth(msg: Image, sec: int, width: int, height: int) -> np.ndarray:
    check_header(msg, sec)
    assert msg.encoding == '32FC1'
    assert (msg.width, msg.height, msg.step) == (width, height, width * 4)
    assert msg.is_bigendian == (sys.byteorder == 'big')
    depth = image_to_depth(msg)
    finite = depth[np.isfinite(depth)]
    assert finite.size > 0 and np.all(finite > 0)
    return depth


def check_cloud(cloud: PointCloud2, sec: int, depth: np.ndarray, info: CameraInfo,
                stride: int, max_depth: float, min_depth: float = 0.1) -> np.ndarray:
    """Every point reprojects onto its depth pixel; no valid in-range pixel is missing."""
    check_header(cloud, sec)
    assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields] == [
        ('x', 0, 7, 1), ('y', 4, 7, 1), ('z', 8, 7, 1), ('rgb', 12, 7, 1)]
    points = point_cloud2_to_array(cloud)
    fx, fy, cx, cy = info.k[0], info.k[4], info.k[2], info.k[5]
    u, v = points_to_pixels(points, fx, fy, cx, cy)
    ui, vi = np.rint(u).astype(int), np.rint(v).astype(int)
    assert np.abs(u - ui).max() < 1e-3 and np.abs(v - vi).max() < 1e-3
    assert np.all(ui % stride == 0) and np.all(vi % stride == 0)
    np.testing.assert_array_equal(depth[vi, ui], points['z'])
    grid = depth[::stride, ::stride]
    with np.errstate(invalid='ignore'):
        wanted = np.isfinite(grid) & (grid >= min_depth) & (grid <= max_depth)
    assert points.size == int(wanted.sum())
    return points


def diagnostics_total(ros: RosSide, name: str, key: str) -> int:
    values = ros.diagnostics(name)
    return int(values[-1][key]) if values else 0


def fresh_total(ros: RosSide, name: str, key: str) -> int:
    """Return ``key`` of a ``/diagnostics`` status published after this call (no stale one)."""
    after = time.monotonic()
    status = ros.wait(lambda: (ros.diagnostics(name, after) or [None])[-1],
                      what=f'a fresh /diagnostics status of {name}')
    return int(status[key])


# ------------------------------------------------------------------------ node A


def test_no_camera_info_publishes_depth_only(ros: RosSide, nodes: dict) -> None:
    """Node ``/first``, A's twin, is sent camera_info only here, after its first frames."""
    warm_up(ros, '/first', image_msg, '/first/image')
    sec = send_frame(ros, '/first/image', image_msg(next(STAMPS)))
    check_depth(ros.find('/first/depth/image', sec=sec), sec, 142, 27)
    wait_log(ros, FIRST_LOG, 'no camera_info received and fallback_fx is 0')
    assert ros.find('/first/depth/camera_info', sec=sec) is None
    # The cloud starts once camera_info arrives; the first frames never got one.
    ensure_camera_info(ros, ns='/first')
    later = send_frame(ros, '/first/image', image_msg(next(STAMPS)), 'points')
    assert ros.find('/first/points', sec=later) is not None
    assert ros.find('/first/points', sec=sec) is None
    assert ros.find('/first/depth/camera_info', sec=later) is not None
    assert sum('no camera_info received' in m for m in logs(ros, FIRST_LOG)) == 1


def ensure_camera_info(ros: RosSide, fx: float = FX, width: int = W, height: int = H,
                       fy: float = FY, ns: str = '/a') -> None:
    """Send camera_info and wait until the node in ``ns`` uses it (it logs every change)."""
    log = {'/a': A_LOG, '/first': FIRST_LOG}[ns]
    start = len(logs(ros, log))
    msg = camera_info_msg(fx, width, height, fy)
    if CAMERA_INFO_USED.get(ns) == (fx, width, height, fy):
        ros.publish(f'{ns}/camera_info', msg)
        return
    text = f'intrinsics from camera_info: {width}x{height} fx={fx:.2f} fy={fy:.2f}'
    publish_until(ros, f'{ns}/camera_info', msg,
                  lambda: any(text in m for m in logs(ros, log)[start:]), text)
    CAMERA_INFO_USED[ns] = (fx, width, height, fy)


def test_outputs_match_header_sizes_and_geometry(node_a: RosSide) -> None:
    ensure_camera_info(node_a)
    sec = next(STAMPS)
    node_a.publish('/a/image', image_msg(sec))
    rec = node_a
    cloud = rec.wait_for('/a/points', sec=sec)
    info = rec.wait_for('/a/depth/camera_info', sec=sec)
    depth = check_depth(rec.wait_for('/a/depth/image', sec=sec), sec, 142, 27)
    assert np.isfinite(depth).all()  # the network sees every pixel of its own output
    # depth/camera_info: the camera's intrinsics carried through the node's resize/crop.
    check_header(info, sec)
    assert (info.width, info.height) == (142, 27)
    expected = InputGeometry.fit(W, H, small_config()).output_intrinsics(FX, FY, CX, CY)
    np.testing.assert_allclose([info.k[0], info.k[4], info.k[2], info.k[5]], expected,
                               rtol=1e-12)
    np.testing.assert_allclose([info.p[0], info.p[5], info.p[2], info.p[6]], expected,
                               rtol=1e-12)
    assert list(info.d) == [0.0] * 5
    points = check_cloud(cloud, sec, depth, info, 1, A_MAX_DEPTH)
    assert points['z'].max() <= A_MAX_DEPTH
    assert not cloud.is_bigendian and cloud.is_dense and cloud.height == 1


@pytest.mark.parametrize('encoding,msg_factory,expected', [
    ('rgb8', lambda s: image_msg(s, (200, 40, 10)), (200, 40, 10)),
    ('bgr8', lambda s: image_msg(s, (200, 40, 10), 'bgr8'), (200, 40, 10)),
    ('rgba8', lambda s: image_msg(s, (15, 90, 230), 'rgba8'), (15, 90, 230)),
    ('bgra8', lambda s: image_msg(s, (15, 90, 230), 'bgra8'), (15, 90, 230)),
    ('rgb8 padded step', lambda s: image_msg(s, (30, 60, 90), pad=13), (30, 60, 90)),
    ('mono8', lambda s: mono_msg(s, 77, False), (77, 77, 77)),
    ('mono16', lambda s: mono_msg(s, 77, True), (77, 77, 77)),
    ('mono16 big-endian', lambda s: mono_msg(s, 201, True, True), (201, 201, 201)),
])
def test_encodings_and_channel_order_reach_the_cloud(node_a: RosSide, encoding: str,
                                                     msg_factory: Callable,
                                                     expected: tuple) -> None:
    ensure_camera_info(node_a)
    sec = send_frame(node_a, '/a/image', msg_factory(next(STAMPS)), 'points')
    points = point_cloud2_to_array(node_a.find('/a/points', sec=sec))
    assert points.size > 0
    colors = unpack_rgb(points['rgb'])
    assert np.all(colors == np.array(expected, np.uint8)), f'{encoding}: {colors[:3]}'


BAD_FRAMES = {
    'depth encoding': (lambda s: stamped(Image(height=H, width=W, encoding='32FC1',
                                               step=W * 4, data=bytes(W * H * 4)), s),
                       "image encoding '32FC1' holds numbers"),
    'unsupported encoding': (lambda s: stamped(Image(height=H, width=W, encoding='yuv420',
                                                     step=W, data=bytes(W * H)), s),
                             "unsupported image encoding 'yuv420'"),
    'step below width': (lambda s: stamped(Image(height=H, width=W, encoding='rgb8',
                                                 step=W, data=bytes(W * H * 3)), s),
                         f'step {W} is smaller than width {W} x 3'),
    'truncated data': (lambda s: stamped(Image(height=H, width=W, encoding='rgb8',
                                               step=W * 3, data=bytes(W * H * 3 - 7)), s),
                       'truncated frame'),
    'zero size': (lambda s: stamped(Image(height=0, width=W, encoding='rgb8', step=W * 3), s),
                  f'image is {W}x0 (width x height): empty'),
    'huge': (lambda s: stamped(Image(height=1000, width=1000, encoding='mono8', step=1000,
                                     data=bytes(1000)), s),
             f'above the limit of {A_MAX_PIXELS} pixels'),
}


@pytest.mark.parametrize('case', list(BAD_FRAMES))
def test_bad_frame_is_logged_and_skipped(node_a: RosSide, case: str) -> None:
    factory, text = BAD_FRAMES[case]
    rec = node_a
    start = len(logs(rec, A_LOG))
    bad = next(STAMPS)
    node_a.publish('/a/image', factory(bad))
    line = wait_log(rec, A_LOG, text, start)
    assert f'stamp {bad}.000000250' in line and "frame 'camera_optical'" in line
    good = send_frame(node_a, '/a/image', image_msg(next(STAMPS)))
    assert rec.find('/a/depth/image', sec=good) is not None
    for topic in OUTPUTS:
        assert rec.find(f'/a/{topic}', sec=bad) is None, f'{topic} published for a bad frame'


def test_zero_focal_camera_info_stops_the_cloud_not_the_depth(node_a: RosSide) -> None:
    rec = node_a
    start = len(logs(rec, A_LOG))
    text = 'camera_info rejected: camera_info focal length is fx=0.0'
    CAMERA_INFO_USED.pop('/a', None)
    publish_until(node_a, '/a/camera_info', camera_info_msg(fx=0.0),
                  lambda: any(text in m for m in logs(rec, A_LOG)[start:]), text)
    sec = send_frame(node_a, '/a/image', image_msg(next(STAMPS)))
    check_depth(rec.find('/a/depth/image', sec=sec), sec, 142, 27)
    ensure_camera_info(node_a)
    later = send_frame(node_a, '/a/image', image_msg(next(STAMPS)), 'points')
    assert rec.find('/a/points', sec=later) is not None
    assert rec.find('/a/points', sec=sec) is None
    assert rec.find('/a/depth/camera_info', sec=sec) is None


def test_camera_info_of_another_size_stops_the_cloud(node_a: RosSide) -> None:
    rec = node_a
    start = len(logs(rec, A_LOG))
    ensure_camera_info(node_a, width=640, height=480)
    sec = send_frame(node_a, '/a/image', image_msg(next(STAMPS)))
    wait_log(rec, A_LOG, f'camera_info is for 640x480 but the image is {W}x{H}', start)
    ensure_camera_info(node_a)
    later = send_frame(node_a, '/a/image', image_msg(next(STAMPS)), 'points')
    assert rec.find('/a/points', sec=later) is not None
    assert rec.find('/a/points', sec=sec) is None
    assert rec.find('/a/depth/camera_info', sec=sec) is None


def test_diagnostics_report_rates_latency_and_counts(node_a: RosSide) -> None:
    ensure_camera_info(node_a)
    send_frame(node_a, '/a/image', image_msg(next(STAMPS)))
    rec = node_a
    name = A_STATUS
    status = rec.wait(lambda: next((d for d in reversed(rec.diagnostics(name))
                                    if int(d['frames processed (total)']) > 0), None),
                      what='diagnostics with processed frames')
    for key in ('input rate (Hz)', 'output rate (Hz)', 'inference latency mean (ms)',
                'end-to-end latency max (ms)', 'dropped frames (total)',
                'bad frames (total)', 'frames skipped, no subscriber (total)'):
        assert key in status
    assert status['device'] == 'cpu'
    # a bad frame is counted: the total grows by exactly one (the frames of earlier tests
    # are all processed: the good frame above was answered after them)
    bad_before = fresh_total(rec, name, 'bad frames (total)')
    node_a.publish('/a/image', BAD_FRAMES['truncated data'][0](next(STAMPS)))
    rec.wait(lambda: diagnostics_total(rec, name, 'bad frames (total)') > bad_before,
             what='the bad frame counted in /diagnostics')
    assert diagnostics_total(rec, name, 'bad frames (total)') == bad_before + 1
    # A window that processed frames times each stage; the stages add up to end to end.
    busy = rec.wait(lambda: next((d for d in reversed(rec.diagnostics(name))
                                  if float(d['output rate (Hz)']) > 0), None),
                    what='diagnostics of a window with output')
    stages = [float(busy[f'{label} mean (ms)']) for label in
              ('queue wait', 'image conversion', 'inference latency', 'publishing')]
    assert all(math.isfinite(ms) and ms >= 0 for ms in stages)
    assert sum(stages) == pytest.approx(float(busy['end-to-end latency mean (ms)']), abs=0.3)
    assert math.isfinite(float(busy['image age at receipt mean (ms)']))


def test_runtime_parameters(node_a: RosSide) -> None:
    ensure_camera_info(node_a)
    (result,) = node_a.set_parameters('/a/eigen_depth', points_stride=2)
    assert result.successful, result.reason
    try:
        sec = send_frame(node_a, '/a/image', image_msg(next(STAMPS)), 'points')
        rec = node_a
        depth = check_depth(rec.wait_for('/a/depth/image', sec=sec), sec, 142, 27)
        check_cloud(rec.find('/a/points', sec=sec), sec, depth,
                    rec.wait_for('/a/depth/camera_info', sec=sec), 2, A_MAX_DEPTH)
        (bad_range,) = node_a.set_parameters('/a/eigen_depth', min_depth=30.0)
        assert not bad_range.successful and 'min_depth' in bad_range.reason
        # checkpoint is writable, but a missing file is refused (test/test_node_faults.py
        # swaps a good one)
        (missing,) = node_a.set_parameters('/a/eigen_depth', checkpoint='/other.pt')
        assert not missing.successful and '/other.pt: checkpoint file not found' in \
            missing.reason
        (read_only,) = node_a.set_parameters('/a/eigen_depth', backend='eager')
        assert not read_only.successful
    finally:
        (result,) = node_a.set_parameters('/a/eigen_depth', points_stride=1)
        assert result.successful


def test_fast_camera_drops_frames_instead_of_queueing(node_a: RosSide) -> None:
    """A burst far faster than the node: the newest frame is served, older ones dropped."""
    ensure_camera_info(node_a, width=1242, height=375)
    rec = node_a
    # Latency of one frame on its own, the reference.
    single = next(STAMPS)
    msg = image_msg(single, width=1242, height=375, encoding='bgr8')
    pub = node_a.publisher('/a/image', Image)
    node_a.publish('/a/image', msg)
    sent = time.monotonic()
    rec.wait_for('/a/depth/image', sec=single)
    reference = rec.arrival('/a/depth/image', sec=single) - sent
    dropped_before = diagnostics_total(node_a, A_STATUS,
                                       'dropped frames (total)')
    burst = [next(STAMPS) for _ in range(60)]
    sent_at = {}
    for sec in burst:
        msg.header.stamp.sec = sec
        sent_at[sec] = time.monotonic()
        pub.publish(msg)
    # The newest frames are served (the very last may be lost by best-effort DDS itself).
    rec.wait(lambda: any(rec.find('/a/depth/image', sec=sec) for sec in burst[-3:]),
             what='an answer to one of the last frames of the burst')
    served = [sec for sec in burst if rec.find('/a/depth/image', sec=sec) is not None]
    latencies = [rec.arrival('/a/depth/image', sec=sec) - sent_at[sec] for sec in served]
    assert len(served) < len(burst), 'every frame of the burst was processed'
    # Queueing would make the last frame wait for all earlier ones (about 60 x reference).
    assert latencies[-1] < max(10 * reference, 1.0), (reference, latencies)
    rec.wait(lambda: diagnostics_total(node_a, A_STATUS,
                                       'dropped frames (total)') > dropped_before,
             what='dropped frames counted in /diagnostics')


def test_legacy_depth_topic_while_subscribed_with_one_deprecation_line(
        node_a: RosSide) -> None:
    """``depth`` (before image_transport names) still gets the depth image, said once."""
    rec = node_a
    sub = rec.subscribe('/a/depth', Image)
    try:
        rec.wait_connected(subscriptions=[sub], what='the legacy depth topic')
        # the node publishes there once it sees the subscriber (its side of discovery)
        first = image_msg(next(STAMPS))
        publish_until(rec, '/a/image', first,
                      lambda: rec.counts['/a/depth'], 'a depth image on /a/depth')
        secs = [send_frame(node_a, '/a/image', image_msg(next(STAMPS)), 'depth')
                for _ in range(2)]
        for sec in secs:
            legacy, new = rec.find('/a/depth', sec=sec), rec.wait_for(f'/a/{DEPTH}', sec=sec)
            assert legacy.data == new.data and legacy.header == new.header
        wait_log(rec, A_LOG, '/a/depth is deprecated: subscribe /a/depth/image (beside '
                 '/a/depth/camera_info')
        assert sum('is deprecated' in m for m in logs(rec, A_LOG)) == 1
    finally:
        rec.node.destroy_subscription(sub)


def send_info(ros: RosSide, sec: int, fx: float, frame_id: str = 'camera_optical',
              offset_ns: int = 0) -> None:
    """
    Publish a camera_info to node A until its intrinsics are logged.

    Stamped as :func:`image_msg` stamps frame ``sec``, plus ``offset_ns``.
    """
    start = len(logs(ros, A_LOG))
    msg = stamped(camera_info(W, H, fx, fx * FY / FX, CX, CY), sec, frame_id)
    msg.header.stamp.nanosec += offset_ns
    text = f'intrinsics from camera_info: {W}x{H} fx={fx:.2f}'
    publish_until(ros, '/a/camera_info', msg,
                  lambda: any(text in m for m in logs(ros, A_LOG)[start:]), text)


def test_camera_info_is_paired_by_stamp(node_a: RosSide) -> None:
    """An image gets the camera_info of its stamp, not the newest; else the newest, counted."""
    rec, name = node_a, A_STATUS
    ensure_camera_info(node_a)
    base_sec = send_frame(node_a, '/a/image', image_msg(next(STAMPS)))
    base = image_to_depth(rec.find(f'/a/{DEPTH}', sec=base_sec))
    paired, near, later = next(STAMPS), next(STAMPS), next(STAMPS) + 100
    try:
        # exact: the image of `paired` gets its own camera_info (doubled focal length: depth
        # x 2), not the newest one (the test camera's), which arrived after it
        send_info(node_a, paired, 2 * FX, frame_id='another_frame')
        send_info(node_a, later, FX)
        unpaired = diagnostics_total(rec, name, 'camera_info unpaired (total)')
        send_frame(node_a, '/a/image', image_msg(paired))
        np.testing.assert_array_equal(image_to_depth(rec.find(f'/a/{DEPTH}', sec=paired)),
                                      2 * base)
        wait_log(rec, A_LOG, "camera_info frame_id 'another_frame' is not the image's "
                 "'camera_optical'")
        # 0.3 s off: not paired at tolerance 0 (the newest serves, counted) ...
        send_info(node_a, near, 2 * FX, offset_ns=300_000_000)
        send_info(node_a, later + 1, FX)
        send_frame(node_a, '/a/image', image_msg(near))
        np.testing.assert_array_equal(image_to_depth(rec.find(f'/a/{DEPTH}', sec=near)), base)
        rec.wait(lambda: diagnostics_total(rec, name, 'camera_info unpaired (total)')
                 > unpaired, what='the unpaired frame counted in /diagnostics')
        # ... and paired within info_sync_tolerance 0.5 s
        (result,) = node_a.set_parameters('/a/eigen_depth', info_sync_tolerance=0.5)
        assert result.successful, result.reason
        with rec.cond:
            rec.received[f'/a/{DEPTH}'].clear()
        send_frame(node_a, '/a/image', image_msg(near))
        np.testing.assert_array_equal(image_to_depth(rec.find(f'/a/{DEPTH}', sec=near)),
                                      2 * base)
    finally:
        (result,) = node_a.set_parameters('/a/eigen_depth', info_sync_tolerance=0.0)
        assert result.successful


def lens_scene(rays_x: np.ndarray, rays_y: np.ndarray) -> np.ndarray:
    """Return the colour the test scene has along rays (x/z, y/z): a ramp in each axis."""
    red = np.clip(128 + 180 * rays_x, 0, 255)
    green = np.clip(128 + 500 * rays_y, 0, 255)
    return np.stack([red, green, np.full_like(red, 60)], -1)


LENS_D = [-0.25, 0.08, 0.0, 0.0, 0.0]   # plumb_bob barrel distortion: up to ~25 px here


def distorted_frame(sec: int) -> tuple[Image, CameraInfo]:
    """Return a raw image of the test scene through a lens with :data:`LENS_D`, and its info."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    k = np.array([[FX, 0, CX], [0, FY, CY], [0, 0, 1]])
    rays = cv2.undistortPoints(np.stack([u, v], -1).reshape(-1, 1, 2), k, np.array(LENS_D))
    rays = rays.reshape(H, W, 2)
    rgb = np.rint(lens_scene(rays[..., 0], rays[..., 1])).astype(np.uint8)
    msg = stamped(Image(height=H, width=W, encoding='rgb8', step=W * 3), sec)
    msg.data = rgb.tobytes()
    info = stamped(camera_info(W, H, FX, FY, CX, CY), sec)
    info.d = LENS_D
    return msg, info


def cloud_colour_error(cloud: PointCloud2) -> np.ndarray:
    """Return |colour of each point - the scene's colour along its ray| (red and green)."""
    points = point_cloud2_to_array(cloud)
    expected = lens_scene(points['x'] / points['z'], points['y'] / points['z'])
    return np.abs(unpack_rgb(points['rgb'])[:, :2].astype(float) - expected[:, :2])


def test_lens_distortion_is_undone_before_the_network(node_a: RosSide) -> None:
    """A raw image with plumb_bob distortion: the cloud sees the scene where it is."""
    rec = node_a
    ensure_camera_info(node_a)
    errors = {}
    try:
        for rectify in ('auto', False):
            (result,) = node_a.set_parameters('/a/eigen_depth', rectify=rectify)
            assert result.successful, result.reason
            sec = next(STAMPS)
            image, info = distorted_frame(sec)
            for _ in range(2):                     # paired by stamp; sent twice, best effort
                node_a.publish('/a/camera_info', info)
            send_frame(node_a, '/a/image', image, 'points')
            errors[rectify] = cloud_colour_error(rec.find('/a/points', sec=sec))
            assert rec.find('/a/depth/camera_info', sec=sec).d.tolist() == [0.0] * 5
        # a D of the wrong length: the pinhole model, depth and cloud still published, and a
        # throttled error naming the field
        (result,) = node_a.set_parameters('/a/eigen_depth', rectify='auto')
        assert result.successful, result.reason
        start = len(logs(rec, A_LOG))
        sec = next(STAMPS)
        image, info = distorted_frame(sec)
        info.d = LENS_D[:3]
        for _ in range(2):
            node_a.publish('/a/camera_info', info)
        send_frame(node_a, '/a/image', image, 'points')
        wait_log(rec, A_LOG, 'camera_info distortion ignored, the image is taken as rectified '
                 '(pinhole model): d has 3 coefficients, plumb_bob needs 5', start)
    finally:
        (result,) = node_a.set_parameters('/a/eigen_depth', rectify='auto')
        assert result.successful
        node_a.publish('/a/camera_info', stamped(camera_info(W, H, FX, FY, CX, CY),
                                                 next(STAMPS)))
    rectified, raw = errors['auto'], errors[False]
    print(f'\ncolour error mean/max: rectified {rectified.mean():.2f}/{rectified.max():.1f}, '
          f'raw {raw.mean():.2f}/{raw.max():.1f}')
    assert rectified.mean() < 1.5 and rectified.max() < 6
    assert raw.mean() > 3 * rectified.mean() and raw.max() > 10


def test_namespaced_nodes_answer_their_own_camera_only(node_a: RosSide, node_b: RosSide
                                                       ) -> None:
    """Two cameras, one node each under its own namespace, in one DDS domain."""
    rec = node_a
    sec_a = send_frame(node_a, '/a/image', image_msg(next(STAMPS)))
    sec_b = send_frame(node_b, '/b/image/compressed',
                       compressed_msg(next(STAMPS), (20, 30, 40)))
    assert rec.find(f'/b/{DEPTH}', sec=sec_a) is None
    assert rec.find(f'/a/{DEPTH}', sec=sec_b) is None
    assert (rec.find(f'/a/{DEPTH}', sec=sec_a).width, rec.find(f'/b/{DEPTH}', sec=sec_b).width
            ) == (142, W)
    names = {d['_name'] for d in rec.diagnostics()}
    assert {A_STATUS, 'b/eigen_depth_b: depth estimation'} <= names


def test_qos_override_reaches_dds(ros: RosSide, nodes: dict) -> None:
    """qos_overrides./idle/depth/image.publisher.reliability:=best_effort, seen in the graph."""
    def reliability(topic: str) -> Any:
        infos = ros.node.get_publishers_info_by_topic(topic)
        return infos[0].qos_profile.reliability if infos else None
    from rclpy.qos import ReliabilityPolicy
    ros.wait(lambda: reliability(f'/idle/{DEPTH}') is not None and reliability('/idle/points'),
             what='the idle node in the graph')
    assert reliability(f'/idle/{DEPTH}') == ReliabilityPolicy.BEST_EFFORT
    assert reliability('/idle/points') == ReliabilityPolicy.RELIABLE


# ------------------------------------------------------------------------ node B


def test_idle_without_subscribers(ros: RosSide, nodes: dict) -> None:
    """Node ``/idle``, B's twin whose outputs nobody subscribes, skips the network."""
    rec = ros
    name = 'idle/eigen_depth_idle: depth estimation'
    status = publish_until(
        ros, '/idle/image/compressed', compressed_msg(next(STAMPS), (10, 20, 30)),
        lambda: next((d for d in reversed(rec.diagnostics(name))
                      if int(d['frames skipped, no subscriber (total)'])), None),
        'an idle frame in /diagnostics')
    assert status['frames processed (total)'] == '0'
    assert status['_message'] == 'idle: no subscriber to any output'


def test_compressed_input_resolution_and_fallback_intrinsics(node_b: RosSide) -> None:
    rec = node_b
    sec = send_frame(node_b, '/b/image/compressed', compressed_msg(next(STAMPS), (220, 30, 60)),
                     'depth/colorized')
    depth = check_depth(rec.wait_for('/b/depth/image', sec=sec), sec, W, H)
    assert np.isnan(depth).any() and np.isfinite(depth).any()  # NaN where the net is blind
    info = rec.wait_for('/b/depth/camera_info', sec=sec)
    check_header(info, sec)
    assert (info.width, info.height) == (W, H)
    assert [info.k[0], info.k[4], info.k[2], info.k[5]] == [B_FALLBACK_FX, B_FALLBACK_FX,
                                                            (W - 1) / 2, (H - 1) / 2]
    points = check_cloud(rec.find('/b/points', sec=sec), sec, depth, info, B_STRIDE, 20.0)
    assert np.all(unpack_rgb(points['rgb']) == (220, 30, 60))  # PNG decoded in RGB order
    colorized = rec.find('/b/depth/colorized', sec=sec)
    check_header(colorized, sec)
    assert (colorized.encoding, colorized.width, colorized.height) == ('rgb8', W, H)
    wait_log(rec, B_LOG, 'no camera_info received: using the fallback intrinsics')


def test_jpeg_and_corrupt_compressed_frames(node_b: RosSide) -> None:
    rec = node_b
    sec = send_frame(node_b, '/b/image/compressed',
                     compressed_msg(next(STAMPS), (128, 128, 128), '.jpg'))
    check_depth(rec.find('/b/depth/image', sec=sec), sec, W, H)
    start = len(logs(rec, B_LOG))
    bad = next(STAMPS)
    node_b.publish('/b/image/compressed', stamped(CompressedImage(
        format='jpeg', data=b'\xff\xd8\xff\xe0' + bytes(range(256)) * 8), bad))
    wait_log(rec, B_LOG, 'could not decode the compressed frame', start)
    good = send_frame(node_b, '/b/image/compressed', compressed_msg(next(STAMPS), (1, 2, 3)))
    assert rec.find('/b/depth/image', sec=good) is not None
    assert rec.find('/b/depth/image', sec=bad) is None


# ------------------------------------------------------------------------ process life


def test_doubled_focal_length_doubles_the_depth(node_a: RosSide) -> None:
    """The canonical-focal rule: fx, fy doubled -> depth x 2; scale_by_focal off -> unchanged."""
    rec = node_a
    ensure_camera_info(node_a)
    base_sec = send_frame(node_a, '/a/image', image_msg(next(STAMPS)))
    base = check_depth(rec.find('/a/depth/image', sec=base_sec), base_sec, 142, 27)
    base_info = rec.wait_for('/a/depth/camera_info', sec=base_sec)
    try:
        ensure_camera_info(node_a, fx=2 * FX, fy=2 * FY)
        sec = send_frame(node_a, '/a/image', image_msg(next(STAMPS)))
        doubled = check_depth(rec.find('/a/depth/image', sec=sec), sec, 142, 27)
        np.testing.assert_array_equal(doubled, 2 * base)
        info = rec.wait_for('/a/depth/camera_info', sec=sec)
        assert info.k[0] == pytest.approx(2 * base_info.k[0])
        status = rec.wait(lambda: next((d for d in reversed(rec.diagnostics(
            A_STATUS)) if d.get('f_in source') == 'camera_info'
            and float(d['depth scale f_in/f_train']) == pytest.approx(2.0)), None),
            what='diagnostics with the doubled focal scale')
        assert status['focal scaling'] == 'on'
        assert float(status['f_in (px)']) == pytest.approx(2 * float(status['f_train (px)']))
        (off,) = node_a.set_parameters('/a/eigen_depth', scale_by_focal=False)
        assert off.successful, off.reason
        sec = send_frame(node_a, '/a/image', image_msg(next(STAMPS)))
        np.testing.assert_array_equal(
            check_depth(rec.find('/a/depth/image', sec=sec), sec, 142, 27), base)
    finally:
        (on,) = node_a.set_parameters('/a/eigen_depth', scale_by_focal=True)
        assert on.successful
        ensure_camera_info(node_a)


def test_bad_focal_camera_info_names_the_field_and_keeps_depth(node_a: RosSide) -> None:
    rec = node_a
    start = len(logs(rec, A_LOG))
    text = 'bad field p[5] (fy)'
    CAMERA_INFO_USED.pop('/a', None)
    msg = camera_info_msg(fy=float('nan'))
    publish_until(node_a, '/a/camera_info', msg,
                  lambda: any(text in m for m in logs(rec, A_LOG)[start:]), text)
    try:
        sec = send_frame(node_a, '/a/image', image_msg(next(STAMPS)))
        check_depth(rec.find('/a/depth/image', sec=sec), sec, 142, 27)
        answered = rec.arrival('/a/depth/image', sec=sec)
        # the frame's scale assumed f_in = f_train: the rejected focal length is not used,
        # nor the last valid one (said once in the log, reported per period)
        status = rec.wait(lambda: next((d for d in rec.diagnostics(
            A_STATUS, after=answered)), None),
            what='diagnostics after the frame')
        assert status['f_in source'].startswith('assumed f_in = f_train'), status
        assert status['f_in (px)'] == 'nan' and status['depth scale f_in/f_train'] == '1.0000'
        assert sum('the depth scale assumes' in m for m in logs(rec, A_LOG)) == 1
    finally:
        ensure_camera_info(node_a)


def test_focal_ratio_beyond_four_is_published_and_warned_once(node_a: RosSide) -> None:
    rec = node_a
    start = len(logs(rec, A_LOG))
    try:
        ensure_camera_info(node_a, fx=5 * FX, fy=5 * FY)
        sec = send_frame(node_a, '/a/image', image_msg(next(STAMPS)))
        check_depth(rec.find('/a/depth/image', sec=sec), sec, 142, 27)
        wait_log(rec, A_LOG, 'focal ratio f_in / f_train = 5.000 is outside 0.25x-4x', start)
        send_frame(node_a, '/a/image', image_msg(next(STAMPS)))
        assert sum('is outside 0.25x-4x' in m for m in logs(rec, A_LOG)) == 1
    finally:
        ensure_camera_info(node_a)


def test_sigterm_stops_the_node_cleanly(ros: RosSide, nodes: dict) -> None:
    """Node ``/term``, there for this test only, answers, then exits 0 on SIGTERM."""
    proc = nodes['term']
    warm_up(ros, '/term', image_msg, '/term/image')
    proc.check_alive()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0, proc.tail()


def test_bad_start_up_exits_non_zero_with_one_error(tmp_path: Any,
                                                    module_checkpoint: str) -> None:
    """Bad checkpoints and an invalid QoS override: one error line, exit status 1."""
    garbage = tmp_path / 'garbage.pt'
    garbage.write_bytes(b'not a checkpoint at all')
    cases = {'missing': (str(tmp_path / 'missing.pt'), 'checkpoint file not found'),
             'garbage': (str(garbage), f'cannot start: {garbage}: '),
             'empty': ('', "parameter 'checkpoint' is empty"),
             'qos': (module_checkpoint, 'cannot start: Unexpected QoS override for policy '
                     '`reliability`: `sometimes`')}
    bad_qos = {'qos_overrides./c/points.publisher.reliability': 'sometimes'}
    procs = {key: start_node(path, '/c', f'bad_{key}', **(bad_qos if key == 'qos' else {}))
             for key, (path, _) in cases.items()}
    for key, proc in procs.items():
        try:
            proc.wait(timeout=120)
        finally:
            output = stop_node(proc)
        assert proc.returncode == 1, output
        errors = [line for line in output.splitlines() if '[ERROR]' in line]
        assert len(errors) == 1 and cases[key][1] in errors[0], output
        assert 'Traceback' not in output


def test_backend_parameter(ros: RosSide, module_checkpoint: str) -> None:
    """backend:=int8 (and onnx where installed) answers; backend:=nonsense exits 1."""
    backends = ['int8'] + (['onnx'] if all(importlib.util.find_spec(module) for module in
                                           ('onnx', 'onnxruntime')) else [])
    procs = {backend: start_node(module_checkpoint, f'/{backend}', f'eigen_depth_{backend}',
                                 backend=backend) for backend in backends}
    procs['nonsense'] = start_node(module_checkpoint, '/d', 'bad_backend', backend='nonsense')
    outputs = {}
    try:
        for backend in backends:
            node = f'{backend}.eigen_depth_{backend}'
            warm_up(ros, f'/{backend}', image_msg, f'/{backend}/image')
            wait_log(ros, node, f"backend '{backend}' -> {backend} (")
            sec = send_frame(ros, f'/{backend}/image', image_msg(next(STAMPS)))
            depth = check_depth(ros.find(f'/{backend}/depth/image', sec=sec), sec, 142, 27)
            assert 7 < np.median(depth) < 14, backend   # the small net predicts about 10 m
            status = ros.wait(
                lambda: next(iter(ros.diagnostics(f'{backend}/eigen_depth_{backend}: depth '
                                                  'estimation')), None),
                what=f'diagnostics of the {backend} node')
            assert status['backend'] == backend
        procs['nonsense'].wait(timeout=120)
    finally:
        for key, proc in procs.items():
            outputs[key] = stop_node(proc)
    for key, output in outputs.items():
        assert 'Traceback' not in output, f'{key}:\n{output}'
    assert procs['nonsense'].returncode == 1, outputs['nonsense']
    errors = [line for line in outputs['nonsense'].splitlines() if '[ERROR]' in line]
    assert len(errors) == 1 and "cannot start: unknown backend 'nonsense'" in errors[0], \
        outputs['nonsense']

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

Two node processes start once for the module, in their own namespaces:

* ``/a/eigen_depth``: raw images, network resolution, no fallback intrinsics;
* ``/b/eigen_depth_b``: compressed images, input resolution, fallback intrinsics,
  decimated cloud, colourised depth.

The test process is the camera (publishes ``image`` and ``camera_info``) and the consumer
(subscribes every output, ``/diagnostics`` and ``/rosout``). Frames are told apart by
``header.stamp.sec``, unique in the module.
"""
from __future__ import annotations

from collections import defaultdict
import importlib.util
import itertools
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable

import cv2
from diagnostic_msgs.msg import DiagnosticArray
from eigen_depth_ros.core.checkpoint import save_checkpoint
from eigen_depth_ros.core.geometry import InputGeometry
from eigen_depth_ros.core.model import EigenDepthNet
from eigen_depth_ros.msg.image_conversion import image_to_depth
from eigen_depth_ros.msg.point_cloud import point_cloud2_to_array, points_to_pixels, unpack_rgb
import numpy as np
import pytest
from rcl_interfaces.msg import Log
from rcl_interfaces.srv import SetParameters
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

pytestmark = [pytest.mark.ros, pytest.mark.slow]

W, H = 416, 128                        # camera image of the tests (KITTI-like aspect)
FX, FY, CX, CY = 300.0, 305.0, 207.5, 63.5
A_MAX_DEPTH = 10.8                     # node A's range gate (the small net predicts ~10 m)
A_MAX_PIXELS = 600_000
B_STRIDE, B_FALLBACK_FX = 3, 200.0
WAIT_S = 20.0                          # generous: the machine is shared
STAMPS = itertools.count(1)


def small_config() -> Any:
    """Return the narrow KITTI-geometry network config of conftest."""
    from conftest import SMALL_KITTI
    return SMALL_KITTI


# ------------------------------------------------------------------------ the ROS side


class Recorder:
    """Everything the test process receives, with waits on conditions."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.messages: dict[str, list[tuple[float, Any]]] = defaultdict(list)

    def callback(self, topic: str) -> Callable[[Any], None]:
        def store(msg: Any) -> None:
            with self.cond:
                self.messages[topic].append((time.monotonic(), msg))
                self.cond.notify_all()
        return store

    def wait(self, predicate: Callable[[], Any], timeout: float = WAIT_S,
             what: str = 'condition') -> Any:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                result = predicate()
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f'timed out after {timeout} s waiting for {what}')
                self.cond.wait(min(left, 0.1))

    def find(self, topic: str, sec: int) -> Any:
        for _, msg in self.messages[topic]:
            if msg.header.stamp.sec == sec:
                return msg
        return None

    def arrival(self, topic: str, sec: int) -> float | None:
        for when, msg in self.messages[topic]:
            if msg.header.stamp.sec == sec:
                return when
        return None

    def wait_for(self, topic: str, sec: int, timeout: float = WAIT_S) -> Any:
        return self.wait(lambda: self.find(topic, sec), timeout, f'{topic} stamp {sec}')

    def logs(self, node: str) -> list[str]:
        return [m.msg for _, m in self.messages['/rosout'] if m.name == node]

    def wait_log(self, node: str, text: str, start: int = 0, timeout: float = WAIT_S) -> str:
        def found() -> str | None:
            return next((m for m in self.logs(node)[start:] if text in m), None)
        return self.wait(found, timeout, f'log {text!r} from {node}')

    def diagnostics(self, name: str) -> list[dict[str, str]]:
        out = []
        for _, array in self.messages['/diagnostics']:
            for status in array.status:
                if status.name == name:
                    values = {kv.key: kv.value for kv in status.values}
                    values['_level'] = status.level
                    values['_message'] = status.message
                    out.append(values)
        return out


class RosSide:
    """The test process's DDS participant: camera publishers and output subscribers."""

    OUTPUTS = {'depth': Image, 'depth/camera_info': CameraInfo, 'points': PointCloud2,
               'depth/colorized': Image}

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('depth_node_test', context=self.context)
        self.recorder = Recorder()
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        rosout = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                            durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.node.create_subscription(Log, '/rosout', self.recorder.callback('/rosout'),
                                      rosout)
        self.node.create_subscription(DiagnosticArray, '/diagnostics',
                                      self.recorder.callback('/diagnostics'), reliable)
        self.publishers: dict[str, Any] = {}
        self.listening: set[str] = set()
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def publisher(self, topic: str, msg_type: type) -> Any:
        if topic not in self.publishers:
            self.publishers[topic] = self.node.create_publisher(
                msg_type, topic, qos_profile_sensor_data)
        return self.publishers[topic]

    def listen(self, namespace: str) -> None:
        """Subscribe every output of the node in ``namespace`` and wait for discovery."""
        if namespace in self.listening:
            return
        self.listening.add(namespace)
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        subs = [self.node.create_subscription(msg_type, f'{namespace}/{name}',
                                              self.recorder.callback(f'{namespace}/{name}'),
                                              qos)
                for name, msg_type in self.OUTPUTS.items()]
        self.recorder.wait(lambda: all(sub.get_publisher_count() > 0 for sub in subs),
                           WAIT_S, f'the outputs of {namespace}')

    def publish(self, topic: str, msg: Any) -> None:
        """Publish once the node subscribes (discovery), never with a fixed sleep."""
        pub = self.publisher(topic, type(msg))
        self.recorder.wait(lambda: pub.get_subscription_count() > 0, WAIT_S,
                           f'a subscriber on {topic}')
        pub.publish(msg)

    def publish_until(self, topic: str, msg: Any, predicate: Callable[[], Any],
                      what: str, period: float = 0.5) -> Any:
        """
        Publish ``msg`` every ``period`` s until ``predicate`` holds.

        A first message can be lost while the subscriber's side of discovery still lags
        the publisher's (best effort), so messages that are sent once are repeated.
        """
        deadline = time.monotonic() + WAIT_S
        while True:
            self.publish(topic, msg)
            try:
                return self.recorder.wait(predicate, period, what)
            except AssertionError:
                if time.monotonic() > deadline:
                    raise

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=5.0)
        self.thread.join(timeout=5.0)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


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
    msg = CameraInfo(width=width, height=height, distortion_model='plumb_bob')
    msg.d = [0.0] * 5
    msg.k = [fx, 0.0, CX, 0.0, fy, CY, 0.0, 0.0, 1.0]
    msg.p = [fx, 0.0, CX, 0.0, 0.0, fy, CY, 0.0, 0.0, 0.0, 1.0, 0.0]
    return stamped(msg, 0)


def compressed_msg(sec: int, color: tuple[int, int, int], ext: str = '.png') -> CompressedImage:
    rgb = np.empty((H, W, 3), np.uint8)
    rgb[:] = color
    ok, blob = cv2.imencode(ext, np.ascontiguousarray(rgb[:, :, ::-1]))
    assert ok
    msg = CompressedImage(format='png' if ext == '.png' else 'jpeg')
    msg.data = blob.tobytes()
    return stamped(msg, sec)


# ------------------------------------------------------------------------ fixtures


def start_node(checkpoint: str, namespace: str, name: str, *params: str
               ) -> subprocess.Popen:
    args = [sys.executable, '-m', 'eigen_depth_ros.node', '--ros-args',
            '-r', f'__ns:={namespace}', '-r', f'__node:={name}',
            '-p', 'diagnostics_period:=0.25']
    for param in ((f'checkpoint:={checkpoint}',) if checkpoint else ()) + params:
        args += ['-p', param]
    # conftest has put this session's loopback DDS settings into os.environ. The output goes
    # to a file, never a pipe nobody reads while the node runs (it would block when full).
    log = tempfile.TemporaryFile(mode='w+')
    proc = subprocess.Popen(args, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT,
                            text=True)
    proc.log = log
    return proc


def stop_node(proc: subprocess.Popen) -> str:
    """Stop a node with Ctrl-C (if still running); return everything it printed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    proc.log.seek(0)
    output = proc.log.read()
    proc.log.close()
    return output


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
    side = RosSide()
    yield side
    side.close()


@pytest.fixture(scope='module')
def nodes(ros: RosSide, module_checkpoint: str) -> dict[str, subprocess.Popen]:
    """Both node processes, started together (each needs seconds to import torch)."""
    procs = {
        'a': start_node(module_checkpoint, '/a', 'eigen_depth', f'max_depth:={A_MAX_DEPTH}',
                        f'max_input_pixels:={A_MAX_PIXELS}'),
        'b': start_node(module_checkpoint, '/b', 'eigen_depth_b', 'compressed:=true',
                        'depth_resolution:=input', f'fallback_fx:={B_FALLBACK_FX}',
                        f'points_stride:={B_STRIDE}', 'publish_colorized:=true'),
    }
    yield procs
    for key, proc in procs.items():
        output = stop_node(proc)
        assert 'Traceback' not in output, f'node {key} printed a traceback:\n{output}'


def warm_up(ros: RosSide, namespace: str, make: Callable[[int], Any], topic: str) -> None:
    """Send frames until one is answered: the node's side of discovery may lag ours."""
    ros.listen(namespace)
    for _ in range(20):
        sec = next(STAMPS)
        ros.publish(topic, make(sec))
        try:
            ros.recorder.wait_for(f'{namespace}/depth', sec, timeout=1.0)
            return
        except AssertionError:
            continue
    raise AssertionError(f'no depth from {namespace} after 20 frames')


@pytest.fixture(scope='module')
def node_a(ros: RosSide, nodes: dict) -> RosSide:
    warm_up(ros, '/a', image_msg, '/a/image')
    return ros


@pytest.fixture(scope='module')
def node_b_idle(ros: RosSide, nodes: dict) -> RosSide:
    """Node B before anything subscribes to its outputs."""
    return ros


@pytest.fixture(scope='module')
def node_b(ros: RosSide, nodes: dict) -> RosSide:
    warm_up(ros, '/b', lambda sec: compressed_msg(sec, (5, 6, 7)), '/b/image/compressed')
    return ros


# ------------------------------------------------------------------------ checks

A_LOG, B_LOG = 'a.eigen_depth', 'b.eigen_depth_b'


def send_frame(ros: RosSide, topic: str, msg: Any, outputs: str = 'depth') -> int:
    sec = msg.header.stamp.sec
    ros.publish(topic, msg)
    namespace = '/' + topic.split('/')[1]
    ros.recorder.wait_for(f'{namespace}/{outputs}', sec)
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
    values = ros.recorder.diagnostics(name)
    return int(values[-1][key]) if values else 0


# ------------------------------------------------------------------------ node A


def test_no_camera_info_publishes_depth_only(node_a: RosSide) -> None:
    if node_a.recorder.find('/a/depth/camera_info', 0) is not None or \
            '/a/camera_info' in node_a.publishers:
        pytest.skip('camera_info was already sent to node A in this module')
    sec = send_frame(node_a, '/a/image', image_msg(next(STAMPS)))
    check_depth(node_a.recorder.find('/a/depth', sec), sec, 142, 27)
    node_a.recorder.wait_log(A_LOG, 'no camera_info received and fallback_fx is 0')
    # The cloud starts once camera_info arrives; the first frame never got one.
    ensure_camera_info(node_a)
    later = send_frame(node_a, '/a/image', image_msg(next(STAMPS)), 'points')
    assert node_a.recorder.find('/a/points', later) is not None
    assert node_a.recorder.find('/a/points', sec) is None
    assert node_a.recorder.find('/a/depth/camera_info', sec) is None
    assert sum('no camera_info received' in m for m in node_a.recorder.logs(A_LOG)) == 1


def ensure_camera_info(ros: RosSide, fx: float = FX, width: int = W, height: int = H,
                       fy: float = FY) -> None:
    """Send camera_info and wait until node A says it uses it (it logs every change)."""
    start = len(ros.recorder.logs(A_LOG))
    msg = camera_info_msg(fx, width, height, fy)
    if getattr(ros, 'camera_info_a', None) == (fx, width, height, fy):
        ros.publish('/a/camera_info', msg)
        return
    text = f'intrinsics from camera_info: {width}x{height} fx={fx:.2f} fy={fy:.2f}'
    ros.publish_until('/a/camera_info', msg,
                      lambda: any(text in m for m in ros.recorder.logs(A_LOG)[start:]), text)
    ros.camera_info_a = (fx, width, height, fy)


def test_outputs_match_header_sizes_and_geometry(node_a: RosSide) -> None:
    ensure_camera_info(node_a)
    sec = next(STAMPS)
    node_a.publish('/a/image', image_msg(sec))
    rec = node_a.recorder
    cloud = rec.wait_for('/a/points', sec)
    info = rec.wait_for('/a/depth/camera_info', sec)
    depth = check_depth(rec.wait_for('/a/depth', sec), sec, 142, 27)
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
    points = point_cloud2_to_array(node_a.recorder.find('/a/points', sec))
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
    rec = node_a.recorder
    start = len(rec.logs(A_LOG))
    bad = next(STAMPS)
    node_a.publish('/a/image', factory(bad))
    line = rec.wait_log(A_LOG, text, start)
    assert f'stamp {bad}.000000250' in line and "frame 'camera_optical'" in line
    good = send_frame(node_a, '/a/image', image_msg(next(STAMPS)))
    assert rec.find('/a/depth', good) is not None
    for topic in RosSide.OUTPUTS:
        assert rec.find(f'/a/{topic}', bad) is None, f'{topic} published for a bad frame'


def test_zero_focal_camera_info_stops_the_cloud_not_the_depth(node_a: RosSide) -> None:
    rec = node_a.recorder
    start = len(rec.logs(A_LOG))
    text = 'camera_info rejected: camera_info focal length is fx=0.0'
    node_a.camera_info_a = None
    node_a.publish_until('/a/camera_info', camera_info_msg(fx=0.0),
                         lambda: any(text in m for m in rec.logs(A_LOG)[start:]), text)
    sec = send_frame(node_a, '/a/image', image_msg(next(STAMPS)))
    check_depth(rec.find('/a/depth', sec), sec, 142, 27)
    ensure_camera_info(node_a)
    later = send_frame(node_a, '/a/image', image_msg(next(STAMPS)), 'points')
    assert rec.find('/a/points', later) is not None
    assert rec.find('/a/points', sec) is None
    assert rec.find('/a/depth/camera_info', sec) is None


def test_camera_info_of_another_size_stops_the_cloud(node_a: RosSide) -> None:
    rec = node_a.recorder
    start = len(rec.logs(A_LOG))
    ensure_camera_info(node_a, width=640, height=480)
    sec = send_frame(node_a, '/a/image', image_msg(next(STAMPS)))
    rec.wait_log(A_LOG, f'camera_info is for 640x480 but the image is {W}x{H}', start)
    ensure_camera_info(node_a)
    later = send_frame(node_a, '/a/image', image_msg(next(STAMPS)), 'points')
    assert rec.find('/a/points', later) is not None
    assert rec.find('/a/points', sec) is None
    assert rec.find('/a/depth/camera_info', sec) is None


def test_diagnostics_report_rates_latency_and_counts(node_a: RosSide) -> None:
    ensure_camera_info(node_a)
    send_frame(node_a, '/a/image', image_msg(next(STAMPS)))
    rec = node_a.recorder
    name = 'eigen_depth: depth estimation'
    status = rec.wait(lambda: next((d for d in reversed(rec.diagnostics(name))
                                    if int(d['frames processed (total)']) > 0), None),
                      what='diagnostics with processed frames')
    for key in ('input rate (Hz)', 'output rate (Hz)', 'inference latency mean (ms)',
                'end-to-end latency max (ms)', 'dropped frames (total)',
                'bad frames (total)', 'frames skipped, no subscriber (total)'):
        assert key in status
    assert status['device'] == 'cpu'
    assert int(status['bad frames (total)']) >= 0
    # A window that processed frames times each stage; the stages add up to end to end.
    busy = rec.wait(lambda: next((d for d in reversed(rec.diagnostics(name))
                                  if float(d['output rate (Hz)']) > 0), None),
                    what='diagnostics of a window with output')
    stages = [float(busy[f'{label} mean (ms)']) for label in
              ('queue wait', 'image conversion', 'inference latency', 'publishing')]
    assert all(math.isfinite(ms) and ms >= 0 for ms in stages)
    assert sum(stages) == pytest.approx(float(busy['end-to-end latency mean (ms)']), abs=0.3)
    assert math.isfinite(float(busy['image age at receipt mean (ms)']))


def set_parameters(ros: RosSide, node: str, **values: Any) -> list[Any]:
    """Call the node's set_parameters service; return one result per parameter."""
    client = ros.node.create_client(SetParameters, f'{node}/set_parameters')
    try:
        assert client.wait_for_service(timeout_sec=WAIT_S)
        request = SetParameters.Request(parameters=[
            Parameter(name, value=value).to_parameter_msg() for name, value in values.items()])
        future = client.call_async(request)
        ros.recorder.wait(future.done, WAIT_S, f'set_parameters on {node}')
        return list(future.result().results)
    finally:
        ros.node.destroy_client(client)


def test_runtime_parameters(node_a: RosSide) -> None:
    ensure_camera_info(node_a)
    (result,) = set_parameters(node_a, '/a/eigen_depth', points_stride=2)
    assert result.successful, result.reason
    try:
        sec = send_frame(node_a, '/a/image', image_msg(next(STAMPS)), 'points')
        rec = node_a.recorder
        depth = check_depth(rec.wait_for('/a/depth', sec), sec, 142, 27)
        check_cloud(rec.find('/a/points', sec), sec, depth,
                    rec.wait_for('/a/depth/camera_info', sec), 2, A_MAX_DEPTH)
        (bad_range,) = set_parameters(node_a, '/a/eigen_depth', min_depth=30.0)
        assert not bad_range.successful and 'min_depth' in bad_range.reason
        # checkpoint is writable, but a missing file is refused (test/test_node_faults.py
        # swaps a good one)
        (missing,) = set_parameters(node_a, '/a/eigen_depth', checkpoint='/other.pt')
        assert not missing.successful and '/other.pt: checkpoint file not found' in \
            missing.reason
        (read_only,) = set_parameters(node_a, '/a/eigen_depth', backend='eager')
        assert not read_only.successful
    finally:
        (result,) = set_parameters(node_a, '/a/eigen_depth', points_stride=1)
        assert result.successful


def test_fast_camera_drops_frames_instead_of_queueing(node_a: RosSide) -> None:
    """A burst far faster than the node: the newest frame is served, older ones dropped."""
    ensure_camera_info(node_a, width=1242, height=375)
    rec = node_a.recorder
    # Latency of one frame on its own, the reference.
    single = next(STAMPS)
    msg = image_msg(single, width=1242, height=375, encoding='bgr8')
    pub = node_a.publisher('/a/image', Image)
    node_a.publish('/a/image', msg)
    sent = time.monotonic()
    rec.wait_for('/a/depth', single)
    reference = rec.arrival('/a/depth', single) - sent
    dropped_before = diagnostics_total(node_a, 'eigen_depth: depth estimation',
                                       'dropped frames (total)')
    burst = [next(STAMPS) for _ in range(60)]
    sent_at = {}
    for sec in burst:
        msg.header.stamp.sec = sec
        sent_at[sec] = time.monotonic()
        pub.publish(msg)
    # The newest frames are served (the very last may be lost by best-effort DDS itself).
    rec.wait(lambda: any(rec.find('/a/depth', sec) for sec in burst[-3:]),
             what='an answer to one of the last frames of the burst')
    served = [sec for sec in burst if rec.find('/a/depth', sec) is not None]
    latencies = [rec.arrival('/a/depth', sec) - sent_at[sec] for sec in served]
    assert len(served) < len(burst), 'every frame of the burst was processed'
    # Queueing would make the last frame wait for all earlier ones (about 60 x reference).
    assert latencies[-1] < max(10 * reference, 1.0), (reference, latencies)
    rec.wait(lambda: diagnostics_total(node_a, 'eigen_depth: depth estimation',
                                       'dropped frames (total)') > dropped_before,
             what='dropped frames counted in /diagnostics')


# ------------------------------------------------------------------------ node B


def test_idle_without_subscribers(node_b_idle: RosSide) -> None:
    if '/b' in node_b_idle.listening:
        pytest.skip('outputs of node B are already subscribed in this module')
    rec = node_b_idle.recorder
    name = 'eigen_depth_b: depth estimation'
    status = node_b_idle.publish_until(
        '/b/image/compressed', compressed_msg(next(STAMPS), (10, 20, 30)),
        lambda: next((d for d in reversed(rec.diagnostics(name))
                      if int(d['frames skipped, no subscriber (total)'])), None),
        'an idle frame in /diagnostics')
    assert status['frames processed (total)'] == '0'
    assert status['_message'] == 'idle: no subscriber to any output'


def test_compressed_input_resolution_and_fallback_intrinsics(node_b: RosSide) -> None:
    rec = node_b.recorder
    sec = send_frame(node_b, '/b/image/compressed', compressed_msg(next(STAMPS), (220, 30, 60)),
                     'depth/colorized')
    depth = check_depth(rec.wait_for('/b/depth', sec), sec, W, H)
    assert np.isnan(depth).any() and np.isfinite(depth).any()  # NaN where the net is blind
    info = rec.wait_for('/b/depth/camera_info', sec)
    check_header(info, sec)
    assert (info.width, info.height) == (W, H)
    assert [info.k[0], info.k[4], info.k[2], info.k[5]] == [B_FALLBACK_FX, B_FALLBACK_FX,
                                                            (W - 1) / 2, (H - 1) / 2]
    points = check_cloud(rec.find('/b/points', sec), sec, depth, info, B_STRIDE, 20.0)
    assert np.all(unpack_rgb(points['rgb']) == (220, 30, 60))  # PNG decoded in RGB order
    colorized = rec.find('/b/depth/colorized', sec)
    check_header(colorized, sec)
    assert (colorized.encoding, colorized.width, colorized.height) == ('rgb8', W, H)
    rec.wait_log(B_LOG, 'no camera_info received: using the fallback intrinsics')


def test_jpeg_and_corrupt_compressed_frames(node_b: RosSide) -> None:
    rec = node_b.recorder
    sec = send_frame(node_b, '/b/image/compressed',
                     compressed_msg(next(STAMPS), (128, 128, 128), '.jpg'))
    check_depth(rec.find('/b/depth', sec), sec, W, H)
    start = len(rec.logs(B_LOG))
    bad = next(STAMPS)
    node_b.publish('/b/image/compressed', stamped(CompressedImage(
        format='jpeg', data=b'\xff\xd8\xff\xe0' + bytes(range(256)) * 8), bad))
    rec.wait_log(B_LOG, 'could not decode the compressed frame', start)
    good = send_frame(node_b, '/b/image/compressed', compressed_msg(next(STAMPS), (1, 2, 3)))
    assert rec.find('/b/depth', good) is not None and rec.find('/b/depth', bad) is None


# ------------------------------------------------------------------------ process life


def test_doubled_focal_length_doubles_the_depth(node_a: RosSide) -> None:
    """The canonical-focal rule: fx, fy doubled -> depth x 2; scale_by_focal off -> unchanged."""
    rec = node_a.recorder
    ensure_camera_info(node_a)
    base_sec = send_frame(node_a, '/a/image', image_msg(next(STAMPS)))
    base = check_depth(rec.find('/a/depth', base_sec), base_sec, 142, 27)
    base_info = rec.wait_for('/a/depth/camera_info', base_sec)
    try:
        ensure_camera_info(node_a, fx=2 * FX, fy=2 * FY)
        sec = send_frame(node_a, '/a/image', image_msg(next(STAMPS)))
        doubled = check_depth(rec.find('/a/depth', sec), sec, 142, 27)
        np.testing.assert_array_equal(doubled, 2 * base)
        info = rec.wait_for('/a/depth/camera_info', sec)
        assert info.k[0] == pytest.approx(2 * base_info.k[0])
        status = rec.wait(lambda: next((d for d in reversed(rec.diagnostics(
            'eigen_depth: depth estimation')) if d.get('f_in source') == 'camera_info'
            and float(d['depth scale f_in/f_train']) == pytest.approx(2.0)), None),
            what='diagnostics with the doubled focal scale')
        assert status['focal scaling'] == 'on'
        assert float(status['f_in (px)']) == pytest.approx(2 * float(status['f_train (px)']))
        (off,) = set_parameters(node_a, '/a/eigen_depth', scale_by_focal=False)
        assert off.successful, off.reason
        sec = send_frame(node_a, '/a/image', image_msg(next(STAMPS)))
        np.testing.assert_array_equal(check_depth(rec.find('/a/depth', sec), sec, 142, 27),
                                      base)
    finally:
        (on,) = set_parameters(node_a, '/a/eigen_depth', scale_by_focal=True)
        assert on.successful
        ensure_camera_info(node_a)


def test_bad_focal_camera_info_names_the_field_and_keeps_depth(node_a: RosSide) -> None:
    rec = node_a.recorder
    start = len(rec.logs(A_LOG))
    text = 'bad field p[5] (fy)'
    node_a.camera_info_a = None
    msg = camera_info_msg(fy=float('nan'))
    node_a.publish_until('/a/camera_info', msg,
                         lambda: any(text in m for m in rec.logs(A_LOG)[start:]), text)
    try:
        sec = send_frame(node_a, '/a/image', image_msg(next(STAMPS)))
        check_depth(rec.find('/a/depth', sec), sec, 142, 27)
        rec.wait_log(A_LOG, 'the depth scale assumes', 0)
    finally:
        ensure_camera_info(node_a)


def test_focal_ratio_beyond_four_is_published_and_warned_once(node_a: RosSide) -> None:
    rec = node_a.recorder
    start = len(rec.logs(A_LOG))
    try:
        ensure_camera_info(node_a, fx=5 * FX, fy=5 * FY)
        sec = send_frame(node_a, '/a/image', image_msg(next(STAMPS)))
        check_depth(rec.find('/a/depth', sec), sec, 142, 27)
        rec.wait_log(A_LOG, 'focal ratio f_in / f_train = 5.000 is outside 0.25x-4x', start)
        send_frame(node_a, '/a/image', image_msg(next(STAMPS)))
        assert sum('is outside 0.25x-4x' in m for m in rec.logs(A_LOG)) == 1
    finally:
        ensure_camera_info(node_a)


def test_sigterm_stops_the_node_cleanly(nodes: dict) -> None:
    proc = nodes['a']
    assert proc.poll() is None, 'node A died during the tests'
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


def test_bad_checkpoints_exit_non_zero_with_one_error(tmp_path: Any) -> None:
    garbage = tmp_path / 'garbage.pt'
    garbage.write_bytes(b'not a checkpoint at all')
    cases = {'missing': (str(tmp_path / 'missing.pt'), 'checkpoint file not found'),
             'garbage': (str(garbage), f'cannot start: {garbage}: '),
             'empty': ('', "parameter 'checkpoint' is empty")}
    procs = {key: start_node(path, '/c', f'bad_{key}') for key, (path, _) in cases.items()}
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
                                 f'backend:={backend}') for backend in backends}
    procs['nonsense'] = start_node(module_checkpoint, '/d', 'bad_backend', 'backend:=nonsense')
    outputs = {}
    try:
        for backend in backends:
            node = f'{backend}.eigen_depth_{backend}'
            warm_up(ros, f'/{backend}', image_msg, f'/{backend}/image')
            ros.recorder.wait_log(node, f"backend '{backend}' -> {backend} (")
            sec = send_frame(ros, f'/{backend}/image', image_msg(next(STAMPS)))
            depth = check_depth(ros.recorder.find(f'/{backend}/depth', sec), sec, 142, 27)
            assert 7 < np.median(depth) < 14, backend   # the small net predicts about 10 m
            status = ros.recorder.wait(
                lambda: next(iter(ros.recorder.diagnostics(f'eigen_depth_{backend}: depth '
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

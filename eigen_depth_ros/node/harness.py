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
Start a ``depth_node`` process and talk to it over DDS: the one harness of tools and tests.

Three parts, used together or alone:

* :func:`node_command` builds the command line: ``python -m eigen_depth_ros.node`` with an
  optional params file, namespace, node name, remaps and ``-p name:=value`` parameters,
  each value written as a JSON literal (rcl parses ``-p`` values as YAML, of which JSON is
  a subset), so paths with ``#``, ``: `` or quotes stay paths.
* :class:`NodeProcess` runs a command with an environment (use
  :func:`~eigen_depth_ros.node.ros_env.local_dds_env`), its output appended to a log file,
  and stops it like Ctrl-C does: SIGINT, then SIGTERM, then SIGKILL.
* :class:`RosSide` is this process's DDS side, one rclpy context spun by a single-threaded
  executor in a background thread: publishers with the camera's QoS (sensor data, best
  effort), subscriptions with the node's output QoS (reliable), every arrival recorded with
  its receive time (or handed to a callback for long runs), and waits on conditions and on
  matched publishers and subscriptions, never fixed sleeps. Waits fail at once, with the
  tail of the node's log, when a watched node process has exited.

rclpy and the message packages are imported only by :class:`RosSide` and the message
builders, so building and running a command needs neither.
"""
from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Mapping

from eigen_depth_ros.msg.camera_info import depth_camera_info_fields
from eigen_depth_ros.msg.image_conversion import array_to_image_fields, set_fields
import numpy as np

WAIT_S = 30.0
"""Default limit of a wait (discovery, an answer): generous, the machine may be shared."""
OUTPUT_DEPTH = 100
"""History depth of the output subscriptions (reliable): nothing is lost to a slow reader."""


class HarnessError(RuntimeError):
    """The node could not be started, exited, or did not answer in time; one line says why."""


class HarnessTimeout(HarnessError):
    """A wait of :class:`RosSide` ran out of time."""


# ----------------------------------------------------------------------------- the command


def node_command(checkpoint: str | os.PathLike | None = None, *,
                 params: Mapping[str, Any] | None = None,
                 remaps: Mapping[str, str] | None = None, namespace: str | None = None,
                 name: str | None = None, params_file: str | os.PathLike | None = None,
                 module: str = 'eigen_depth_ros.node') -> list[str]:
    """
    Build the command line of a ``depth_node`` process.

    :param checkpoint: the ``checkpoint`` parameter (None: not given, the node's default).
    :param params: more parameters, ``{name: value}``; values are written as JSON literals,
        which rcl's YAML parser reads back as the same string, number, bool or list.
    :param remaps: topic remaps ``{from: to}``, e.g. ``{'image': '/camera/image_raw'}``.
    :param namespace: the node's namespace (``-r __ns:=``).
    :param name: the node's name (``-r __node:=``).
    :param params_file: a ROS 2 parameters YAML file, read before the ``-p`` parameters.
    :param module: the module run with ``python -m``: ``eigen_depth_ros.node.lifecycle``
        for the managed node.
    :return: the argument list, for :class:`NodeProcess` (never a shell string).
    """
    cmd = [sys.executable, '-m', module, '--ros-args']
    if params_file is not None:
        cmd += ['--params-file', str(params_file)]
    if namespace:
        cmd += ['-r', f'__ns:={namespace}']
    if name:
        cmd += ['-r', f'__node:={name}']
    for source, target in (remaps or {}).items():
        cmd += ['-r', f'{source}:={target}']
    values = dict(params or {})
    if checkpoint is not None:
        values = {'checkpoint': str(checkpoint), **values}
    for key, value in values.items():
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        cmd += ['-p', f'{key}:={json.dumps(value)}']
    return cmd


# ----------------------------------------------------------------------------- the process


class NodeProcess:
    """
    A child process (a ``depth_node``, or any other) with its output in a log file.

    The log is read here through a file object of its own, so reading never moves the
    child's write position. Without ``log_path`` a temporary file is used, removed by
    :meth:`stop`, which keeps its text for :meth:`log_text`.
    """

    def __init__(self, cmd: list[str], env: Mapping[str, str] | None = None,
                 log_path: str | os.PathLike | None = None,
                 cwd: str | os.PathLike | None = None, label: str = 'depth_node') -> None:
        """
        Start ``cmd``.

        :param cmd: the argument list (:func:`node_command`).
        :param env: the child's environment (default: this process's).
        :param log_path: where its stdout and stderr go; None: a temporary file.
        :param cwd: its working directory.
        :param label: what error messages call it.
        """
        self.label = label
        self._temporary = log_path is None
        if log_path is None:
            handle, name = tempfile.mkstemp(prefix='depth_node_', suffix='.log')
            os.close(handle)
            log_path = name
        self.log_path = Path(log_path)
        self._final_log: str | None = None
        with open(self.log_path, 'wb') as log:
            self.proc = subprocess.Popen(cmd, env=None if env is None else dict(env), cwd=cwd,
                                         stdout=log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        """Process id of the child."""
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        """Exit code, None while it runs (as :meth:`subprocess.Popen.poll` leaves it)."""
        return self.proc.poll()

    def running(self) -> bool:
        """Whether the child still runs."""
        return self.proc.poll() is None

    def log_text(self) -> str:
        """Everything the child printed so far ('' when the log cannot be read)."""
        if self._final_log is not None:
            return self._final_log
        try:
            return self.log_path.read_text(errors='replace')
        except OSError:
            return ''

    def tail(self, lines: int = 3) -> str:
        """Return the last ``lines`` non-empty lines of the log, joined by `` | ``."""
        kept = [line.strip() for line in self.log_text().splitlines() if line.strip()]
        return ' | '.join(kept[-lines:]) or 'no output'

    def check_alive(self) -> None:
        """Raise :class:`HarnessError`, with the log's tail, when the child has exited."""
        if self.proc.poll() is not None:
            raise HarnessError(f'{self.label} exited with code {self.proc.returncode}: '
                               f'{self.tail()}')

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to the child (nothing when it has exited)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit; its code (:class:`subprocess.TimeoutExpired` after ``timeout``)."""
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout_s: float = 5.0) -> int:
        """
        Stop the child like Ctrl-C (SIGINT); SIGTERM, then SIGKILL, each after ``timeout_s``.

        :return: its exit code (negative: the signal that ended it).
        """
        for signum in (signal.SIGINT, signal.SIGTERM):
            if self.proc.poll() is not None:
                break
            self.proc.send_signal(signum)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                continue
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self._temporary and self._final_log is None:
            self._final_log = self.log_text()
            self.log_path.unlink(missing_ok=True)
        return self.proc.returncode

    def __enter__(self) -> NodeProcess:
        """Return the running process."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop the process."""
        self.stop()


# ----------------------------------------------------------------------------- messages


def stamp_ns(msg: Any) -> int:
    """Header stamp of a message in nanoseconds."""
    return int(msg.header.stamp.sec) * 10 ** 9 + int(msg.header.stamp.nanosec)


def set_stamp(msg: Any, ns: int, frame_id: str | None = None) -> Any:
    """Set the header stamp of ``msg`` to ``ns`` nanoseconds (and its frame); return it."""
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(ns), 10 ** 9)
    if frame_id is not None:
        msg.header.frame_id = frame_id
    return msg


def camera_image(pixels: np.ndarray, encoding: str = 'rgb8', frame_id: str = 'camera') -> Any:
    """Return a sensor_msgs/Image of ``pixels`` (see ``array_to_image_fields``), stamp 0."""
    from sensor_msgs.msg import Image
    msg = set_fields(Image(), array_to_image_fields(pixels, encoding))
    msg.header.frame_id = frame_id
    return msg


def camera_info(width: int, height: int, fx: float, fy: float | None = None,
                cx: float | None = None, cy: float | None = None,
                frame_id: str = 'camera') -> Any:
    """
    Return the CameraInfo of an undistorted pinhole camera, stamp 0.

    ``fy`` defaults to ``fx``, the principal point to the image centre
    ``((width - 1) / 2, (height - 1) / 2)``.
    """
    from sensor_msgs.msg import CameraInfo
    msg = set_fields(CameraInfo(), depth_camera_info_fields(
        fx, fx if fy is None else fy, (width - 1) / 2.0 if cx is None else cx,
        (height - 1) / 2.0 if cy is None else cy, width, height))
    msg.header.frame_id = frame_id
    return msg


def diagnostic_values(status: Any) -> dict[str, str]:
    """
    Return a DiagnosticStatus as ``{key: value}``.

    Plus ``_name``, ``_message`` and ``_level`` (the level as a decimal number).
    """
    level = status.level
    level = int.from_bytes(level, 'little') if isinstance(level, bytes) else int(level)
    values = {kv.key: kv.value for kv in status.values}
    values.update(_name=status.name, _message=status.message, _level=str(level))
    return values


# ----------------------------------------------------------------------------- the ROS side


def camera_qos() -> Any:
    """Return the QoS of a camera driver's publishers: sensor data (best effort, last 5)."""
    from rclpy.qos import qos_profile_sensor_data
    return qos_profile_sensor_data


def output_qos(depth: int = OUTPUT_DEPTH) -> Any:
    """Return the QoS of a consumer of the node's outputs: reliable, keep last ``depth``."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)


def output_types() -> dict[str, type]:
    """
    Return the node's output topics (relative names) and their message types.

    ``depth`` is the depth image's deprecated name, published while it has subscribers.
    """
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2
    return {'depth/image': Image, 'depth': Image, 'depth/camera_info': CameraInfo,
            'points': PointCloud2, 'depth/colorized': Image}


@contextmanager
def _environment(env: Mapping[str, str] | None) -> Iterator[None]:
    """Use ``env`` as ``os.environ`` inside the block (rcl reads DDS settings at init)."""
    if env is None:
        yield
        return
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass(frozen=True)
class Arrival:
    """A message as it arrived: monotonic receive time [s] and the message."""

    at: float
    msg: Any


class RosSide:
    """
    This process's DDS side: one rclpy context, its nodes, publishers and subscriptions.

    Every subscription made with ``keep=True`` appends each message, with its receive time,
    to ``received[key]`` (``key``: the topic as given, unless named otherwise); an
    ``on_message(msg, received_at)`` callback sees each one as it arrives. All reading of
    ``received`` happens under ``cond``, which :meth:`wait` holds while it tests.
    """

    def __init__(self, name: str = 'eigen_depth_harness', namespace: str = '',
                 env: Mapping[str, str] | None = None,
                 process: NodeProcess | None = None) -> None:
        """
        Join DDS and start spinning.

        :param name: name of the first node (:attr:`node`).
        :param namespace: namespace of the nodes, so relative topics meet the node's.
        :param env: environment for rclpy's init (DDS domain, discovery range and profile;
            :func:`~eigen_depth_ros.node.ros_env.local_dds_env`); None: this process's.
        :param process: a node process whose exit ends every wait at once.
        """
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.process = process
        self.namespace = namespace
        self.cond = threading.Condition()
        self.received: dict[str, list[Arrival]] = defaultdict(list)
        self.counts: dict[str, int] = defaultdict(int)
        self.sent_at: dict[int, float] = {}
        self._publishers: dict[str, Any] = {}
        self.context = rclpy.Context()
        with _environment(env):
            rclpy.init(context=self.context)
            self.nodes: list[Any] = []
            self.executor = SingleThreadedExecutor(context=self.context)
            self.node = self.add_node(name)
        self._thread = threading.Thread(target=self.executor.spin, name=f'{name}_spin',
                                        daemon=True)
        self._thread.start()

    def add_node(self, name: str) -> Any:
        """Create one more node in this context (e.g. another consumer) and spin it."""
        import rclpy
        node = rclpy.create_node(name, namespace=self.namespace, context=self.context)
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    # --------------------------------------------------------------- publishing

    def publisher(self, topic: str, msg_type: type, qos: Any = None) -> Any:
        """Return the publisher of ``topic`` (made once, :func:`camera_qos` by default)."""
        if topic not in self._publishers:
            self._publishers[topic] = self.node.create_publisher(
                msg_type, topic, camera_qos() if qos is None else qos)
        return self._publishers[topic]

    def publish(self, topic: str, msg: Any, timed: bool = False,
                wait_s: float | None = WAIT_S) -> float:
        """
        Publish ``msg`` on ``topic`` once something subscribes it (discovery).

        :param timed: record the send time in ``sent_at[stamp_ns(msg)]`` (for latency).
        :param wait_s: how long to wait for a subscriber; None publishes at once.
        :return: the monotonic send time.
        """
        pub = self.publisher(topic, type(msg))
        if wait_s is not None:
            self.wait(lambda: pub.get_subscription_count() > 0, wait_s,
                      f'a subscriber on {topic}')
        sent = time.monotonic()
        if timed:
            with self.cond:
                self.sent_at[stamp_ns(msg)] = sent
        pub.publish(msg)
        return sent

    # --------------------------------------------------------------- subscribing

    def subscribe(self, topic: str, msg_type: type, qos: Any = None, keep: bool = True,
                  on_message: Callable[[Any, float], None] | None = None,
                  node: Any = None, key: str | None = None) -> Any:
        """
        Subscribe ``topic``; record what arrives.

        :param qos: default :func:`output_qos`.
        :param keep: append each message to ``received[key]``; off for long runs, where
            ``counts[key]`` and ``on_message`` still see every one.
        :param on_message: called as ``on_message(msg, receive time)``, before recording.
        :param node: the node that subscribes (default :attr:`node`).
        :param key: the key in ``received`` and ``counts`` (default: ``topic``).
        """
        key = topic if key is None else key

        def arrived(msg: Any) -> None:
            now = time.monotonic()
            if on_message is not None:
                on_message(msg, now)
            with self.cond:
                self.counts[key] += 1
                if keep:
                    self.received[key].append(Arrival(now, msg))
                self.cond.notify_all()
        return (node or self.node).create_subscription(
            msg_type, topic, arrived, output_qos() if qos is None else qos)

    def subscribe_outputs(self, namespace: str = '',
                          names: Iterable[str] = ('depth/image', 'depth/camera_info', 'points'),
                          **kwargs: Any) -> list[Any]:
        """
        Subscribe outputs of the node in ``namespace`` (keys ``f'{namespace}/{name}'``).

        Without a namespace the names stay relative (they resolve in :attr:`namespace`).
        ``kwargs`` go to :meth:`subscribe`; an ``on_message`` there is called with the
        output's name first: ``on_message(name, msg, receive time)``.
        """
        types = output_types()
        handler = kwargs.pop('on_message', None)
        subs = []
        for name in names:
            topic = f'{namespace}/{name}' if namespace else name
            callback = None if handler is None else self._named(handler, name)
            subs.append(self.subscribe(topic, types[name], on_message=callback, **kwargs))
        return subs

    @staticmethod
    def _named(handler: Callable[[str, Any, float], None], name: str
               ) -> Callable[[Any, float], None]:
        return lambda msg, now: handler(name, msg, now)

    def subscribe_diagnostics(self) -> Any:
        """Subscribe ``/diagnostics`` (read with :meth:`diagnostics`)."""
        from diagnostic_msgs.msg import DiagnosticArray
        return self.subscribe('/diagnostics', DiagnosticArray)

    # --------------------------------------------------------------- waiting

    def wait(self, predicate: Callable[[], Any], timeout: float = WAIT_S,
             what: str = 'a condition') -> Any:
        """
        Wait until ``predicate()`` is truthy (tested under :attr:`cond`); return its value.

        :raises HarnessTimeout: after ``timeout`` s.
        :raises HarnessError: as soon as the watched node process has exited.
        """
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                value = predicate()
                if value:
                    return value
                if self.process is not None:
                    self.process.check_alive()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise HarnessTimeout(f'timed out after {timeout:g} s waiting for {what}')
                self.cond.wait(min(left, 0.05))

    def wait_connected(self, publishers: Iterable[Any] = (), subscriptions: Iterable[Any] = (),
                       timeout: float = WAIT_S, what: str = 'the node to connect') -> None:
        """Wait until every publisher has a subscriber and every subscription a publisher."""
        publishers, subscriptions = list(publishers), list(subscriptions)
        self.wait(lambda: all(p.get_subscription_count() > 0 for p in publishers)
                  and all(s.get_publisher_count() > 0 for s in subscriptions), timeout, what)

    # --------------------------------------------------------------- reading

    def find(self, key: str, stamp: int | None = None, sec: int | None = None) -> Any:
        """Return the first message under ``key`` stamped ``stamp`` ns (or ``sec`` s)."""
        arrival = self._arrival(key, stamp, sec)
        return None if arrival is None else arrival.msg

    def arrival(self, key: str, stamp: int | None = None, sec: int | None = None
                ) -> float | None:
        """Receive time of that message (see :meth:`find`), None when it has not come."""
        arrival = self._arrival(key, stamp, sec)
        return None if arrival is None else arrival.at

    def _arrival(self, key: str, stamp: int | None, sec: int | None) -> Arrival | None:
        with self.cond:
            for arrival in self.received.get(key, ()):
                if (stamp_ns(arrival.msg) == stamp if sec is None
                        else arrival.msg.header.stamp.sec == sec):
                    return arrival
        return None

    def wait_for(self, key: str, stamp: int | None = None, sec: int | None = None,
                 timeout: float = WAIT_S) -> Any:
        """Wait for the message under ``key`` with that stamp (see :meth:`find`)."""
        return self.wait(lambda: self.find(key, stamp, sec), timeout,
                         f'{key} stamp {sec if sec is not None else stamp}')

    def diagnostics(self, name: str | None = None, after: float | None = None
                    ) -> list[dict[str, str]]:
        """
        Statuses of ``/diagnostics`` as :func:`diagnostic_values`, oldest first.

        :param name: only the status of this name (``'<node name>: depth estimation'``).
        :param after: only those received after this monotonic time.
        """
        with self.cond:
            return [diagnostic_values(status) for arrival in self.received.get('/diagnostics', ())
                    if after is None or arrival.at > after
                    for status in arrival.msg.status if name is None or status.name == name]

    def set_parameters(self, node: str, **values: Any) -> list[Any]:
        """
        Set parameters of the node ``node`` (full name) through its service.

        :return: one ``SetParametersResult`` per parameter (``successful``, ``reason``).
        """
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter
        client = self.node.create_client(SetParameters, f'{node}/set_parameters')
        try:
            self.wait(client.service_is_ready, what=f'the parameter service of {node}')
            future = client.call_async(SetParameters.Request(parameters=[
                Parameter(key, value=value).to_parameter_msg()
                for key, value in values.items()]))
            self.wait(future.done, what=f'set_parameters on {node}')
            return list(future.result().results)
        finally:
            self.node.destroy_client(client)

    def get_parameter(self, node: str, name: str) -> Any:
        """Return the value of the parameter ``name`` of the node ``node`` (full name)."""
        from rcl_interfaces.srv import GetParameters
        from rclpy.parameter import parameter_value_to_python
        client = self.node.create_client(GetParameters, f'{node}/get_parameters')
        try:
            self.wait(client.service_is_ready, what=f'the parameter service of {node}')
            future = client.call_async(GetParameters.Request(names=[name]))
            self.wait(future.done, what=f'get_parameters on {node}')
            return parameter_value_to_python(future.result().values[0])
        finally:
            self.node.destroy_client(client)

    # --------------------------------------------------------------- the end

    def close(self) -> None:
        """Stop spinning, destroy the nodes and leave DDS."""
        self.executor.shutdown(timeout_sec=5.0)
        self._thread.join(timeout=5.0)
        for node in self.nodes:
            node.destroy_node()
        self.context.try_shutdown()

    def __enter__(self) -> RosSide:
        """Return this side."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Leave DDS."""
        self.close()

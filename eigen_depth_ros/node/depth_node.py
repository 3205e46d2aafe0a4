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
The ``depth_node`` executable: monocular depth and a point cloud from one camera stream.

Subscribes ``image`` (or ``<image>/compressed``) and ``camera_info``; publishes
``depth/image`` (32FC1 metres, NaN invalid) with ``depth/camera_info`` beside it, as
image_transport expects, ``points`` and optionally ``depth/colorized``, plus
``/diagnostics``; the old ``depth`` topic is still published while something subscribes it.
Every publisher and subscription takes the ``qos_overrides.<topic>.*`` parameters. See
docs/node.md for topics, parameters and QoS. This module is the ROS wiring; the parameter
table is :mod:`.parameters`, the per-frame settings :mod:`.settings`, the focal-length rule
:mod:`.focal`, the camera_info pairing :mod:`.pairing`, the undistortion :mod:`.rectify`
and the diagnostics status :mod:`.diagnostics`.

Two threads: :func:`main` spins the node on one executor thread (camera callbacks,
camera_info, parameter changes, the diagnostics timer), and a worker thread runs every
forward pass. The image callback only stores the newest message in a one-slot buffer
(counting the frame it replaces as dropped) and wakes the worker, which converts, runs the
network and publishes. Latency therefore stays at about one inference even when the camera
is faster than the network, and the executor keeps serving camera_info, parameters and
diagnostics while the network runs.

Setting ``checkpoint`` at runtime loads the new network beside the running one on a loader
thread of its own, so the executor keeps taking camera frames, which the worker answers with
the old network meanwhile. Only when it loaded does the worker run it once and swap it in,
under the lock, between two frames; a file that fails to load is reverted with an error.
The worker takes the network once per frame, so no frame mixes two. Every forward pass,
warm-ups included, runs on the worker thread (one OpenMP pool). The forward pass runs on the
backend named by ``backend`` (see :mod:`eigen_depth_ros.core.backends`), the one way to
choose the number format (:func:`~eigen_depth_ros.node.parameters.choose_backend`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
import math
import os
import sys
import threading
import time
from typing import Any, Callable
import warnings
import zipfile

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from eigen_depth_ros.core.backends import BACKENDS, split_name
from eigen_depth_ros.core.inference import (BACKEND_ENV, DepthEstimator, DepthPrediction,
                                            gpu_memory_pairs, select_device)
from eigen_depth_ros.core.malloc_tuning import keep_large_buffers
from eigen_depth_ros.msg.camera_info import (CameraInfoError, depth_camera_info_fields,
                                             Intrinsics, intrinsics_from_camera_info)
from eigen_depth_ros.msg.image_conversion import (array_to_image_fields, colorize_depth,
                                                  depth_to_image_fields, ImageConversionError,
                                                  message_to_rgb, set_fields)
from eigen_depth_ros.msg.point_cloud import build_point_cloud2, depth_to_points, resample_to_grid
import numpy as np
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
import rclpy
from rclpy.exceptions import InvalidParameterTypeException, ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
import torch

from .diagnostics import Counters, depth_status, FocalState, STAGES
from .focal import focal_for_scale, FocalLog, frame_intrinsics, Note
from .harness import stamp_ns
from .pairing import CameraModel, InfoBuffer, WAIT_S
from .parameters import (check_depth_resolution, choose_backend, DYNAMIC, NODE_NAME,
                         PARAMETERS, ParameterSpec)
from .qos import camera_info_qos, camera_input_qos, output_qos
from .rectify import lens_from_camera_info, LensError, Rectifier
from .ros_env import check_profile_env
from .settings import Settings

ERROR_LOG_PERIOD_S = 5.0  # one log line per kind of fault per this many seconds
LEGACY_DEPTH = 'depth'
"""The depth image's topic before image_transport names; published while subscribed."""


def parameter_descriptor(spec: ParameterSpec) -> ParameterDescriptor:
    """Build the ParameterDescriptor declared for ``spec`` (with its range for numbers)."""
    desc = ParameterDescriptor(name=spec.name, description=spec.describe(),
                               read_only=spec.read_only, dynamic_typing=spec.dynamic_typing)
    if isinstance(spec.default, bool) or spec.min_value is None:
        return desc
    high = spec.max_value
    if isinstance(spec.default, int):
        desc.integer_range = [IntegerRange(from_value=int(spec.min_value),
                                           to_value=int(high if high is not None else 2 ** 62),
                                           step=1)]
    else:
        desc.floating_point_range = [FloatingPointRange(
            from_value=float(spec.min_value),
            to_value=float(high if high is not None else 1e300), step=0.0)]
    return desc


class StartupError(RuntimeError):
    """The node cannot start (bad parameter, missing or unreadable checkpoint)."""


@dataclass
class _Frame:
    """An input message, when it arrived (time.monotonic()) and its age then (seconds)."""

    msg: Any
    received: float
    age_s: float


@dataclass
class _Job:
    """A call the worker thread makes between two frames, and its outcome."""

    run: Callable[[], None]
    done: threading.Event = field(default_factory=threading.Event)
    error: Exception | None = None


class DepthCore:
    """
    What ``depth_node`` does, in the phases of a managed node; mixed into a Node class.

    :class:`DepthNode` (unmanaged, the default) runs every phase in its constructor;
    :class:`eigen_depth_ros.node.lifecycle.ManagedDepthNode` runs them on lifecycle
    transitions. :meth:`_declare` declares the parameters; :meth:`_configure` loads and warms
    the network, starts the worker and creates the publishers; :meth:`_activate` subscribes
    the camera and starts the diagnostics; :meth:`_deactivate` and :meth:`_cleanup` undo
    them in turn.
    """

    def _declare(self) -> None:
        """
        Declare every parameter, read the settings and set up the shared state.

        :raises ValueError: (or a ``ParameterException``) for an invalid parameter.
        """
        # Throttled and once-only logs come from the executor and the worker thread alike.
        self._log_lock = threading.Lock()
        self._last_log: dict[str, float] = {}
        self._said: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._estimator: DepthEstimator | None = None
        self._checkpoint = ''
        self._worker: threading.Thread | None = None
        self._stopping = False
        # The checkpoint a loader thread is loading, None when none is.
        self._loading: str | None = None
        self._subscriptions: list[Any] = []
        self._taking_frames = False  # active; a managed node's camera stays subscribed
        self._diagnostics_timer = None
        for spec in PARAMETERS:
            self.declare_parameter(spec.name, spec.default, parameter_descriptor(spec))
        self._settings = self._read_settings({})
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def _configure(self) -> None:
        """
        Load and warm up the network on a new worker thread; create the publishers.

        :raises ValueError: (or ``OSError``, ``RuntimeError``, a ``ParameterException``)
            naming what is wrong: the caller logs it and undoes what was done
            (:meth:`_cleanup`).
        """
        self._resolution = check_depth_resolution(self._param('depth_resolution'))
        self._estimator = self._load_estimator()
        self._checkpoint = str(self._param('checkpoint')).strip()
        self._slot: _Frame | None = None
        self._jobs: list[_Job] = []
        self._stopping = False
        self._totals = Counters()
        self._window = Counters()
        self._window_start = time.monotonic()
        # The last camera_infos (read and written under the lock), the stamp of the last
        # frame the worker took, and the undistortion maps (worker thread only).
        self._infos = InfoBuffer()
        self._previous_stamp: int | None = None
        self._rectifier = Rectifier()
        # The canonical-focal rule of the last frame, for /diagnostics (replaced whole by the
        # worker, so the executor never reads half of one), and what the log said last.
        self._focal = FocalState()
        self._focal_log = FocalLog()
        self._legacy_said = False
        # The worker runs every forward pass, the first one before the node subscribes.
        self._worker = threading.Thread(target=self._work, name='eigen_depth_worker',
                                        daemon=True)
        self._worker.start()
        self._on_worker(lambda: self._warm_up(self._estimator, self._checkpoint))
        self._create_publishers()

    def _activate(self) -> None:
        """Subscribe the camera (once), take its frames and start the diagnostics timer."""
        if not self._subscriptions:
            self._create_subscriptions()
        with self._lock:
            self._taking_frames = True
        self._diagnostics_timer = self.create_timer(self._param('diagnostics_period'),
                                                    self._publish_diagnostics)
        self.get_logger().info(
            f'ready: {self._image_sub.topic_name} -> {self._depth_pub.topic_name} '
            f'({self._resolution} resolution), {self._points_pub.topic_name}')

    def _deactivate(self) -> None:
        """
        Stop taking frames: ignore the camera's, drop a waiting one, stop diagnostics.

        The subscriptions stay (until :meth:`_cleanup`): a subscription destroyed and made
        again is sometimes never matched by a camera's running publisher on Fast DDS 2.14
        (Jazzy), which still counts the old one.
        """
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
            self._diagnostics_timer = None
        with self._lock:
            self._taking_frames = False
            self._slot = None

    def _cleanup(self) -> None:
        """Unsubscribe, stop the worker (after its frame), free the network and publishers."""
        for subscription in self._subscriptions:
            self.destroy_subscription(subscription)
        self._subscriptions = []
        self._stop_worker()
        for publisher in getattr(self, '_outputs', ()) + (
                (self._diagnostics_pub,) if hasattr(self, '_diagnostics_pub') else ()):
            self.destroy_publisher(publisher)
        self._outputs = ()
        self._estimator = None

    def _stop_worker(self) -> None:
        """Stop the worker thread, waiting for the frame in progress."""
        if self._worker is not None:
            with self._lock:
                self._stopping = True
                self._wake.notify_all()
            self._worker.join(timeout=10.0)
            self._worker = None

    # ----------------------------------------------------------------- set-up helpers

    def _create_publishers(self) -> None:
        """Create the publishers, each open to ``qos_overrides``."""
        self._depth_pub = self._publisher(Image, 'depth/image')
        self._legacy_pub = self._publisher(Image, LEGACY_DEPTH)
        self._info_pub = self._publisher(CameraInfo, 'depth/camera_info')
        self._points_pub = self._publisher(PointCloud2, 'points')
        self._colorized_pub = self._publisher(Image, 'depth/colorized')
        self._outputs = (self._depth_pub, self._legacy_pub, self._info_pub, self._points_pub,
                         self._colorized_pub)
        self._diagnostics_pub = self._publisher(DiagnosticArray, '/diagnostics',
                                                QoSProfile(depth=10))

    def _create_subscriptions(self) -> None:
        """Subscribe the camera image and camera_info, each open to ``qos_overrides``."""
        if self._param('compressed'):
            self._image_sub = self._subscription(
                CompressedImage, self.resolve_topic_name('image') + '/compressed',
                self._on_image, camera_input_qos())
        else:
            self._image_sub = self._subscription(Image, 'image', self._on_image,
                                                 camera_input_qos())
        self._info_sub = self._subscription(CameraInfo, 'camera_info', self._on_camera_info,
                                            camera_info_qos())
        self._subscriptions = [self._image_sub, self._info_sub]

    def _publisher(self, msg_type: type, topic: str, qos: QoSProfile | None = None) -> Any:
        """
        Create a publisher whose QoS the ``qos_overrides.<topic>.publisher.*`` parameters set.

        :param qos: its default QoS (:func:`~.qos.output_qos` when None). rclpy writes the
            overrides into the profile it is given, so each topic gets a profile of its own.
        """
        return self.create_publisher(
            msg_type, topic, output_qos() if qos is None else qos,
            qos_overriding_options=QoSOverridingOptions.with_default_policies())

    def _subscription(self, msg_type: type, topic: str, callback: Callable[[Any], None],
                      qos: QoSProfile) -> Any:
        """Create a subscription open to ``qos_overrides.<topic>.subscription.*``."""
        return self.create_subscription(
            msg_type, topic, callback, qos,
            qos_overriding_options=QoSOverridingOptions.with_default_policies())

    def _param(self, name: str) -> Any:
        """Return the current value of a declared parameter."""
        return self.get_parameter(name).value

    def _read_settings(self, changes: dict[str, Any]) -> Settings:
        """Build and check :class:`Settings` from the parameters, with ``changes`` applied."""
        values = {spec.name: self._param(spec.name) for spec in PARAMETERS}
        return Settings.from_parameters({**values, **changes})

    def _load_estimator(self) -> DepthEstimator:
        """Load the checkpoint onto the chosen device and backend; log what was chosen."""
        path = str(self._param('checkpoint')).strip()
        if not path:
            raise ValueError("parameter 'checkpoint' is empty: set it to a .pt file written "
                             'by eigen-depth train (e.g. -p checkpoint:=/path/model.pt)')
        device = str(self._param('device'))
        requested = str(self._param('backend'))
        # Device and backend are checked before the (slow) load, so a typo fails at once.
        resolved, notes = choose_backend(requested, select_device(device), self._param('half'),
                                         os.environ.get(BACKEND_ENV, ''))
        for note in notes:
            self.get_logger().warning(note)
        onnx_path: str | None = str(self._param('onnx_path')).strip() or None
        if onnx_path is not None and split_name(resolved)[0] != 'onnx':
            self.get_logger().warning(f"onnx_path is ignored: backend is '{resolved}', not "
                                      "'onnx'")
            onnx_path = None
        if onnx_path is not None and not os.path.isfile(onnx_path):
            raise ValueError(f'onnx_path {onnx_path}: file not found')
        if self._param('num_threads') > 0:
            torch.set_num_threads(self._param('num_threads'))
        estimator = self._build_estimator(path, device, resolved, onnx_path)
        chosen = estimator.device
        where = (torch.cuda.get_device_name(chosen) if chosen.type == 'cuda'
                 else 'no CUDA device' if device.strip().lower() == 'auto' else 'as asked')
        self.get_logger().info(
            f"device '{device}' -> {chosen} ({where}); network "
            f"'{estimator.config.name}' {estimator.config.input_width}x"
            f'{estimator.config.input_height} -> {estimator.config.output_size[0]}x'
            f'{estimator.config.output_size[1]}, from {path}'
            + (', float16' if estimator.half else '')
            + (f', {torch.get_num_threads()} CPU threads' if chosen.type == 'cpu' else ''))
        self._log_train_focal(estimator, path)
        name = estimator.backend.name
        why = ''
        if requested.strip().lower() == 'auto':
            why = (', the default for cuda, not yet verified on a GPU' if chosen.type == 'cuda'
                   else f', the measured default for {chosen.type}')
        source = ''
        if split_name(name)[0] == 'onnx':
            source = f'; graph {onnx_path}' if onnx_path else '; graph exported at start-up'
        self.get_logger().info(f"backend '{requested}' -> {name} "
                               f'({BACKENDS[split_name(name)[0]]}{why}{source})')
        return estimator

    def _log_train_focal(self, estimator: DepthEstimator, path: str) -> None:
        """Log the network's f_train (a warning when the checkpoint records none)."""
        if estimator.train_focal_note is not None:
            self.get_logger().warning(f'{path}: {estimator.train_focal_note}')
        rule = ('on: depth x f_in / f_train, f_in from camera_info (else fallback_fx)'
                if self._settings.scale_by_focal else 'off (scale_by_focal is false)')
        self.get_logger().info(f'canonical focal: f_train = {estimator.train_focal:.1f} px at '
                               f'the network input; f_in is logged when the first camera '
                               f'focal length is known; scaling {rule}')

    @staticmethod
    def _build_estimator(path: str, device: str, backend: str,
                         onnx_path: str | None) -> DepthEstimator:
        """
        Load ``path`` into a new :class:`DepthEstimator` on ``device`` and ``backend``.

        :raises ValueError: one line naming the file or the backend and the problem.
        """
        try:
            with warnings.catch_warnings():  # the node logs a missing f_train instead
                warnings.filterwarnings('ignore', '.*f_train', UserWarning)
                return DepthEstimator.from_checkpoint(path, device=device, backend=backend,
                                                      onnx_path=onnx_path)
        except ValueError:
            raise  # CheckpointError and backends' checks name the file or the backend
        except Exception as exc:  # noqa: B902 - onnxruntime, CUDA, missing modules
            graph = f' with {onnx_path}' if onnx_path else ''
            raise ValueError(f"backend '{backend}'{graph} failed for {path}: "
                             f'{_one_line(exc)}') from None

    @staticmethod
    def _warm_up(estimator: DepthEstimator, path: str) -> None:
        """
        Run ``estimator`` once on a blank image (on the worker thread, see :meth:`_on_worker`).

        Backend failures that show only when the network runs (``torch.compile`` without a C++
        compiler, an ONNX graph of another size) become errors here, not on every frame, and
        one-off costs (kernel choice, compilation, CUDA graph capture) stay off the first
        camera frame.

        :raises ValueError: one line naming the backend, the file and the problem.
        """
        config = estimator.config
        try:
            estimator.predict(np.zeros((config.input_height, config.input_width, 3), np.uint8))
        except Exception as exc:  # noqa: B902 - whatever the backend raises
            raise ValueError(f"backend '{estimator.backend.name}' cannot run the network of "
                             f'{path}: {_one_line(exc)}') from None

    def _on_worker(self, run: Callable[[], None]) -> None:
        """
        Have the worker thread call ``run`` between two frames; wait for it and re-raise.

        Every forward pass runs on the worker thread, warm-ups included: PyTorch gives each
        thread that runs parallel CPU operations its own OpenMP pool, and two pools on the
        same cores slow every forward pass down (see
        ``eigen_depth_ros.core.inference.single_threaded``).

        :raises RuntimeError: when the node stops before the worker got to it.
        """
        job = _Job(run)
        with self._lock:
            self._jobs.append(job)
            self._wake.notify()
        while not job.done.wait(0.1):
            worker = self._worker
            if self._stopping or worker is None or not worker.is_alive():
                raise RuntimeError('the node is stopping')
        if job.error is not None:
            raise job.error

    def _check_replacement(self, path: str) -> None:
        """
        Refuse a new ``checkpoint`` at once when it cannot be one, or while one loads.

        Only what takes no time is checked here (the value, the file's presence and that it
        is a ``torch.save`` zip archive); the loader thread finds the rest.

        :raises ValueError: naming the file and the problem.
        """
        if not path:
            raise ValueError("parameter 'checkpoint' cannot be empty")
        if not os.path.isfile(path):
            raise ValueError(f'{path}: checkpoint file not found')
        if not zipfile.is_zipfile(path):
            raise ValueError(f'{path}: not a checkpoint (not a torch.save zip archive)')
        with self._lock:
            if self._loading is not None:
                raise ValueError(f'{self._loading} is still loading; set checkpoint again '
                                 'when it is swapped in')
            self._loading = path

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """
        Accept changes of the runtime parameters when the result is consistent.

        A new ``checkpoint`` that passes the quick checks (:meth:`_check_replacement`) is
        accepted at once and loaded by a loader thread (:meth:`_swap`), beside the running
        network, which keeps answering camera frames meanwhile. Setting ``checkpoint`` to
        the running file changes nothing (that is how a failed load is reverted); before the
        node is configured, the new value is only kept (configuring loads it).
        """
        changes = {p.name: p.value for p in params if p.name in DYNAMIC}
        checkpoint = changes.pop('checkpoint', None)
        if checkpoint is not None and (str(checkpoint).strip() == self._checkpoint
                                       or self._estimator is None):
            checkpoint = None  # the running file, or not configured: read at configure
        if not changes and checkpoint is None:
            return SetParametersResult(successful=True)
        try:
            settings = self._read_settings(changes) if changes else None
            if checkpoint is not None:
                self._check_replacement(str(checkpoint).strip())
        except Exception as exc:  # noqa: B902 - a callback never raises
            reason = (str(exc) if isinstance(exc, (ValueError, TypeError))
                      else f'{type(exc).__name__}: {exc}')
            if checkpoint is not None:
                self.get_logger().error(f'checkpoint not changed: {reason}; still running '
                                        f'the network from {self._checkpoint}')
            return SetParametersResult(successful=False, reason=reason)
        if settings is not None:
            self._settings = settings
        if checkpoint is not None:
            path = str(checkpoint).strip()
            self.get_logger().info(f'loading {path} beside the running network (from '
                                   f'{self._checkpoint}), which answers frames meanwhile')
            threading.Thread(target=self._swap, args=(path,), name='eigen_depth_loader',
                             daemon=True).start()
        return SetParametersResult(successful=True)

    def _swap(self, path: str) -> None:
        """
        Load ``path``, then have the worker swap it in between two frames (loader thread).

        When either fails, the running network stays, one error names the file and the
        problem, and the ``checkpoint`` parameter is set back to the running file.
        """
        started = time.monotonic()
        try:
            current = self._estimator
            estimator = self._build_estimator(path, str(current.device),
                                              current.backend.name, None)
            self._on_worker(lambda: self._install(estimator, path))
        except Exception as exc:  # noqa: B902 - reported, never raised
            if self._stopping or not self.context.ok():
                return
            reason = (str(exc) if isinstance(exc, (ValueError, TypeError))
                      else f'{type(exc).__name__}: {exc}')
            self.get_logger().error(f'checkpoint not changed: {reason}; still running the '
                                    f'network from {self._checkpoint} (parameter reverted)')
            self._revert_checkpoint()
            return
        finally:
            with self._lock:
                self._loading = None
        config = estimator.config
        self._log_train_focal(estimator, path)
        self.get_logger().info(
            f"checkpoint swapped: network '{config.name}' {config.input_width}x"
            f'{config.input_height} -> {config.output_size[0]}x{config.output_size[1]}, '
            f'from {path} (backend {estimator.backend.name} on {estimator.device}), loaded '
            f'and swapped in between two frames in {time.monotonic() - started:.2f} s')

    def _revert_checkpoint(self) -> None:
        """
        Set ``checkpoint`` back to the running file, on the executor thread.

        A one-shot timer does it: the executor runs it after the parameter request that
        asked for the failed file has stored its value, which a load failing within
        milliseconds would otherwise overtake.
        """
        def revert() -> None:
            self.destroy_timer(timer)
            self.set_parameters([Parameter('checkpoint', value=self._checkpoint)])
        timer = self.create_timer(0.0, revert)

    def _install(self, estimator: DepthEstimator, path: str) -> None:
        """Warm ``estimator`` up and make it the running network (on the worker thread)."""
        self._warm_up(estimator, path)
        with self._lock:  # the worker takes the estimator once per frame, under the lock
            self._estimator = estimator
            self._checkpoint = path

    # ----------------------------------------------------------------- logging helpers

    def _log_throttled(self, kind: str, text: str) -> None:
        """Log an error at most once per :data:`ERROR_LOG_PERIOD_S` for each ``kind``."""
        now = time.monotonic()
        with self._log_lock:
            due = now - self._last_log.get(kind, -math.inf) >= ERROR_LOG_PERIOD_S
            if due:
                self._last_log[kind] = now
        if due:
            self.get_logger().error(text)

    def _say_once(self, key: str, text: str) -> None:
        """Log a warning the first time ``key`` is seen."""
        with self._log_lock:
            first = key not in self._said
            self._said.add(key)
        if first:
            self.get_logger().warning(text)

    def _write(self, notes: list[Note]) -> None:
        """Write the notes of a pure helper: once-only warnings and throttled errors."""
        for note in notes:
            if note.once:
                self._say_once(note.key, note.text)
            else:
                self._log_throttled(note.key, note.text)

    # ----------------------------------------------------------------- callbacks

    def _on_image(self, msg: Any) -> None:
        """Keep only the newest frame; the one it replaces is counted as dropped."""
        try:
            stamp = stamp_ns(msg)
            now_ns = self.get_clock().now().nanoseconds
            # Unknown (NaN) for an unset stamp or before a simulated clock has started.
            age_s = (now_ns - stamp) / 1e9 if stamp > 0 and now_ns > 0 else math.nan
            frame = _Frame(msg, time.monotonic(), age_s)
            with self._lock:
                if not self._taking_frames:
                    return  # inactive (managed node)
                self._totals.received += 1
                self._window.received += 1
                if self._slot is not None:
                    self._totals.dropped += 1
                    self._window.dropped += 1
                self._slot = frame
                self._wake.notify()
        except Exception as exc:  # noqa: B902 - a callback never raises
            self._log_throttled('image_callback', f'image callback failed: {exc!r}')

    def _on_camera_info(self, msg: CameraInfo) -> None:
        """Validate a camera_info and keep it, by stamp, for the image it belongs to."""
        try:
            try:
                intrinsics, reason = intrinsics_from_camera_info(msg), ''
            except CameraInfoError as exc:
                intrinsics, reason = None, str(exc)
                self._log_throttled('camera_info', f'camera_info rejected: {exc}; depth is '
                                    'still published (its scale assumes the fallback_fx '
                                    'focal length, else f_train), but no point cloud and '
                                    'no depth/camera_info until a valid one arrives')
            try:
                lens, lens_error = lens_from_camera_info(msg), ''
            except LensError as exc:
                lens, lens_error = None, str(exc)
            model = CameraModel(stamp_ns(msg), msg.header.frame_id, intrinsics, reason, lens,
                                lens_error)
            with self._lock:
                previous = self._infos.newest
                self._infos.add(model)
                self._wake.notify()
            if intrinsics is not None and (previous is None
                                           or previous.intrinsics != intrinsics):
                self.get_logger().info(f'intrinsics from camera_info: '
                                       f'{intrinsics.describe()}')
        except Exception as exc:  # noqa: B902 - a callback never raises
            self._log_throttled('camera_info_callback', f'camera_info callback failed: '
                                f'{exc!r}')

    # ----------------------------------------------------------------- the worker

    def _work(self) -> None:
        """Run jobs and process the newest frame whenever there is one, until the node stops."""
        while True:
            with self._lock:
                self._wake.wait_for(
                    lambda: self._slot is not None or self._jobs or self._stopping)
                if self._stopping:
                    return
                job = self._jobs.pop(0) if self._jobs else None
                if job is None:
                    frame, self._slot = self._slot, None
                    # One network per frame: a swap lands between frames, never inside one.
                    estimator = self._estimator
            if job is not None:
                try:
                    job.run()
                except Exception as exc:  # noqa: B902 - handed to the caller
                    job.error = exc
                job.done.set()
                continue
            try:
                self._process(frame, estimator)
            except Exception as exc:  # noqa: B902 - never let the worker die
                if self._stopping or not self.context.ok():
                    return
                self._log_throttled('processing', f'frame dropped, processing failed: '
                                    f'{type(exc).__name__}: {exc}')

    def _count(self, name: str) -> None:
        """Add one to the counter ``name`` of the totals and of the window."""
        with self._lock:
            setattr(self._totals, name, getattr(self._totals, name) + 1)
            setattr(self._window, name, getattr(self._window, name) + 1)

    def _camera_model(self, msg: Any, settings: Settings) -> CameraModel | None:
        """
        Return the camera_info paired with the image ``msg`` (see :mod:`.pairing`).

        Waits up to :data:`~.pairing.WAIT_S` while the camera_info may still come; then the
        newest one is used, counted as unpaired and warned about (throttled). None when no
        camera_info arrived yet. A frame_id other than the image's is warned about once.
        """
        stamp, header = stamp_ns(msg), msg.header
        tolerance = settings.info_sync_tolerance
        deadline = time.monotonic() + WAIT_S
        with self._lock:
            previous, self._previous_stamp = self._previous_stamp, stamp
            model = None if tolerance < 0 else self._infos.pair(stamp, tolerance)
            while (model is None and tolerance >= 0 and not self._stopping
                   and self._infos.may_still_come(stamp, previous)
                   and self._wake.wait(max(deadline - time.monotonic(), 0.0))):
                model = self._infos.pair(stamp, tolerance)
            newest = self._infos.newest
            unpaired = model is None and newest is not None and tolerance >= 0
            if unpaired:
                self._totals.unpaired += 1
                self._window.unpaired += 1
        if unpaired:
            self._log_throttled('camera_info_unpaired', 'no camera_info stamped within '
                                f'info_sync_tolerance {tolerance:g} s of the image '
                                f'({stamp / 1e9:.9f}): using the newest one, stamped '
                                f'{newest.stamp_ns / 1e9:.9f}')
        model = model or newest
        if model is not None and model.frame_id != header.frame_id:
            self._say_once('frame_id', f"camera_info frame_id '{model.frame_id}' is not the "
                           f"image's '{header.frame_id}': the outputs carry the image's")
        return model

    def _rectified(self, rgb: np.ndarray, model: CameraModel | None,
                   settings: Settings) -> np.ndarray:
        """Return ``rgb`` undistorted when ``rectify`` and its camera_info ask for it."""
        if model is None or settings.rectify == 'false':
            return rgb
        if model.lens_error:
            self._log_throttled('lens', f'camera_info distortion ignored, the image is taken '
                                f'as rectified (pinhole model): {model.lens_error}')
            return rgb
        lens = model.lens
        if lens is None or (settings.rectify == 'auto' and not lens.distorted):
            return rgb
        try:
            return self._rectifier.rectify(rgb, lens)
        except LensError as exc:
            self._log_throttled('lens_size', f'image not undistorted: {exc}')
            return rgb

    def _process(self, frame: _Frame, estimator: DepthEstimator) -> None:
        """Convert one frame, run ``estimator`` and publish every output that is wanted."""
        settings = self._settings
        if not any(pub.get_subscription_count() > 0 for pub in self._outputs):
            self._count('idle')
            return
        times = [time.monotonic()]  # picked up, converted, inferred, published
        msg = frame.msg
        try:
            rgb = message_to_rgb(msg, settings.max_input_pixels)
        except ImageConversionError as exc:
            self._count('bad')
            stamp = f'{msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}'
            self._log_throttled(f'image_{exc.kind}', f'image dropped (stamp {stamp}, frame '
                                f"'{msg.header.frame_id}'): {exc}")
            return
        model = self._camera_model(msg, settings)
        rgb = self._rectified(rgb, model, settings)
        times.append(time.monotonic())
        height, width = rgb.shape[:2]
        state = None if model is None else (model.intrinsics, model.reason)
        camera, notes = frame_intrinsics(state, width, height, settings)
        focal, source, more = focal_for_scale(camera, model is not None, width, height,
                                              settings)
        self._write(notes + more)
        prediction = estimator.predict(rgb, self._resolution, camera_focal=focal)
        self._focal, line, notes = self._focal_log.frame(source, prediction.f_in,
                                                         prediction.scale,
                                                         estimator.train_focal)
        if line is not None:
            self.get_logger().info(line)
        self._write(notes)
        times.append(time.monotonic())
        self._publish_outputs(rgb, prediction, camera, msg.header, settings)
        times.append(time.monotonic())

        stage_s = dict(zip(STAGES, [frame.age_s] + np.diff([frame.received] + times).tolist()))
        with self._lock:
            for counters in (self._totals, self._window):
                counters.processed += 1
            for name, seconds in stage_s.items():
                if math.isfinite(seconds):
                    self._window.stage_s[name].append(seconds)
            self._window.end_to_end_s.append(times[-1] - frame.received)

    def _publish_outputs(self, rgb: np.ndarray, prediction: DepthPrediction,
                         camera: Intrinsics | None, header: Any, settings: Settings) -> None:
        """Publish depth, its camera_info, and the cloud and colorized depth when wanted."""
        depth = prediction.depth                                   # (h, w) float32 metres
        pinhole = prediction.intrinsics(*camera.pinhole) if camera is not None else None
        if pinhole is not None:
            info = set_fields(CameraInfo(), depth_camera_info_fields(
                *pinhole, depth.shape[1], depth.shape[0]))
            info.header = header
            self._info_pub.publish(info)
        image = set_fields(Image(), depth_to_image_fields(depth))
        image.header = header
        self._depth_pub.publish(image)
        if self._legacy_pub.get_subscription_count() > 0:
            if not self._legacy_said:
                self._legacy_said = True
                self.get_logger().warning(
                    f'{self._legacy_pub.topic_name} is deprecated: subscribe '
                    f'{self._depth_pub.topic_name} (beside {self._info_pub.topic_name}, as '
                    'image_transport expects); published on both while this one has '
                    'subscribers')
            self._legacy_pub.publish(image)
        if (settings.publish_points and pinhole is not None
                and self._points_pub.get_subscription_count() > 0):
            self._points_pub.publish(self._cloud(rgb, prediction, pinhole, header, settings))
        if settings.publish_colorized and self._colorized_pub.get_subscription_count() > 0:
            colorized = set_fields(Image(), array_to_image_fields(
                colorize_depth(depth, max(settings.min_depth, 1e-3), settings.max_depth),
                'rgb8'))
            colorized.header = header
            self._colorized_pub.publish(colorized)

    @staticmethod
    def _cloud(rgb: Any, prediction: DepthPrediction,
               pinhole: tuple[float, float, float, float], header: Any,
               settings: Settings) -> PointCloud2:
        """Build the PointCloud2 of a prediction (colours sampled where each pixel looks)."""
        depth = prediction.depth
        colors = None
        if settings.points_rgb:
            if prediction.resolution == 'input':
                colors = rgb
            else:
                colors = resample_to_grid(rgb, prediction.geometry.output_to_image_affine(),
                                          depth.shape[1], depth.shape[0])
        points = depth_to_points(depth, *pinhole, stride=settings.points_stride,
                                 min_depth=settings.min_depth, max_depth=settings.max_depth,
                                 colors=colors, clearing_range=settings.clearing_range)
        return build_point_cloud2(points, header, PointCloud2, PointField)

    # ----------------------------------------------------------------- diagnostics

    def _publish_diagnostics(self) -> None:
        """Publish input/output rates, latencies and frame counts of the last period."""
        try:
            now = time.monotonic()
            with self._lock:
                window, self._window = self._window, Counters()
                totals = replace(self._totals)
                elapsed = now - self._window_start
                self._window_start = now
                newest = self._infos.newest
            estimator = self._estimator
            status = depth_status(
                window, totals, elapsed,
                camera_info_rejected=newest is not None and newest.intrinsics is None,
                device=str(estimator.device), backend=estimator.backend.name,
                focal=self._focal, f_train=estimator.train_focal,
                extra=gpu_memory_pairs(estimator.device))
            message = DiagnosticStatus(name=status_name(self.get_fully_qualified_name()),
                                       hardware_id=str(estimator.device),
                                       level=bytes([status.level]), message=status.message,
                                       values=[KeyValue(key=k, value=v)
                                               for k, v in status.values])
            array = DiagnosticArray(status=[message])
            array.header.stamp = self.get_clock().now().to_msg()
            self._diagnostics_pub.publish(array)
        except Exception as exc:  # noqa: B902 - a callback never raises
            self._log_throttled('diagnostics', f'diagnostics failed: {exc!r}')


class DepthNode(DepthCore, Node):
    """
    ROS 2 node running the Eigen et al. depth network on a camera stream (unmanaged).

    :param node_name: the node name (``eigen_depth`` unless remapped).
    :param kwargs: passed to :class:`rclpy.node.Node` (``context``,
        ``parameter_overrides``, ...).
    :raises StartupError: after logging one error, when a parameter is invalid or the
        checkpoint cannot be loaded (the node is destroyed first).
    """

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        try:
            self._declare()
            self._configure()
            self._activate()
        except (ValueError, OSError, RuntimeError, ParameterException) as exc:
            self.get_logger().error(f'cannot start: {start_error(exc)}')
            self.destroy_node()
            raise StartupError(str(exc)) from None

    def destroy_node(self) -> None:
        """Stop the worker thread (waiting for the frame in progress), then the node."""
        if hasattr(self, '_worker'):
            self._stop_worker()
        super().destroy_node()


def status_name(node: str) -> str:
    """
    Return the ``/diagnostics`` status name of the node of fully qualified name ``node``.

    ``eigen_depth: depth estimation`` in the root namespace, ``front/eigen_depth: depth
    estimation`` in ``/front``: the namespace keeps several cameras' nodes apart.
    """
    return f"{node.lstrip('/')}: depth estimation"


def start_error(exc: BaseException) -> str:
    """Return the one-line reason a node cannot start or configure (with a hint for types)."""
    hint = (' (write doubles with a decimal point, e.g. 20.0)'
            if isinstance(exc, InvalidParameterTypeException) else '')
    return f'{exc}{hint}'


def _one_line(exc: BaseException) -> str:
    """Return ``'Type: first line of the message'`` of an exception."""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), '')
    return f'{type(exc).__name__}: {first}'


def run_node(node_class: Callable[[], Node], args: list[str] | None,
             autostart: bool = False) -> int:
    """
    Make a node of ``node_class`` and spin it until it finishes, or Ctrl-C or SIGTERM.

    :param node_class: :class:`DepthNode`, or the managed node (whose ``finished`` event
        ends the spin, and whose ``trigger_configure``/``trigger_activate`` ``autostart``
        calls).
    :param args: command-line arguments for rclpy (default ``sys.argv``).
    :param autostart: configure and activate a managed node before spinning.
    :return: 0 on a clean stop, 1 when the node could not start (or autostart failed).
    """
    rclpy.init(args=args)
    node = None
    try:
        # The Fast DDS profile decides whether camera-size best-effort messages arrive: name
        # it, and refuse a wrong or unreadable one rather than run on the default transports.
        level, profile_note = check_profile_env()
        getattr(rclpy.logging.get_logger(NODE_NAME), level)(
            f'cannot start: {profile_note}' if level == 'error' else profile_note)
        if level == 'error':
            return 1
        malloc_note = keep_large_buffers()  # camera-sized messages without page faults
        node = node_class()
        node.get_logger().info(malloc_note)
        if autostart and not all(step() == TransitionCallbackReturn.SUCCESS for step in (
                node.trigger_configure, node.trigger_activate)):
            return 1
        # One executor thread: a second one contends for the GIL with the inference worker
        # and made latency erratic at 30 Hz (docs/speed.md). A checkpoint swap loads on a
        # thread of its own, so the camera callbacks go on meanwhile.
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        finished = getattr(node, 'finished', None)
        if finished is None:
            executor.spin()
        while finished is not None and not finished.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    except StartupError:
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:
        # SIGINT/SIGTERM shut the context down while an executor thread was building its
        # wait set (rclpy raises RCLError then): that is a requested stop, not a failure.
        if node is None or node.context.ok():
            raise
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


def main(args: list[str] | None = None) -> int:
    """
    Run the (unmanaged) node until Ctrl-C or SIGTERM.

    :param args: command-line arguments for rclpy (default ``sys.argv``).
    :return: 0 on a clean stop, 1 when the node could not start.
    """
    return run_node(DepthNode, args)


if __name__ == '__main__':
    sys.exit(main())

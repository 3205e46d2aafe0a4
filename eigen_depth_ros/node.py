"""
The ``depth_node`` executable: monocular depth and a point cloud from one camera stream.

Subscribes ``image`` (or ``<image>/compressed``) and ``camera_info``; publishes ``depth``
(32FC1 metres, NaN invalid), ``depth/camera_info``, ``points`` and optionally
``depth/colorized``, plus ``/diagnostics``. See docs/node.md for topics, parameters and QoS.

Real-time design: the image callback only stores the newest message in a one-slot buffer
(counting the frame it replaces as dropped) and wakes a worker thread, which converts, runs
the network and publishes. Latency therefore stays at about one inference even when the
camera is faster than the network, and the executor keeps serving camera_info, parameters
and diagnostics while the network runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
import math
import sys
import threading
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
import rclpy
from rclpy.exceptions import InvalidParameterTypeException, ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
import torch

from .camera_info import (CameraInfoError, depth_camera_info_fields, fallback_intrinsics,
                          Intrinsics, intrinsics_from_camera_info)
from .image_conversion import (array_to_image_fields, colorize_depth, DEFAULT_MAX_PIXELS,
                               depth_to_image_fields, ImageConversionError, message_to_rgb,
                               set_fields)
from .inference import DepthEstimator, DepthPrediction
from .point_cloud import build_point_cloud2, depth_to_points, resample_to_grid

NODE_NAME = 'eigen_depth'
ERROR_LOG_PERIOD_S = 5.0  # one log line per kind of fault per this many seconds
OUTPUT_QOS = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)


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
    """

    name: str
    default: Any
    description: str
    unit: str = ''
    read_only: bool = True
    min_value: float | None = None
    max_value: float | None = None

    def descriptor(self) -> ParameterDescriptor:
        """Build the ParameterDescriptor declared for this parameter."""
        text = self.description + (f' [{self.unit}]' if self.unit else '')
        desc = ParameterDescriptor(name=self.name, description=text,
                                   read_only=self.read_only)
        if isinstance(self.default, bool) or self.min_value is None:
            return desc
        high = self.max_value
        if isinstance(self.default, int):
            desc.integer_range = [IntegerRange(from_value=int(self.min_value),
                                               to_value=int(high if high is not None
                                                            else 2 ** 62), step=1)]
        else:
            desc.floating_point_range = [FloatingPointRange(
                from_value=float(self.min_value),
                to_value=float(high if high is not None else 1e300), step=0.0)]
        return desc


PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec('checkpoint', '', 'Network checkpoint file (.pt, written by eigen-depth '
                  'train); required'),
    ParameterSpec('device', 'auto', 'Where the network runs: auto (CUDA when present), cpu, '
                  'cuda or cuda:N'),
    ParameterSpec('half', False, 'Run the network in float16 (CUDA only; ignored on CPU)'),
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
    ParameterSpec('max_input_pixels', DEFAULT_MAX_PIXELS, 'Largest accepted camera image '
                  '(width x height); larger frames are dropped with an error', 'pixels',
                  read_only=False, min_value=1),
    ParameterSpec('diagnostics_period', 1.0, 'Period of the /diagnostics status', 's',
                  min_value=0.01),
)
"""Every parameter of the node, declared once from this table (docs/node.md lists them)."""

DYNAMIC = frozenset(spec.name for spec in PARAMETERS if not spec.read_only)


class StartupError(RuntimeError):
    """The node cannot start (bad parameter, missing or unreadable checkpoint)."""


@dataclass(frozen=True)
class Settings:
    """The parameters the worker reads for each frame (swapped whole on a change)."""

    publish_points: bool
    points_stride: int
    points_rgb: bool
    min_depth: float
    max_depth: float
    publish_colorized: bool
    fallback_fx: float
    fallback_fy: float
    fallback_cx: float
    fallback_cy: float
    max_input_pixels: int

    def check(self) -> None:
        """Raise ValueError when the values do not fit together."""
        if self.points_stride < 1:
            raise ValueError(f'points_stride must be >= 1, got {self.points_stride}')
        if not 0.0 <= self.min_depth < self.max_depth:
            raise ValueError(f'need 0 <= min_depth < max_depth, got min_depth='
                             f'{self.min_depth}, max_depth={self.max_depth}')
        if self.fallback_fx < 0 or self.fallback_fy < 0:
            raise ValueError('fallback_fx and fallback_fy must be >= 0')
        if self.max_input_pixels < 1:
            raise ValueError(f'max_input_pixels must be >= 1, got {self.max_input_pixels}')


@dataclass
class _Frame:
    """An input message and when it arrived (time.monotonic())."""

    msg: Any
    received: float


@dataclass
class _Counters:
    """Frame counts and timings; one instance for the totals, one per diagnostics window."""

    received: int = 0
    processed: int = 0
    dropped: int = 0
    bad: int = 0
    idle: int = 0
    inference_s: list[float] = field(default_factory=list)
    end_to_end_s: list[float] = field(default_factory=list)


class DepthNode(Node):
    """
    ROS 2 node running the Eigen et al. depth network on a camera stream.

    :param node_name: the node name (``eigen_depth`` unless remapped).
    :param kwargs: passed to :class:`rclpy.node.Node` (``context``,
        ``parameter_overrides``, ...).
    :raises StartupError: after logging one error, when a parameter is invalid or the
        checkpoint cannot be loaded (the node is destroyed first).
    """

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        try:
            for spec in PARAMETERS:
                self.declare_parameter(spec.name, spec.default, spec.descriptor())
            self._settings = self._read_settings({})
            self._resolution = self._param('depth_resolution')
            if self._resolution not in ('network', 'input'):
                raise ValueError(f"depth_resolution must be 'network' or 'input', got "
                                 f'{self._resolution!r}')
            self._estimator = self._load_estimator()
        except (ValueError, OSError, RuntimeError, ParameterException) as exc:
            hint = (' (write doubles with a decimal point, e.g. 20.0)'
                    if isinstance(exc, InvalidParameterTypeException) else '')
            self.get_logger().error(f'cannot start: {exc}{hint}')
            self.destroy_node()
            raise StartupError(str(exc)) from None

        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._slot: _Frame | None = None
        self._stopping = False
        self._totals = _Counters()
        self._window = _Counters()
        self._window_start = time.monotonic()
        self._last_log: dict[str, float] = {}
        self._said: set[str] = set()
        # None until a camera_info arrives; then (intrinsics or None, rejection reason).
        self._camera_info: tuple[Intrinsics | None, str] | None = None

        self._depth_pub = self.create_publisher(Image, 'depth', OUTPUT_QOS)
        self._info_pub = self.create_publisher(CameraInfo, 'depth/camera_info', OUTPUT_QOS)
        self._points_pub = self.create_publisher(PointCloud2, 'points', OUTPUT_QOS)
        self._colorized_pub = self.create_publisher(Image, 'depth/colorized', OUTPUT_QOS)
        self._outputs = (self._depth_pub, self._info_pub, self._points_pub,
                         self._colorized_pub)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)

        if self._param('compressed'):
            topic = self.resolve_topic_name('image') + '/compressed'
            self._image_sub = self.create_subscription(
                CompressedImage, topic, self._on_image, qos_profile_sensor_data)
        else:
            self._image_sub = self.create_subscription(
                Image, 'image', self._on_image, qos_profile_sensor_data)
        self._info_sub = self.create_subscription(
            CameraInfo, 'camera_info', self._on_camera_info, qos_profile_sensor_data)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._diagnostics_timer = self.create_timer(self._param('diagnostics_period'),
                                                    self._publish_diagnostics)
        self._worker = threading.Thread(target=self._work, name='eigen_depth_worker',
                                        daemon=True)
        self._worker.start()
        self.get_logger().info(
            f'ready: {self._image_sub.topic_name} -> {self._depth_pub.topic_name} '
            f'({self._resolution} resolution), {self._points_pub.topic_name}')

    # ----------------------------------------------------------------- set-up helpers

    def _param(self, name: str) -> Any:
        """Return the current value of a declared parameter."""
        return self.get_parameter(name).value

    def _read_settings(self, changes: dict[str, Any]) -> Settings:
        """Build and check :class:`Settings` from the parameters, with ``changes`` applied."""
        values = {name: changes.get(name, self._param(name))
                  for name in Settings.__dataclass_fields__}
        settings = Settings(**values)
        settings.check()
        return settings

    def _load_estimator(self) -> DepthEstimator:
        """Load the checkpoint onto the chosen device and log what was chosen."""
        path = str(self._param('checkpoint')).strip()
        if not path:
            raise ValueError("parameter 'checkpoint' is empty: set it to a .pt file written "
                             'by eigen-depth train (e.g. -p checkpoint:=/path/model.pt)')
        device = str(self._param('device'))
        if self._param('num_threads') > 0:
            torch.set_num_threads(self._param('num_threads'))
        estimator = DepthEstimator.from_checkpoint(path, device=device,
                                                   half=self._param('half'))
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
        if self._param('half') and not estimator.half:
            self.get_logger().warning('half is true but the device is not CUDA: float32')
        return estimator

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Accept changes of the dynamic parameters when the result is consistent."""
        changes = {p.name: p.value for p in params if p.name in DYNAMIC}
        if not changes:
            return SetParametersResult(successful=True)
        try:
            settings = self._read_settings(changes)
        except (ValueError, TypeError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self._settings = settings
        return SetParametersResult(successful=True)

    # ----------------------------------------------------------------- logging helpers

    def _log_throttled(self, kind: str, text: str) -> None:
        """Log an error at most once per :data:`ERROR_LOG_PERIOD_S` for each ``kind``."""
        now = time.monotonic()
        if now - self._last_log.get(kind, -math.inf) >= ERROR_LOG_PERIOD_S:
            self._last_log[kind] = now
            self.get_logger().error(text)

    def _say_once(self, key: str, text: str) -> None:
        """Log a warning the first time ``key`` is seen."""
        if key not in self._said:
            self._said.add(key)
            self.get_logger().warning(text)

    # ----------------------------------------------------------------- callbacks

    def _on_image(self, msg: Any) -> None:
        """Keep only the newest frame; the one it replaces is counted as dropped."""
        try:
            frame = _Frame(msg, time.monotonic())
            with self._lock:
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
        """Validate and store the newest camera_info."""
        try:
            try:
                intrinsics = intrinsics_from_camera_info(msg)
            except CameraInfoError as exc:
                self._camera_info = (None, str(exc))
                self._log_throttled('camera_info', f'camera_info rejected: {exc}; no point '
                                    'cloud and no depth/camera_info until a valid one '
                                    'arrives')
                return
            previous = self._camera_info
            self._camera_info = (intrinsics, '')
            if previous is None or previous[0] != intrinsics:
                self.get_logger().info(f'intrinsics from camera_info: '
                                       f'{intrinsics.describe()}')
        except Exception as exc:  # noqa: B902 - a callback never raises
            self._log_throttled('camera_info_callback', f'camera_info callback failed: '
                                f'{exc!r}')

    # ----------------------------------------------------------------- the worker

    def _work(self) -> None:
        """Process the newest frame whenever there is one, until the node stops."""
        while True:
            with self._lock:
                self._wake.wait_for(lambda: self._slot is not None or self._stopping)
                if self._stopping:
                    return
                frame, self._slot = self._slot, None
            try:
                self._process(frame)
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

    def _camera_intrinsics(self, width: int, height: int,
                           settings: Settings) -> Intrinsics | None:
        """Intrinsics of the camera image, or None (with a log saying why) when unknown."""
        state = self._camera_info
        if state is None:
            if settings.fallback_fx > 0:
                intrinsics = fallback_intrinsics(
                    width, height, settings.fallback_fx, settings.fallback_fy,
                    settings.fallback_cx, settings.fallback_cy)
                self._say_once('fallback', f'no camera_info received: using the fallback '
                               f'intrinsics {intrinsics.describe()}')
                return intrinsics
            self._say_once('no_camera_info', 'no camera_info received and fallback_fx is 0: '
                           'publishing depth only (no depth/camera_info, no points) until '
                           'camera_info arrives')
            return None
        intrinsics, _ = state
        if intrinsics is None:
            return None  # the rejection is logged by the camera_info callback
        if not intrinsics.matches(width, height):
            self._log_throttled('camera_info_size', f'camera_info is for {intrinsics.width}x'
                                f'{intrinsics.height} but the image is {width}x{height}: no '
                                'point cloud and no depth/camera_info until they match')
            return None
        return intrinsics

    def _process(self, frame: _Frame) -> None:
        """Convert one frame, run the network and publish every output that is wanted."""
        settings = self._settings
        if not any(pub.get_subscription_count() > 0 for pub in self._outputs):
            self._count('idle')
            return
        msg = frame.msg
        try:
            rgb = message_to_rgb(msg, settings.max_input_pixels)
        except ImageConversionError as exc:
            self._count('bad')
            stamp = f'{msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}'
            self._log_throttled(f'image_{exc.kind}', f'image dropped (stamp {stamp}, frame '
                                f"'{msg.header.frame_id}'): {exc}")
            return
        started = time.monotonic()
        prediction = self._estimator.predict(rgb, self._resolution)
        inference_s = time.monotonic() - started
        depth = prediction.depth                                   # (h, w) float32 metres
        height, width = rgb.shape[:2]
        camera = self._camera_intrinsics(width, height, settings)
        pinhole = prediction.intrinsics(*camera.pinhole) if camera is not None else None
        header = msg.header

        if pinhole is not None:
            info = set_fields(CameraInfo(), depth_camera_info_fields(
                *pinhole, depth.shape[1], depth.shape[0]))
            info.header = header
            self._info_pub.publish(info)
        image = set_fields(Image(), depth_to_image_fields(depth))
        image.header = header
        self._depth_pub.publish(image)
        if (settings.publish_points and pinhole is not None
                and self._points_pub.get_subscription_count() > 0):
            self._points_pub.publish(self._cloud(rgb, prediction, pinhole, header, settings))
        if settings.publish_colorized and self._colorized_pub.get_subscription_count() > 0:
            colorized = set_fields(Image(), array_to_image_fields(
                colorize_depth(depth, max(settings.min_depth, 1e-3), settings.max_depth),
                'rgb8'))
            colorized.header = header
            self._colorized_pub.publish(colorized)

        end_to_end_s = time.monotonic() - frame.received
        with self._lock:
            for counters in (self._totals, self._window):
                counters.processed += 1
            self._window.inference_s.append(inference_s)
            self._window.end_to_end_s.append(end_to_end_s)

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
                                 colors=colors)
        return build_point_cloud2(points, header, PointCloud2, PointField)

    # ----------------------------------------------------------------- diagnostics

    def _publish_diagnostics(self) -> None:
        """Publish input/output rates, latencies and frame counts of the last period."""
        try:
            now = time.monotonic()
            with self._lock:
                window, self._window = self._window, _Counters()
                totals = replace(self._totals)
                elapsed = max(now - self._window_start, 1e-9)
                self._window_start = now
            status = DiagnosticStatus(name=f'{self.get_name()}: depth estimation',
                                      hardware_id=str(self._estimator.device))
            problems = []
            if window.received == 0:
                problems.append('no images received')
            if window.bad:
                problems.append(f'{window.bad} bad input frame(s)')
            state = self._camera_info
            if state is not None and state[0] is None:
                problems.append('camera_info rejected')
            status.level = DiagnosticStatus.WARN if problems else DiagnosticStatus.OK
            if problems:
                status.message = '; '.join(problems)
            elif window.processed == 0 and window.idle:
                status.message = 'idle: no subscriber to any output'
            else:
                status.message = 'ok'

            def stat(values: list[float], reduce: Any) -> str:
                return f'{reduce(values) * 1e3:.1f}' if values else 'nan'

            def mean(values: list[float]) -> float:
                return sum(values) / len(values)

            pairs = [
                ('input rate (Hz)', f'{window.received / elapsed:.2f}'),
                ('output rate (Hz)', f'{window.processed / elapsed:.2f}'),
                ('inference latency mean (ms)', stat(window.inference_s, mean)),
                ('inference latency max (ms)', stat(window.inference_s, max)),
                ('end-to-end latency mean (ms)', stat(window.end_to_end_s, mean)),
                ('end-to-end latency max (ms)', stat(window.end_to_end_s, max)),
                ('dropped frames (period)', str(window.dropped)),
                ('dropped frames (total)', str(totals.dropped)),
                ('bad frames (total)', str(totals.bad)),
                ('frames received (total)', str(totals.received)),
                ('frames processed (total)', str(totals.processed)),
                ('frames skipped, no subscriber (total)', str(totals.idle)),
                ('device', str(self._estimator.device)),
            ]
            status.values = [KeyValue(key=k, value=v) for k, v in pairs]
            array = DiagnosticArray(status=[status])
            array.header.stamp = self.get_clock().now().to_msg()
            self._diagnostics_pub.publish(array)
        except Exception as exc:  # noqa: B902 - a callback never raises
            self._log_throttled('diagnostics', f'diagnostics failed: {exc!r}')

    # ----------------------------------------------------------------- shutdown

    def destroy_node(self) -> None:
        """Stop the worker thread (waiting for the frame in progress), then the node."""
        worker = getattr(self, '_worker', None)
        if worker is not None:
            with self._lock:
                self._stopping = True
                self._wake.notify_all()
            worker.join(timeout=10.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """
    Run the node until Ctrl-C or SIGTERM.

    :param args: command-line arguments for rclpy (default ``sys.argv``).
    :return: 0 on a clean stop, 1 when the node could not start.
    """
    rclpy.init(args=args)
    node = None
    try:
        node = DepthNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except StartupError:
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())

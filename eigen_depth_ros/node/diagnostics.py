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
The ``/diagnostics`` status of ``depth_node`` as plain Python.

The node counts frames and times their stages in :class:`Counters` (one for the totals, one
per diagnostics period) and keeps the canonical-focal rule of the last frame in a
:class:`FocalState`; :func:`depth_status` turns them into the level, message and key/value
pairs that the node copies into a ``diagnostic_msgs/DiagnosticStatus``. Pure Python:
importable without rclpy.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
import enum
import math

STAGES = {
    'age': 'image age at receipt',
    'wait': 'queue wait',
    'conversion': 'image conversion',
    'inference': 'inference',
    'publishing': 'publishing',
}
"""
Stages of a frame, timed for ``/diagnostics`` (key: diagnostics label).

``age`` is the ROS time at receipt minus the image stamp: the camera driver's and the
transport's share of the latency when the stamp is the capture time.
"""


class Level(enum.IntEnum):
    """Status levels, with the byte values of ``diagnostic_msgs/DiagnosticStatus``."""

    OK = 0
    WARN = 1


@dataclass
class Counters:
    """Frame counts and timings; one instance for the totals, one per diagnostics period."""

    received: int = 0
    processed: int = 0
    dropped: int = 0
    bad: int = 0
    idle: int = 0
    unpaired: int = 0  # frames served with the newest camera_info, none of their stamp
    # Seconds per processed frame of each stage (see STAGES), and receipt -> last publish.
    stage_s: dict[str, list[float]] = field(
        default_factory=lambda: {name: [] for name in STAGES})
    end_to_end_s: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class FocalState:
    """
    The canonical-focal rule as the last frame used it.

    :param source: where f_in came from (``camera_info``, ``fallback_fx``, ``off (...)``,
        or why it is assumed).
    :param f_in: the camera's focal length at the network input [px], None when assumed.
    :param scale: the depth scale f_in / f_train the frame got.
    """

    source: str = 'no frame yet'
    f_in: float | None = None
    scale: float = 1.0

    def pairs(self, f_train: float) -> list[tuple[str, str]]:
        """Return the ``/diagnostics`` key-value pairs, with the running network's f_train."""
        return [
            ('focal scaling', 'off' if self.source.startswith('off') else 'on'),
            ('f_train (px)', f'{f_train:.2f}'),
            ('f_in (px)', 'nan' if self.f_in is None else f'{self.f_in:.2f}'),
            ('f_in source', self.source),
            ('depth scale f_in/f_train', f'{self.scale:.4f}'),
        ]


@dataclass(frozen=True)
class Status:
    """
    One diagnostics status, before it becomes a message.

    :param level: OK or WARN.
    :param message: ``ok``, ``idle: ...``, or the problems joined by ``'; '``.
    :param values: the key/value pairs, in the order they are published.
    """

    level: Level
    message: str
    values: list[tuple[str, str]]


def _ms(values: Sequence[float], reduce: Callable[[Sequence[float]], float]) -> str:
    """Format ``reduce(values)`` seconds as milliseconds, ``'nan'`` without values."""
    return f'{reduce(values) * 1e3:.1f}' if values else 'nan'


def _mean(values: Sequence[float]) -> float:
    """Return the arithmetic mean of a non-empty sequence."""
    return math.fsum(values) / len(values)


def depth_status(window: Counters, totals: Counters, elapsed_s: float, *,
                 camera_info_rejected: bool, device: str, backend: str, focal: FocalState,
                 f_train: float, extra: Iterable[tuple[str, str]] = ()) -> Status:
    """
    Return the status of one diagnostics period.

    The level is WARN when no image arrived in the period, when bad frames arrived, or while
    the last camera_info is rejected, and the message names each of these; else OK with
    ``idle: no subscriber to any output`` when frames were skipped and none processed, or
    ``ok``.

    :param window: the counters of the period.
    :param totals: the counters since start-up.
    :param elapsed_s: length of the period [s] (the rates divide by it).
    :param camera_info_rejected: whether the last camera_info was rejected.
    :param device: the device the network runs on (e.g. ``cpu``).
    :param backend: the resolved backend name.
    :param focal: the canonical-focal rule of the last frame.
    :param f_train: the running network's f_train [px].
    :param extra: further pairs appended at the end (e.g. GPU memory).
    """
    problems = []
    if window.received == 0:
        problems.append('no images received')
    if window.bad:
        problems.append(f'{window.bad} bad input frame(s)')
    if camera_info_rejected:
        problems.append('camera_info rejected')
    if problems:
        message = '; '.join(problems)
    elif window.processed == 0 and window.idle:
        message = 'idle: no subscriber to any output'
    else:
        message = 'ok'
    elapsed_s = max(elapsed_s, 1e-9)
    values = [
        ('input rate (Hz)', f'{window.received / elapsed_s:.2f}'),
        ('output rate (Hz)', f'{window.processed / elapsed_s:.2f}'),
        ('inference latency mean (ms)', _ms(window.stage_s['inference'], _mean)),
        ('inference latency max (ms)', _ms(window.stage_s['inference'], max)),
        ('end-to-end latency mean (ms)', _ms(window.end_to_end_s, _mean)),
        ('end-to-end latency max (ms)', _ms(window.end_to_end_s, max)),
        *((f'{label} mean (ms)', _ms(window.stage_s[name], _mean))
          for name, label in STAGES.items() if name != 'inference'),
        ('dropped frames (period)', str(window.dropped)),
        ('dropped frames (total)', str(totals.dropped)),
        ('bad frames (total)', str(totals.bad)),
        ('frames received (total)', str(totals.received)),
        ('frames processed (total)', str(totals.processed)),
        ('frames skipped, no subscriber (total)', str(totals.idle)),
        ('camera_info unpaired (total)', str(totals.unpaired)),
        ('device', device),
        ('backend', backend),
        *focal.pairs(f_train),
        *extra,
    ]
    return Status(Level.WARN if problems else Level.OK, message, values)

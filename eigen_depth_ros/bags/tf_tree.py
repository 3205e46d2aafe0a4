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
A TF tree as tf2 keeps it, from ``/tf_static`` and ``/tf`` messages: pure numpy, no rclpy.

Each ``TransformStamped`` says where its ``child_frame_id`` sits in its ``header.frame_id``
(the parent): the 4x4 matrix ``T_parent<-child`` maps a point from child coordinates to
parent coordinates, ``p_parent = R p_child + t``. Every frame has at most one parent, so the
frames form a forest. The transform taking points of ``source`` into ``target`` goes through
their lowest common ancestor ``a``:

    T_target<-source = inv(T_a<-target) @ T_a<-source,
    T_a<-f = T_a<-p1 @ T_p1<-p2 @ ... @ T_pk<-f   (the chain from f up to a).

So two frames in different branches below a common parent (``base_link -> camera_link ->
camera_optical`` and ``base_link -> velodyne``) compose, and the motion of ``odom ->
base_link`` above their common ancestor never enters. Static links have one value; a
dynamic link (``/tf``) is interpolated at the asked stamp between its two nearest samples,
translation linearly and rotation by spherical linear interpolation (slerp):

    q(s) = sin((1 - s) w) / sin(w) q0 + sin(s w) / sin(w) q1,   cos(w) = |q0 . q1|,

with ``s = (t - t0) / (t1 - t0)``. Like tf2, it does not extrapolate, except by at most the
lookup's tolerance, where the nearest sample is used.
"""
from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
import math

from eigen_depth_ros.core.projection import quaternion_to_rotation
import numpy as np


class TfError(ValueError):
    """The tree cannot give a transform: unknown frame, no path, cycle or two parents."""


class TfExtrapolationError(TfError):
    """A moving link has no sample near the asked stamp (tf2's extrapolation error)."""


def frame_name(name: str) -> str:
    """Return a frame id as tf2 compares it: without a leading ``/``."""
    return name.lstrip('/')


def transform_matrix(translation, quaternion) -> np.ndarray:
    """4x4 ``T_parent<-child`` of a translation (x, y, z) and unit quaternion (x, y, z, w)."""
    matrix = np.eye(4)
    matrix[:3, :3] = quaternion_to_rotation(*(float(v) for v in quaternion))
    matrix[:3, 3] = [float(v) for v in translation]
    return matrix


def slerp(q0: np.ndarray, q1: np.ndarray, s: float) -> np.ndarray:
    """Spherical linear interpolation between unit quaternions (x, y, z, w), s in [0, 1]."""
    q0, q1 = np.asarray(q0, float), np.asarray(q1, float)
    dot = float(np.dot(q0, q1))
    if dot < 0:  # q and -q are the same rotation: take the short way
        q1, dot = -q1, -dot
    if dot > 0.9995:  # nearly equal: linear interpolation, renormalised
        q = q0 + s * (q1 - q0)
        return q / np.linalg.norm(q)
    omega = math.acos(min(dot, 1.0))
    return (math.sin((1 - s) * omega) * q0 + math.sin(s * omega) * q1) / math.sin(omega)


@dataclass
class _Link:
    """The samples of one ``parent -> child`` link, sorted by stamp (one for static)."""

    parent: str
    static: bool
    stamps: list[int] = field(default_factory=list)
    values: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    def add(self, stamp: int, translation: np.ndarray, quaternion: np.ndarray) -> None:
        if self.static:  # a republished static transform replaces the old one
            self.stamps, self.values = [stamp], [(translation, quaternion)]
            return
        i = bisect_left(self.stamps, stamp)
        if i < len(self.stamps) and self.stamps[i] == stamp:
            self.values[i] = (translation, quaternion)
        else:
            self.stamps.insert(i, stamp)
            self.values.insert(i, (translation, quaternion))

    def at(self, stamp: int | None, tolerance_ns: int, child: str) -> np.ndarray:
        """``T_parent<-child`` at ``stamp`` (any stamp for a static link)."""
        if self.static or len(self.stamps) == 1 and stamp is None:
            return transform_matrix(*self.values[-1])
        if stamp is None:
            raise TfExtrapolationError(f'{self.parent!r} -> {child!r} moves (/tf); a stamp is '
                                       'needed to look it up')
        first, last = self.stamps[0], self.stamps[-1]
        if stamp <= first or stamp >= last:
            nearest = 0 if stamp <= first else -1
            if abs(stamp - self.stamps[nearest]) > tolerance_ns:
                raise TfExtrapolationError(
                    f'/tf has {self.parent!r} -> {child!r} from {first / 1e9:.3f} to '
                    f'{last / 1e9:.3f} s, not at {stamp / 1e9:.3f} s')
            return transform_matrix(*self.values[nearest])
        i = bisect_left(self.stamps, stamp)
        if self.stamps[i] == stamp:
            return transform_matrix(*self.values[i])
        (t0, q0), (t1, q1) = self.values[i - 1], self.values[i]
        s = (stamp - self.stamps[i - 1]) / (self.stamps[i] - self.stamps[i - 1])
        return transform_matrix(t0 + s * (t1 - t0), slerp(q0, q1, s))


class TfTree:
    """
    Frames and their links, checked as they are added (no cycle, one parent per frame).

    :meth:`lookup` composes the chain between any two connected frames.
    """

    def __init__(self) -> None:
        self._links: dict[str, _Link] = {}      # child -> its link to its parent
        self._frames: set[str] = set()

    @property
    def frames(self) -> list[str]:
        """Every frame named by a transform, sorted."""
        return sorted(self._frames)

    def __bool__(self) -> bool:
        return bool(self._links)

    def add(self, parent: str, child: str, stamp: int, translation, quaternion,
            static: bool) -> None:
        """
        Add one transform ``T_parent<-child`` (translation, quaternion x y z w) at ``stamp``.

        :raises TfError: when ``child`` already has another parent, when the link would
            close a cycle, or for a bad quaternion.
        """
        parent, child = frame_name(parent), frame_name(child)
        if parent == child:
            raise TfError(f'transform from {parent!r} to itself')
        translation = np.array([float(v) for v in translation])
        quaternion = np.array([float(v) for v in quaternion])
        if not np.isfinite(translation).all():
            raise TfError(f'{parent!r} -> {child!r}: translation {translation.tolist()} is not '
                          'finite')
        quaternion_to_rotation(*quaternion)  # raises ValueError for a zero or NaN quaternion
        link = self._links.get(child)
        if link is not None and link.parent != parent:
            raise TfError(f'frame {child!r} has two parents, {link.parent!r} and {parent!r}')
        if link is not None and link.static != static:
            raise TfError(f'{parent!r} -> {child!r} is on both /tf_static and /tf')
        if link is None:
            chain = self._chain(parent)
            if child in chain:
                cycle = chain[:chain.index(child) + 1]
                raise TfError('TF cycle: ' + ' -> '.join(reversed([child, *cycle])))
            link = self._links[child] = _Link(parent, static)
        link.add(int(stamp), translation, quaternion / np.linalg.norm(quaternion))
        self._frames.update((parent, child))

    def add_stamped(self, tf, static: bool) -> None:
        """Add one (duck-typed) ``geometry_msgs/TransformStamped``."""
        t, q = tf.transform.translation, tf.transform.rotation
        stamp = int(tf.header.stamp.sec) * 10 ** 9 + int(tf.header.stamp.nanosec)
        try:
            self.add(tf.header.frame_id, tf.child_frame_id, stamp, (t.x, t.y, t.z),
                     (q.x, q.y, q.z, q.w), static)
        except TfError:
            raise
        except ValueError as exc:  # a zero or NaN quaternion
            raise TfError(f'{tf.header.frame_id!r} -> {tf.child_frame_id!r}: {exc}') from None

    def add_message(self, message, static: bool) -> None:
        """Add every ``TransformStamped`` of a (duck-typed) ``tf2_msgs/TFMessage``."""
        for tf in message.transforms:
            self.add_stamped(tf, static)

    def _chain(self, frame: str) -> list[str]:
        """``[frame, parent, grandparent, ..., root]``."""
        chain = [frame]
        while chain[-1] in self._links:
            chain.append(self._links[chain[-1]].parent)
        return chain

    def _check_known(self, *frames: str) -> None:
        for frame in frames:
            if frame not in self._frames:
                raise TfError(f'frame {frame!r} is not in the TF tree; it has: '
                              + (', '.join(self.frames) or 'no frame'))

    def path(self, target: str, source: str) -> tuple[list[str], list[str]]:
        """
        Return the chains from ``source`` and ``target`` up to their lowest common ancestor.

        :return: ``(source chain, target chain)``, each ending at the common ancestor.
        :raises TfError: for an unknown frame or frames in separate trees.
        """
        target, source = frame_name(target), frame_name(source)
        if target == source:
            return [source], [target]
        self._check_known(target, source)
        up_source, up_target = self._chain(source), self._chain(target)
        common = next((f for f in up_source if f in up_target), None)
        if common is None:
            raise TfError(f'no TF path between {target!r} (tree of {up_target[-1]!r}) and '
                          f'{source!r} (tree of {up_source[-1]!r}); frames: '
                          + ', '.join(self.frames))
        return (up_source[:up_source.index(common) + 1],
                up_target[:up_target.index(common) + 1])

    def is_static(self, target: str, source: str) -> bool:
        """Whether every link between the two frames comes from ``/tf_static``."""
        chains = self.path(target, source)
        return all(self._links[f].static for chain in chains for f in chain[:-1])

    def _to_ancestor(self, chain: list[str], stamp: int | None, tolerance_ns: int
                     ) -> np.ndarray:
        matrix = np.eye(4)
        for frame in chain[:-1]:  # child to parent, up the chain
            matrix = self._links[frame].at(stamp, tolerance_ns, frame) @ matrix
        return matrix

    def lookup(self, target: str, source: str, stamp: int | None = None,
               tolerance_ns: int = 0) -> np.ndarray:
        """
        4x4 ``T_target<-source``: maps points in ``source`` coordinates into ``target``.

        :param stamp: ns, for the links that move (``/tf``); None when all are static.
        :param tolerance_ns: how far beyond its first or last sample a moving link is used.
        :raises TfError: unknown frame or no path; :class:`TfExtrapolationError` when a
            moving link has no sample at ``stamp``.
        """
        up_source, up_target = self.path(target, source)
        ancestor_from_source = self._to_ancestor(up_source, stamp, tolerance_ns)
        ancestor_from_target = self._to_ancestor(up_target, stamp, tolerance_ns)
        return np.linalg.solve(ancestor_from_target, ancestor_from_source)

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
The procedural streets of the synthetic world: a drive's motion, street, objects and light.

A camera rig drives along a straight street: asphalt road with lane markings, kerbs and
paved pavements, building facades (blocks, plaster or siding, with windows) set back at
varied distances, front-garden fences, hedges and trees, street lamps, sign posts,
bollards, parked cars, vans, moving traffic, pedestrians, cyclists, a distant skyline and a
sky with clouds. Every object is an axis-aligned box over the ground plane (``_World``),
which :mod:`.render` intersects with all rays at once and textures.

Every drive draws its own world from its seed, so that no per-pixel mean depth map
predicts it well: the street has one to four lanes, cycle strips and parking lanes (about
5 to 18 m from kerb to kerb) with the rig 0..0.3 m off its lane's centre; each side is
town (facades close to the pavement), suburb (set back up to 15 m behind gardens) or open
(fields behind fences or hedges); about half of the drives have cross streets every
40..120 m (gaps in the building rows, asphalt running sideways, some zebra crossings).
Parked cars fill 20..90 % of a parking lane; on three drives in four cars (and sometimes a
van or lorry) drive ahead in the rig's lane at about its speed, 4..30 m ahead; other lanes
carry oncoming or overtaking traffic at their own speed, cycle strips carry cyclists.
Pedestrians stand or walk on the pavements and some stand in the road (on zebra crossings,
in cross streets), never in the rig's path; moving objects never meet anything. Vehicle
sizes and colours (palette or any RGB), facade colours, the asphalt, grass and paving
tints, the sun's direction and strength, ambient light, haze, sky colour, cloud cover and
the exposure (0.7..1.3) vary too. The street stays straight (no curves).

The world frame is the rectified camera-0 frame of the first frame (x right, y down,
z forward along the road, the road plane at ``y = CAMERA_HEIGHT``); the rig translates
along z.
"""
from __future__ import annotations

from dataclasses import dataclass
import zlib

import numpy as np

#: Height (m) of rectified camera 0 above the road.
CAMERA_HEIGHT = 1.65
#: Nominal time (s) between frames (KITTI records at about 10 Hz).
FRAME_PERIOD = 0.1036

# Materials of the world's surfaces.
_GROUND, _PAVEMENT, _BUILDING, _CAR, _GLASS, _TYRE, _POLE, _TRUNK, _FOLIAGE, _FENCE, \
    _BACKDROP, _CLOTH, _SKIN = range(13)
# What each box belongs to (``_World.kind``).
_SCENERY, _VEHICLE, _PEDESTRIAN, _CYCLIST, _FURNITURE = range(5)
_CAR_COLOURS = np.array([[0.85, 0.85, 0.83], [0.55, 0.56, 0.58], [0.08, 0.08, 0.09],
                         [0.55, 0.08, 0.07], [0.10, 0.18, 0.45], [0.25, 0.27, 0.28],
                         [0.72, 0.66, 0.50]], dtype=np.float32)
_FACADE_COLOURS = np.array([[0.62, 0.36, 0.26], [0.80, 0.74, 0.62], [0.70, 0.70, 0.68],
                            [0.85, 0.80, 0.55], [0.55, 0.50, 0.45], [0.90, 0.88, 0.84],
                            [0.60, 0.66, 0.70]], dtype=np.float32)
_SIGN_COLOURS = np.array([[0.75, 0.08, 0.08], [0.08, 0.25, 0.65], [0.90, 0.75, 0.10],
                          [0.92, 0.92, 0.90]], dtype=np.float32)
_SKIN_COLOURS = np.array([[0.88, 0.70, 0.58], [0.75, 0.55, 0.42], [0.55, 0.38, 0.27],
                          [0.35, 0.24, 0.17]], dtype=np.float32)
# Footprint (x range) kept clear along the rig's path: the car carrying it is about 1.8 m wide
# and centred under the Velodyne, which is at about x = 0.
_RIG_CORRIDOR = (-1.1, 1.1)


# ----------------------------------------------------------------------------- the world

@dataclass(frozen=True)
class _Light:
    """
    A drive's lighting and sky.

    :ivar sun: unit vector towards the sun (world axes, float32).
    :ivar sun_strength: Lambert weight of the sun.
    :ivar ambient: light that every face receives.
    :ivar exposure: overall gain of the image, sky included.
    :ivar haze: colour that distant surfaces fade to.
    :ivar haze_distance: distance (m) over which a surface keeps ``1/e`` of its own colour.
    :ivar horizon: sky colour at the horizon.
    :ivar zenith: sky colour overhead.
    :ivar cloud_cover: 0 (a few clouds) .. 1 (overcast).
    """

    sun: np.ndarray
    sun_strength: float
    ambient: float
    exposure: float
    haze: np.ndarray
    haze_distance: float
    horizon: np.ndarray
    zenith: np.ndarray
    cloud_cover: float


def _lighting(rng: np.random.Generator) -> _Light:
    """
    Draw a drive's lighting.

    The sun is 12..65 deg high in any direction; an overcast drive has a weak sun, more
    ambient light, a grey sky and thicker haze; some drives have a warm, low-sun sky.
    """
    overcast = rng.uniform(0.0, 1.0) ** 2
    elevation, azimuth = np.radians(rng.uniform(12.0, 65.0)), rng.uniform(-np.pi, np.pi)
    sun = np.array([np.cos(elevation) * np.sin(azimuth), -np.sin(elevation),
                    np.cos(elevation) * np.cos(azimuth)], dtype=np.float32)
    warm = rng.uniform(0.0, 1.0) ** 3 * np.array([0.15, 0.02, -0.15])
    horizon = ((1 - overcast) * np.array([0.80, 0.86, 0.93]) + overcast * np.array(
        [0.78, 0.79, 0.80]) + warm + rng.uniform(-0.04, 0.04, 3)).clip(0.0, 1.0)
    zenith = ((1 - overcast) * np.array([0.36, 0.56, 0.86]) + overcast * np.array(
        [0.60, 0.62, 0.66]) + 0.5 * warm + rng.uniform(-0.05, 0.05, 3)).clip(0.0, 1.0)
    return _Light(sun=sun, sun_strength=rng.uniform(0.45, 0.85) * (1.0 - 0.6 * overcast),
                  ambient=rng.uniform(0.38, 0.6) + 0.15 * overcast,
                  exposure=rng.uniform(0.7, 1.3), haze=(0.95 * horizon).astype(np.float32),
                  haze_distance=rng.uniform(150.0, 900.0) * (1.0 - 0.5 * overcast),
                  horizon=horizon.astype(np.float32), zenith=zenith.astype(np.float32),
                  cloud_cover=float(np.clip(overcast + rng.uniform(-0.2, 0.4), 0.0, 1.0)))


@dataclass(frozen=True)
class _Street:
    """
    A drive's street: its cross-section (x in metres, the rig at x = 0) and its junctions.

    Per-side values are keyed by side, -1 (left) and 1 (right).

    :ivar road: x of the left and the right kerb; asphalt lies between them.
    :ivar lanes: ``(x_lo, x_hi, direction)`` of each traffic lane, left to right; direction 1
        drives along +z as the rig does, -1 towards the rig.
    :ivar rig_lane: index of the rig's lane in ``lanes``.
    :ivar strips: per side, ``(x_lo, x_hi, direction)`` of a cycle strip, or None.
    :ivar parking: per side, ``(x_lo, x_hi)`` of a parking lane, or None.
    :ivar pavement: per side, the pavement width (0: none, grass meets the road).
    :ivar kerb: per side, the kerb (pavement) height.
    :ivar setting: per side, ``town`` (facades close to the pavement), ``suburb`` (set back
        behind gardens) or ``open`` (fields, fences, hedges and trees only).
    :ivar avenue: per side, whether trees line the kerb.
    :ivar dashed: x of the dashed lane lines.
    :ivar solid: x of the solid lines.
    :ivar dash_phase: offset (m) of the dash pattern along z.
    :ivar junctions: ``(z_lo, z_hi, opens, corner)`` of each cross street: its asphalt spans
        ``z_lo..z_hi``; it opens to both sides (``opens`` 0) or to one (-1, 1, a T junction);
        ``corner`` is the width of its pavements.
    :ivar crossings: ``(z_lo, z_hi)`` of zebra crossings over the road.
    :ivar asphalt: albedo of the asphalt.
    :ivar grass: albedo of grass.
    :ivar paving: albedo of the pavement tiles.
    """

    road: tuple[float, float]
    lanes: tuple[tuple[float, float, int], ...]
    rig_lane: int
    strips: dict[int, tuple[float, float, int] | None]
    parking: dict[int, tuple[float, float] | None]
    pavement: dict[int, float]
    kerb: dict[int, float]
    setting: dict[int, str]
    avenue: dict[int, bool]
    dashed: tuple[float, ...]
    solid: tuple[float, ...]
    dash_phase: float
    junctions: tuple[tuple[float, float, int, float], ...]
    crossings: tuple[tuple[float, float], ...]
    asphalt: np.ndarray
    grass: np.ndarray
    paving: np.ndarray

    def edge(self, side: int) -> float:
        """Return the x of the kerb on ``side``."""
        return self.road[(side + 1) // 2]

    def gaps(self, side: int, margin: float = 0.0) -> list[tuple[float, float]]:
        """Return the z ranges of the cross streets opening on ``side``, widened by ``margin``."""
        return [(z_lo - margin, z_hi + margin) for z_lo, z_hi, opens, _ in self.junctions
                if opens in (0, side)]


def _segments(z_min: float, z_max: float,
              gaps: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Return the parts of ``z_min..z_max`` outside the (possibly overlapping) ``gaps``."""
    out, z = [], z_min
    for lo, hi in sorted(gaps):
        if lo > z:
            out.append((z, min(lo, z_max)))
        z = max(z, hi)
    if z < z_max:
        out.append((z, z_max))
    return [(a, b) for a, b in out if b > a]


def _cross_section(rng: np.random.Generator) -> dict:
    """
    Draw the lanes, cycle strips and parking lanes of a street.

    One to four lanes 3.0..3.6 m wide (one-way with one lane, else the left ones oncoming),
    the rig in one of its direction's lanes and 0.3 m either side of that lane's centre;
    outwards on each side possibly a cycle strip and a parking lane. A one-lane street
    always has parking on the right, so the narrowest street is about 5 m wide.
    """
    count = int(rng.choice(4, p=[0.15, 0.5, 0.15, 0.2])) + 1
    oncoming = (0, 1, int(rng.integers(1, 3)), 2)[count - 1]
    width = rng.uniform(3.0, 3.6)
    rig_lane = int(rng.integers(oncoming, count))
    left = rng.uniform(-0.3, 0.3) - width / 2 - rig_lane * width
    lanes = tuple((left + i * width, left + (i + 1) * width, -1 if i < oncoming else 1)
                  for i in range(count))
    dashed = [left + i * width for i in range(1, count)]
    solid = [left, left + count * width]
    if 0 < oncoming < count and rng.random() < 0.4:
        dashed.remove(lanes[oncoming][0])
        solid.append(lanes[oncoming][0])
    edges = {-1: left, 1: left + count * width}
    strips: dict[int, tuple[float, float, int] | None] = {}
    parking: dict[int, tuple[float, float] | None] = {}
    for side in (1, -1):
        strips[side] = parking[side] = None
        if count < 4 and rng.random() < 0.45:
            inner, edges[side] = edges[side], edges[side] + side * rng.uniform(1.2, 1.6)
            direction = 1 if side == 1 or oncoming == 0 else -1
            strips[side] = (min(inner, edges[side]), max(inner, edges[side]), direction)
        if (count == 1 and side == 1) or rng.random() < (0.65 if count < 3 else 0.3):
            inner, edges[side] = edges[side], edges[side] + side * rng.uniform(2.0, 2.4)
            parking[side] = (min(inner, edges[side]), max(inner, edges[side]))
    return {'road': (edges[-1], edges[1]), 'lanes': lanes, 'rig_lane': rig_lane,
            'strips': strips, 'parking': parking, 'dashed': tuple(dashed),
            'solid': tuple(solid)}


def _street(rng: np.random.Generator, z_min: float, z_max: float) -> _Street:
    """
    Draw a drive's street between ``z_min`` and ``z_max``.

    Besides the cross-section (:func:`_cross_section`): per side a setting (town, suburb or
    open), a pavement width and kerb height, street trees; on about half of the drives cross
    streets every 40..120 m, some with a zebra crossing; the asphalt, grass and paving tints.
    """
    section = _cross_section(rng)
    setting, pavement, kerb, avenue = {}, {}, {}, {}
    for side in (-1, 1):
        setting[side] = str(rng.choice(['town', 'suburb', 'open'], p=[0.45, 0.4, 0.15]))
        if setting[side] == 'town':
            pavement[side] = rng.uniform(2.5, 4.5)
        elif setting[side] == 'suburb':
            pavement[side] = rng.uniform(1.5, 3.0)
        else:
            pavement[side] = rng.uniform(1.0, 2.0) if rng.random() < 0.5 else 0.0
        kerb[side] = rng.uniform(0.10, 0.16)
        avenue[side] = bool(pavement[side] >= 2.0 and rng.random() < 0.3)
    junctions, crossings = [], []
    if rng.random() < 0.55:
        z = z_min + rng.uniform(20.0, 100.0)
        while z < z_max - 25.0:
            width = rng.uniform(6.0, 12.0)
            junctions.append((z, z + width, int(rng.choice([-1, 0, 0, 1])),
                              rng.uniform(1.5, 3.0)))
            if rng.random() < 0.5:
                crossings.append((z - 4.0, z - 1.0))
            z += width + rng.uniform(40.0, 120.0)
    dry = rng.uniform(0.0, 0.7)
    grass = ((1 - dry) * np.array([0.22, 0.36, 0.13]) + dry * np.array([0.42, 0.38, 0.20])) \
        * rng.uniform(0.8, 1.2)
    return _Street(**section, pavement=pavement, kerb=kerb, setting=setting, avenue=avenue,
                   dash_phase=rng.uniform(0.0, 9.0), junctions=tuple(junctions),
                   crossings=tuple(crossings),
                   asphalt=(rng.uniform(0.20, 0.36) * (1 + rng.uniform(-0.05, 0.05, 3)))
                   .astype(np.float32),
                   grass=grass.astype(np.float32),
                   paving=(rng.uniform(0.45, 0.70) * (1 + rng.uniform(-0.06, 0.06, 3)))
                   .astype(np.float32))


@dataclass(frozen=True)
class _World:
    """
    Boxes over the ground plane.

    Box ``b`` spans ``lo[b]``..``hi[b]`` at time 0 and moves along z at ``velocity[b]`` m/s;
    ``kind[b]`` says what it belongs to (``_SCENERY``, ``_VEHICLE``, ``_PEDESTRIAN``,
    ``_CYCLIST`` or ``_FURNITURE``).
    """

    lo: np.ndarray
    hi: np.ndarray
    velocity: np.ndarray
    material: np.ndarray
    colour: np.ndarray
    style: np.ndarray
    pitch: np.ndarray
    kind: np.ndarray
    street: _Street
    light: _Light
    seed: int

    def boxes_at(self, time: float) -> tuple[np.ndarray, np.ndarray]:
        """Box corners at ``time`` seconds after the first frame."""
        shift = np.zeros_like(self.lo)
        shift[:, 2] = self.velocity * time
        return self.lo + shift, self.hi + shift


class _Builder:
    """
    The world's box table under construction.

    It also keeps the footprints taken on the ground so far, each ``(x_lo, x_hi, z_lo,
    z_hi, velocity)`` at time 0, so that an object placed later meets none of them during
    the drive (``duration`` seconds).
    """

    def __init__(self, rng: np.random.Generator, duration: float) -> None:
        """Start an empty world drawn from ``rng`` for a drive of ``duration`` seconds."""
        self.rng = rng
        self.duration = duration
        self.rows: list[tuple] = []
        self.taken: list[tuple[float, float, float, float, float]] = []

    def box(self, x: tuple[float, float], height: tuple[float, float],
            z: tuple[float, float], material: int, colour: np.ndarray | tuple,
            kind: int = _SCENERY, style: int = 0, pitch: float = 1.0,
            velocity: float = 0.0) -> None:
        """Add a box over ``x`` and ``z`` (at time 0) and ``height`` above the road."""
        top_y, bottom_y = CAMERA_HEIGHT - max(height), CAMERA_HEIGHT - min(height)
        self.rows.append((min(x), top_y, min(z), max(x), bottom_y, max(z), velocity,
                          material, *np.asarray(colour, dtype=np.float32), style, pitch,
                          kind))

    def take(self, x: tuple[float, float], z: tuple[float, float], velocity: float = 0.0,
             force: bool = False) -> bool:
        """
        Take a footprint moving along z at ``velocity`` if it stays clear of all taken ones.

        Two footprints meet when their x ranges overlap and the z range of one, swept over
        the drive at the velocity relative to the other, overlaps the other. ``force``
        takes it unchecked. Returns whether it was taken.
        """
        if self.taken and not force:
            t = np.array(self.taken)
            shift = (velocity - t[:, 4]) * self.duration
            meets = ((min(x) < t[:, 1]) & (max(x) > t[:, 0])
                     & (min(z) + np.minimum(shift, 0.0) < t[:, 3])
                     & (max(z) + np.maximum(shift, 0.0) > t[:, 2]))
            if meets.any():
                return False
        self.taken.append((min(x), max(x), min(z), max(z), velocity))
        return True

    def world(self, street: _Street, light: _Light, seed: int) -> _World:
        """Return the finished world."""
        table = np.array(self.rows, dtype=np.float64)
        return _World(lo=table[:, 0:3], hi=table[:, 3:6], velocity=table[:, 6],
                      material=table[:, 7].astype(np.int64),
                      colour=table[:, 8:11].astype(np.float32),
                      style=table[:, 11].astype(np.int64),
                      pitch=table[:, 12].astype(np.float32),
                      kind=table[:, 13].astype(np.int64), street=street, light=light,
                      seed=seed)


def _random_colour(rng: np.random.Generator, palette: np.ndarray, chance: float,
                   low: float, high: float) -> np.ndarray:
    """Draw a colour of ``palette`` (probability ``chance``) or a random RGB in low..high."""
    if rng.random() < chance:
        return palette[rng.integers(len(palette))]
    return rng.uniform(low, high, 3).astype(np.float32)


def _tree(b: _Builder, x: float, z: float, base: float = 0.0,
          trunk_height: tuple[float, float] = (2.0, 3.2)) -> None:
    """Add a tree where its footprint is free: a trunk (``trunk_height`` m) and a box crown."""
    rng = b.rng
    trunk, radius = rng.uniform(*trunk_height), rng.uniform(1.2, 2.2)
    if not b.take((x - 0.3, x + 0.3), (z - 0.3, z + 0.3)):
        return
    top = base + trunk
    b.box((x - 0.15, x + 0.15), (base, top), (z - 0.15, z + 0.15), _TRUNK, (0.33, 0.24, 0.16))
    b.box((x - radius, x + radius), (top - 0.3, top + 1.8 * radius), (z - radius, z + radius),
          _FOLIAGE, (rng.uniform(0.12, 0.25), rng.uniform(0.30, 0.45), rng.uniform(0.08, 0.15)))


def _car(b: _Builder, x: float, z: float, velocity: float = 0.0, large: bool = False,
         facing: int = 1, force: bool = False) -> float:
    """
    Add a car (3.6..5 m long, 1.6..1.95 m wide, 1.35..1.7 m tall) spanning ``z..z + length``.

    ``large``: a van or lorry instead, 6..9 m long, 2.2 m wide, 2.5..3.2 m tall, with a
    windscreen on its front. ``facing`` is 1 when the front is towards +z. Returns the
    length, or 0.0 (adding nothing) when the footprint is not free (see
    :meth:`_Builder.take`).
    """
    rng = b.rng
    if large:
        length, half, height = rng.uniform(6.0, 9.0), 1.1, rng.uniform(2.5, 3.2)
    else:
        length, half, height = rng.uniform(3.6, 5.0), rng.uniform(0.8, 0.98), \
            rng.uniform(1.35, 1.7)
    if not b.take((x - half, x + half), (z, z + length), velocity, force):
        return 0.0
    colour = _random_colour(rng, _CAR_COLOURS, 0.5, 0.03, 0.9)
    front = z + length if facing > 0 else z
    if large:
        shoulder, floor, wheel = height, 0.35, 0.8
        glass_z = (front - facing * 0.5, front + facing * 0.03)
        glass_height = (1.2, min(2.1, height - 0.2))
    else:
        shoulder, floor, wheel = min(rng.uniform(0.85, 1.1), height - 0.35), 0.25, 0.62
        cabin = rng.uniform(0.45, 0.6) * length
        glass_z = (front - facing * 0.3 * length, front - facing * (0.3 * length + cabin))
        glass_height = (shoulder, height)
    b.box((x - half, x + half), (floor, shoulder), (z, z + length), _CAR, colour,
          kind=_VEHICLE, velocity=velocity)
    b.box((x - half + 0.1, x + half - 0.1), glass_height, glass_z, _GLASS, colour,
          kind=_VEHICLE, velocity=velocity)
    for axle in (0.18 * length, 0.82 * length):
        b.box((x - half + 0.05, x + half - 0.05), (0.0, wheel),
              (z + axle - wheel / 2, z + axle + wheel / 2), _TYRE, (0.05, 0.05, 0.05),
              kind=_VEHICLE, velocity=velocity)
    return length


def _head(b: _Builder, x: float, z: float, height: tuple[float, float], kind: int,
          velocity: float) -> None:
    """Add a head box (skin, hair on top) centred at ``(x, z)``."""
    b.box((x - 0.1, x + 0.1), height, (z - 0.11, z + 0.11), _SKIN,
          _SKIN_COLOURS[b.rng.integers(len(_SKIN_COLOURS))], kind=kind, velocity=velocity)


def _cloth(b: _Builder, x: tuple[float, float], height: tuple[float, float],
           z: tuple[float, float], kind: int, velocity: float) -> None:
    """Add a body box in clothes: a random top and (by style) dark, jeans or same legs."""
    rng = b.rng
    colour = rng.uniform(0.05, 0.85, 3) if rng.random() < 0.6 else \
        np.full(3, rng.uniform(0.05, 0.25))
    b.box(x, height, z, _CLOTH, colour, kind=kind, style=int(rng.integers(3)),
          velocity=velocity)


def _pedestrian(b: _Builder, x: float, z: float, velocity: float = 0.0,
                crossing: bool = False, base: float = 0.0) -> bool:
    """
    Add a pedestrian at ``(x, z)`` on a surface ``base`` m above the road.

    A body box 0.5 m across and 0.35 m deep (turned for one ``crossing`` the road) with a
    head box on top, 1.5..1.9 m tall in all; it stands, or walks along z at ``velocity``.
    Returns False (adding nothing) when the footprint is not free.
    """
    across, along = (0.35, 0.5) if crossing else (0.5, 0.35)
    if not b.take((x - across / 2 - 0.15, x + across / 2 + 0.15),
                  (z - along / 2 - 0.15, z + along / 2 + 0.15), velocity):
        return False
    top = base + b.rng.uniform(1.5, 1.9)
    _cloth(b, (x - across / 2, x + across / 2), (base, top - 0.25),
           (z - along / 2, z + along / 2), _PEDESTRIAN, velocity)
    _head(b, x, z, (top - 0.25, top), _PEDESTRIAN, velocity)
    return True


def _cyclist(b: _Builder, x: float, z: float, velocity: float) -> bool:
    """
    Add a cyclist riding along z at ``velocity`` from ``z`` (1.7 m long, 1.7 m tall).

    The bicycle is a narrow box (0.16 m wide, 0.95 m tall), the rider a body box and a head.
    Returns False (adding nothing) when the footprint is not free.
    """
    if not b.take((x - 0.35, x + 0.35), (z - 0.2, z + 1.9), velocity):
        return False
    rng = b.rng
    b.box((x - 0.08, x + 0.08), (0.0, 0.95), (z, z + 1.7), _TYRE,
          rng.uniform(0.05, 0.6, 3), kind=_CYCLIST, velocity=velocity)
    rider = z + (0.45 if velocity >= 0 else 0.75)
    _cloth(b, (x - 0.22, x + 0.22), (0.75, 1.45), (rider, rider + 0.5), _CYCLIST, velocity)
    _head(b, x, rider + 0.25, (1.45, 1.7), _CYCLIST, velocity)
    return True


def _post(b: _Builder, x: float, z: float, height: tuple[float, float], half: float,
          colour: tuple | np.ndarray) -> bool:
    """Add a post (lamp, sign, bollard, signal) of square section; False if not free."""
    if not b.take((x - half - 0.1, x + half + 0.1), (z - half - 0.1, z + half + 0.1)):
        return False
    b.box((x - half, x + half), height, (z - half, z + half), _POLE, colour, kind=_FURNITURE)
    return True


def _kerb_furniture(b: _Builder, street: _Street, side: int, z0: float, z1: float) -> None:
    """
    Line the kerb on ``side`` between ``z0`` and ``z1``.

    Street lamps every 20..35 m, street trees on an avenue side (crowns 2.7 m up or more, as
    they reach over the road), and every 6..25 m a sign post, a group of bollards or a
    cabinet.
    """
    rng = b.rng
    edge = street.edge(side)
    base = street.kerb[side] if street.pavement[side] > 0 else 0.0
    grey = (0.46, 0.47, 0.49)
    z = z0 + rng.uniform(0.0, 20.0)
    while z < z1:
        height = rng.uniform(6.0, 8.0)
        if _post(b, edge + side * 0.5, z, (base, height), 0.08, grey):
            b.box((edge + side * 0.5, edge - side * 1.1), (height - 0.15, height),
                  (z - 0.08, z + 0.08), _POLE, grey, kind=_FURNITURE)
        z += rng.uniform(20.0, 35.0)
    z = z0 + rng.uniform(2.0, 10.0)
    while street.avenue[side] and z < z1:
        _tree(b, edge + side * rng.uniform(0.8, 1.2), z, base, (3.0, 4.0))
        z += rng.uniform(7.0, 14.0)
    z = z0 + rng.uniform(2.0, 12.0)
    while z < z1:
        choice, x = rng.random(), edge + side * rng.uniform(0.3, 0.6)
        if choice < 0.4:
            top = rng.uniform(2.2, 3.0)
            if _post(b, x, z, (base, top), 0.035, grey):
                b.box((x - 0.3, x + 0.3), (top - 0.6, top), (z - 0.02, z + 0.02), _POLE,
                      _random_colour(rng, _SIGN_COLOURS, 0.8, 0.1, 0.9), kind=_FURNITURE)
        elif choice < 0.7:
            for k in range(int(rng.integers(2, 6))):
                _post(b, x, z + 1.5 * k, (base, base + rng.uniform(0.8, 1.1)), 0.08,
                      (0.25, 0.26, 0.27))
        else:
            half = rng.uniform(0.2, 0.4)
            _post(b, x + side * half, z, (base, base + rng.uniform(0.9, 1.4)), half,
                  rng.uniform(0.2, 0.6, 3))
        z += rng.uniform(6.0, 25.0)


def _facade(b: _Builder, x: tuple[float, float], z: tuple[float, float],
            top: float) -> None:
    """Add a building box with a random facade colour, wall style and window pitch."""
    rng = b.rng
    b.box(x, (0.0, top), z, _BUILDING, _random_colour(rng, _FACADE_COLOURS, 0.4, 0.3, 0.92),
          style=int(rng.integers(3)), pitch=rng.uniform(2.4, 3.6))


def _fence(b: _Builder, x: float, z: tuple[float, float]) -> None:
    """Add a slatted fence 0.9..1.5 m tall along z at ``x``."""
    rng = b.rng
    b.box((x, x + 0.05), (0.0, rng.uniform(0.9, 1.5)), z, _FENCE,
          np.array([0.45, 0.36, 0.26]) * rng.uniform(0.7, 1.3), pitch=rng.uniform(0.12, 0.2))


def _lot(b: _Builder, street: _Street, side: int, outer: float, z: float,
         length: float) -> None:
    """
    Fill the lot ``z..z + length`` beyond the pavement (outer edge at ``outer``).

    Town: mostly a facade 0..1 m behind the pavement; suburb: mostly set back 3..15 m behind
    a fence with a tree in the front garden; open: a field, often behind a fence or a
    hedge, with a few trees. Otherwise a clump of trees.
    """
    rng = b.rng
    setting = street.setting[side]
    if setting != 'open' and rng.random() < (0.9 if setting == 'town' else 0.75):
        close = 0.75 if setting == 'town' else 0.2
        setback = rng.uniform(0.0, 1.0) if rng.random() < close else rng.uniform(3.0, 15.0)
        front = outer + side * setback
        _facade(b, (front, front + side * rng.uniform(8.0, 16.0)), (z, z + length),
                rng.uniform(5.0, 14.0))
        if setback > 3.0 and rng.random() < 0.6:
            _fence(b, outer + side * 0.2, (z, z + length))
        if setback > 5.0 and rng.random() < 0.7:
            _tree(b, outer + side * setback / 2, z + length * rng.uniform(0.3, 0.7))
    elif setting == 'open' and rng.random() < 0.6:
        x = outer + side * rng.uniform(0.3, 4.0)
        if rng.random() < 0.6:
            _fence(b, x, (z, z + length))
        else:
            depth = rng.uniform(0.6, 1.2)
            b.box((x, x + side * depth), (0.0, rng.uniform(1.0, 1.8)), (z, z + length),
                  _FOLIAGE, (rng.uniform(0.10, 0.2), rng.uniform(0.25, 0.4), 0.08))
        for _ in range(int(rng.integers(0, 3))):
            _tree(b, outer + side * rng.uniform(5.0, 30.0), z + rng.uniform(0.0, length))
    else:
        for _ in range(int(rng.integers(1, 4))):
            _tree(b, outer + side * rng.uniform(2.5, 12.0), z + rng.uniform(0.0, length))


def _backdrop(b: _Builder, side: int, z_min: float, z_max: float) -> None:
    """Add a skyline of distant buildings and tree lines 45..60 m to the ``side``."""
    rng = b.rng
    colour = np.array([0.30, 0.34, 0.30]) * rng.uniform(0.8, 1.2)
    z = z_min - 20.0
    while z < z_max + 20.0:
        length, x = rng.uniform(15.0, 40.0), side * rng.uniform(45.0, 60.0)
        b.box((x, x + side * 20.0), (0.0, rng.uniform(6.0, 16.0)), (z, z + length), _BACKDROP,
              colour, style=int(rng.integers(2)), pitch=rng.uniform(2.0, 4.0))
        z += length


def _roadside(b: _Builder, street: _Street, side: int, z_min: float, z_max: float) -> None:
    """
    One side of the street: pavement, kerb furniture, lots, pedestrians and the backdrop.

    Pavement and kerb furniture stop at the cross streets, the lots 1 m further.
    Pedestrians (0..0.12 per metre) stand or walk (0.8..1.7 m/s) along the pavement.
    """
    rng = b.rng
    edge, width = street.edge(side), street.pavement[side]
    outer = edge + side * width
    for z0, z1 in _segments(z_min, z_max, street.gaps(side)):
        if width > 0:
            b.box((edge, outer), (0.0, street.kerb[side]), (z0, z1), _PAVEMENT, street.paving)
        _kerb_furniture(b, street, side, z0, z1)
    margin = max([corner for *_, corner in street.junctions], default=0.0) + 1.0
    for z0, z1 in _segments(z_min, z_max, street.gaps(side, margin)):
        z = z0
        while z < z1 - 2.0:
            length = min(rng.uniform(8.0, 30.0), z1 - z)
            _lot(b, street, side, outer, z, length)
            z += length + rng.uniform(0.0, 2.0 if street.setting[side] == 'town' else 6.0)
    if width >= 1.0:
        for _ in range(int(rng.uniform(0.0, 0.12) * (z_max - z_min))):
            x, z = edge + side * rng.uniform(0.6, width - 0.4), rng.uniform(z_min, z_max)
            walking = rng.random() < 0.6
            if not any(lo - 0.5 < z < hi + 0.5 for lo, hi in street.gaps(side)):
                _pedestrian(b, x, z, rng.choice([-1.0, 1.0]) * rng.uniform(0.8, 1.7)
                            if walking else 0.0, base=street.kerb[side])
    _backdrop(b, side, z_min, z_max)


def _junction(b: _Builder, street: _Street, junction: tuple[float, float, int, float]) -> None:
    """
    Add the corners of a cross street: its pavements, buildings lining it, a signal post.

    Its asphalt is ground (see :func:`_ground_albedo`); the main street's lots stop short of
    it (see :func:`_roadside`).
    """
    rng = b.rng
    z_lo, z_hi, opens, corner = junction
    for side in (-1, 1):
        if opens not in (0, side):
            continue
        edge, kerb = street.edge(side), street.kerb[side]
        for z0, sign in ((z_lo, -1), (z_hi, 1)):
            b.box((edge, side * 60.0), (0.0, kerb), (z0, z0 + sign * corner), _PAVEMENT,
                  street.paving)
            x = edge + side * rng.uniform(16.0, 24.0)
            front = z0 + sign * (corner + rng.uniform(0.0, 3.0))
            _facade(b, (x, x + side * rng.uniform(8.0, 20.0)),
                    (front, front + sign * rng.uniform(8.0, 14.0)), rng.uniform(5.0, 14.0))
        x, z = edge + side * 0.4, z_lo - 0.6
        if _post(b, x, z, (kerb, 3.6), 0.06, (0.2, 0.2, 0.2)):
            b.box((x - 0.15, x + 0.15), (2.7, 3.6), (z - 0.15, z + 0.15), _POLE,
                  (0.1, 0.1, 0.1), kind=_FURNITURE)


def _leading_cars(b: _Builder, street: _Street, times: np.ndarray, positions: np.ndarray,
                  speeds: np.ndarray) -> None:
    """
    Cars ahead in the rig's lane (on 3 drives in 4), about as fast as the rig.

    The first one's rear is 4..30 m ahead of camera 0 where the rig comes closest; up to two
    more follow it 4..25 m apart at the same speed.
    """
    rng = b.rng
    if rng.random() >= 0.75:
        return
    lo, hi, _ = street.lanes[street.rig_lane]
    velocity = float(np.max(speeds)) * rng.uniform(0.95, 1.03)
    z = rng.uniform(4.0, 30.0) + float(np.max(positions - velocity * times))
    x = (lo + hi) / 2 + rng.uniform(-0.2, 0.2)
    for _ in range(int(rng.integers(1, 4))):
        z += _car(b, x, z, velocity, large=rng.random() < 0.12, force=True) + \
            rng.uniform(4.0, 25.0)


def _crossing_pedestrians(b: _Builder, street: _Street, positions: np.ndarray) -> None:
    """
    Up to four pedestrians standing in the road, 3..40 m ahead of the rig at some frame.

    Some stand on a zebra crossing or in the mouth of a cross street; none in the rig's path.
    """
    rng = b.rng
    for _ in range(int(rng.integers(0, 5))):
        for _attempt in range(10):
            z = positions[rng.integers(len(positions))] + rng.uniform(3.0, 40.0)
            x = rng.uniform(*street.road)
            if street.crossings and rng.random() < 0.4:
                z = rng.uniform(*street.crossings[rng.integers(len(street.crossings))])
            elif street.junctions and rng.random() < 0.3:
                z_lo, z_hi, opens, _ = street.junctions[rng.integers(len(street.junctions))]
                side = opens or int(rng.choice([-1, 1]))
                x = street.edge(side) + side * rng.uniform(1.0, 10.0)
                z = rng.uniform(z_lo + 0.5, z_hi - 0.5)
            if _pedestrian(b, x, z, crossing=True):
                break


def _parked_cars(b: _Builder, street: _Street, side: int, z_min: float, z_max: float) -> None:
    """
    Parked cars (and a few vans) in the parking lane on ``side``, 20..90 % occupied.

    None in the mouths of cross streets or on zebra crossings.
    """
    lane = street.parking[side]
    if lane is None:
        return
    rng = b.rng
    occupancy = rng.uniform(0.2, 0.9)
    keep_clear = street.gaps(side, 4.0) + [(z0 - 2.0, z1 + 2.0) for z0, z1 in street.crossings]
    for z0, z1 in _segments(z_min, z_max, keep_clear):
        z = z0 + rng.uniform(0.0, 3.0)
        while z < z1 - 9.0:
            length = 0.0
            if rng.random() < occupancy:
                length = _car(b, sum(lane) / 2 + rng.uniform(-0.2, 0.2), z,
                              large=rng.random() < 0.06, facing=int(rng.choice([-1, 1])))
            z += (length or 4.5) + rng.uniform(0.6, 2.5)


def _traffic(b: _Builder, street: _Street, speeds: np.ndarray, z_min: float,
             z_max: float) -> None:
    """
    Add the moving traffic besides the cars ahead of the rig.

    Each other lane has its own speed (oncoming 6..14 m/s, same direction 0.6..1.3 times
    the rig's) and up to five cars and vans anywhere on it; each cycle strip has cyclists
    at 3..7 m/s. Nothing leaves the street during the drive or meets anything else.
    """
    rng = b.rng
    cruise = max(float(np.max(speeds)), 4.0)
    movers = [(lane, -rng.uniform(6.0, 14.0) if lane[2] < 0 else cruise * rng.uniform(0.6, 1.3),
               False) for i, lane in enumerate(street.lanes) if i != street.rig_lane]
    movers += [(strip, strip[2] * rng.uniform(3.0, 7.0), True)
               for strip in street.strips.values() if strip is not None]
    for (lo, hi, direction), velocity, cycle in movers:
        sweep = velocity * b.duration
        first, last = z_min + 1.0 - min(sweep, 0.0), z_max - 10.0 - max(sweep, 0.0)
        for _ in range(int(rng.integers(1, 6))):
            for _attempt in range(8):
                if last <= first:
                    break
                x, z = (lo + hi) / 2 + rng.uniform(-0.2, 0.2), rng.uniform(first, last)
                if cycle:
                    placed = _cyclist(b, x, z, velocity)
                else:
                    placed = _car(b, x, z, velocity, large=rng.random() < 0.15,
                                  facing=direction) > 0.0
                if placed:
                    break


def _build_world(rng: np.random.Generator, z_min: float, z_max: float, times: np.ndarray,
                 positions: np.ndarray, speeds: np.ndarray, seed: int) -> _World:
    """
    Lay out a drive's street between ``z_min`` and ``z_max``.

    ``times``, ``positions`` and ``speeds`` are the rig's (see :func:`_trajectory`): cars
    ahead keep pace with it, and nothing stands or moves into its path. A transverse
    building closes each end.
    """
    light = _lighting(rng)
    street = _street(rng, z_min, z_max)
    b = _Builder(rng, float(times[-1]))
    b.take(_RIG_CORRIDOR, (-3.0, float(positions[-1]) + 8.0), force=True)
    _leading_cars(b, street, times, positions, speeds)
    _crossing_pedestrians(b, street, positions)
    for side in (-1, 1):
        _roadside(b, street, side, z_min, z_max)
        _parked_cars(b, street, side, z_min, z_max)
    for junction in street.junctions:
        _junction(b, street, junction)
    _traffic(b, street, speeds, z_min, z_max)
    for z, sign in ((z_max, 1), (z_min, -1)):
        _facade(b, (-80.0, 80.0), (z, z + sign * 12.0), rng.uniform(6.0, 12.0))
    return b.world(street, light, seed)


# ----------------------------------------------------------------------------- a drive

def _trajectory(rng: np.random.Generator, frames: int,
                stationary: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Return frame times (s from the first frame), positions along the road (m) and speeds (m/s).

    ``stationary`` frames at standstill, then cruising at 6..12 m/s with a gentle speed
    wobble (ramping up over 4 frames after a standstill).
    """
    cruise = rng.uniform(6.0, 12.0)
    gaps = FRAME_PERIOD + rng.uniform(-5e-4, 5e-4, frames)
    times = np.concatenate([[0.0], np.cumsum(gaps[1:])])
    k = np.arange(frames)
    ramp = np.clip((k - stationary + 1) / 4.0, 0.0, 1.0) if stationary else np.ones(frames)
    speeds = cruise * ramp * (1.0 + 0.04 * np.sin(0.3 * k + rng.uniform(0, 2 * np.pi)))
    speeds[:stationary] = 0.0
    steps = 0.5 * (speeds[1:] + speeds[:-1]) * np.diff(times)
    return times, np.concatenate([[0.0], np.cumsum(steps)]), speeds


@dataclass(frozen=True)
class _Drive:
    """A drive's motion (frame times, positions along the road, speeds) and its world."""

    times: np.ndarray
    positions: np.ndarray
    speeds: np.ndarray
    world: _World


def _drive(name: str, frames: int, seed: int,
           stationary: int) -> tuple[_Drive, np.random.Generator]:
    """
    Return the motion and world of drive ``name`` (normalised) for ``seed``.

    Also returns the drive's random generator, ready for the OXTS packets and timestamps.
    """
    drive_seed = np.random.SeedSequence([seed, zlib.crc32(name.encode())])
    rng = np.random.default_rng(drive_seed)
    times, positions, speeds = _trajectory(rng, frames, stationary)
    world = _build_world(rng, -40.0, positions[-1] + rng.uniform(60.0, 90.0), times,
                         positions, speeds, int(drive_seed.generate_state(1)[0] & 0xFFFF))
    return _Drive(times=times, positions=positions, speeds=speeds, world=world), rng

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
The ray tracer of the synthetic world: camera images, dense depth and LiDAR scans.

Every object of a world (:mod:`.world`) is an axis-aligned box over the ground plane, so
rays of all pixels (and all LiDAR beams) are intersected at once with numpy. Surfaces carry
procedural textures (value noise, blocks, tiles, windows, slats, clothes), Lambert shading
and distance haze, so the usual monocular cues exist.

The images are rendered in the rectified frames of cameras 2 and 3 defined by the
written ``P_rect_02``/``P_rect_03``, with the convention the KITTI devkit's ``round() - 1``
implies: ``P_rect`` maps to 1-based pixel coordinates, so the pixel in row ``r`` and column
``c`` of a PNG is the ray through ``(u, v) = (c + 1, r + 1)``. The Velodyne scan is cast
from the Velodyne origin of ``calib_velo_to_cam.txt``, so projecting it with the written
calibration lands every point on the pixel that sees it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .world import _BACKDROP, _BUILDING, _CAR, _CLOTH, _FOLIAGE, _GLASS, _GROUND, _Light, \
    _PAVEMENT, _POLE, _SKIN, _TRUNK, _TYRE, _World, CAMERA_HEIGHT

#: Elevation (deg) of the 64 beams: HDL-64E-like upper block +2 .. -8.33 and lower block
#: -8.83 .. -24.8.
LIDAR_ELEVATIONS_DEG = np.concatenate([np.linspace(2.0, -8.33, 32), np.linspace(-8.83, -24.8, 32)])
#: Horizontal step (deg) between LiDAR firings over the 360 degree sweep.
LIDAR_AZIMUTH_STEP_DEG = 0.3
#: LiDAR returns farther than this (m) are dropped.
LIDAR_RANGE = 120.0

# Hit id of rays that hit nothing; colours of the people.
_SKY = -2
_JEANS = np.array([0.12, 0.16, 0.28], dtype=np.float32)
_HAIR = np.array([0.09, 0.07, 0.05], dtype=np.float32)


# ----------------------------------------------------------------------------- noise

def _hash01(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """Deterministic pseudo-random values in [0, 1) for integer lattice points."""
    salt = np.uint32((seed * 0x9E3779B1) & 0xFFFFFFFF)
    h = (ix.astype(np.uint32) * np.uint32(0x8DA6B343)) ^ \
        (iy.astype(np.uint32) * np.uint32(0xD8163841)) ^ salt
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x2C1B3C6D)
    h ^= h >> np.uint32(12)
    h *= np.uint32(0x297A2D39)
    h ^= h >> np.uint32(15)
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / (1 << 24))


def _value_noise(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Smooth value noise in [0, 1): lattice values blended with a smoothstep."""
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0).astype(np.float32), (y - y0).astype(np.float32)
    ix, iy = x0.astype(np.int64), y0.astype(np.int64)
    sx, sy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    a, b = _hash01(ix, iy, seed), _hash01(ix + 1, iy, seed)
    c, d = _hash01(ix, iy + 1, seed), _hash01(ix + 1, iy + 1, seed)
    return a + (b - a) * sx + (c - a) * sy + (a - b - c + d) * sx * sy


def _fbm(x: np.ndarray, y: np.ndarray, seed: int, octaves: int = 3) -> np.ndarray:
    """
    Return the fractal sum of ``octaves`` value-noise layers, normalised to [0, 1).

    Each layer has twice the frequency and half the weight of the previous one.
    """
    total = np.zeros(np.shape(x), dtype=np.float32)
    for octave in range(octaves):
        scale = 2.0 ** octave
        total += _value_noise(x * scale, y * scale, seed + 101 * octave) / np.float32(scale)
    return total / np.float32(2.0 - 2.0 ** (1 - octaves))


def _frac(x: np.ndarray) -> np.ndarray:
    """Return the fractional part of ``x`` (in [0, 1), also for negative ``x``)."""
    return x - np.floor(x)


# ----------------------------------------------------------------------------- ray casting

@dataclass(frozen=True)
class _Rays:
    """
    Grid of rays from one origin.

    The fields are the directions (R, C, 3), their reciprocals and their lengths.
    """

    dirs: np.ndarray
    inv: tuple[np.ndarray, np.ndarray, np.ndarray]
    length: np.ndarray


def _rays(dirs: np.ndarray) -> _Rays:
    """Return the rays of directions ``dirs`` (..., 3) in float32, with reciprocals and lengths."""
    dirs = dirs.astype(np.float32)
    with np.errstate(divide='ignore'):
        inv = tuple(np.float32(1.0) / dirs[..., i] for i in range(3))
    return _Rays(dirs=dirs, inv=inv, length=np.linalg.norm(dirs, axis=-1))


def _camera_rays(k: np.ndarray, size: tuple[int, int]) -> _Rays:
    r"""
    Return the ray :math:`K^{-1} (c + 1, r + 1, 1)^T` of each pixel (row r, column c).

    Its z is 1, so the ray parameter of a hit is the depth along the optical axis.
    """
    width, height = size
    u, v = np.meshgrid(np.arange(1, width + 1), np.arange(1, height + 1))
    pixels = np.stack([u, v, np.ones_like(u)], axis=-1).astype(np.float64)
    return _rays(pixels @ np.linalg.inv(k).T)


def _lidar_rays(rotation: np.ndarray) -> tuple[_Rays, np.ndarray]:
    """Beam directions (64, n_azimuth) in the Velodyne frame and rotated to the world."""
    elevation = np.radians(LIDAR_ELEVATIONS_DEG)[:, None]
    azimuth = np.radians(np.arange(0.0, 360.0, LIDAR_AZIMUTH_STEP_DEG))[None, :]
    local = np.stack(np.broadcast_arrays(np.cos(elevation) * np.cos(azimuth),
                                         np.cos(elevation) * np.sin(azimuth),
                                         np.sin(elevation)), axis=-1)
    return _rays(local @ rotation.T), local


def _slab(origin: np.ndarray, inv: tuple[np.ndarray, ...], lo: np.ndarray,
          hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""
    Intersect rays with a box (slab method).

    With :math:`t^{\pm}_i = (b^{\pm}_i - o_i) / d_i` the entry is
    :math:`t = \max_i \min(t^-_i, t^+_i)` and the exit :math:`\min_i \max(t^-_i, t^+_i)`;
    a hit needs entry <= exit and entry > 0.

    :returns: entry distance (inf on a miss) and the axis of the face entered.
    """
    near, far = [], []
    with np.errstate(invalid='ignore'):
        for i in range(3):
            a = (np.float32(lo[i] - origin[i])) * inv[i]
            b = (np.float32(hi[i] - origin[i])) * inv[i]
            near.append(np.fmin(a, b))
            far.append(np.fmax(a, b))
    entry = np.maximum(np.maximum(near[0], near[1]), near[2])
    leave = np.minimum(np.minimum(far[0], far[1]), far[2])
    axis = np.where(entry == near[0], 0, np.where(entry == near[1], 1, 2)).astype(np.int8)
    return np.where((entry <= leave) & (entry > 1e-4), entry, np.float32(np.inf)), axis


def _trace(origin: np.ndarray, rays: _Rays, lo: np.ndarray, hi: np.ndarray,
           regions: list[tuple[int, tuple]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Find the nearest hit of every ray against the ground plane and the boxes.

    ``regions`` pairs a box with the index expression of the rays that may hit it.

    :returns: distance parameter ``t`` (inf for sky), hit id (box index, -1 ground,
        -2 sky) and the axis of the face hit (1 for the ground).
    """
    dy = rays.dirs[..., 1]
    with np.errstate(divide='ignore'):
        t = np.where(dy > 0, np.float32(CAMERA_HEIGHT - origin[1]) / dy, np.float32(np.inf))
    hit = np.where(np.isfinite(t), -1, _SKY).astype(np.int32)
    axis = np.ones(t.shape, dtype=np.int8)
    for b, region in regions:
        tb, ab = _slab(origin, tuple(inv[region] for inv in rays.inv), lo[b], hi[b])
        closer = tb < t[region]
        if closer.any():
            t[region] = np.where(closer, tb, t[region])
            hit[region] = np.where(closer, b, hit[region])
            axis[region] = np.where(closer, ab, axis[region])
    return t, hit, axis


def _camera_regions(lo: np.ndarray, hi: np.ndarray, centre: np.ndarray, k: np.ndarray,
                    size: tuple[int, int]) -> list[tuple[int, tuple]]:
    """
    Return the pixel rectangle of each box in front of the camera.

    The rectangle bounds its corners' projections after clipping the box to z >= 5 cm in
    front of the camera centre.
    """
    width, height = size
    rel_lo, rel_hi = lo - centre, hi - centre
    z_lo = np.maximum(rel_lo[:, 2], 0.05)
    front = rel_hi[:, 2] > 0.05
    xs = np.stack([rel_lo[:, 0], rel_hi[:, 0]], axis=1)[:, :, None, None]
    ys = np.stack([rel_lo[:, 1], rel_hi[:, 1]], axis=1)[:, None, :, None]
    zs = np.stack([z_lo, np.maximum(rel_hi[:, 2], 0.05)], axis=1)[:, None, None, :]
    cols = (k[0, 0] * xs / zs + k[0, 1] * ys / zs + k[0, 2] - 1).reshape(len(lo), -1)
    rows = np.broadcast_to(k[1, 1] * ys / zs + k[1, 2] - 1,
                           (len(lo), 2, 2, 2)).reshape(len(lo), -1)
    c0 = np.clip(np.floor(cols.min(1)), 0, width).astype(int)
    c1 = np.clip(np.ceil(cols.max(1)) + 1, 0, width).astype(int)
    r0 = np.clip(np.floor(rows.min(1)), 0, height).astype(int)
    r1 = np.clip(np.ceil(rows.max(1)) + 1, 0, height).astype(int)
    keep = front & (c1 > c0) & (r1 > r0)
    return [(b, (slice(r0[b], r1[b]), slice(c0[b], c1[b]))) for b in np.nonzero(keep)[0]]


def _lidar_regions(lo: np.ndarray, hi: np.ndarray, origin: np.ndarray,
                   column_azimuth: np.ndarray) -> list[tuple[int, tuple]]:
    """
    Return the LiDAR columns that may hit each box within range.

    These are the columns whose azimuth (about the vertical axis, 0 = forward) lies within
    the box footprint's angular span plus 2 deg.
    """
    gap = np.maximum(np.maximum(lo - origin, origin - hi), 0.0)
    in_range = np.linalg.norm(gap, axis=1) <= LIDAR_RANGE
    rel_lo, rel_hi = lo - origin, hi - origin
    around = (rel_lo[:, 0] <= 0) & (rel_hi[:, 0] >= 0) & (rel_lo[:, 2] <= 0) & (rel_hi[:, 2] >= 0)
    regions = []
    every = np.arange(len(column_azimuth))
    for b in np.nonzero(in_range)[0]:
        if around[b]:
            regions.append((b, (slice(None), every)))
            continue
        corners = np.arctan2([rel_lo[b, 0], rel_lo[b, 0], rel_hi[b, 0], rel_hi[b, 0]],
                             [rel_lo[b, 2], rel_hi[b, 2], rel_lo[b, 2], rel_hi[b, 2]])
        mid = np.arctan2(rel_lo[b, 0] + rel_hi[b, 0], rel_lo[b, 2] + rel_hi[b, 2])
        spread = np.angle(np.exp(1j * (corners - mid)))
        centre = mid + (spread.max() + spread.min()) / 2
        half = (spread.max() - spread.min()) / 2 + np.radians(2.0)
        cols = np.nonzero(np.abs(np.angle(np.exp(1j * (column_azimuth - centre)))) <= half)[0]
        if cols.size:
            regions.append((b, (slice(None), cols)))
    return regions


# ----------------------------------------------------------------------------- shading

def _face_coords(p: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    Return the 2-D surface coordinates of hit points.

    They are (z, height) on x faces, (x, z) on y faces, (x, height) on z faces; height is
    above the road.
    """
    height = CAMERA_HEIGHT - p[:, 1]
    s = np.where(axis == 0, p[:, 2], p[:, 0])
    t = np.where(axis == 1, p[:, 2], height)
    return s, t


def _ground_albedo(world: _World, p: np.ndarray, seed: int) -> np.ndarray:
    """
    Albedo of the ground: asphalt on the road and in cross streets, grass elsewhere.

    The road carries dashed and solid lines (solid ones stop at cross streets) and zebra
    crossings.
    """
    street = world.street
    x, z = p[:, 0], p[:, 2]
    out = np.empty((len(p), 3), dtype=np.float32)
    main = (x >= street.road[0]) & (x <= street.road[1])
    junction = np.zeros(len(p), dtype=bool)
    cross = np.zeros(len(p), dtype=bool)
    for z_lo, z_hi, opens, _ in street.junctions:
        inside = (z >= z_lo) & (z <= z_hi)
        junction |= inside
        cross |= inside & ((opens >= 0) & (x > street.road[1]) | (opens <= 0)
                           & (x < street.road[0]))
    road = main | cross
    g = ~road
    grass = _fbm(x[g] * 1.5, z[g] * 1.5, seed + 1)
    out[g] = street.grass * (0.55 + 0.8 * grass)[:, None]
    xr, zr, on_main = x[road], z[road], main[road]
    grain = 0.6 * _value_noise(xr * 8.0, zr * 8.0, seed + 2) + 0.4 * _value_noise(
        xr * 0.5, zr * 0.5, seed + 3)
    paint = np.zeros(len(xr), dtype=bool)
    for line in street.dashed:
        paint |= (np.abs(xr - line) < 0.06) & (_frac((zr - street.dash_phase) / 9.0) < 1 / 3)
    for line in street.solid:
        paint |= (np.abs(xr - line) < 0.06) & ~junction[road]
    for z_lo, z_hi in street.crossings:
        paint |= on_main & (zr >= z_lo) & (zr <= z_hi) & (_frac(xr - street.road[0]) < 0.5)
    asphalt = street.asphalt * (0.8 + 0.45 * grain)[:, None]
    white = (0.78 + 0.06 * grain)[:, None] * np.array([1.0, 0.99, 0.97], dtype=np.float32)
    out[road] = np.where(paint[:, None], white, asphalt)
    return out


def _box_albedo(world: _World, lo: np.ndarray, hi: np.ndarray, p: np.ndarray, box: np.ndarray,
                axis: np.ndarray, material: int, seed: int) -> np.ndarray:
    """Albedo of hit points on boxes of one material."""
    colour = world.colour[box]
    s, t = _face_coords(p, axis)
    if material == _PAVEMENT:
        tile = _hash01(np.floor(s / 0.5).astype(np.int64), np.floor(t / 0.5).astype(np.int64),
                       seed + 4)
        joint = (_frac(s / 0.5) < 0.05) | (_frac(t / 0.5) < 0.05)
        shade = np.where(axis == 1, np.where(joint, 0.6, 0.9 + 0.2 * tile), 1.05)
        return colour * shade[:, None].astype(np.float32)
    if material in (_BUILDING, _BACKDROP):
        return _facade_albedo(world, lo, hi, s, t, box, axis, colour, material, seed)
    if material == _CAR:
        return colour * (0.8 + 0.25 * np.clip(t - 0.25, 0.0, 1.0))[:, None].astype(np.float32)
    if material == _GLASS:
        glass = np.array([0.07, 0.09, 0.11], dtype=np.float32) + \
            0.12 * _frac(t * 2.0)[:, None].astype(np.float32)
        return np.where((axis == 1)[:, None], colour, glass)
    if material == _CLOTH:
        bottom, top = CAMERA_HEIGHT - hi[box, 1], CAMERA_HEIGHT - lo[box, 1]
        style = world.style[box][:, None]
        legs = np.select([style == 0, style == 1], [0.3 * colour, _JEANS], colour)
        wear = np.where((t < bottom + 0.45 * (top - bottom))[:, None], legs, colour)
        return wear * (0.85 + 0.3 * _value_noise(s * 4.0, t * 4.0, seed + 16))[:, None]
    if material == _SKIN:
        return np.where((axis == 1)[:, None], _HAIR, colour)
    if material in (_TYRE, _POLE):
        return colour * (0.9 + 0.2 * _value_noise(s * 3.0, t * 3.0, seed + 5))[:, None]
    if material == _TRUNK:
        return colour * (0.6 + 0.6 * _fbm(s * 20.0, t * 2.0, seed + 6, 2))[:, None]
    if material == _FOLIAGE:
        leaves = _fbm(s * 2.5, t * 2.5 + 7.0 * axis, seed + 7)
        return colour * (0.3 + 1.2 * leaves)[:, None]
    slat = _frac(s / world.pitch[box]) < 0.75
    return colour * np.where(slat, 0.85 + 0.3 * _value_noise(s * 30.0, t * 2.0, seed + 8),
                             0.3)[:, None].astype(np.float32)


def _facade_albedo(world: _World, lo: np.ndarray, hi: np.ndarray, s: np.ndarray,
                   t: np.ndarray, box: np.ndarray, axis: np.ndarray, colour: np.ndarray,
                   material: int, seed: int) -> np.ndarray:
    """
    Walls (blocks, plaster or siding by style) with a grid of windows; roofs are grey.

    Backdrop boxes are either tree lines (style 0) or distant buildings.
    """
    style = world.style[box]
    start = np.where(axis == 0, lo[box, 2], lo[box, 0])
    extent = np.where(axis == 0, hi[box, 2], hi[box, 0]) - start
    local = s - start
    top = CAMERA_HEIGHT - lo[box, 1]
    if material == _BACKDROP:
        trees = _fbm(s * 0.6, t * 0.6, seed + 9)
        wall = np.where(style == 0, 0.5 + 0.9 * trees,
                        0.9 + 0.2 * _value_noise(s * 0.3, t * 0.3, seed + 10))
        return colour * wall[:, None].astype(np.float32)
    row = np.floor(t / 0.3)
    shifted = s + 0.3 * (row % 2)
    block = 0.85 + 0.3 * _hash01(np.floor(shifted / 0.6).astype(np.int64), row.astype(np.int64),
                                 seed + 11)
    block = np.where((_frac(t / 0.3) < 0.1) | (_frac(shifted / 0.6) < 0.05), 1.15, block)
    plaster = 0.75 + 0.45 * _fbm(s * 1.5, t * 1.5, seed + 12)
    siding = np.where(_frac(t / 0.22) < 0.2, 0.7, 0.95) + 0.1 * _value_noise(s, t, seed + 13)
    wall = np.select([style == 0, style == 1], [block, plaster], siding)
    out = colour * wall[:, None].astype(np.float32)
    floor_phase = _frac(t / 3.0)
    bay = _frac(local / world.pitch[box])
    window = ((axis != 1) & (bay > 0.28) & (bay < 0.72) & (floor_phase > 0.3)
              & (floor_phase < 0.8) & (t > 0.8) & (t < top - 0.8) & (local > 0.6)
              & (local < extent - 0.6))
    glass = np.array([0.09, 0.11, 0.14], dtype=np.float32) + \
        (0.35 * (floor_phase - 0.3))[:, None].astype(np.float32) * \
        np.array([0.8, 0.9, 1.0], dtype=np.float32)
    out = np.where(window[:, None], glass, out)
    roof = np.float32(0.28) + 0.08 * _value_noise(s, t, seed + 14)[:, None]
    return np.where((axis == 1)[:, None], roof, out)


def _albedo(world: _World, lo: np.ndarray, hi: np.ndarray, p: np.ndarray, hit: np.ndarray,
            axis: np.ndarray) -> np.ndarray:
    """Surface colour (linear, 0..1) of hit points ``p`` (hit >= -1)."""
    material = np.where(hit >= 0, world.material[np.maximum(hit, 0)], _GROUND)
    out = np.empty((len(p), 3), dtype=np.float32)
    for m in np.nonzero(np.bincount(material))[0]:
        sel = np.nonzero(material == m)[0]
        if m == _GROUND:
            out[sel] = _ground_albedo(world, p[sel], world.seed)
        else:
            out[sel] = _box_albedo(world, lo, hi, p[sel], hit[sel], axis[sel], int(m),
                                   world.seed)
    return out


def _sky(dirs: np.ndarray, light: _Light, seed: int) -> np.ndarray:
    """
    Return the sky colour by elevation, with clouds on a plane at infinity.

    The clouds are a function of the direction only; ``light.cloud_cover`` sets how much of
    the sky they cover.
    """
    norm = np.linalg.norm(dirs, axis=1)
    elevation = np.clip(-dirs[:, 1] / norm, 0.0, 1.0)
    blend = np.clip(elevation * 2.5, 0.0, 1.0)[:, None]
    colour = light.horizon * (1 - blend) + light.zenith * blend
    lift = np.maximum(-dirs[:, 1], 1e-3)
    cloud = _fbm(dirs[:, 0] / lift * 1.5, dirs[:, 2] / lift * 1.5, seed + 15)
    threshold = np.float32(0.65 - 0.4 * light.cloud_cover)
    amount = (np.clip((cloud - threshold) * 3.0, 0.0, 1.0)
              * np.clip(elevation * 10.0, 0.0, 1.0))[:, None]
    white = np.float32(0.8 * 0.96 * (1.0 - 0.35 * light.cloud_cover))
    return colour * (1 - 0.8 * amount) + white * amount


def _render(world: _World, lo: np.ndarray, hi: np.ndarray, origin: np.ndarray, rays: _Rays,
            k: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Render one camera: RGB uint8 image and depth along the optical axis (inf for sky)."""
    t, hit, axis = _trace(origin, rays, lo, hi, _camera_regions(lo, hi, origin, k, size))
    dirs = rays.dirs.reshape(-1, 3)
    flat_hit = hit.ravel()
    solid = np.nonzero(flat_hit != _SKY)[0]
    sky = np.nonzero(flat_hit == _SKY)[0]
    d, dist, face = dirs[solid], t.ravel()[solid], axis.ravel()[solid].astype(np.intp)
    colour = _albedo(world, lo, hi, origin.astype(np.float32) + dist[:, None] * d,
                     flat_hit[solid], face)
    # Lambert: the face normal points against the ray along the face's axis.
    sun = world.light
    towards_sun = sun.sun[face]
    lit = np.where(np.take_along_axis(d, face[:, None], axis=1)[:, 0] > 0, -towards_sun,
                   towards_sun)
    light = np.float32(sun.ambient) + np.float32(sun.sun_strength) * np.maximum(lit, 0.0)
    keep = np.exp(-dist * rays.length.ravel()[solid]
                  / np.float32(sun.haze_distance))[:, None]
    rgb = np.empty((len(flat_hit), 3), dtype=np.float32)
    rgb[solid] = (colour * light[:, None]) * keep + sun.haze * (1 - keep)
    rgb[sky] = _sky(dirs[sky], sun, world.seed)
    image = np.clip(rgb * np.float32(255.0 * sun.exposure) + 0.5, 0, 255)
    image = image.astype(np.uint8).reshape(*t.shape, 3)
    return image, t


def _scan(world: _World, lo: np.ndarray, hi: np.ndarray, origin: np.ndarray, rays: _Rays,
          local: np.ndarray, column_azimuth: np.ndarray) -> np.ndarray:
    """
    Cast the 64 beams.

    Returns (N, 4) float32 points ``x y z reflectance`` in the Velodyne frame, reflectance
    being the albedo's luminance.
    """
    t, hit, axis = _trace(origin, rays, lo, hi, _lidar_regions(lo, hi, origin, column_azimuth))
    returned = np.nonzero((hit.ravel() != _SKY) & (t.ravel() <= LIDAR_RANGE))[0]
    dist = t.ravel()[returned]
    world_points = origin.astype(np.float32) + dist[:, None] * rays.dirs.reshape(-1, 3)[returned]
    colour = _albedo(world, lo, hi, world_points, hit.ravel()[returned], axis.ravel()[returned])
    reflectance = colour @ np.array([0.30, 0.59, 0.11], dtype=np.float32)
    # The hit in Velodyne coordinates is the beam's own direction scaled by the distance.
    xyz = dist[:, None].astype(np.float64) * local.reshape(-1, 3)[returned]
    return np.column_stack([xyz, np.clip(reflectance, 0.0, 1.0)]).astype(np.float32)

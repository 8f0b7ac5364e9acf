"""Generate the synthetic RobustMAD-style sample dataset shipped in ``judgekit/sample_data/robustmad_sample``.

Run ``python -m judgekit.sample_data.generate [--out DIR]``. Everything is drawn procedurally with NumPy
and written with a small PNG encoder on the standard library's ``zlib`` (no imaging library needed):

- 12 images, 256 x 256 RGB: a hexagonal metal nut, a screw and a woven fabric, each defect-free and with
  three defects (a scratch, a dent, a missing part) at known cells of a 3 x 3 grid;
- ``items.jsonl``: 24 questions, six in each RobustMAD category, with ground-truth answers;
- ``responses.jsonl``: the answers of three pretend models of clearly different quality
  (``strong-vlm`` > ``medium-vlm`` > ``weak-vlm``), written by hand below;
- ``README.md``: what the dataset is and how it was made.

The output is deterministic: no random number generator is used (noise comes from an integer hash of the
pixel coordinates), and a re-run writes byte-identical files, provided the zlib library is the same
(:data:`ZLIB_REFERENCE_VERSION` is the one the shipped files were made with; another zlib build may
compress the same pixels into different bytes).

The module is kept as one piece: it is the self-contained recipe of the shipped files, its drawings, the defect
cells of :data:`IMAGES` and the hand-written items and answers of :data:`ITEMS` (about a quarter of its lines, data
rather than logic) describe the same pictures and change together, and nothing else in judgekit imports it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SIZE = 256
"""Width and height of every image, in pixels."""

ZLIB_REFERENCE_VERSION = "1.2.13"
"""The zlib runtime version that produced the shipped PNG files."""

DEFAULT_OUT = Path(__file__).resolve().parent / "robustmad_sample"
"""Where the shipped dataset lives (and where the generator writes by default)."""

MODELS = ("strong-vlm", "medium-vlm", "weak-vlm")
"""The pretend candidate models, best first."""

CATEGORIES = ("object_understanding", "anomaly_detection", "pairwise", "unanswerable")
"""The four RobustMAD categories, in the order the items are listed."""

GRID_CELLS = ("top-left", "top", "top-right", "left", "center", "right", "bottom-left", "bottom", "bottom-right")
"""Names of the 3 x 3 grid cells, row by row (the vocabulary of ``rubrics/robustmad.yaml``)."""

Array = np.ndarray


# --------------------------------------------------------------------------------------------- PNG files


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(img: Array) -> bytes:
    """Encode an ``(H, W, 3)`` uint8 array as an 8-bit RGB PNG.

    Each row gets the PNG filter (None, Sub, Up, Average, Paeth) with the smallest sum of absolute signed
    residuals (the usual heuristic), then the stream is deflated at level 9. Deterministic for a given zlib.
    """
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError("expected an (H, W, 3) uint8 array")
    h, w, _ = img.shape
    raw = img.reshape(h, w * 3).astype(np.int16)
    left = np.zeros_like(raw)
    left[:, 3:] = raw[:, :-3]
    up = np.zeros_like(raw)
    up[1:] = raw[:-1]
    upleft = np.zeros_like(raw)
    upleft[1:, 3:] = raw[:-1, :-3]
    p = left + up - upleft
    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
    filtered = np.stack([raw, raw - left, raw - up, raw - (left + up) // 2, raw - paeth]) % 256
    cost = np.abs(filtered.astype(np.uint8).view(np.int8).astype(np.int32)).sum(axis=2)
    choice = np.argmin(cost, axis=0)
    rows = filtered[choice, np.arange(h)].astype(np.uint8)
    data = np.concatenate([choice.astype(np.uint8)[:, None], rows], axis=1).tobytes()
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(data, 9))
            + _chunk(b"IEND", b""))


def decode_png(data: bytes) -> Array:
    """Decode an 8-bit RGB, non-interlaced PNG (what :func:`encode_png` writes) into an ``(H, W, 3)`` array.

    Checks the signature, every chunk's CRC, the header, the filter type of every row and the length of
    the pixel stream; raises ``ValueError`` on any problem.
    """
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("not a PNG file (bad signature)")
    pos, idat, header, ended = 8, b"", None, False
    while pos < len(data):
        if pos + 8 > len(data):
            raise ValueError("truncated chunk header")
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            raise ValueError(f"truncated {kind!r} chunk")
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if crc != zlib.crc32(kind + body) & 0xFFFFFFFF:
            raise ValueError(f"bad CRC in {kind!r} chunk")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            ended = True
            break
        pos += 12 + length
    if header is None or not ended:
        raise ValueError("missing IHDR or IEND chunk")
    w, h, depth, colour, compression, flt, interlace = header
    if (depth, colour, compression, flt, interlace) != (8, 2, 0, 0, 0):
        raise ValueError("only 8-bit RGB non-interlaced PNGs are supported")
    stream = zlib.decompress(idat)
    stride = w * 3
    if len(stream) != h * (stride + 1):
        raise ValueError("pixel stream has the wrong length")
    out = np.zeros((h, stride), dtype=np.uint8)
    prev = [0] * stride
    for y in range(h):
        kind = stream[y * (stride + 1)]
        row = list(stream[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 0:
            cur = row
        elif kind == 2:
            cur = [(a + b) & 255 for a, b in zip(row, prev, strict=True)]
        elif kind in (1, 3, 4):
            cur = [0] * stride
            for i in range(stride):
                a = cur[i - 3] if i >= 3 else 0
                b = prev[i]
                if kind == 1:
                    pred = a
                elif kind == 3:
                    pred = (a + b) // 2
                else:
                    c = prev[i - 3] if i >= 3 else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[i] = (row[i] + pred) & 255
        else:
            raise ValueError(f"bad filter type {kind} in row {y}")
        out[y] = cur
        prev = cur
    return out.reshape(h, w, 3)


# ------------------------------------------------------------------------------------- drawing helpers


def _grid() -> tuple[Array, Array]:
    """Pixel-centre coordinates ``(x, y)``, each ``(SIZE, SIZE)`` float64."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    return xx + 0.5, yy + 0.5


def _hash_noise(seed: int) -> Array:
    """Deterministic white noise in [0, 1) from an integer hash of the pixel coordinates."""
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.uint32)
    h = x * np.uint32(374761393) + y * np.uint32(668265263) + np.uint32((seed * 2654435761) % 2**32)
    h = (h ^ (h >> np.uint32(13))) * np.uint32(1274126177)
    h = h ^ (h >> np.uint32(16))
    return h.astype(np.float64) / 2**32


def _value_noise(seed: int, cells: int) -> Array:
    """Smooth noise in [0, 1): hashed values on a coarse ``cells`` x ``cells`` lattice, bilinearly smoothed."""
    lattice = _hash_noise(seed)[: cells + 1, : cells + 1]
    t = (np.arange(SIZE) + 0.5) / SIZE * cells
    i = np.minimum(t.astype(int), cells - 1)
    f = t - i
    f = f * f * (3 - 2 * f)
    rows = lattice[i] * (1 - f)[:, None] + lattice[i + 1] * f[:, None]
    return rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]


def _coverage(dist: Array) -> Array:
    """Anti-aliased coverage from a signed distance (positive inside), one pixel wide ramp."""
    return np.clip(dist + 0.5, 0.0, 1.0)


def _segment_distance(x: Array, y: Array, p0: tuple[float, float], p1: tuple[float, float]) -> Array:
    """Distance of every pixel centre from the segment p0-p1."""
    (x0, y0), (x1, y1) = p0, p1
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    return np.hypot(x - x0 - t * dx, y - y0 - t * dy)


def _blend(img: Array, alpha: Array, colour: Sequence[float] | Array) -> Array:
    """``img`` with ``colour`` painted over it at per-pixel opacity ``alpha``."""
    a = alpha[..., None]
    return img * (1 - a) + np.asarray(colour, dtype=np.float64) * a


def _scratch(img: Array, x: Array, y: Array, points: Sequence[tuple[float, float]], bright: Sequence[float],
             dark: Sequence[float], width: float = 1.4) -> Array:
    """A thin bright polyline with a darker shadow line one pixel below-right of it."""
    dist = np.full(x.shape, np.inf)
    shadow = np.full(x.shape, np.inf)
    for p0, p1 in itertools.pairwise(points):
        dist = np.minimum(dist, _segment_distance(x, y, p0, p1))
        shadow = np.minimum(shadow, _segment_distance(x - 1.3, y - 1.3, p0, p1))
    img = _blend(img, 0.75 * _coverage(width / 2 + 0.4 - shadow), dark)
    return _blend(img, 0.95 * _coverage(width / 2 - dist), bright)


def _to_uint8(img: Array) -> Array:
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _box_blur(a: Array, radius: int) -> Array:
    """Separable box blur with edge padding (used for soft shadows)."""
    k = 2 * radius + 1
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius + 1, radius)
        c = np.cumsum(np.pad(a, pad, mode="edge"), axis=axis)
        a = (np.take(c, range(k, c.shape[axis]), axis=axis) - np.take(c, range(0, c.shape[axis] - k), axis=axis)) / k
    return a


# ------------------------------------------------------------------------------------------ the objects


def draw_metal_nut(defect: str | None) -> Array:
    """A silver-grey hexagonal metal nut with a round hole, on a black background.

    ``defect``: None, ``"scratch"`` (left), ``"dent"`` (bottom) or ``"missing_corner"`` (top-right).
    """
    x, y = _grid()
    cx = cy = SIZE / 2
    u, v = x - cx, y - cy
    radius, hole = 100.0, 34.0
    s3 = np.sqrt(3.0)
    rot = np.pi / 12  # turned 15 degrees: corners at -45, 15, 75, 135, 195 and 255 degrees
    ru = np.cos(rot) * u + np.sin(rot) * v
    rv = -np.sin(rot) * u + np.cos(rot) * v
    d_hex = np.minimum(s3 / 2 * radius - np.abs(rv), (s3 * radius - s3 * np.abs(ru) - np.abs(rv)) / 2)
    r = np.hypot(u, v)
    d_hole = r - hole
    d_metal = np.minimum(d_hex, d_hole)
    d_cut = np.full(x.shape, np.inf)
    if defect == "missing_corner":
        # a jagged break across the top-right corner (the corner at -45 degrees)
        along = (u - v) / np.sqrt(2.0)
        across = (u + v) / np.sqrt(2.0)
        edge = 80.0 + 3.0 * np.sin(across * 0.13) + 2.0 * np.sin(across * 0.31 + 1.0) + 0.7 * np.sin(across * 0.67 + 2)
        d_cut = edge - along
        d_metal = np.minimum(d_metal, d_cut)

    bg = 16.0 + 10.0 * (y / SIZE) + 3.0 * _hash_noise(1)
    img = np.repeat(bg[..., None], 3, axis=2)

    # shading: light from the top-left, brushed concentric rings, a soft highlight, bevelled edges
    shade = 128.0 - 44.0 * (u + v) / (2 * radius)
    shade += 3.0 * np.sin(r * 0.9) + 2.0 * np.sin(r * 2.3 + 0.7)
    shade += 40.0 * np.exp(-(((u + 38) / 34) ** 2 + ((v + 44) / 26) ** 2))
    shade += 8.0 * (_value_noise(3, 8) - 0.5) + 4.0 * (_hash_noise(2) - 0.5)
    light = np.array([-1.0, -1.0]) / np.sqrt(2.0)
    theta = np.arctan2(rv, ru)
    sector = np.floor((theta + np.pi) / (np.pi / 3))  # outward edge normals at 30 + 60k degrees, before the turn
    normal = sector * np.pi / 3 - np.pi + np.pi / 6 + rot
    edge_light = np.cos(normal) * light[0] + np.sin(normal) * light[1]
    bevel = np.clip(1 - d_hex / 9.0, 0, 1)
    shade += 60.0 * edge_light * bevel
    chamfer = np.clip(1 - (r - hole) / 11.0, 0, 1)
    inward = -(u * light[0] + v * light[1]) / np.maximum(r, 1e-6)
    shade += 50.0 * inward * chamfer - 10.0 * chamfer
    if defect == "missing_corner":
        fracture = np.clip(1 - d_cut / 3.0, 0, 1)
        shade = shade * (1 - 0.35 * fracture)
    if defect == "dent":
        ex, ey, ax, ay = 0.0, 66.0, 17.0, 10.0
        q = ((u - ex) / ax) ** 2 + ((v - ey) / ay) ** 2
        blotch = np.clip(1.15 - q, 0, 1) ** 0.7
        shade = shade * (1 - 0.62 * blotch)
        rim = np.exp(-(((u - ex - 8) / 7) ** 2 + ((v - ey - 5) / 3.2) ** 2))
        shade += 110.0 * rim
    metal = np.stack([shade, shade, shade * 1.03 + 2], axis=2)
    img = _blend(img, _coverage(d_metal), metal)
    if defect == "scratch":
        img = _scratch(img, x, y, [(44, 100), (58, 122), (76, 152)], bright=(246, 246, 250), dark=(50, 50, 54),
                       width=1.8)
    return _to_uint8(img)


def draw_screw(defect: str | None) -> Array:
    """A silver-grey steel screw lying diagonally (head top-left, tip bottom-right) on light grey.

    ``defect``: None, ``"scratch"`` (on the head, top-left), ``"missing_thread"`` (center) or
    ``"broken_tip"`` (bottom-right).
    """
    x, y = _grid()
    x0 = y0 = 36.0
    s2 = np.sqrt(2.0)
    u = ((x - x0) + (y - y0)) / s2  # along the axis, from the head's end
    v = ((x - x0) - (y - y0)) / s2  # across the axis, positive toward the top-right
    length, head_len, head_r, shaft_r, pitch = 252.0, 34.0, 26.0, 12.5, 9.0
    tip_start = length - 28.0

    # head: a rounded box along the axis
    qu = np.abs(u - head_len / 2) - (head_len / 2 - 7)
    qv = np.abs(v) - (head_r - 7)
    d_head = 7 - (np.hypot(np.maximum(qu, 0), np.maximum(qv, 0)) + np.minimum(np.maximum(qu, qv), 0))
    # shaft: thread crests make the outline saw-toothed; the tip tapers to a point
    phase = (u + 0.28 * v) / pitch
    tri = np.abs((phase % 1.0) - 0.5) * 2  # 1 at a crest, 0 in the groove
    r_shaft = shaft_r - 2.6 + 3.4 * tri
    threaded = np.ones_like(u)
    if defect == "missing_thread":
        band = (u > 112) & (u < 142)
        r_shaft = np.where(band, shaft_r - 2.4, r_shaft)
        threaded = np.where(band, 0.0, 1.0)
    taper = np.clip((length - u) / (length - tip_start), 0, 1)
    r_here = np.where(u > tip_start, np.maximum(r_shaft * taper, 0.5), r_shaft)
    d_shaft = np.minimum(r_here - np.abs(v), np.minimum(u - head_len + 2, length - u))
    d_break = np.full(x.shape, np.inf)
    if defect == "broken_tip":
        d_break = 212.0 + 2.5 * np.sin(v * 0.9) + 1.5 * np.sin(v * 2.1 + 1.0) - u
        d_shaft = np.minimum(d_shaft, d_break)
    d_screw = np.maximum(d_head, d_shaft)

    r_bg = np.hypot(x - 128, y - 128)
    bg = 206.0 - 18.0 * (r_bg / 181.0) ** 2 + 3.0 * (_value_noise(11, 6) - 0.5) + 2.0 * _hash_noise(12)
    shadow = _box_blur(_coverage(np.roll(d_screw, (5, 3), axis=(0, 1))), 3)
    bg = bg * (1 - 0.28 * shadow)
    img = np.repeat(bg[..., None], 3, axis=2)

    # cylindrical shading of the shaft and the head, light from above (the +v side)
    radius_local = np.where(u < head_len, head_r, np.maximum(r_here, 1.0))
    t = np.clip(v / radius_local, -1, 1)
    z = np.sqrt(1 - t * t)
    shade = 70.0 + 105.0 * z ** 0.8 + 70.0 * np.exp(-(((t - 0.38) / 0.16) ** 2))
    groove = np.clip(1 - tri / 0.35, 0, 1) * threaded * (u > head_len) * (u < length - 6)
    shade = shade * (1 - 0.45 * groove)
    if defect == "missing_thread":
        band = (u > 112) & (u < 142)
        shade = np.where(band, shade * 1.06 + 6, shade)
    head_end = np.clip(1 - np.abs(u - head_len) / 3.0, 0, 1) * (u < head_len + 3)
    shade = shade * (1 - 0.35 * head_end)
    shade += 4.0 * (_hash_noise(13) - 0.5)
    if defect == "broken_tip":
        face = np.clip(1 - d_break / 4.0, 0, 1)
        shade = shade * (1 - 0.3 * face) + 10 * face * (_hash_noise(14) - 0.5)
    steel = np.stack([shade * 0.97, shade * 0.99, shade * 1.03], axis=2)
    img = _blend(img, _coverage(d_screw), steel)
    if defect == "scratch":
        def at(a: float, b: float) -> tuple[float, float]:
            return (x0 + (a + b) / s2, y0 + (a - b) / s2)

        img = _scratch(img, x, y, [at(7, -19), at(15, -3), at(26, 15)], bright=(246, 247, 250), dark=(60, 62, 66))
    return _to_uint8(img)


def draw_weave(defect: str | None) -> Array:
    """A plain-weave fabric: beige vertical strands cross brown horizontal strands, dark gaps between.

    ``defect``: None, ``"scratch"`` (a pale cut line, top-right), ``"dent"`` (a dark crushed spot,
    center) or ``"hole"`` (missing strands, bottom-left).
    """
    x, y = _grid()
    period, half = 32.0, 12.0
    col = np.floor(x / period)
    row = np.floor(y / period)
    dx = (x % period) - period / 2
    dy = (y % period) - period / 2
    warp_top = ((col + row) % 2) == 0
    d_warp = half - np.abs(dx)  # distance inside the vertical strand
    d_weft = half - np.abs(dy)
    warp_cov = _coverage(d_warp)
    weft_cov = _coverage(d_weft)

    colour_var = 1 + 0.07 * (_value_noise(21, 8) - 0.5) + 0.04 * (_hash_noise(22) - 0.5)
    # warp: bulges up where it lies on top, fibres twisted diagonally
    along_w = 0.78 + 0.22 * np.cos(np.pi * (y - period / 2) / period + np.pi * (col % 2))
    across_w = 0.55 + 0.45 * np.sqrt(np.clip(1 - (dx / (half + 0.5)) ** 2, 0, 1))
    fibre_w = 1 + 0.09 * np.sin(2 * np.pi * (dx + 0.45 * y) / 4.0)
    warp = (along_w * across_w * fibre_w * colour_var)[..., None] * np.array([222.0, 198.0, 152.0])
    along_f = 0.78 + 0.22 * np.cos(np.pi * (x - period / 2) / period + np.pi * (row % 2) + np.pi)
    across_f = 0.55 + 0.45 * np.sqrt(np.clip(1 - (dy / (half + 0.5)) ** 2, 0, 1))
    fibre_f = 1 + 0.09 * np.sin(2 * np.pi * (dy + 0.45 * x) / 4.0)
    weft = (along_f * across_f * fibre_f * colour_var)[..., None] * np.array([138.0, 92.0, 58.0])
    # the strand underneath is darker where it dips under the other one and right beside its edges
    warp = warp * np.where(warp_top, 1.0, 1 - 0.45 * np.clip(1 - (np.abs(dy) - half) / 5.0, 0, 1))[..., None]
    weft = weft * np.where(warp_top, 1 - 0.45 * np.clip(1 - (np.abs(dx) - half) / 5.0, 0, 1), 1.0)[..., None]

    gap = np.array([42.0, 30.0, 20.0]) * (0.9 + 0.2 * _hash_noise(23))[..., None]
    img = gap.copy()
    # paint the lower strand first, then the upper one
    lower_cov = np.where(warp_top, weft_cov, warp_cov)
    upper_cov = np.where(warp_top, warp_cov, weft_cov)
    lower = np.where(warp_top[..., None], weft, warp)
    upper = np.where(warp_top[..., None], warp, weft)
    img = _blend(img, lower_cov, lower)
    img = _blend(img, upper_cov, upper)

    if defect == "hole":
        cx, cy = 46.0, 208.0
        ang = np.arctan2(y - cy, x - cx)
        ragged = 21.0 + 2.5 * np.sin(5 * ang + 0.5) + 1.5 * np.sin(11 * ang) + 3.0 * _value_noise(24, 48)
        d_hole = ragged - np.hypot(x - cx, y - cy)
        rim = np.clip(1 - np.abs(d_hole) / 5.0, 0, 1) * (d_hole < 0)
        img = img * (1 - 0.3 * rim)[..., None]
        img = _blend(img, _coverage(d_hole), np.array([20.0, 14.0, 10.0]))
        # loose fibre ends reaching into the hole
        for (x0, y0, x1, y1), colour in (((30, 200, 42, 205), (200, 178, 136)), ((58, 194, 50, 204), (126, 84, 52)),
                                         ((44, 226, 47, 214), (200, 178, 136)), ((63, 215, 54, 211), (126, 84, 52))):
            fibre = _coverage(0.9 - _segment_distance(x, y, (x0, y0), (x1, y1)))
            img = _blend(img, fibre, colour)
    if defect == "dent":
        cx, cy, ax, ay = 128.0, 128.0, 24.0, 15.0
        q = ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2
        blotch = np.clip(1.25 - q, 0, 1) ** 0.5
        img = img * (1 - blotch[..., None] * np.array([0.66, 0.7, 0.74]))
        rim = np.exp(-(((x - cx + 11) / 8) ** 2 + ((y - cy + 9) / 3.0) ** 2))
        img = img + 90.0 * rim[..., None]
    if defect == "scratch":
        img = _scratch(img, x, y, [(178, 24), (204, 44), (236, 72)], bright=(246, 242, 232), dark=(60, 44, 30),
                       width=1.8)
    return _to_uint8(img)


# ------------------------------------------------------------------------------------------ the dataset


@dataclass(frozen=True)
class ImageSpec:
    """One image of the dataset: what it shows, its defect and the grid cell where the defect is."""

    name: str
    draw: Callable[[str | None], Array]
    obj: str
    defect: str | None
    location: str | None


IMAGES: tuple[ImageSpec, ...] = (
    ImageSpec("metal_nut_good", draw_metal_nut, "metal_nut", None, None),
    ImageSpec("metal_nut_scratch", draw_metal_nut, "metal_nut", "scratch", "left"),
    ImageSpec("metal_nut_dent", draw_metal_nut, "metal_nut", "dent", "bottom"),
    ImageSpec("metal_nut_missing_corner", draw_metal_nut, "metal_nut", "missing_corner", "top-right"),
    ImageSpec("screw_good", draw_screw, "screw", None, None),
    ImageSpec("screw_scratch", draw_screw, "screw", "scratch", "top-left"),
    ImageSpec("screw_missing_thread", draw_screw, "screw", "missing_thread", "center"),
    ImageSpec("screw_broken_tip", draw_screw, "screw", "broken_tip", "bottom-right"),
    ImageSpec("weave_good", draw_weave, "weave", None, None),
    ImageSpec("weave_scratch", draw_weave, "weave", "scratch", "top-right"),
    ImageSpec("weave_dent", draw_weave, "weave", "dent", "center"),
    ImageSpec("weave_hole", draw_weave, "weave", "hole", "bottom-left"),
)
"""Every image, defect-free first for each object."""

_SPECS = {spec.name: spec for spec in IMAGES}


@dataclass(frozen=True)
class ItemSpec:
    """One question with its ground truth and the three pretend models' answers."""

    id: str
    category: str
    image: str
    question: str
    reference: str
    answers: tuple[str, str, str]  # strong, medium, weak

    @property
    def reference_image(self) -> str | None:
        """Pair-wise items compare against the defect-free image of the same object; others have none."""
        return f"{_SPECS[self.image].obj}_good" if self.category == "pairwise" else None


Q_OBJECT = "What object is shown and what is it made of?"
Q_DEFECT = "Is there any defect? If so, what is it and where is it?"
Q_COMPARE = ("The second image is a defect-free reference of the same part. Compared with it, is anything "
             "different in the first image? If so, what and where?")

ITEMS: tuple[ItemSpec, ...] = (
    # ---- general object understanding
    ItemSpec(
        "ou-01", "object_understanding", "metal_nut_good", Q_OBJECT,
        "A hexagonal metal nut made of silver-grey steel, with a round hole in the center, lying on a black "
        "background.",
        ("A hexagonal metal nut made of silver-grey steel with a round hole in its center, on a black background.",
         "It is a metal nut made of grey steel, with a hole in the middle, shown on a dark background.",
         "This is a round metal washer made of brass, shown on a dark surface.")),
    ItemSpec(
        "ou-02", "object_understanding", "screw_good", Q_OBJECT,
        "A steel screw in silver-grey metal, lying diagonally on a light grey background, with its head at the "
        "top-left and a threaded shaft ending in a pointed tip at the bottom-right.",
        ("A silver-grey steel screw lying diagonally on a light grey background, with its head at the top-left "
         "and a threaded shaft ending in a pointed tip at the bottom-right.",
         "It is a grey metal screw with a head and a threaded shaft, lying on a grey background.",
         "A black plastic pin lying on a white table. It might be part of a toy or a furniture kit, the kind "
         "of small part used in many assembly tasks around the house.")),
    ItemSpec(
        "ou-03", "object_understanding", "weave_good", "What is shown in the image and what is it made of?",
        "A close-up of a woven fabric in a plain weave: vertical beige strands cross horizontal brown strands, "
        "passing alternately over and under each other, with small dark gaps between them.",
        ("A close-up of a plain-weave fabric: vertical beige strands cross horizontal brown strands, going "
         "alternately over and under each other, with small dark gaps between them.",
         "It is a woven fabric with light and dark brown strands crossing over and under each other.",
         "It is a metal grid made of steel wires welded together.")),
    ItemSpec(
        "ou-04", "object_understanding", "metal_nut_dent",
        "Describe the shape of the object. How many sides does its outer edge have?",
        "The object is a metal nut with a hexagonal outline, so its outer edge has six straight sides, and it "
        "has a round hole in the center.",
        ("The object is a hexagonal metal nut, so its outer edge has six straight sides; it has a round hole "
         "in the center.",
         "The object is a metal nut with six sides and a hole in the middle.",
         "It has six sides.")),
    ItemSpec(
        "ou-05", "object_understanding", "screw_broken_tip",
        "Where is the head of the screw in the image, and what covers its shaft?",
        "The head of the screw is at the top-left of the image; the shaft running toward the bottom-right is "
        "covered by a helical thread.",
        ("The head is at the top-left of the image, and the shaft running toward the bottom-right is covered "
         "by a helical thread.",
         "The head of the screw is at the bottom-right, and the shaft is covered by a thread.",
         "The head is at the bottom and the shaft is smooth with no thread, like a nail.")),
    ItemSpec(
        "ou-06", "object_understanding", "weave_hole",
        "What colours are the strands of this material, and in which directions do they run?",
        "The woven fabric has beige strands running vertically and brown strands running horizontally, "
        "crossing each other at right angles.",
        ("Beige strands run vertically and brown strands run horizontally, crossing each other at right "
         "angles.",
         "The strands are light brown and dark brown, and they cross each other at right angles like a "
         "grid.",
         "The strands are blue and white and run diagonally in a twisted pattern.")),
    # ---- stand-alone anomaly detection and localisation
    ItemSpec(
        "ad-01", "anomaly_detection", "metal_nut_scratch", Q_DEFECT,
        "Yes, there is a thin bright scratch on the metal nut's surface at the left, running diagonally from "
        "upper left to lower right.",
        ("Yes, there is a thin bright scratch on the nut's surface at the left, running diagonally from upper "
         "left to lower right.",
         "Yes, there is a thin scratch on the metal nut's surface, near the top.",
         "No, the metal nut looks normal and has no defects.")),
    ItemSpec(
        "ad-02", "anomaly_detection", "metal_nut_missing_corner", Q_DEFECT,
        "Yes, a part is missing: the top-right corner of the hexagonal nut is broken off, leaving a jagged edge "
        "where the black background shows through.",
        ("Yes, the top-right corner of the hexagonal nut is broken off, leaving a jagged edge where the black "
         "background shows through.",
         "Yes, a part of the nut is missing on the right side, with a rough edge.",
         "Yes, there is a small scratch inside the center hole of the nut.")),
    ItemSpec(
        "ad-03", "anomaly_detection", "screw_broken_tip", Q_DEFECT,
        "Yes, the tip of the screw is broken off at the bottom-right: the pointed end is missing and the shaft "
        "ends in a rough, flat break.",
        ("Yes, the tip of the screw is broken off at the bottom-right; the pointed end is missing and the "
         "shaft ends in a rough break.",
         "Yes, the end of the screw looks damaged; the tip may be broken.",
         "No defect. The screw is intact from head to tip.")),
    ItemSpec(
        "ad-04", "anomaly_detection", "screw_missing_thread", Q_DEFECT,
        "Yes, a section of the thread is missing at the center of the shaft: the threads are worn away there, "
        "leaving a smooth, narrower band between intact threads.",
        ("Yes, at the center of the shaft a section of the thread is missing, leaving a smooth, narrower band "
         "between intact threads.",
         "No, the screw looks fine; the threads may be a little worn, but there is no clear defect.",
         "Yes, the head of the screw is bent at the top-left and the screw is rusty.")),
    ItemSpec(
        "ad-05", "anomaly_detection", "weave_hole", Q_DEFECT,
        "Yes, there is a hole in the woven fabric at the bottom-left, where beige and brown strands are missing "
        "and the dark background shows through the frayed opening.",
        ("Yes, there is a hole in the fabric at the bottom-left, where strands are missing and the dark "
         "background shows through a frayed opening.",
         "Yes, there is a hole in the woven fabric at the bottom, where strands are missing.",
         "No, the fabric pattern is regular and uniform everywhere. Woven fabrics like this are common in "
         "carpets, bags and upholstery, and they are made on a loom.")),
    ItemSpec(
        "ad-06", "anomaly_detection", "metal_nut_good", Q_DEFECT,
        "No, the metal nut is free of defects: its six sides, surface and round center hole are intact, with "
        "no scratches, dents or missing parts.",
        ("No, the metal nut has no defects: its six sides, surface and round center hole are intact.",
         "Yes, there may be a small dent on the metal nut's surface at the bottom-right.",
         "Yes, the nut is cracked across the middle and a large piece is missing at the bottom-left.")),
    # ---- pair-wise comparison with a defect-free reference image
    ItemSpec(
        "pw-01", "pairwise", "metal_nut_dent", Q_COMPARE,
        "Unlike the reference, the metal nut has a dent at the bottom: a dark grey elliptical depression with "
        "a bright highlight on its lower-right rim, between the center hole and the bottom edge.",
        ("Unlike the reference, the nut has a dent at the bottom: a dark grey elliptical depression with a "
         "bright highlight on its rim, between the center hole and the bottom edge.",
         "Unlike the reference, the nut has a dark spot near the bottom, maybe a dent.",
         "The two nuts are identical; there is no difference.")),
    ItemSpec(
        "pw-02", "pairwise", "metal_nut_scratch", Q_COMPARE,
        "Unlike the reference, the nut has a thin bright silver-white scratch on its surface at the left, "
        "running diagonally downward; its shape, hole and colour otherwise match the reference.",
        ("Unlike the reference, the nut has a thin bright scratch on its surface at the left, running "
         "diagonally; otherwise it matches the reference.",
         "Unlike the reference, there is a thin line on the nut, maybe a scratch, on the right.",
         "The first nut is larger and a different colour than the reference, which is made of copper.")),
    ItemSpec(
        "pw-03", "pairwise", "screw_scratch", Q_COMPARE,
        "Unlike the reference, the screw has a thin bright scratch across its head at the top-left; the "
        "threaded shaft and the tip match the defect-free reference.",
        ("Unlike the reference, the screw has a thin bright scratch across its head at the top-left; the shaft "
         "and tip match the reference.",
         "Unlike the reference, the screw has a scratch, but the shaft and tip look the same.",
         "The screw is missing its tip at the bottom-right.")),
    ItemSpec(
        "pw-04", "pairwise", "screw_missing_thread", Q_COMPARE,
        "The thread is missing over a short section at the center of the shaft, leaving a smooth, narrower "
        "band; the reference screw has continuous threads there.",
        ("The thread is missing over a short section at the center of the shaft, leaving a smooth band; the "
         "reference screw has continuous threads.",
         "The screw is slightly different around the tip; the threads there look damaged compared with "
         "the reference.",
         "Both screws look the same to me. Screws are used to fasten things and come in many sizes, with "
         "different heads such as flat, pan or hex heads.")),
    ItemSpec(
        "pw-05", "pairwise", "weave_scratch", Q_COMPARE,
        "Unlike the reference, the fabric has a thin pale, almost white, diagonal cut line across several "
        "strands at the top-right; the rest of the weave matches the reference.",
        ("Unlike the reference, the fabric has a thin, almost white, diagonal cut line across several strands "
         "at the top-right; the rest of the weave matches.",
         "Unlike the reference, the fabric has a light line across some strands at the top.",
         "The fabric has a large hole in the center where the strands are torn.")),
    ItemSpec(
        "pw-06", "pairwise", "weave_dent", Q_COMPARE,
        "Unlike the reference, the fabric has a dark brown, flattened elliptical spot at the center, where the "
        "strands look crushed, with a small bright highlight on its upper-left edge.",
        ("Unlike the reference, the fabric has a dark brown, flattened spot at the center where the strands "
         "look crushed, with a small bright highlight.",
         "Unlike the reference, the fabric has a darker spot in the middle.",
         "The reference has a stain but the first fabric is clean.")),
    # ---- unanswerable or misleading questions
    ItemSpec(
        "un-01", "unanswerable", "metal_nut_good", "Is the crack on the gear tooth at the top-left?",
        "There is no gear and no crack in the image. It shows a hexagonal silver-grey metal nut with a round "
        "center hole, and it has no visible defect.",
        ("There is no gear and no crack here. The image shows a hexagonal silver-grey metal nut with a round "
         "center hole, and it has no visible defect.",
         "I don't see a crack at the top-left. The part looks fine, with no visible defect.",
         "Yes, the crack on the gear tooth is at the top-left, running outward from the root of the tooth.")),
    ItemSpec(
        "un-02", "unanswerable", "screw_scratch", "What colour is the rubber washer under the screw head?",
        "There is no rubber washer in the image. It shows a silver-grey steel screw alone on a light grey "
        "background; its only defect is a thin bright scratch on its head at the top-left.",
        ("There is no rubber washer in the image; it shows a silver-grey steel screw alone on a light grey "
         "background, with a thin bright scratch on its head at the top-left.",
         "The rubber washer under the screw head is black.",
         "The rubber washer is red and slightly worn at the edge.")),
    ItemSpec(
        "un-03", "unanswerable", "weave_good", "Is the red thread at the top-right frayed?",
        "There is no red thread in the image. The woven fabric has only beige vertical and brown horizontal "
        "strands, none of them frayed; the weave has no defect.",
        ("There is no red thread; the woven fabric has only beige vertical and brown horizontal strands, none "
         "of them frayed, and no defect.",
         "There is no red thread that I can see; the woven fabric looks normal, with no defect.",
         "Yes, the red thread at the top-right is frayed and loose.")),
    ItemSpec(
        "un-04", "unanswerable", "metal_nut_scratch", "How deep is the rust pit next to the scratch?",
        "There is no rust pit in the image. The silver-grey metal nut shows no rust; its only defect is a thin "
        "bright scratch at the left, and its depth cannot be measured from the image.",
        ("There is no rust pit. The silver-grey nut shows no rust; its only defect is a thin bright scratch at "
         "the left, and depth cannot be judged from the image.",
         "The rust pit next to the scratch seems shallow, about half a millimetre deep.",
         "The rust pit is about 2 mm deep and orange-brown, which suggests long exposure to moisture. Rust "
         "can spread quickly, so the part should be replaced soon.")),
    ItemSpec(
        "un-05", "unanswerable", "screw_good", "Which of the two screws in the image is longer?",
        "The image shows only one screw, a silver-grey steel screw lying diagonally on a light grey background, "
        "so there is no second screw to compare with; it has no visible defect.",
        ("There is only one screw in the image, a silver-grey steel screw lying diagonally on a light grey "
         "background, so there is nothing to compare; it has no visible defect.",
         "There is only one screw in the image, so there is nothing to compare.",
         "The screw on the left is longer than the one on the right.")),
    ItemSpec(
        "un-06", "unanswerable", "weave_scratch", "Is the zipper at the bottom of the fabric broken?",
        "There is no zipper in the image; it shows only a woven fabric of beige and brown strands. The "
        "fabric's only defect is a thin pale cut line at the top-right.",
        ("There is no zipper; the image shows only a woven fabric of beige and brown strands, whose only "
         "defect is a thin pale cut line at the top-right.",
         "There is no zipper in the image, only a woven fabric.",
         "Yes, the zipper at the bottom is broken, with two teeth missing.")),
)
"""Every question, six per category; ``answers`` are (strong, medium, weak)."""

def _image_path(name: str) -> str:
    return f"images/{name}.png"


def item_records() -> list[dict[str, object]]:
    """The rows of ``items.jsonl``."""
    return [{"id": it.id, "question": it.question, "reference": it.reference, "category": it.category,
             "images": [_image_path(it.image)],
             "reference_images": [_image_path(it.reference_image)] if it.reference_image else []}
            for it in ITEMS]


def response_records() -> list[dict[str, object]]:
    """The rows of ``responses.jsonl``: every item answered by every model, condition ``clean``."""
    rows: list[dict[str, object]] = []
    for item, it in zip(item_records(), ITEMS, strict=True):
        spec = _SPECS[it.image]
        for model, answer in zip(MODELS, it.answers, strict=True):
            rows.append({"id": item["id"], "model": model, "question": item["question"],
                         "reference": item["reference"], "response": answer, "category": item["category"],
                         "condition": "clean", "images": item["images"],
                         "reference_images": item["reference_images"],
                         "meta": {"object": spec.obj, "defect": spec.defect, "defect_location": spec.location}})
    return rows


def _jsonl(rows: list[dict[str, object]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def readme_text() -> str:
    """The dataset's README.md."""
    img_rows = "\n".join(
        f"| `images/{s.name}.png` | {s.obj.replace('_', ' ')} | {s.defect.replace('_', ' ') if s.defect else '-'} "
        f"| {s.location or '-'} |" for s in IMAGES)
    counts = {c: sum(1 for it in ITEMS if it.category == c) for c in CATEGORIES}
    cat_rows = "\n".join(f"| `{c}` | {n} |" for c, n in counts.items())
    return f"""# robustmad_sample: a small synthetic RobustMAD-style dataset

A tiny, fully synthetic dataset for trying judgekit offline and for its tests: {len(IMAGES)} drawn images of
industrial parts, {len(ITEMS)} open questions in the four RobustMAD categories with ground-truth answers,
and the answers of three pretend models of clearly different quality ({len(ITEMS) * len(MODELS)} responses).
It is not a benchmark: the images are simple drawings and the "models" are hand-written answers.

## Files

- `responses.jsonl`: judgekit's responses format (`id, model, question, reference, response, category,
  condition, images, reference_images, meta`); condition `clean` for every line; image paths are relative
  to this folder; `meta` names the object, the defect and the grid cell of the defect.
- `items.jsonl`: the questions alone (`id, question, reference, category, images, reference_images`).
- `images/`: 256 x 256 RGB PNG files.

Judge it with, for example:

    judgekit judge judgekit/sample_data/robustmad_sample/responses.jsonl --rubric rubrics/robustmad.yaml --judge MODEL

## Images

Three objects, each defect-free and with three defects (a scratch, a dent, a missing part) placed in a
known cell of a 3 x 3 grid (top-left, top, top-right, left, center, right, bottom-left, bottom,
bottom-right):

- metal nut: a silver-grey hexagonal nut with a round center hole and bevelled edges, lit from the top-left,
  on a black background;
- screw: a silver-grey steel screw lying diagonally, head at the top-left, threaded shaft, pointed tip at the
  bottom-right, on a light grey background with a soft shadow;
- weave: a plain-weave fabric, beige vertical strands crossing brown horizontal strands over and under, with
  dark gaps between them.

| file | object | defect | location |
|---|---|---|---|
{img_rows}

## Questions

| category | items |
|---|---|
{cat_rows}

Ground-truth answers follow the RobustMAD style: at most 50 words, precise colours, locations on the
3 x 3 grid. Pair-wise items show the defective part with the defect-free image of the same object as
`reference_images`. Unanswerable items ask about something that is not there (a gear tooth, a rubber
washer, a red thread, a rust pit, a second screw, a zipper); the right answer says so and names what the
image shows.

## Models

- `strong-vlm`: correct and complete, a close paraphrase of the ground truth, now and then a detail shorter.
- `medium-vlm`: right on the main point about two times in three; vague or wrong locations, missing details.
- `weak-vlm`: mostly wrong: misses defects, invents them, names the wrong object, goes along with misleading
  questions, sometimes rambles off the question.

## How it was made

    python -m judgekit.sample_data.generate [--out DIR]

`judgekit/sample_data/generate.py` draws every image with NumPy (shapes from signed distances, shading
from simple lighting models, noise from an integer hash of the pixel coordinates, no random number
generator) and writes the PNG files with its own encoder on Python's zlib; the questions, ground truths and
answers are written out in that script. A re-run writes byte-identical files with zlib
{ZLIB_REFERENCE_VERSION}, the version used here (another zlib build may deflate the same pixels into other
bytes; the pixels and the text files stay identical). `tests/test_sample_data.py` checks this, that each
defect lies in the grid cell the ground truth names, and that the mean token-F1 of the answers against the
ground truth falls clearly from `strong-vlm` to `medium-vlm` to `weak-vlm`.

## Licence

Synthetic data made for judgekit: no real photographs and no third-party data. It is distributed under the
same licence as judgekit (Apache-2.0).
"""


def generate(out: str | Path = DEFAULT_OUT) -> list[Path]:
    """Write the whole dataset into ``out`` (created if needed) and return the paths written."""
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for spec in IMAGES:
        path = out / _image_path(spec.name)
        path.write_bytes(encode_png(spec.draw(spec.defect)))
        written.append(path)
    for name, data in (("items.jsonl", _jsonl(item_records())), ("responses.jsonl", _jsonl(response_records())),
                       ("README.md", readme_text().encode("utf-8"))):
        path = out / name
        path.write_bytes(data)
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m judgekit.sample_data.generate [--out DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m judgekit.sample_data.generate",
                                     description="Generate the synthetic RobustMAD-style sample dataset.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    paths = generate(args.out)
    total = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} files ({total / 1024:.0f} KiB) to {args.out}")
    if zlib.ZLIB_RUNTIME_VERSION != ZLIB_REFERENCE_VERSION:
        print(f"note: zlib {zlib.ZLIB_RUNTIME_VERSION} here, the shipped PNGs were made with "
              f"{ZLIB_REFERENCE_VERSION}; PNG bytes may differ (pixels do not)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

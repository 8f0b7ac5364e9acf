"""Point clouds: reading PLY, PCD, XYZ and NPY files, and rendering each cloud to a fixed set of PNG views that
are attached to candidate and judge requests like any other image.

Conventions:
- Formats, chosen by the file's extension (:data:`FORMATS`): ``.ply`` (ASCII or binary, read with ``plyfile``;
  properties ``x y z`` and optional ``red green blue``), ``.pcd`` (PCL's format, ``DATA ascii`` or ``DATA binary``;
  fields ``x y z`` and an optional packed ``rgb``/``rgba``; ``binary_compressed`` is refused. The parser is our own:
  the libraries that read PCD (Open3D, python-pcl, pypcd) are heavy or unmaintained), ``.xyz`` (text, one point a
  line: ``x y z`` or ``x y z r g b``, separated by spaces, tabs or commas; blank lines and ``#`` comments skipped)
  and ``.npy`` (a numeric array of N x 3 or N x 6, read without pickles).
- Colours: 0-255 integers, or 0-1 floats (every channel of the file within 0-1) scaled to 0-255.
- Points with a NaN or an infinity (in a coordinate or a colour) are dropped; a cloud left without points is an
  error ("empty point cloud"). A cloud of more than :func:`max_cloud_points` points (the environment variable
  ``JUDGEKIT_MAX_CLOUD_POINTS``, default :data:`DEFAULT_MAX_CLOUD_POINTS`), counted from the header where the
  format has one, is an error, before it is read.
- Every error is a :class:`~judgekit.io.errors.JudgekitError` with ``path`` set to the cloud file; callers that
  read a records file re-raise :func:`cloud_problem`'s message with that file, its line and the field.
- Views (:data:`VIEWS`, in this order): ``front`` (looking along +y: the x-z plane), ``side`` (looking along -x: the
  y-z plane), ``top`` (looking down along -z: the x-y plane) and ``isometric`` (elevation 35.264 degrees, azimuth
  -45). Orthographic projection, one cube of axis limits around the bounding box's centre (its longest side, plus
  5 %), equal aspect, axes off, white background, a :data:`FIGSIZE_IN` inch figure at :data:`DPI` dots per inch
  (512 x 512 pixels), round markers whose size falls with the number of points (:data:`MARKER_AREA`), PNG.
- Colouring: the cloud's own RGB when it has colours, else depth along the view direction (``viridis``, near
  points yellow, far ones dark blue).
- Downsampling: a cloud of more than :data:`MAX_RENDER_POINTS` points is drawn from a subset of that many,
  chosen uniformly at random with a fixed seed (:data:`SAMPLE_SEED`) and kept in file order: the same file gives
  the same views.
- Rendering is CPU-only and headless: matplotlib's 3-D scatter on the Agg canvas (no pyplot, no display).
  Open3D's offscreen renderer and pyrender need OpenGL (EGL/OSMesa), which headless machines and CI lack.
- Cache: views are written to :func:`render_cache_dir` (the environment variable ``JUDGEKIT_RENDER_CACHE``, else
  ``~/.cache/judgekit/renders``) under the sha256 of the cloud file's bytes and :data:`RENDER_VERSION` (which
  changes whenever the render settings do): ``<dir>/<2 hex>/<hash>_<view>.png``, each written atomically. A
  cached view is never rendered again.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import stat
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from judgekit.io.atomic import atomic_write_bytes
from judgekit.io.errors import JudgekitError
from judgekit.io.records import Item

FORMATS = (".ply", ".pcd", ".xyz", ".npy")
"""The point-cloud file extensions recognised."""

VIEWS: dict[str, tuple[float, float, float]] = {"front": (0.0, -90.0, 1.35), "side": (0.0, 0.0, 1.35),
                                                "top": (90.0, -90.0, 1.35), "isometric": (35.264, -45.0, 0.9)}
"""The views rendered, in order: name -> (elevation, azimuth) in degrees (matplotlib's ``view_init``) and the zoom
of the axes box (the isometric view shows the cube's diagonal, so it is zoomed out)."""

RENDER_VERSION = "1"
"""Part of every cache key and of the call keys of items with point clouds: bump it when rendering changes."""

FIGSIZE_IN = 4.0
DPI = 128
MARKER_AREA = (1.0, 12.0, 40_000.0)
"""A point's marker area in points squared: ``min(12, max(1, 40000 / N))`` for N points drawn."""
MAX_RENDER_POINTS = 20_000
SAMPLE_SEED = 0
DEFAULT_MAX_CLOUD_POINTS = 10_000_000
"""Default cap on the points of one cloud (override with ``JUDGEKIT_MAX_CLOUD_POINTS``)."""

ENV_MAX_CLOUD_POINTS = "JUDGEKIT_MAX_CLOUD_POINTS"
ENV_RENDER_CACHE = "JUDGEKIT_RENDER_CACHE"

_HEADER_LIMIT = 1 << 16  # bytes of a PLY or PCD header read before giving up on finding its end
_RENDER_LOCK = threading.Lock()  # matplotlib's state (font cache, ...) is not meant for concurrent renders


@dataclass(frozen=True)
class PointCloud:
    """The finite points of a cloud: ``xyz`` (N x 3 float64) and ``rgb`` (N x 3 uint8, or None)."""

    xyz: np.ndarray
    rgb: np.ndarray | None


def max_cloud_points() -> int:
    """The points cap: ``JUDGEKIT_MAX_CLOUD_POINTS`` when set (a positive integer; ``_`` separators allowed), else
    :data:`DEFAULT_MAX_CLOUD_POINTS`. A malformed value raises :class:`JudgekitError`."""
    from judgekit.io.images import env_cap

    return env_cap(ENV_MAX_CLOUD_POINTS, DEFAULT_MAX_CLOUD_POINTS, "points")


def render_cache_dir() -> Path:
    """Where rendered views are cached: ``JUDGEKIT_RENDER_CACHE`` when set, else ``~/.cache/judgekit/renders``."""
    given = os.environ.get(ENV_RENDER_CACHE, "").strip()
    return Path(given).expanduser() if given else Path.home() / ".cache" / "judgekit" / "renders"


class _Bad(Exception):
    """A problem inside a cloud file (message only); turned into a JudgekitError naming the file."""


# ------------------------------------------------------------------------------------------------ reading

def load_cloud(path: str | Path) -> PointCloud:
    """The finite points of the cloud file ``path`` (see the module's conventions); :class:`JudgekitError`
    naming the file when it is missing, unreadable, malformed, empty (after dropping non-finite points) or above
    :func:`max_cloud_points`."""
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as exc:
        what = "point cloud file not found" if isinstance(exc, FileNotFoundError | NotADirectoryError) else \
            f"cannot read point cloud ({exc.strerror or exc})"
        raise JudgekitError(what, path=p) from None
    if not stat.S_ISREG(st.st_mode):
        raise JudgekitError("not a regular file (a point cloud file expected)", path=p)
    suffix = p.suffix.lower()
    if suffix not in FORMATS:
        raise JudgekitError(f"unknown point cloud type '{suffix}' (use {', '.join(FORMATS)})", path=p)
    if st.st_size == 0:
        raise JudgekitError("empty point cloud file", path=p)
    cap = max_cloud_points()
    try:
        xyz, rgb = {".ply": _read_ply, ".pcd": _read_pcd, ".xyz": _read_xyz, ".npy": _read_npy}[suffix](p, cap)
    except _Bad as exc:
        raise JudgekitError(str(exc), path=p) from None
    except OSError as exc:
        raise JudgekitError(f"cannot read point cloud ({exc.strerror or exc})", path=p) from None
    return _finite(xyz, rgb, p)


def _too_many(n: int, cap: int) -> _Bad:
    return _Bad(f"point cloud has {n} points, above the limit of {cap} (set {ENV_MAX_CLOUD_POINTS} to change it)")


def _finite(xyz: np.ndarray, rgb: np.ndarray | None, p: Path) -> PointCloud:
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    keep = np.isfinite(xyz).all(axis=1)
    integral = rgb is not None and np.issubdtype(np.asarray(rgb).dtype, np.integer)
    if rgb is not None:
        rgb = np.asarray(rgb, dtype=np.float64).reshape(-1, 3)
        keep &= np.isfinite(rgb).all(axis=1)
    if not keep.any():
        what = "no points" if len(xyz) == 0 else f"all {len(xyz)} points have a NaN or infinite value"
        raise JudgekitError(f"empty point cloud ({what})", path=p)
    xyz = xyz[keep]
    colours = None
    if rgb is not None:
        rgb = rgb[keep]
        if rgb.min() < 0 or rgb.max() > 255:
            raise JudgekitError("colour values outside 0-255", path=p)
        scale = 255.0 if rgb.max() <= 1.0 and not integral else 1.0
        colours = np.clip(np.rint(rgb * scale), 0, 255).astype(np.uint8)
    return PointCloud(xyz=np.ascontiguousarray(xyz), rgb=colours)


def _header_lines(p: Path, end: str, fmt: str) -> tuple[list[str], int]:
    """The header lines of a PLY/PCD file up to and including the line starting with ``end``, and the byte
    offset where the data starts."""
    with p.open("rb") as fh:
        head = fh.read(_HEADER_LIMIT)
    lines: list[str] = []
    pos = 0
    while True:
        nl = head.find(b"\n", pos)
        if nl < 0:
            raise _Bad(f"malformed {fmt} header (no '{end}' line in the first {_HEADER_LIMIT} bytes)")
        try:
            line = head[pos:nl].decode("ascii").strip()
        except UnicodeDecodeError:
            raise _Bad(f"malformed {fmt} header (not text at byte {pos})") from None
        pos = nl + 1
        lines.append(line)
        if line.split()[:1] == [end]:
            return lines, pos


def _read_ply(p: Path, cap: int) -> tuple[np.ndarray, np.ndarray | None]:
    with p.open("rb") as fh:
        magic = fh.read(4)
    if magic not in (b"ply\n", b"ply\r"):
        raise _Bad("not a PLY file (it must start with 'ply')")
    lines, _ = _header_lines(p, "end_header", "PLY")
    for line in lines:
        words = line.split()
        if words[:2] == ["element", "vertex"] and len(words) == 3 and words[2].isdigit() and int(words[2]) > cap:
            raise _too_many(int(words[2]), cap)
    from plyfile import PlyData

    try:
        data = PlyData.read(str(p))
        vertex = data["vertex"].data
    except KeyError:
        raise _Bad("PLY file has no 'vertex' element") from None
    except Exception as exc:  # plyfile raises PlyParseError, PlyHeaderParseError, ValueError, struct errors
        raise _Bad(f"malformed PLY file ({exc})") from None
    names = vertex.dtype.names or ()
    missing = [n for n in ("x", "y", "z") if n not in names]
    if missing:
        raise _Bad(f"PLY vertices lack the propert{'y' if len(missing) == 1 else 'ies'} {', '.join(missing)}")
    xyz = np.stack([np.asarray(vertex[n], dtype=np.float64) for n in ("x", "y", "z")], axis=1)
    rgb = None
    for trio in (("red", "green", "blue"), ("r", "g", "b"), ("diffuse_red", "diffuse_green", "diffuse_blue")):
        if all(n in names for n in trio):
            rgb = np.stack([np.asarray(vertex[n]) for n in trio], axis=1)
            break
    return xyz, rgb


_PCD_TYPES = {("F", 4): "f4", ("F", 8): "f8", ("U", 1): "u1", ("U", 2): "u2", ("U", 4): "u4", ("U", 8): "u8",
              ("I", 1): "i1", ("I", 2): "i2", ("I", 4): "i4", ("I", 8): "i8"}


def _read_pcd(p: Path, cap: int) -> tuple[np.ndarray, np.ndarray | None]:
    lines, offset = _header_lines(p, "DATA", "PCD")
    head: dict[str, list[str]] = {}
    for line in lines:
        if not line or line.startswith("#"):
            continue
        key, *values = line.split()
        head[key.upper()] = values
    for key in ("FIELDS", "SIZE", "TYPE", "DATA"):
        if key not in head:
            raise _Bad(f"malformed PCD header (no {key} line)")
    fields, sizes, types = head["FIELDS"], head["SIZE"], head["TYPE"]
    counts = head.get("COUNT", ["1"] * len(fields))
    if not (len(fields) == len(sizes) == len(types) == len(counts)):
        raise _Bad("malformed PCD header (FIELDS, SIZE, TYPE and COUNT differ in length)")
    dtype_fields: list[tuple[str, str] | tuple[str, str, int]] = []
    for i, (name, size, kind, count) in enumerate(zip(fields, sizes, types, counts, strict=True)):
        code = _PCD_TYPES.get((kind.upper(), int(size) if size.isdigit() else 0))
        if code is None or not count.isdigit() or int(count) < 1:
            raise _Bad(f"malformed PCD header (field {name}: SIZE {size} TYPE {kind} COUNT {count})")
        label = name if name not in {f[0] for f in dtype_fields} else f"{name}_{i}"
        dtype_fields.append((label, "<" + code) if int(count) == 1 else (label, "<" + code, int(count)))
    dtype = np.dtype(dtype_fields)  # type: ignore[call-overload]
    missing = [n for n in ("x", "y", "z") if n not in dtype.names]
    if missing:
        raise _Bad(f"PCD fields lack {', '.join(missing)}")
    points_text = (head.get("POINTS") or [""])[0]
    if points_text.isdigit():
        n = int(points_text)
    else:
        wh = head.get("WIDTH", [""])[:1] + head.get("HEIGHT", ["1"])[:1]
        if not all(v.isdigit() for v in wh):
            raise _Bad("malformed PCD header (no POINTS, WIDTH or HEIGHT count)")
        n = int(wh[0]) * int(wh[1])
    if n > cap:
        raise _too_many(n, cap)
    mode = head["DATA"][0].lower() if head["DATA"] else ""
    if mode == "binary":
        with p.open("rb") as fh:
            fh.seek(offset)
            raw = fh.read(n * dtype.itemsize + 1)
        if len(raw) < n * dtype.itemsize:
            raise _Bad(f"truncated PCD data ({len(raw)} bytes for {n} points of {dtype.itemsize} bytes)")
        arr = np.frombuffer(raw, dtype=dtype, count=n)
    elif mode == "ascii":
        arr = _pcd_ascii(p, offset, dtype, n, len(lines))
    elif mode == "binary_compressed":
        raise _Bad("PCD 'DATA binary_compressed' is not supported (save it as binary or ascii)")
    else:
        raise _Bad(f"malformed PCD header (DATA {' '.join(head['DATA'])!r}; ascii or binary expected)")
    xyz = np.stack([arr[c].astype(np.float64) for c in ("x", "y", "z")], axis=1)
    rgb = None
    for name in ("rgb", "rgba"):
        if name in dtype.names and dtype[name].shape == ():
            packed = arr[name]
            bits = packed.astype(np.float32).view(np.uint32) if packed.dtype.kind == "f" else packed.astype(np.uint32)
            rgb = np.stack([(bits >> 16) & 255, (bits >> 8) & 255, bits & 255], axis=1).astype(np.uint8)
            break
    return xyz, rgb


def _pcd_ascii(p: Path, offset: int, dtype: np.dtype, n: int, header_lines: int) -> np.ndarray:
    flat = [(name, dtype[name]) for name in dtype.names or ()]
    width = sum(int(np.prod(t.shape)) if t.shape else 1 for _, t in flat)
    arr = np.zeros(n, dtype=dtype)
    with p.open("rb") as fh:
        fh.seek(offset)
        text = fh.read().decode("ascii", errors="replace")
    row = 0
    for k, line in enumerate(text.splitlines(), start=header_lines + 1):
        words = line.split()
        if not words:
            continue
        if row >= n:
            raise _Bad(f"line {k}: more points than the header's {n}")
        if len(words) != width:
            raise _Bad(f"line {k}: expected {width} values, got {len(words)}")
        try:
            values = [float(w) for w in words]
        except ValueError:
            raise _Bad(f"line {k}: not a number in {line.strip()[:60]!r}") from None
        pos = 0
        for name, t in flat:
            size = int(np.prod(t.shape)) if t.shape else 1
            chunk = values[pos:pos + size]
            pos += size
            if t.base.kind == "f":
                arr[name][row] = chunk[0] if size == 1 else chunk
            elif name in ("rgb", "rgba"):
                arr[name][row] = int(chunk[0])
            else:
                arr[name][row] = chunk[0] if size == 1 else chunk
        row += 1
    if row < n:
        raise _Bad(f"truncated PCD data ({row} of the header's {n} points)")
    return arr


_SPLIT = re.compile(r"[\s,]+")


def _read_xyz(p: Path, cap: int) -> tuple[np.ndarray, np.ndarray | None]:
    rows: list[list[float]] = []
    width = 0
    with p.open("rb") as fh:
        for k, raw in enumerate(fh, start=1):
            line = raw.decode("utf-8", errors="replace").split("#", 1)[0].strip()
            if not line:
                continue
            words = _SPLIT.split(line)
            if len(words) not in (3, 6):
                raise _Bad(f"line {k}: expected 3 numbers (x y z) or 6 (x y z r g b), got {len(words)}")
            if width and len(words) != width:
                raise _Bad(f"line {k}: {len(words)} numbers where earlier lines have {width}")
            width = len(words)
            try:
                rows.append([float(w) for w in words])
            except ValueError:
                raise _Bad(f"line {k}: not a number in {line[:60]!r}") from None
            if len(rows) > cap:
                raise _Bad(f"point cloud has more than {cap} points, the limit (set {ENV_MAX_CLOUD_POINTS} to "
                           "change it)")
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, width or 3)
    return arr[:, :3], (arr[:, 3:6] if width == 6 else None)


def _read_npy(p: Path, cap: int) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        arr = np.load(p, allow_pickle=False, mmap_mode="r")
    except ValueError as exc:
        raise _Bad(f"not a readable .npy array ({exc})") from None
    except Exception as exc:  # numpy raises several types for a damaged header
        raise _Bad(f"not a readable .npy array ({type(exc).__name__}: {exc})") from None
    if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.shape[1] not in (3, 6):
        raise _Bad(f"expected an N x 3 or N x 6 array, got shape {getattr(arr, 'shape', '?')}")
    if arr.dtype.kind not in "fiu":
        raise _Bad(f"expected a numeric array, got dtype {arr.dtype}")
    if arr.shape[0] > cap:
        raise _too_many(arr.shape[0], cap)
    data = np.asarray(arr, dtype=np.float64)
    return data[:, :3], (data[:, 3:6] if arr.shape[1] == 6 else None)


def cloud_problem(path: str | Path) -> str | None:
    """``None`` when :func:`load_cloud` accepts ``path``, else its message (without the path), for callers that
    name the file differently (a records file, its line and field). Cached by the file's path, modification time,
    size and inode (the same cloud is often referenced by many records)."""
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError:
        st = None
    key = (st.st_mtime_ns, st.st_size, st.st_ino) if st is not None else (0, -1, 0)
    return _problem_cached(str(p), *key, max_cloud_points())


@functools.lru_cache(maxsize=4096)
def _problem_cached(path: str, mtime_ns: int, size: int, inode: int, cap: int) -> str | None:
    del mtime_ns, size, inode, cap  # they only key the cache
    try:
        load_cloud(path)
    except JudgekitError as exc:
        if exc.field == ENV_MAX_CLOUD_POINTS:
            raise
        return exc.message
    return None


def resolve_cloud_paths(item: Item, base: Path) -> list[str]:
    """The item's point-cloud paths made absolute (relative ones joined to ``base``), as image paths are."""
    from judgekit.io.images import resolve_image_path

    return [str(resolve_image_path(base, given)) for given in item.point_clouds]


# ------------------------------------------------------------------------------------------------ rendering

def downsample(cloud: PointCloud, limit: int = MAX_RENDER_POINTS) -> PointCloud:
    """At most ``limit`` points of ``cloud``: a fixed-seed uniform random subset, kept in file order."""
    n = len(cloud.xyz)
    if n <= limit:
        return cloud
    keep = np.sort(np.random.default_rng(SAMPLE_SEED).choice(n, size=limit, replace=False))
    return PointCloud(xyz=cloud.xyz[keep], rgb=None if cloud.rgb is None else cloud.rgb[keep])


def _view_direction(elev: float, azim: float) -> np.ndarray:
    """The unit vector from the scene towards the camera for matplotlib's (elevation, azimuth)."""
    e, a = np.radians(elev), np.radians(azim)
    return np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])


def _marker_area(n: int) -> float:
    lo, hi, budget = MARKER_AREA
    return min(hi, max(lo, budget / n))


def render_view(cloud: PointCloud, view: str) -> bytes:
    """The PNG bytes of one view (a name in :data:`VIEWS`) of ``cloud`` (downsampled first)."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    elev, azim, zoom = VIEWS[view]
    cloud = downsample(cloud)
    xyz = cloud.xyz
    if cloud.rgb is not None:
        colours: Any = cloud.rgb.astype(np.float64) / 255.0
    else:
        depth = xyz @ _view_direction(elev, azim)  # larger: nearer the camera
        span = float(depth.max() - depth.min())
        colours = colormaps["viridis"]((depth - depth.min()) / span if span > 0 else np.full(len(xyz), 0.5))
    lo, hi = xyz.min(axis=0), xyz.max(axis=0)
    centre = (lo + hi) / 2
    half = max(float((hi - lo).max()) / 2 * 1.05, 1e-9)
    import io

    with _RENDER_LOCK:
        fig = Figure(figsize=(FIGSIZE_IN, FIGSIZE_IN), dpi=DPI, facecolor="white")
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0, 0, 1, 1), projection="3d", proj_type="ortho", facecolor="white")
        ax.scatter(xyz[:, 0], xyz[:, 1], xyz[:, 2], c=colours, s=_marker_area(len(xyz)), marker="o", linewidths=0,
                   depthshade=False)
        ax.set_xlim(centre[0] - half, centre[0] + half)
        ax.set_ylim(centre[1] - half, centre[1] + half)
        ax.set_zlim(centre[2] - half, centre[2] + half)
        ax.set_box_aspect((1, 1, 1), zoom=zoom)
        ax.view_init(elev=elev, azim=azim)
        ax.set_axis_off()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, facecolor="white", metadata={"Software": None})
    return buf.getvalue()


def render_key(path: str | Path) -> str:
    """The cache key of a cloud's views: sha256 of the file's bytes and :data:`RENDER_VERSION`."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            content = hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError as exc:
        raise JudgekitError(f"cannot read point cloud ({exc.strerror or exc})", path=p) from None
    return hashlib.sha256(f"pointcloud-views/{RENDER_VERSION}/{content}".encode()).hexdigest()


def view_paths(path: str | Path, cache_dir: str | Path | None = None) -> list[Path]:
    """The PNG files of the views of the cloud ``path``, in :data:`VIEWS` order, rendered into the cache (see the
    module's conventions) unless already there. Errors as :func:`load_cloud`."""
    key = render_key(path)
    folder = Path(cache_dir) if cache_dir is not None else render_cache_dir()
    out = [folder / key[:2] / f"{key}_{view}.png" for view in VIEWS]
    if all(f.is_file() for f in out):
        return out
    cloud = load_cloud(path)
    for view, f in zip(VIEWS, out, strict=True):
        if not f.is_file():
            atomic_write_bytes(f, render_view(cloud, view))
    return out


def view_label(path: str | Path) -> str:
    """The text put before a cloud's views in a request."""
    return f"Point cloud {Path(path).name}: {', '.join(VIEWS)} views:"


def _safe_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "_", text)
    return "_" + name if name in ("", ".", "..") else name


def write_item_views(items: Sequence[Item], out_dir: str | Path, cache_dir: str | Path | None = None) -> list[Path]:
    """Write the views of every point cloud of ``items`` as ``OUT/<item id>/<cloud stem>_<view>.png`` (the id and
    the stem with characters other than letters, digits, ``.``, ``_`` and ``-`` replaced by ``_``). Every cloud is
    read and rendered (into the cache) before the first file is written, so bad input writes nothing; each file is
    written atomically. Two different clouds that would land on the same file are an error. Returns the files."""
    plan: dict[Path, Path] = {}
    owner: dict[Path, str] = {}
    for item in items:
        for cloud in item.point_clouds:
            views = view_paths(cloud, cache_dir)
            stem = _safe_name(Path(cloud).stem)
            for view, src in zip(VIEWS, views, strict=True):
                dest = Path(out_dir) / _safe_name(item.id) / f"{stem}_{view}.png"
                if dest in plan and plan[dest] != src:
                    raise JudgekitError(f"two different point clouds would both be written to {dest}: {owner[dest]} "
                                        f"and {cloud} (item {item.id!r})")
                plan[dest] = src
                owner[dest] = cloud
    for dest, src in plan.items():
        atomic_write_bytes(dest, src.read_bytes())
    return list(plan)

"""Image degradations for robustness runs: motion blur, low light, defocus blur, Gaussian noise, JPEG.

Conventions:
- Images are NumPy ``uint8`` arrays as OpenCV reads them: ``(H, W)`` grey, ``(H, W, 3)`` BGR or
  ``(H, W, 4)`` BGRA. Every operation works per colour channel; an alpha channel passes through unchanged.
  Only JPEG cares about the channel order (its chroma transform assumes BGR; pass ``rgb=True`` to
  :func:`degrade` for RGB arrays).
- A degradation is a :class:`Step` (operation name + parameters); a *pipeline* is a list of steps applied in
  order (composition). :func:`steps_for` turns an operation name and a severity 1-5 into parameters using
  the ladders in :data:`LADDERS` (documented in the README).
- Randomness (noise, a random motion angle) comes only from the ``numpy.random.Generator`` passed in;
  :func:`image_rng` derives one from the run's seed, the condition name and the source image's sha256, so a
  result does not depend on file names or processing order.
- The ``robustmad`` preset reproduces RobustMAD's two degradations (see :func:`robustmad_low_light`,
  :func:`robustmad_motion_blur`, :func:`robustmad_assignment`).
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from judgekit.io.errors import JudgekitError

MIN_SIDE = 32
"""Smallest accepted width and height (the same floor as ImageNet-C's corruptions)."""

# OpenCV's filter2D convolves through a DFT once the kernel's area reaches this (measured; the DFT path is
# ~25x slower on 1024x1024 images). Kernels at or above it are split into strips below it.
_DFT_AREA = 130

LADDERS: dict[str, dict[int, dict[str, Any]]] = {
    # length in pixels of a centred line kernel; angle in degrees (0 = horizontal, like RobustMAD)
    "motion_blur": {1: {"length": 5}, 2: {"length": 9}, 3: {"length": 13}, 4: {"length": 19}, 5: {"length": 27}},
    # out = 255 * gain * (x / 255) ** gamma, then optional sensor noise (read noise + shot noise)
    "low_light": {1: {"gain": 0.8, "gamma": 1.2}, 2: {"gain": 0.65, "gamma": 1.4}, 3: {"gain": 0.5, "gamma": 1.6},
                  4: {"gain": 0.35, "gamma": 1.9}, 5: {"gain": 0.25, "gamma": 2.2}},
    # radius in pixels of a uniform disk (the point-spread function of an out-of-focus lens)
    "defocus_blur": {1: {"radius": 2}, 2: {"radius": 3}, 3: {"radius": 5}, 4: {"radius": 7}, 5: {"radius": 10}},
    # standard deviation in grey levels (0-255) of zero-mean Gaussian noise, independent per pixel and channel
    "gaussian_noise": {1: {"sigma": 4.0}, 2: {"sigma": 8.0}, 3: {"sigma": 12.0}, 4: {"sigma": 18.0},
                       5: {"sigma": 26.0}},
    # JPEG quality (OpenCV/libjpeg scale 1-100)
    "jpeg": {1: {"quality": 75}, 2: {"quality": 50}, 3: {"quality": 30}, 4: {"quality": 15}, 5: {"quality": 7}},
}
OPERATIONS = tuple(LADDERS)

# Parameters a user may set on the command line (name -> type) beyond the ladder's.
_EXTRA_PARAMS: dict[str, dict[str, type]] = {
    "motion_blur": {"length": int, "angle": str},
    "low_light": {"gain": float, "gamma": float, "noise": float},
    "defocus_blur": {"radius": int},
    "gaussian_noise": {"sigma": float},
    "jpeg": {"quality": int},
}
# Sensor noise of low_light when noise=1: read-noise sigma (grey levels) and shot-noise factor per severity.
_LOW_LIGHT_NOISE = {1: (1.0, 0.05), 2: (1.5, 0.08), 3: (2.0, 0.12), 4: (3.0, 0.16), 5: (4.0, 0.2)}


def _cv2() -> Any:
    import cv2

    return cv2


@dataclass(frozen=True)
class Step:
    """One degradation: an operation name from :data:`OPERATIONS` (or ``robustmad_*``) and its parameters."""

    op: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        """``op`` followed by ``:key=value`` for each parameter, in a stable order."""
        return self.op + "".join(f":{k}={v}" for k, v in sorted(self.params.items()))


def steps_for(op: str, severity: int, overrides: Mapping[str, str] | None = None) -> Step:
    """The step for ``op`` at ``severity`` (1-5), with ``overrides`` (text values from the command line)
    replacing ladder parameters. Unknown operations, severities or parameters raise :class:`JudgekitError`."""
    if op not in LADDERS:
        raise JudgekitError(f"unknown degradation '{op}' (choose from {', '.join(OPERATIONS)})", field="--ops")
    if severity not in LADDERS[op]:
        raise JudgekitError(f"severity must be 1-5, got {severity}", field="--severity")
    params: dict[str, Any] = dict(LADDERS[op][severity])
    if op == "motion_blur":
        params["angle"] = 0.0
    if op == "low_light":
        params["noise"] = 0.0
    for key, text in (overrides or {}).items():
        kinds = _EXTRA_PARAMS[op]
        if key not in kinds:
            raise JudgekitError(f"'{op}' has no parameter '{key}' (it has {', '.join(kinds)})", field="--ops")
        params[key] = _parse_param(op, key, text, kinds[key])
    if op == "low_light" and params["noise"]:
        read, shot = _LOW_LIGHT_NOISE[severity]
        params["noise"] = float(params["noise"])
        params["read_sigma"], params["shot"] = read * params["noise"], shot * params["noise"]
    return Step(op, params)


def _parse_param(op: str, key: str, text: str, kind: type) -> Any:
    if key == "angle":
        if text == "random":
            return "random"
        kind = float
    try:
        value = kind(text)
    except ValueError:
        raise JudgekitError(f"{op}: {key} must be a {kind.__name__}, got {text!r}", field="--ops") from None
    limits = {"length": (1, 201), "radius": (1, 100), "quality": (1, 100), "gain": (0.0, 1.0),
              "gamma": (0.1, 10.0), "sigma": (0.0, 255.0), "noise": (0.0, 10.0), "angle": (-360.0, 360.0)}
    lo, hi = limits[key]
    if not lo <= value <= hi:
        raise JudgekitError(f"{op}: {key} must be in [{lo}, {hi}], got {value}", field="--ops")
    return value


# ---------------------------------------------------------------------------------------------- validation

def check_image(img: np.ndarray, source: str = "image") -> None:
    """Raise :class:`JudgekitError` unless ``img`` is an 8-bit grey, BGR or BGRA image of at least
    :data:`MIN_SIDE` pixels a side."""
    if not isinstance(img, np.ndarray):
        raise JudgekitError("not an image array", path=source)
    if img.dtype != np.uint8:
        raise JudgekitError(f"only 8-bit images are supported, this one is {img.dtype}", path=source)
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)):
        raise JudgekitError(f"unsupported image shape {img.shape} (grey, 3-channel or 4-channel)", path=source)
    h, w = img.shape[:2]
    if h < MIN_SIDE or w < MIN_SIDE:
        raise JudgekitError(f"image too small ({w}x{h}); at least {MIN_SIDE}x{MIN_SIDE} pixels", path=source)


def read_image(path: str) -> np.ndarray:
    """Decode an image file unchanged (grey stays grey, alpha is kept); clear errors for unreadable files.

    The header is checked first (:func:`judgekit.io.images.probe_bytes`): a recognised format within the pixel
    cap (``JUDGEKIT_MAX_IMAGE_PIXELS``), so a small file that would decode to gigabytes is never decoded."""
    from judgekit.io.images import probe_bytes

    cv2 = _cv2()
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise JudgekitError(f"cannot read image ({exc.strerror})", path=path) from None
    probe_bytes(raw, path)
    data = np.frombuffer(raw, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise JudgekitError("not a readable image (PNG, JPEG, BMP, TIFF or WebP expected)", path=path)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    check_image(img, path)
    return img


def encode_image(img: np.ndarray, ext: str, *, jpeg_quality: int = 95) -> bytes:
    """Encode ``img`` in the format of the extension ``ext`` (``.png``, ``.jpg``, ...). JPEG is written at
    ``jpeg_quality`` (95, OpenCV's default, as RobustMAD's script wrote its JPEG images)."""
    cv2 = _cv2()
    params: list[int] = []
    if ext.lower() in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
        if img.ndim == 3 and img.shape[2] == 4:
            img = img[:, :, :3]  # JPEG has no alpha channel
    ok, buf = cv2.imencode(ext, img, params)
    if not ok:
        raise JudgekitError(f"cannot encode an image as {ext}")
    return buf.tobytes()


# ------------------------------------------------------------------------------------------- operations

def apply_lut(img: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """``lut[img]`` for a uint8 image and a 256-entry uint8 table, alpha included (callers restore it).

    Uses stringzilla's SIMD byte translation (the one albumentations uses): ~2x ``cv2.convertScaleAbs`` and
    ~6x ``cv2.LUT`` on 1024x1024 RGB here (bench/bench_perturb.py)."""
    import stringzilla as sz

    table = np.ascontiguousarray(lut, dtype=np.uint8)
    if table.shape != (256,):
        raise ValueError("a lookup table has 256 entries")
    src = np.ascontiguousarray(img)
    out = np.empty_like(src)
    sz.translate(memoryview(src.reshape(-1)), memoryview(table), out=memoryview(out.reshape(-1)))
    return out


def _split_alpha(img: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    if img.ndim == 3 and img.shape[2] == 4:
        return np.ascontiguousarray(img[:, :, :3]), img[:, :, 3]
    return img, None


def _join_alpha(colour: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    if alpha is None:
        return colour
    return np.dstack([colour, alpha])


def line_kernel(length: int, angle: float) -> np.ndarray:
    """A normalised motion kernel: a line of ``length`` pixels through the centre of a square, odd-sized
    grid, at ``angle`` degrees counter-clockwise from horizontal. Sub-pixel positions along the line are
    spread bilinearly over the four nearest cells (so diagonal lines are not jagged); weights sum to 1."""
    size = length if length % 2 else length + 1
    c = size // 2
    k = np.zeros((size, size), np.float64)
    theta = math.radians(angle)
    dx, dy = math.cos(theta), -math.sin(theta)  # image rows grow downward
    ts = np.linspace(-(length - 1) / 2, (length - 1) / 2, length)
    for t in ts:
        x, y = c + t * dx, c + t * dy
        x0, y0 = math.floor(x), math.floor(y)
        fx, fy = x - x0, y - y0
        for yy, xx, w in ((y0, x0, (1 - fx) * (1 - fy)), (y0, x0 + 1, fx * (1 - fy)),
                          (y0 + 1, x0, (1 - fx) * fy), (y0 + 1, x0 + 1, fx * fy)):
            if w > 1e-12 and 0 <= yy < size and 0 <= xx < size:
                k[yy, xx] += w
    return k / k.sum()


def filter_direct(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlate ``img`` with ``kernel`` (anchor at the kernel's centre, reflect-101 border), rounded to uint8.

    OpenCV's ``filter2D`` switches to a DFT once the kernel's area reaches ~130, which is ~25x slower on
    large images; written here because no library call avoids it: a large kernel is cut into horizontal
    strips, each cropped to its non-zero columns and below that area, each filtered directly in float32 and
    summed (3-5x faster than the DFT for the ladder's motion kernels). The result equals the direct
    correlation up to float rounding.
    """
    cv2 = _cv2()
    kernel = np.asarray(kernel, np.float32)
    kh, kw = kernel.shape
    if kh * kw < _DFT_AREA:
        return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    cy, cx = kh // 2, kw // 2
    strips: list[tuple[int, int, np.ndarray]] = []  # (row0, col0, sub-kernel)
    r = 0
    while r < kh:
        best = None
        for r1 in range(r + 1, kh + 1):
            block = kernel[r:r1]
            cols = np.flatnonzero(block.any(axis=0))
            if cols.size == 0:
                best = (r1, 0, None)
                continue
            c0, c1 = int(cols[0]), int(cols[-1]) + 1
            if (r1 - r) * (c1 - c0) >= _DFT_AREA and best is not None:
                break
            best = (r1, c0, block[:, c0:c1])
        assert best is not None
        r1, c0, sub = best
        if sub is not None:
            strips.append((r, c0, np.ascontiguousarray(sub)))
        r = r1
    h, w = img.shape[:2]
    # float32 in and out: OpenCV's direct 8u->32f filter has no vectorised path (~30x slower than 32f->32f)
    pad = cv2.copyMakeBorder(img, cy, kh - 1 - cy, cx, kw - 1 - cx, cv2.BORDER_REFLECT_101).astype(np.float32)
    acc = None
    for r0, c0, sub in strips:
        # correlation with the anchor at (0, 0): out[y, x] = sum sub[u, v] * pad[y + u, x + v]
        sh, sw = sub.shape
        region = pad[r0:r0 + h + sh - 1, c0:c0 + w + sw - 1]
        part = cv2.filter2D(region, -1, sub, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)[:h, :w]
        acc = part if acc is None else cv2.add(acc, part)
    assert acc is not None
    return cv2.convertScaleAbs(acc)  # rounds to nearest and saturates at 255 (acc >= 0)


def motion_blur(img: np.ndarray, *, length: int, angle: float = 0.0) -> np.ndarray:
    """Linear motion blur: the mean along a centred line of ``length`` pixels at ``angle`` degrees.

    Horizontal (0/180 degrees) and vertical (90/270) blurs are box filters along rows/columns
    (``cv2.blur``, the fast path); other angles use :func:`line_kernel` with :func:`filter_direct`.
    """
    cv2 = _cv2()
    if length <= 1:
        return img.copy()
    colour, alpha = _split_alpha(img)
    a = angle % 180.0
    if a == 0.0 and length % 2:
        out = cv2.blur(colour, (length, 1), borderType=cv2.BORDER_REFLECT_101)
    elif a == 90.0 and length % 2:
        out = cv2.blur(colour, (1, length), borderType=cv2.BORDER_REFLECT_101)
    else:
        out = filter_direct(colour, line_kernel(length, angle))
    return _join_alpha(out, alpha)


def low_light(img: np.ndarray, *, gain: float, gamma: float, noise: float = 0.0, read_sigma: float = 0.0,
              shot: float = 0.0, rng: np.random.Generator | None = None) -> np.ndarray:
    """Under-exposure: ``out = 255 * gain * (x / 255) ** gamma`` per channel (a lookup table), then, when
    ``noise`` is set, sensor noise with variance ``read_sigma**2 + shot * out`` (read noise plus
    signal-dependent shot noise, in grey levels), rounded and clipped to 0-255."""
    x = np.arange(256, dtype=np.float64) / 255.0
    out = apply_lut(img, np.clip(np.rint(255.0 * gain * x ** gamma), 0, 255).astype(np.uint8))
    colour_channels = (slice(None), slice(None), slice(0, 3)) if img.ndim == 3 and img.shape[2] == 4 else ...
    if img.ndim == 3 and img.shape[2] == 4:
        out[:, :, 3] = img[:, :, 3]
    if noise:
        if rng is None:
            raise ValueError("low_light with noise needs a random generator")
        base = out[colour_channels].astype(np.float32)
        sd = np.sqrt(read_sigma ** 2 + shot * base)
        noisy = base + rng.standard_normal(base.shape, dtype=np.float32) * sd
        out[colour_channels] = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    return out


def defocus_blur(img: np.ndarray, *, radius: int) -> np.ndarray:
    """Out-of-focus blur: the mean over a disk of ``radius`` pixels (a filled ellipse of diameter
    2*radius+1), through :func:`filter_direct`."""
    cv2 = _cv2()
    colour, alpha = _split_alpha(img)
    d = 2 * radius + 1
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d)).astype(np.float64)
    return _join_alpha(filter_direct(colour, disk / disk.sum()), alpha)


def gaussian_noise(img: np.ndarray, *, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive zero-mean Gaussian noise of ``sigma`` grey levels, independent per pixel and channel,
    rounded and clipped to 0-255."""
    colour, alpha = _split_alpha(img)
    noisy = colour.astype(np.float32) + rng.standard_normal(colour.shape, dtype=np.float32) * np.float32(sigma)
    return _join_alpha(np.clip(np.rint(noisy), 0, 255).astype(np.uint8), alpha)


def jpeg(img: np.ndarray, *, quality: int, rgb: bool = False) -> np.ndarray:
    """JPEG compression artefacts: encode at ``quality`` with OpenCV's libjpeg and decode again."""
    cv2 = _cv2()
    colour, alpha = _split_alpha(img)
    if rgb and colour.ndim == 3:
        colour = colour[:, :, ::-1]
    ok, buf = cv2.imencode(".jpg", colour, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise JudgekitError("JPEG encoding failed")
    out = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE if colour.ndim == 2 else cv2.IMREAD_COLOR)
    if rgb and out.ndim == 3:
        out = np.ascontiguousarray(out[:, :, ::-1])
    return _join_alpha(out, alpha)


# ------------------------------------------------------------------------------------------------ robustmad

ROBUSTMAD_SEED = 42
ROBUSTMAD_CONDITIONS = ("low_light", "motion_blur")


def robustmad_low_light(img: np.ndarray) -> np.ndarray:
    """RobustMAD's low light: ``out = saturate(|0.6 * x - 10|)`` per channel, rounded to nearest, i.e.
    ``cv2.convertScaleAbs(x, alpha=0.6, beta=-10)``, the call RobustMAD made. Dark pixels fold upward
    (0 -> 10, 10 -> 4, 17 -> 0). 0.6x has no fractional part .5, so no rounding ties arise, and the
    256-entry table :data:`ROBUSTMAD_LOW_LIGHT_LUT` (integer arithmetic) applied by :func:`apply_lut` is
    bit-identical to that call and faster."""
    out = apply_lut(img, ROBUSTMAD_LOW_LIGHT_LUT)
    if img.ndim == 3 and img.shape[2] == 4:
        out[:, :, 3] = img[:, :, 3]
    return out


# |6x - 100| / 10, rounded to nearest (never a tie: 6x - 100 is even), saturated at 255
ROBUSTMAD_LOW_LIGHT_LUT = np.minimum((np.abs(6 * np.arange(256) - 100) + 5) // 10, 255).astype(np.uint8)


def robustmad_motion_blur(img: np.ndarray, *, impl: str = "exact") -> np.ndarray:
    """RobustMAD's motion blur: a 12x12 kernel with ones on row 5 (``int((12 - 1) / 2)``) divided by 12,
    applied with ``cv2.filter2D`` (anchor at the centre (6, 6), reflect-101 border). Each output pixel is
    the mean of the 12 pixels ``src[y - 1, x - 6 .. x + 5]``.

    ``impl="exact"`` (default) computes that mean in integers and rounds half to even: the formula, the
    same on every machine and OpenCV version, ~30x faster than the original call. ``impl="filter2d"`` makes
    the original call, which goes through OpenCV's DFT and rounds the means that are exactly k + 1/2 either
    way (measured: 1 grey level on about a quarter of those pixels, nowhere else; which ones depends on the
    OpenCV build); use it for bit-identity with RobustMAD's files made by the same OpenCV version.
    """
    cv2 = _cv2()
    colour, alpha = _split_alpha(img)
    if impl == "filter2d":
        k = np.zeros((12, 12), np.float64)
        k[5, :] = 1.0
        out = cv2.filter2D(colour, -1, k / 12.0)
    elif impl == "exact":
        # rows shifted down by one (reflect-101 at the top: row -1 is row 1), then a row box sum over
        # x-6 .. x+5 in 16-bit integers, then round(S / 12) half to even by a lookup table on S (<= 3060).
        shifted = np.concatenate([colour[1:2], colour[:-1]], axis=0)
        s = cv2.boxFilter(shifted, cv2.CV_16U, (12, 1), anchor=(6, 0), normalize=False,
                          borderType=cv2.BORDER_REFLECT_101)
        out = cv2.convertScaleAbs(s, alpha=1.0 / 12.0) if _scale_rounds_exactly() else _ROUND12[s]
    else:
        raise ValueError(f"impl must be 'exact' or 'filter2d', got {impl!r}")
    return _join_alpha(out, alpha)


_ROUND12 = np.rint(np.arange(12 * 255 + 1) / 12.0).astype(np.uint8)  # np.rint: half to even


@functools.cache
def _scale_rounds_exactly() -> bool:
    """Whether ``cv2.convertScaleAbs(S, alpha=1/12)`` equals round-half-even(S / 12) for every possible sum
    S = 0..3060, on this OpenCV build, through both its vectorised and its scalar code (each value repeated 32
    times in a row, then one value per row). It does on OpenCV 5.0 (float32 products of S and 1/12 land
    exactly on k + 1/2 at the ties) and is ~10x faster than indexing the table; otherwise the table is used."""
    cv2 = _cv2()
    values = np.arange(_ROUND12.size, dtype=np.uint16)
    wide = np.repeat(values, 32)[None, :]
    tall = values[:, None]
    return (np.array_equal(cv2.convertScaleAbs(wide, alpha=1.0 / 12.0)[0], np.repeat(_ROUND12, 32))
            and np.array_equal(cv2.convertScaleAbs(tall, alpha=1.0 / 12.0)[:, 0], _ROUND12))


def robustmad_assignment(n_pairs: int, seed: int = ROBUSTMAD_SEED) -> list[str]:
    """RobustMAD's choice of one degradation per image pair: ``ceil(n/2)`` low light then ``floor(n/2)``
    motion blur, shuffled with Python's ``random`` seeded with ``seed`` (42), in the order of the pairs."""
    labels = ["low_light"] * (n_pairs - n_pairs // 2) + ["motion_blur"] * (n_pairs // 2)
    random.Random(seed).shuffle(labels)
    return labels


# ------------------------------------------------------------------------------------------------- pipelines

def apply_step(img: np.ndarray, step: Step, rng: np.random.Generator | None = None, *, rgb: bool = False) -> np.ndarray:
    """Apply one step. ``rng`` is required for noise and for ``angle=random``."""
    p = dict(step.params)
    if step.op == "motion_blur":
        angle = p.get("angle", 0.0)
        if angle == "random":
            if rng is None:
                raise ValueError("a random motion angle needs a random generator")
            angle = float(rng.uniform(-45.0, 45.0))
        return motion_blur(img, length=int(p["length"]), angle=float(angle))
    if step.op == "low_light":
        return low_light(img, gain=p["gain"], gamma=p["gamma"], noise=p.get("noise", 0.0),
                         read_sigma=p.get("read_sigma", 0.0), shot=p.get("shot", 0.0), rng=rng)
    if step.op == "defocus_blur":
        return defocus_blur(img, radius=int(p["radius"]))
    if step.op == "gaussian_noise":
        if rng is None:
            raise ValueError("gaussian_noise needs a random generator")
        return gaussian_noise(img, sigma=float(p["sigma"]), rng=rng)
    if step.op == "jpeg":
        return jpeg(img, quality=int(p["quality"]), rgb=rgb)
    if step.op == "robustmad_low_light":
        return robustmad_low_light(img)
    if step.op == "robustmad_motion_blur":
        return robustmad_motion_blur(img, impl=p.get("impl", "exact"))
    raise JudgekitError(f"unknown degradation '{step.op}'")


def degrade(img: np.ndarray, steps: Sequence[Step], *, seed: int | np.random.Generator = 0,
            rgb: bool = False) -> np.ndarray:
    """Apply ``steps`` in order (composition) to a copy of ``img``; deterministic for a given ``seed``.

    >>> import numpy as np
    >>> img = np.full((64, 64, 3), 200, np.uint8)
    >>> degrade(img, [steps_for("low_light", 3)]).mean() < img.mean()
    True
    """
    check_image(img)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    out = img
    for step in steps:
        out = apply_step(out, step, rng, rgb=rgb)
    return out if out is not img else img.copy()


def image_rng(seed: int, condition: str, source_sha256: str) -> np.random.Generator:
    """The generator for one source image under one condition: seeded from ``(seed, sha256(condition),
    source sha256)``, so the same image gets the same noise whatever its name or position in the run."""
    cond = int.from_bytes(hashlib.sha256(condition.encode()).digest()[:8], "big")
    src = int(source_sha256[:16], 16)
    return np.random.default_rng([seed & 0xFFFFFFFFFFFFFFFF, cond, src])

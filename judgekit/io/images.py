"""Image files without decoding them: the format from the signature, the size from the header, a pixel cap.

Conventions:
- Accepted formats (:data:`FORMATS`): PNG, JPEG, GIF, WebP, BMP and TIFF (classic and BigTIFF), recognised by
  their signature (the first bytes), never by the file's extension.
- The size is read from the header: PNG's IHDR chunk, JPEG's first start-of-frame (SOFn) marker, GIF's logical
  screen, WebP's VP8/VP8L/VP8X chunk, BMP's info header, TIFF's first image file directory (the image OpenCV
  decodes). Reading it costs a few hundred bytes (a JPEG with large metadata segments: a few reads of 4 bytes
  each, seeking past the segments; a TIFF: one directory).
- Pixel cap: ``width * height`` must not exceed :func:`max_image_pixels`, the environment variable
  ``JUDGEKIT_MAX_IMAGE_PIXELS`` (a positive integer, read at each check) or :data:`DEFAULT_MAX_IMAGE_PIXELS`
  (100 megapixels; 400 MB once decoded as 8-bit RGBA). A few bytes of PNG or JPEG can decode to gigabytes:
  the cap is checked before anything decodes the image (``judgekit perturb``) and when a responses or items
  file is read (the images sent to a judge, which would decode them).
- Errors are :class:`~judgekit.io.errors.JudgekitError` with ``path`` set to the image and a message that does not
  repeat it; callers that read a records file re-raise with that file, its line and the field.
- :func:`probe_image` caches what it read by (path, modification time in ns, size, inode): the same image is
  often referenced by many records. The cap is checked on every call (it may change between calls).
"""

from __future__ import annotations

import errno
import functools
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from judgekit.io.errors import JudgekitError

DEFAULT_MAX_IMAGE_PIXELS = 100_000_000
"""Default cap on ``width * height`` (override with the environment variable ``JUDGEKIT_MAX_IMAGE_PIXELS``)."""

ENV_MAX_IMAGE_PIXELS = "JUDGEKIT_MAX_IMAGE_PIXELS"

FORMATS = ("PNG", "JPEG", "GIF", "WebP", "BMP", "TIFF")
"""The formats recognised, in the order error messages list them."""

_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WebP": "image/webp", "BMP": "image/bmp",
         "TIFF": "image/tiff"}
_EXPECTED = "PNG, JPEG, GIF, WebP, BMP or TIFF expected"
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_MAX_SEGMENTS = 10_000


@dataclass(frozen=True)
class ImageInfo:
    """What the header says: the format (one of :data:`FORMATS`) and the size in pixels."""

    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        """``width * height``."""
        return self.width * self.height

    @property
    def mime(self) -> str:
        """The MIME type of the format (``image/png``, ...)."""
        return _MIME[self.format]


class _Bad(Exception):
    """A header problem (message only); turned into a JudgekitError naming the file."""


def max_image_pixels() -> int:
    """The pixel cap: ``JUDGEKIT_MAX_IMAGE_PIXELS`` when set (a positive integer; ``_`` separators allowed),
    else :data:`DEFAULT_MAX_IMAGE_PIXELS`. A malformed value raises :class:`JudgekitError`."""
    return env_cap(ENV_MAX_IMAGE_PIXELS, DEFAULT_MAX_IMAGE_PIXELS, "pixels")


def env_cap(name: str, default: int, unit: str) -> int:
    """The positive integer in the environment variable ``name`` (``_`` separators allowed), else ``default``; a
    malformed value raises :class:`JudgekitError` naming the variable and the ``unit`` expected."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise JudgekitError(f"expected a positive whole number of {unit}, got {text!r}", field=name)
    return value


def check_pixels(info: ImageInfo, path: str | Path) -> None:
    """Raise :class:`JudgekitError` (naming ``path``) when ``info`` is above :func:`max_image_pixels`."""
    cap = max_image_pixels()
    if info.pixels > cap:
        raise JudgekitError(
            f"image is {info.width} x {info.height} = {_mp(info.pixels)} megapixels, above the limit of "
            f"{_mp(cap)} megapixels (set {ENV_MAX_IMAGE_PIXELS} to change it)", path=path)


def _mp(pixels: int) -> str:
    return f"{pixels / 1e6:.6g}"


def header_of_bytes(data: bytes, path: str | Path) -> ImageInfo:
    """Format and size of an image held in memory (``path`` only names it in errors); the cap is not checked."""
    if not data:
        raise JudgekitError("empty image file", path=path)
    try:
        return _parse(_BytesReader(data))
    except _Bad as exc:
        raise JudgekitError(str(exc), path=path) from None


def probe_bytes(data: bytes, path: str | Path) -> ImageInfo:
    """Format and size of an image held in memory (``path`` only names it in errors); the cap is checked."""
    info = header_of_bytes(data, path)
    check_pixels(info, path)
    return info


def probe_image(path: str | Path) -> ImageInfo:
    """Format and size of the image file ``path`` from its header (see the module's conventions); the cap is
    checked. Refused, with the reason: a missing file, a symbolic link loop or a broken link, a folder or other
    non-regular file, an unreadable file (permissions), an empty file, an unrecognised signature, a truncated
    or malformed header, zero dimensions, more pixels than the cap."""
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as exc:
        raise JudgekitError(_stat_problem(p, exc), path=p) from None
    if stat.S_ISDIR(st.st_mode):
        raise JudgekitError("is a folder, not an image file", path=p)
    if not stat.S_ISREG(st.st_mode):
        raise JudgekitError("not a regular file (an image file expected)", path=p)
    if st.st_size == 0:
        raise JudgekitError("empty image file", path=p)
    info = _probe_cached(str(p), st.st_mtime_ns, st.st_size, st.st_ino)
    check_pixels(info, p)
    return info


def _stat_problem(p: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symbolic link loop (too many levels of symbolic links)"
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return "broken symbolic link (its target is missing)" if os.path.islink(p) else "image file not found"
    if exc.errno == errno.EACCES:
        return "cannot read image (permission denied)"
    return f"cannot read image ({exc.strerror or exc})"


@functools.lru_cache(maxsize=65536)
def _probe_cached(path: str, mtime_ns: int, size: int, inode: int) -> ImageInfo:
    """The header of ``path`` (the other arguments only key the cache). Errors are not cached."""
    del mtime_ns, size, inode
    try:
        with open(path, "rb") as fh:
            return _parse(_FileReader(fh))
    except _Bad as exc:
        raise JudgekitError(str(exc), path=path) from None
    except OSError as exc:
        if exc.errno == errno.EACCES:
            raise JudgekitError("cannot read image (permission denied)", path=path) from None
        raise JudgekitError(f"cannot read image ({exc.strerror or exc})", path=path) from None


def clear_cache() -> None:
    """Forget every header read by :func:`probe_image`."""
    _probe_cached.cache_clear()


# ------------------------------------------------------------------------------------------------ readers

class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read_at(self, offset: int, n: int) -> bytes:
        return self.data[offset:offset + n]


class _FileReader:
    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh

    def read_at(self, offset: int, n: int) -> bytes:
        self.fh.seek(offset)
        return self.fh.read(n)


_Reader = _BytesReader | _FileReader


def _need(reader: _Reader, offset: int, n: int, fmt: str) -> bytes:
    data = reader.read_at(offset, n)
    if len(data) < n:
        raise _Bad(f"truncated {fmt} header")
    return data


# ------------------------------------------------------------------------------------------------ parsers

def _parse(reader: _Reader) -> ImageInfo:
    head = reader.read_at(0, 32)
    if not head:
        raise _Bad("empty image file")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        info = _png(reader)
    elif head.startswith(b"\xff\xd8\xff"):
        info = _jpeg(reader)
    elif head.startswith((b"GIF87a", b"GIF89a")):
        w, h = struct.unpack("<HH", _need(reader, 6, 4, "GIF"))
        info = ImageInfo("GIF", w, h)
    elif head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        info = _webp(reader)
    elif head.startswith(b"BM"):
        info = _bmp(reader)
    elif head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        info = _tiff(reader)
    else:
        raise _Bad(f"not an image file ({_EXPECTED}; it starts with {_describe(head)})")
    if info.width <= 0 or info.height <= 0:
        raise _Bad(f"{info.format} header gives no size ({info.width} x {info.height})")
    return info


def _describe(head: bytes) -> str:
    text = head[:16]
    try:
        decoded = text.decode("ascii")
    except UnicodeDecodeError:
        return f"bytes {text.hex(' ')}"
    if all(c.isprintable() or c in "\r\n\t" for c in decoded):
        return f"text {decoded!r}"
    return f"bytes {text.hex(' ')}"


def _png(reader: _Reader) -> ImageInfo:
    chunk = _need(reader, 8, 16, "PNG")
    length, kind = struct.unpack(">I4s", chunk[:8])
    if kind != b"IHDR" or length != 13:
        raise _Bad("malformed PNG header (the IHDR chunk must come first)")
    w, h = struct.unpack(">II", chunk[8:16])
    return ImageInfo("PNG", w, h)


def _jpeg(reader: _Reader) -> ImageInfo:
    pos = 2
    for _ in range(_JPEG_MAX_SEGMENTS):
        b = _need(reader, pos, 2, "JPEG")
        if b[0] != 0xFF:
            raise _Bad(f"malformed JPEG header (no marker at byte {pos})")
        marker = b[1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            raise _Bad("malformed JPEG header (no frame header before the image data)")
        length = struct.unpack(">H", _need(reader, pos + 2, 2, "JPEG"))[0]
        if length < 2:
            raise _Bad(f"malformed JPEG header (segment length {length} at byte {pos})")
        if marker in _JPEG_SOF:
            h, w = struct.unpack(">HH", _need(reader, pos + 5, 4, "JPEG"))
            return ImageInfo("JPEG", w, h)
        pos += 2 + length
    raise _Bad("malformed JPEG header (too many segments before the frame header)")


def _webp(reader: _Reader) -> ImageInfo:
    kind = _need(reader, 12, 4, "WebP")
    if kind == b"VP8 ":
        body = _need(reader, 20, 10, "WebP")
        if body[3:6] != b"\x9d\x01\x2a":
            raise _Bad("malformed WebP header (VP8 start code missing)")
        w, h = struct.unpack("<HH", body[6:10])
        return ImageInfo("WebP", w & 0x3FFF, h & 0x3FFF)
    if kind == b"VP8L":
        body = _need(reader, 20, 5, "WebP")
        if body[0] != 0x2F:
            raise _Bad("malformed WebP header (VP8L signature missing)")
        bits = int.from_bytes(body[1:5], "little")
        return ImageInfo("WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if kind == b"VP8X":
        body = _need(reader, 24, 6, "WebP")
        return ImageInfo("WebP", int.from_bytes(body[0:3], "little") + 1, int.from_bytes(body[3:6], "little") + 1)
    raise _Bad(f"malformed WebP header (unknown chunk {kind!r})")


def _bmp(reader: _Reader) -> ImageInfo:
    size = struct.unpack("<I", _need(reader, 14, 4, "BMP"))[0]
    if size == 12:  # BITMAPCOREHEADER
        w, h = struct.unpack("<HH", _need(reader, 18, 4, "BMP"))
    elif size >= 16:
        w, h = struct.unpack("<ii", _need(reader, 18, 8, "BMP"))
    else:
        raise _Bad(f"malformed BMP header (info header of {size} bytes)")
    return ImageInfo("BMP", w, abs(h))  # a negative height means top-down rows


def _tiff(reader: _Reader) -> ImageInfo:
    head = _need(reader, 0, 8, "TIFF")
    order = "<" if head[:2] == b"II" else ">"
    big = struct.unpack(order + "H", head[2:4])[0] == 43
    if big:
        head = _need(reader, 0, 16, "TIFF")
        ifd = struct.unpack(order + "Q", head[8:16])[0]
        count = struct.unpack(order + "Q", _need(reader, ifd, 8, "TIFF"))[0]
        entry_size, first = 20, ifd + 8
    else:
        ifd = struct.unpack(order + "I", head[4:8])[0]
        count = struct.unpack(order + "H", _need(reader, ifd, 2, "TIFF"))[0]
        entry_size, first = 12, ifd + 2
    if count > 65535 or ifd < 8:
        raise _Bad("malformed TIFF header (bad image file directory)")
    entries = _need(reader, first, count * entry_size, "TIFF")
    dims: dict[int, int] = {}
    for i in range(count):
        e = entries[i * entry_size:(i + 1) * entry_size]
        tag, typ = struct.unpack(order + "HH", e[:4])
        if tag not in (256, 257):  # ImageWidth, ImageLength
            continue
        value = e[12:] if big else e[8:]
        if typ == 3:  # SHORT
            dims[tag] = struct.unpack(order + "H", value[:2])[0]
        elif typ == 4:  # LONG
            dims[tag] = struct.unpack(order + "I", value[:4])[0]
        elif typ == 16 and big:  # LONG8
            dims[tag] = struct.unpack(order + "Q", value[:8])[0]
        else:
            raise _Bad(f"malformed TIFF header (size of type {typ})")
    if 256 not in dims or 257 not in dims:
        raise _Bad("malformed TIFF header (no image width or length)")
    return ImageInfo("TIFF", dims[256], dims[257])


# ------------------------------------------------------------------------------------------- records files

def resolve_image_path(base: Path, given: str) -> Path:
    """The absolute path of the image ``given`` in a records file whose folder is ``base``: an absolute path
    is kept as written; a relative one is joined to ``base`` and resolved (symbolic links followed). A symbolic
    link loop does not raise here: the joined path is returned and :func:`image_problem` reports the loop."""
    if os.path.isabs(given):
        return Path(given)
    try:
        return (base / given).resolve()
    except (OSError, RuntimeError):  # Python < 3.13 raises RuntimeError on a symbolic link loop
        return Path(os.path.abspath(base / given))


def image_problem(path: str | Path) -> str | None:
    """``None`` when :func:`probe_image` accepts ``path``, else its message (without the path), for callers
    that name the file differently (a records file, its line and field)."""
    try:
        probe_image(path)
    except JudgekitError as exc:
        if exc.field == ENV_MAX_IMAGE_PIXELS:
            raise
        return exc.message
    return None

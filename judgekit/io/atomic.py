"""Atomic file writes: a reader sees the old file or the new one, never half of one.

A write goes to a temp file in the destination's folder, named ``.NAME.pid<PID>.<random>.tmp``, renamed over the
destination; the file gets the mode the umask gives (``0666 & ~umask``). Every write first removes the
destination's temp files left by dead processes (and any older than :data:`STALE_TEMP_AFTER_S`). JSON written is
valid JSON only: a float NaN (a missing value) is written as ``null``, an infinity raises ``ValueError``.
:func:`judgekit.io.dataio.write_records` writes record files the same way.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

STALE_TEMP_AFTER_S = 3600.0  # a write's temp file older than this is stale even if its process id is alive


def _json_safe(value: Any, field: str = "") -> Any:
    """``value`` with every float NaN replaced by None (a missing value); an infinity raises ``ValueError``
    naming its dotted field, since JSON has no token for it and no reader should guess one."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            raise ValueError(f"infinite number in field '{field or '-'}' cannot be written (JSON has no Infinity)")
        return value
    if isinstance(value, dict):
        return {k: _json_safe(v, f"{field}.{k}" if field else str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v, f"{field}.{i}" if field else str(i)) for i, v in enumerate(value)]
    return value


def _temp_name_re(name: str) -> re.Pattern[str]:
    """Temp files of destination ``name``: ``.NAME.pid<PID>.<8 chars>.tmp`` (ours) or ``.NAME.<8 chars>.tmp``
    (``tempfile.mkstemp``, earlier versions). Group 1 is the writer's process id, when known."""
    return re.compile(r"\." + re.escape(name) + r"\.(?:pid(\d+)\.)?[a-z0-9_]{8}\.tmp")


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # no cheap check: the age rule applies
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # PermissionError: alive, another user's; OverflowError: not a pid, age decides
    return True


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Remove the temp files of writes to ``path`` that can no longer finish: their process is dead, or they
    are older than :data:`STALE_TEMP_AFTER_S`. Returns what was removed. The temp files of live writers
    (this process included) and of other destinations are left alone; errors are ignored."""
    path = Path(path)
    pattern = _temp_name_re(path.name)
    prefix = f".{path.name}."
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        m = pattern.fullmatch(entry.name)
        if m is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            old = now - entry.stat(follow_symlinks=False).st_mtime > STALE_TEMP_AFTER_S
            pid = int(m.group(1)) if m.group(1) else None
            dead = pid is not None and pid != os.getpid() and not _pid_alive(pid)
            if old or dead:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue  # removed meanwhile by another writer, or not ours to remove
    return removed


def _open_temp(path: Path) -> tuple[int, str]:
    """Create the temp file of a write to ``path`` (same folder) with mode ``0666 & ~umask``, as ``open``
    would (``tempfile.mkstemp`` makes it 0600); return its descriptor and name."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.pid{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), str(tmp)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temp file name for {path}")


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temp file in the same folder + rename): a reader sees the old
    file or the new one, never half of one. The file gets the mode the umask gives; stale temp files of
    earlier, killed writes to ``path`` are removed first."""
    _atomic_write(Path(path), text, "w")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, as :func:`atomic_write_text` writes text."""
    _atomic_write(Path(path), data, "wb")


def _atomic_write(path: Path, data: str | bytes, mode: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = _open_temp(path)
    try:
        with os.fdopen(fd, mode, encoding="utf-8" if mode == "w" else None) as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_json(path: str | Path, obj: Any, *, indent: int | None = 1) -> None:
    """Write ``obj`` as JSON (and a final newline) with :func:`atomic_write_text`. Valid JSON only: a float NaN
    is written as null, an infinity raises ``ValueError`` (``json.dumps`` would write the tokens
    ``NaN``/``Infinity`` that no JSON reader accepts)."""
    atomic_write_text(path, json.dumps(_json_safe(obj), indent=indent, allow_nan=False) + "\n")

"""What the API functions share: outputs refused before any work is done or paid for, a new store removed
when a first try leaves it empty, inputs given as a path or as objects, warnings."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from judgekit.io.errors import JudgekitError
from judgekit.io.records import Judgment

#: The suffixes of a records file (responses, items, results): JSON lines, CSV or Parquet.
RECORD_SUFFIXES = (".jsonl", ".ndjson", ".csv", ".parquet", ".pq")


class JudgekitWarning(UserWarning):
    """Something worth knowing that does not stop the work (e.g. several samples at temperature 0); the CLI
    prints it as ``warning: ...``."""


def as_path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)


def check_writable(path: Path | None, flag: str) -> None:
    """Refuse, before any work is done or paid for, an output path that cannot be written: a folder, a folder
    that is a file, a read-only file, or a place without write permission (read-only filesystem). Creates
    nothing: a missing folder is created only when the output is written."""
    import os
    import tempfile

    if path is None:
        return
    if path.is_dir():
        raise JudgekitError("is a folder; give a file name", path=path, field=flag)
    parent = path.parent if str(path.parent) else Path(".")
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise JudgekitError(f"cannot write here: {parent} is not a folder", path=path, field=flag)
    if path.exists() and not os.access(path, os.W_OK):
        raise JudgekitError("cannot write: the file is read-only", path=path, field=flag)
    try:  # a real probe: access() is not the whole truth (ACLs, read-only mounts seen by root)
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".judgekit-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise JudgekitError(f"cannot write in {parent}: {exc.strerror}", path=path, field=flag) from None


def check_suffix(path: Path | None, flag: str, suffixes: tuple[str, ...]) -> None:
    if path is not None and path.suffix.lower() not in suffixes:
        raise JudgekitError(f"expected a {' or '.join(suffixes)} file", path=path, field=flag)


def check_records_out(path: Path | None, flag: str = "--out") -> None:
    """A records file to write must be .jsonl, .csv or .parquet."""
    if path is not None and path.suffix.lower() not in RECORD_SUFFIXES:
        raise JudgekitError(f"unknown output type '{path.suffix}' (use .jsonl, .csv or .parquet)", field=flag)


def check_number(value: float | None, flag: str, *, lo: float = 0, above: bool = False) -> None:
    """The checks the CLI's flag types make, for values given in Python: a finite number >= ``lo`` (or > ``lo``
    when ``above``); None passes."""
    import math

    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or (value <= lo if above else value < lo):
        raise JudgekitError(f"expected a finite number {'above' if above else 'of at least'} {lo:g}, got {value!r}",
                            field=flag)


def names(value: str | Sequence[str] | None) -> list[str]:
    """One name or several, as a list (None: empty)."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


@contextlib.contextmanager
def new_store_cleanup(path: Path) -> Iterator[None]:
    """Remove the store at ``path`` (with its -wal/-shm) when this call created it and leaves it without a
    single stored call because it stopped on an error (bad setup, nothing answering): a failed first try leaves
    no empty database behind. A store that existed before is never touched."""
    existed = path.exists()
    try:
        yield
    except BaseException:
        if not existed and path.is_file():
            try:
                db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
                try:  # no call, and no claim of another run that may have opened the new store meanwhile
                    empty = all(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] == 0
                                for t in ("calls", "claims"))
                finally:
                    db.close()
            except sqlite3.Error:
                empty = False
            if empty:
                for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                    with contextlib.suppress(OSError):
                        p.unlink()
        raise


def shown_while_running(progress: Any) -> contextlib.AbstractContextManager[Any]:
    """A ``progress`` callback that is also a context manager (a progress bar) is entered while the calls run."""
    if hasattr(progress, "__enter__") and hasattr(progress, "__exit__"):
        return progress  # type: ignore[no-any-return]
    return contextlib.nullcontext()


def judgments_of(source: Any) -> tuple[list[Judgment], str | None]:
    """Judgments from a results file (path), a :class:`~judgekit.api.Results` or a sequence of
    :class:`Judgment` (or dicts); with the file name when one was given."""
    from judgekit.io.dataio import read_judgments

    if isinstance(source, str | Path):
        return read_judgments(source), str(source)
    found = getattr(source, "judgments", None)
    if found is not None:
        return list(found), None
    if isinstance(source, Sequence):
        out = []
        for i, j in enumerate(source):
            if isinstance(j, Judgment):
                out.append(j)
            elif isinstance(j, dict):
                out.append(validated(Judgment, j, f"judgments[{i}]"))
            else:
                raise JudgekitError(f"expected a Judgment or a dict, got {type(j).__name__}", path=f"judgments[{i}]")
        return out, None
    raise JudgekitError(f"expected a results file, Results or a list of judgments, got {type(source).__name__}")


def validated(cls: Any, data: dict[str, Any], where: str) -> Any:
    """``cls.model_validate(data)`` with a pydantic error turned into a :class:`JudgekitError` naming ``where``
    and the field."""
    from pydantic import ValidationError

    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or None
        raise JudgekitError(err["msg"].removeprefix("Value error, "), path=where, field=field) from None


def correction_arg(correction: Any) -> str:
    """``correction`` checked as one of ``holm``, ``bh``, ``none`` (:mod:`judgekit.stats.multiple`), lower-cased;
    anything else raises :class:`JudgekitError` naming ``--correction``."""
    from judgekit.stats.multiple import check_correction

    try:
        return check_correction(correction)
    except ValueError as exc:
        raise JudgekitError(str(exc), field="--correction") from None

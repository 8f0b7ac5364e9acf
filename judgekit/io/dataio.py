"""Reading response files (JSONL, CSV, Parquet) and writing result files, with file and line in every error.

Conventions:
- JSONL: one JSON object per line; blank lines are skipped; errors name the physical line.
- CSV: a header row; ``images``, ``reference_images``, ``options`` may be a JSON list or ``|``-separated paths;
  ``meta`` may be a JSON object; errors name the physical line where the record starts.
- Parquet: list columns for images; errors name ``row N`` (1-based).
- Image paths are resolved relative to the responses file; every one must exist. So are ``point_clouds`` paths
  (a JSON list or ``|``-separated in CSV), and every cloud must read (:mod:`judgekit.io.pointclouds`).
- ``(id, model, condition)`` must be unique within a file.
- JSON text (JSONL lines; CSV ``meta``/list cells) is strict (:mod:`judgekit.io.strictjson`): a key given twice
  in one object, the tokens ``NaN``/``Infinity``/``-Infinity`` or a number too large to be finite (``1e999``), a
  lone UTF-16 surrogate escape (``"\\ud800"``) and nesting deeper than :data:`MAX_JSON_DEPTH` are errors naming
  file, line and field.
- CSV: fields of any length are read (Python's default cap is 131,072 characters); a header naming a column
  twice is an error (as is a Parquet file with a duplicate column).
- Writing (:func:`write_records`, :func:`atomic_write_text`, :func:`atomic_write_json`), atomic
  (:mod:`judgekit.io.atomic`): a temp file in the destination's folder, named ``.NAME.pid<PID>.<random>.tmp``,
  renamed over the destination; the file gets the mode the umask gives (``0666 & ~umask``). Every write first
  removes the destination's temp files left by dead processes (and any older than :data:`STALE_TEMP_AFTER_S`).
  No file written contains ``NaN``/``Infinity``: a NaN (a missing value) is written as ``null`` (an empty CSV
  cell), an infinity raises ``ValueError``.

The strict JSON reader and the atomic writes live in :mod:`judgekit.io.strictjson` and :mod:`judgekit.io.atomic`;
their public names (``StrictJSON``, ``JSONProblem``, ``MAX_JSON_DEPTH``, ``atomic_write_text``,
``atomic_write_json``, ``remove_stale_temps``, ``STALE_TEMP_AFTER_S``) stay importable from this module.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from judgekit.io.atomic import STALE_TEMP_AFTER_S as STALE_TEMP_AFTER_S
from judgekit.io.atomic import _json_safe, _open_temp, remove_stale_temps
from judgekit.io.atomic import atomic_write_json as atomic_write_json
from judgekit.io.atomic import atomic_write_text as atomic_write_text
from judgekit.io.errors import JudgekitError
from judgekit.io.records import Item, Judgment, Response
from judgekit.io.strictjson import MAX_JSON_DEPTH as MAX_JSON_DEPTH
from judgekit.io.strictjson import JSONProblem, StrictJSON

REQUIRED = ("id", "model", "question", "reference", "response")
ITEM_REQUIRED = ("id", "question", "reference")
_LIST_FIELDS = ("images", "reference_images")
CSV_FIELD_LIMIT = 2**30  # characters in one CSV field: the file's size bounds it; Python's default is 131,072


def _fmt_validation(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "record"
    kind = err["type"]
    if kind == "missing":
        return field, "required field is missing"
    if kind == "extra_forbidden":
        return field, "unknown field (put free data under 'meta')"
    return field, err["msg"]


def _rows_jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    strict = StrictJSON()
    with path.open(encoding="utf-8-sig") as fh:  # -sig: a leading byte-order mark is not data
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = strict.loads(line.rstrip("\r\n"))  # without the newline, a column past the end is right
            except json.JSONDecodeError as exc:
                raise JudgekitError(f"malformed JSON ({exc.msg} at column {exc.colno})", path=path,
                                    line=n) from None
            except JSONProblem as exc:
                raise JudgekitError(exc.message, path=path, line=n, field=exc.field) from None
            if not isinstance(obj, dict):
                raise JudgekitError("each line must be a JSON object", path=path, line=n)
            yield f"{n}", obj


def _cell_json(text: str, path: Path, line: str, field: str, what: str) -> Any:
    """The strict JSON value of a CSV cell (``what`` names the expected kind in the error)."""
    try:
        return StrictJSON().loads(text)
    except json.JSONDecodeError:
        raise JudgekitError(f"not a valid JSON {what}", path=path, line=int(line), field=field) from None
    except JSONProblem as exc:
        raise JudgekitError(exc.message, path=path, line=int(line),
                            field=f"{field}.{exc.field}" if exc.field else field) from None


def _split_list(value: Any, path: Path, line: str, field: str) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return []
    if text.startswith("["):
        return _cell_json(text, path, line, field, "list")
    return [p.strip() for p in text.split("|") if p.strip()]


def _rows_csv(path: Path, delimiter: str = ",") -> Iterator[tuple[str, dict[str, Any]]]:
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)  # process-wide: raising it never breaks another reader
    with path.open(encoding="utf-8-sig", newline="") as fh:  # -sig: spreadsheets often write a BOM
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise JudgekitError(f"malformed CSV ({exc})", path=path, line=reader.line_num or 1) from None
        if header is None:
            raise JudgekitError("empty CSV file (no header row)", path=path, line=1)
        for i, name in enumerate(header):
            if name in header[:i]:
                raise JudgekitError("duplicate column in the header", path=path, line=1, field=name)
        while True:
            start = reader.line_num + 1  # where the next record starts (a quoted value may span lines)
            try:
                values = next(reader, None)
            except csv.Error as exc:
                raise JudgekitError(f"malformed CSV ({exc})", path=path, line=start) from None
            if values is None:
                break
            if not values:  # a blank line
                continue
            line = str(start)
            if len(values) > len(header):
                raise JudgekitError("more values than header columns", path=path, line=int(line))
            if len(values) < len(header):
                raise JudgekitError("fewer values than header columns", path=path, line=int(line))
            out: dict[str, Any] = {}
            for key, value in zip(header, values, strict=True):
                if value == "" and key not in REQUIRED:
                    continue
                out[key] = value
            for field in (*_LIST_FIELDS, "point_clouds", "options"):
                if field in out:
                    out[field] = _split_list(out[field], path, line, field)
            if "meta" in out and isinstance(out["meta"], str):
                out["meta"] = _cell_json(out["meta"], path, line, "meta", "object")
            yield line, out


def _rows_parquet(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
        for i, name in enumerate(names):
            if name in names[:i]:
                raise JudgekitError("duplicate column", path=path, field=name)
        table = pq.read_table(path)
    except JudgekitError:
        raise
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise JudgekitError(f"cannot read Parquet file: {exc}", path=path) from None
    for n, row in enumerate(table.to_pylist(), start=1):
        yield f"row {n}", {k: v for k, v in row.items() if v is not None}


def _rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return _rows_jsonl(path)
    if suffix == ".csv":
        return _rows_csv(path)
    if suffix == ".tsv":
        return _rows_csv(path, delimiter="\t")
    if suffix in (".parquet", ".pq"):
        return _rows_parquet(path)
    raise JudgekitError(f"unknown file type '{suffix}' (use .jsonl, .csv, .tsv or .parquet)", path=path)


def iter_rows(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, row)`` for every record of a JSONL, CSV, TSV or Parquet file: ``where`` is the line number
    (text files; CSV: where the record starts) or ``row N`` (Parquet), for error messages via
    :func:`row_error`. Empty CSV cells are left out of the row."""
    path = Path(path)
    if not path.exists():
        raise JudgekitError("file not found", path=path)
    if path.is_dir():
        raise JudgekitError("is a folder, expected a .jsonl, .csv, .tsv or .parquet file", path=path)
    try:
        yield from _rows(path)
    except UnicodeDecodeError as exc:
        raise JudgekitError(f"not UTF-8 text ({exc.reason})", path=path) from None


def row_error(path: str | Path, where: str, message: str, field: str | None = None) -> JudgekitError:
    """A :class:`JudgekitError` at the record ``where`` (from :func:`iter_rows`) of ``path``."""
    return _error(Path(path), where, message, field)


RESULT_SUFFIXES = (".jsonl", ".ndjson", ".csv", ".tsv", ".parquet", ".pq")
_NESTED_RESULT_FIELDS = ("scores", "flags", "spread")
_JSON_RESULT_FIELDS = ("samples", "panel", "self_grading")


def _unflatten_result(row: dict[str, Any], path: Path, where: str) -> dict[str, Any]:
    """A results row of a .csv/.parquet file (as written by :func:`write_records`) back in the JSONL shape:
    ``scores.relevance`` columns into a ``scores`` dict (likewise ``flags``, ``spread``), and the JSON text of
    ``samples``/``panel``/``self_grading`` decoded."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        head, dot, tail = key.partition(".")
        if dot and head in _NESTED_RESULT_FIELDS:
            out.setdefault(head, {})[tail] = value
        elif key in _JSON_RESULT_FIELDS and isinstance(value, str):
            try:
                out[key] = StrictJSON().loads(value)
            except json.JSONDecodeError:
                raise _error(path, where, "not valid JSON text", key) from None
            except JSONProblem as exc:
                raise _error(path, where, exc.message, f"{key}.{exc.field}" if exc.field else key) from None
        else:
            out[key] = value
    return out


def _is_number(value: Any) -> bool:
    """A finite int/float (not a bool), or text that reads as one (CSV cells are text)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return False
    return isinstance(value, int | float) and math.isfinite(value)


def read_judgments(path: str | Path) -> list[Judgment]:
    """The judgments of a results file written by ``judgekit judge --out`` (.jsonl, .csv or .parquet),
    validated row by row.

    A scored row must carry a finite number for ``overall`` and for every criterion that the other scored rows
    of the same rubric carry, and ``passed``; a missing or non-numeric score is an error naming the file, line
    (``row N`` for Parquet) and field, never read as 0.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in RESULT_SUFFIXES:
        raise JudgekitError("expected the results of 'judgekit judge' (.jsonl, .csv or .parquet)", path=path)
    out: list[Judgment] = []
    criteria: dict[tuple[str, str], tuple[frozenset[str], str]] = {}
    for where, raw in iter_rows(path):
        row = raw if suffix in (".jsonl", ".ndjson") else _unflatten_result(raw, path, where)
        if row.get("status") == "scored":
            if "overall" not in row or row["overall"] is None:
                raise _error(path, where, "a scored row needs its overall score", "overall")
            if not _is_number(row["overall"]):
                raise _error(path, where, f"not a finite number: {row['overall']!r}", "overall")
            scores = row.get("scores")
            if not isinstance(scores, dict):
                raise _error(path, where, "a scored row needs its scores (an object of numbers)", "scores")
            for name, value in scores.items():
                if not _is_number(value):
                    raise _error(path, where, f"not a finite number: {value!r}", f"scores.{name}")
            if row.get("passed") is None:
                raise _error(path, where, "a scored row needs passed (true or false)", "passed")
            rubric_key = (str(row.get("rubric", "")), str(row.get("rubric_version", "")))
            names = frozenset(scores)
            if rubric_key in criteria and criteria[rubric_key][0] != names:
                first, first_where = criteria[rubric_key]
                missing = sorted(first - names) or sorted(names - first)
                raise _error(path, where, f"criteria {sorted(names)} differ from {sorted(first)} of the scored row at "
                                          f"{first_where} (same rubric)", f"scores.{missing[0]}")
            criteria.setdefault(rubric_key, (names, where))
        try:
            out.append(Judgment.model_validate(row))
        except ValidationError as exc:
            field, msg = _fmt_validation(exc)
            raise _error(path, where, msg, field) from None
    if not out:
        raise JudgekitError("no judgments in file", path=path)
    return out


def _error(path: Path, where: str, message: str, field: str | None = None) -> JudgekitError:
    if where.isdigit():
        return JudgekitError(message, path=path, line=int(where), field=field)
    return JudgekitError(message, path=f"{path} ({where})", field=field)


def read_responses(path: str | Path, *, check_images: bool = True) -> list[Response]:
    """Read and validate every response in ``path``; raise :class:`JudgekitError` at the first bad record.

    Image paths are made absolute (relative to the file's folder) and checked to be a recognised image (by its
    header) within ``JUDGEKIT_MAX_IMAGE_PIXELS`` (see :mod:`judgekit.io.images`). ``(id, model, condition)`` must
    be unique.
    """
    return _read_records(path, Response, REQUIRED, check_images=check_images)  # type: ignore[return-value]


def read_items(path: str | Path, *, check_images: bool = True) -> list[Item]:
    """Read and validate every item (question, reference, images; no model or response) in ``path``.

    Same formats and errors as :func:`read_responses`; ``(id, condition)`` must be unique. A multiple-choice
    item's ``reference`` must be one of its option letters.
    """
    items = _read_records(path, Item, ITEM_REQUIRED, check_images=check_images)
    return items


def _read_records(path: str | Path, cls: type[Item], required: tuple[str, ...], *,
                  check_images: bool) -> list[Item]:
    path = Path(path)
    if not path.exists():
        raise JudgekitError("file not found", path=path)
    if path.is_dir():
        raise JudgekitError("is a folder, expected a .jsonl, .csv or .parquet file", path=path)
    base = path.resolve().parent
    out: list[Item] = []
    seen: dict[tuple[str, ...], str] = {}
    try:
        for where, row in _rows(path):
            for field in required:
                if field not in row or row[field] is None:
                    raise _error(path, where, "required field is missing", field)
            try:
                rec = cls.model_validate(row)
            except ValidationError as exc:
                field, msg = _fmt_validation(exc)
                raise _error(path, where, msg, field) from None
            if rec.options:
                letters = [chr(ord("A") + i) for i in range(len(rec.options))]
                if len(rec.options) > 26:
                    raise _error(path, where, "more than 26 options", "options")
                if rec.reference.strip().upper() not in letters:
                    raise _error(path, where, f"a multiple-choice reference must be one of the option letters "
                                 f"{', '.join(letters)}, got {rec.reference!r}", "reference")
            for field in _LIST_FIELDS:
                if not getattr(rec, field):
                    continue
                from judgekit.io.images import image_problem, resolve_image_path  # (kept local to this loop)

                resolved = []
                for p in getattr(rec, field):
                    full = resolve_image_path(base, p)
                    # the signature, the size and the pixel cap from the header, before any call sends it
                    problem = image_problem(full) if check_images else None
                    if problem is not None:
                        raise _error(path, where, f"{problem}: {p}", field)
                    resolved.append(str(full))
                setattr(rec, field, resolved)
            if rec.point_clouds:
                _check_clouds(rec, base, path, where, check=check_images)
            # one file may hold the answers of several prompt settings (Response.unique_key)
            uid = rec.unique_key if isinstance(rec, Response) else (rec.id, rec.condition or "")
            if uid in seen:
                what = (f"duplicate response: id={rec.id!r} model={rec.model!r} "  # type: ignore[attr-defined]
                        if isinstance(rec, Response) else f"duplicate item: id={rec.id!r} ")
                setting = f" setting={rec.setting!r}" if isinstance(rec, Response) and rec.setting else ""
                raise _error(path, where, f"{what}condition={rec.condition!r}{setting} already given at {seen[uid]}")
            seen[uid] = where
            out.append(rec)
    except UnicodeDecodeError as exc:
        raise JudgekitError(f"not UTF-8 text ({exc.reason})", path=path) from None
    if not out:
        raise JudgekitError("no records in file", path=path)
    return out


def _check_clouds(rec: Item, base: Path, path: Path, where: str, *, check: bool) -> None:
    """Resolve the point-cloud paths of ``rec`` (relative to ``base``) and, with ``check``, read every cloud
    (:func:`judgekit.io.pointclouds.cloud_problem`): a bad one is an error naming ``path``, the line and the cloud."""
    from judgekit.io.pointclouds import cloud_problem, resolve_cloud_paths

    resolved = resolve_cloud_paths(rec, base)
    for given, full in zip(rec.point_clouds, resolved, strict=True):
        problem = cloud_problem(full) if check else None
        if problem is not None:
            raise _error(path, where, f"{problem}: {given}", "point_clouds")
    rec.point_clouds = resolved


def _json_line(record: BaseModel | dict[str, Any]) -> bytes:
    """One JSONL line (UTF-8, no ASCII escapes) of a record, the careful way: a float NaN as null, an infinity
    a ``ValueError`` naming its field."""
    row = _json_safe(record.model_dump(mode="json") if isinstance(record, BaseModel) else record)
    return (json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def _jsonl(records: Iterable[BaseModel | dict[str, Any]]) -> list[bytes]:
    """The JSONL text of ``records``, as chunks to write in order. Pydantic records are serialised by pydantic-core
    (``to_json``: 5x faster than ``model_dump`` + ``json.dumps``, which made the write of a 50,000-judgment results
    file take longer than its summary); a non-finite float comes out as the string ``"NaN"`` / ``"Infinity"``
    there (the records' ``ser_json_inf_nan``), and a line holding such a string (a validated record holds no
    non-finite number; a text field may say "NaN") is made again by :func:`_json_line`. The lines and their
    newlines are separate chunks: no copy of the whole text is made."""
    from pydantic_core import to_json

    records = list(records)
    # only models that write non-finite floats as strings (judgekit's records, nested ones included): another
    # model's to_json would write NaN and infinity as a silent null
    if not all(isinstance(r, BaseModel) and r.model_config.get("ser_json_inf_nan") == "strings" for r in records):
        return [_json_line(r) for r in records]
    out: list[bytes] = []
    newline = b"\n"
    for r in records:
        text = to_json(r)
        if b'"NaN"' in text or b'Infinity"' in text:
            out.append(_json_line(r))
        else:
            out += (text, newline)
    return out


def write_records(path: str | Path, records: Iterable[BaseModel | dict[str, Any]]) -> None:
    """Write records atomically (temp file + rename) as JSONL, CSV or Parquet, chosen by the extension.

    CSV and Parquet flatten nested dicts one level with dotted names (``scores.relevance``); lists and
    deeper structures are written as JSON text. A float NaN is written as null (an empty CSV cell); an
    infinity raises ``ValueError`` before anything is written. The file gets the mode the umask gives, and
    stale temp files of earlier, killed writes to ``path`` are removed (see :func:`remove_stale_temps`).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".ndjson", ".csv", ".parquet", ".pq"):
        raise JudgekitError(f"unknown output type '{suffix}' (use .jsonl, .csv or .parquet)", path=path)
    if suffix in (".jsonl", ".ndjson"):
        chunks = _jsonl(records)  # every line before the file is opened: an infinity writes nothing
        rows: list[dict[str, Any]] = []
    else:
        chunks = []
        rows = [_json_safe(r.model_dump(mode="json") if isinstance(r, BaseModel) else r) for r in records]
    flat: list[dict[str, Any]] = []
    columns: list[str] = []
    if suffix not in (".jsonl", ".ndjson"):
        flat = [_flatten(r) for r in rows]
        for r in flat:
            columns.extend(k for k in r if k not in columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = _open_temp(path)
    try:
        if suffix in (".jsonl", ".ndjson"):
            with os.fdopen(fd, "wb") as fh:
                fh.writelines(chunks)
        else:
            if suffix == ".csv":
                with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                    writer = csv.DictWriter(fh, fieldnames=columns)
                    writer.writeheader()
                    writer.writerows(flat)
            else:
                import pyarrow as pa
                import pyarrow.parquet as pq

                os.close(fd)  # pyarrow writes by name, into the file made with the umask's mode
                # every column (from_pylist would take the columns of the first row only)
                table = pa.table({c: [r.get(c) for r in flat] for c in columns})
                pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _flatten(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict) and all(not isinstance(v, dict | list) for v in value.values()):
            for k, v in value.items():
                out[f"{key}.{k}"] = v
        elif isinstance(value, dict | list):
            out[key] = json.dumps(value, ensure_ascii=False, allow_nan=False)
        else:
            out[key] = value
    return out

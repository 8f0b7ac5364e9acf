"""Ratings in and out of a study: the long CSV ``judgekit agree`` reads, Label Studio, Argilla
(``judgekit study export`` and ``judgekit study import``).

Conventions:

- **The long CSV** (:data:`COLUMNS`): one row per rated answer, rater and rating key: ``id, model, condition,
  rater, criterion, score`` (what ``judgekit agree --human`` reads) and ``time_s`` (seconds on the page over
  every revision), ``revisions``, ``kind`` (main, repeat, gold), ``unratable`` (0/1), ``reason``, ``comment``,
  ``submitted`` (ISO 8601, UTC, of the latest revision). The latest revision of a slot counts.
- **What goes where** on export to ``RATINGS.csv``: the main items' scores only, so that no rater counts twice
  and every row has a score (``judgekit agree`` refuses an empty score). Beside it, always written (a header alone
  when empty): ``RATINGS_repeats.csv`` (the second showings, for intra-rater consistency),
  ``RATINGS_gold.csv`` (the gold answers, with a ``gold_score`` column) and ``RATINGS_unratable.csv`` (one row per
  slot flagged unratable, of any kind: empty ``criterion`` and ``score``, ``unratable`` 1, the reason).
- **Consistency and gold figures**: a repeat is compared with the same rater's latest rating of the same item;
  exact agreement is the share of rating keys given the same score, mean |diff| their mean absolute difference.
  Gold accuracy compares the keys the gold file gives.
- **Label Studio**: ``tasks.json`` (one task per main item; ``data`` holds ``question``, ``reference``,
  ``answer``, ``images``/``reference_images`` (URLs: the prefix + ``images/<sha256>.<ext>``, the files copied
  beside) and ``id``, ``model``, ``condition`` for the way back, which the labeling view does not show) and
  ``config.xml`` (the texts, the images, one ``Rating`` per rating key with its level descriptors, an
  ``unratable`` choice and a ``comment`` box). A Label Studio rating is 1..``maxRating``: score = scale min +
  rating - 1 (the same number on a 1-based scale).
- **Import** turns a long CSV, a wide CSV, a Label Studio JSON export or an Argilla 2.x record list into the
  long CSV; errors name the file and the line (CSV) or the JSON path of the bad field.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from human_study.store import Item, Rating, StudyStore
from judgekit.io.errors import JudgekitError
from judgekit.judging.rubric import Rubric

COLUMNS = ["id", "model", "condition", "rater", "criterion", "score", "time_s", "revisions", "kind", "unratable",
           "reason", "comment", "submitted"]
FORMATS = ("csv", "wide", "label-studio", "argilla")
_KEY_COLUMNS = ("id", "model", "condition", "category", "criterion", "meta")


@dataclass
class RaterProgress:
    """One rater's progress and consistency: ``done`` of ``total`` slots rated (any kind); repeats compared with
    their first showing; gold answers compared with their known scores (None when there is nothing to compare)."""

    rater: str
    done: int
    total: int
    repeat_pairs: int = 0
    repeat_exact: float | None = None
    repeat_mad: float | None = None
    gold_rated: int = 0
    gold_exact: float | None = None
    gold_mad: float | None = None


@dataclass
class ExportSummary:
    """What ``study export`` wrote and the per-rater figures it prints."""

    files: dict[str, Path]
    rows: int
    unratable: int
    raters: list[RaterProgress] = field(default_factory=list)


@dataclass
class ImportSummary:
    """What ``study import`` read and wrote."""

    source: Path
    out: Path
    format: str
    rows: int
    raters: list[str]
    criteria: list[str]
    skipped_unratable: int = 0
    notes: list[str] = field(default_factory=list)


# -------------------------------------------------------------------------------------------------- helpers

def _iso(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _csv_text(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r[k]) for k in columns})
    return buf.getvalue()


def _check_out(path: Path, flag: str) -> None:
    if path.suffix.lower() != ".csv":
        raise JudgekitError("the ratings are written as CSV: give a .csv file", path=path, field=flag)
    if path.is_dir():
        raise JudgekitError("is a folder, expected a .csv file", path=path, field=flag)


def sibling(path: Path, tag: str) -> Path:
    """``RATINGS.csv`` -> ``RATINGS_<tag>.csv``."""
    return path.with_name(f"{path.stem}_{tag}{path.suffix}")


def _compare(a: dict[str, int], b: dict[str, int]) -> tuple[int, int, float]:
    """(keys compared, keys equal, sum of |diff|) over the keys both give."""
    keys = [k for k in a if k in b]
    return len(keys), sum(a[k] == b[k] for k in keys), float(sum(abs(a[k] - b[k]) for k in keys))


# ----------------------------------------------------------------------------------------------------- export

def _rows_of(item: Item, rating: Rating, kind: str, seconds: float) -> list[dict[str, Any]]:
    base = {"id": item.id, "model": item.model, "condition": item.condition or "", "rater": rating.rater,
            "time_s": round(seconds, 3), "revisions": rating.revision, "kind": kind,
            "unratable": int(rating.unratable), "reason": rating.reason or "", "comment": rating.comment or "",
            "submitted": _iso(rating.submitted)}
    if rating.unratable:
        return [{**base, "criterion": "", "score": ""}]
    return [{**base, "criterion": k, "score": v,
             **({"gold_score": (item.gold or {}).get(k, "")} if kind == "gold" else {})}
            for k, v in rating.scores.items()]


def export_ratings(study: str | Path, out: str | Path) -> ExportSummary:
    """Write the study's ratings as the long CSV ``out`` (main items' scores only; see the module's conventions)
    and its siblings ``*_repeats.csv``, ``*_gold.csv``, ``*_unratable.csv``; return the files and each rater's
    progress, intra-rater consistency on repeats and gold accuracy. The database is opened read-only."""
    from judgekit.io.atomic import atomic_write_text

    out = Path(out)
    _check_out(out, "--out")
    with StudyStore(study, readonly=True) as store:
        items = {i.item_key: i for i in store.items()}
        keys = store.rating_keys()
        assignments = store.assignments()
        latest = store.latest()
        seconds = {slot: store.time_spent(slot) for slot in latest}
    main, repeats, gold, unratable = [], [], [], []
    first: dict[tuple[str, str], Rating] = {}
    for a in assignments:
        r = latest.get(a.slot)
        if r is not None and a.kind == "main" and not r.unratable:
            first[(a.rater, a.item_key)] = r
    progress: dict[str, RaterProgress] = {}
    stats: dict[str, dict[str, list[float]]] = {}
    for a in assignments:
        p = progress.setdefault(a.rater, RaterProgress(rater=a.rater, done=0, total=0))
        st = stats.setdefault(a.rater, {"rn": [], "rx": [], "rd": [], "gn": [], "gx": [], "gd": []})
        p.total += 1
        r = latest.get(a.slot)
        if r is None:
            continue
        p.done += 1
        rows = _rows_of(items[a.item_key], r, a.kind, seconds.get(a.slot, 0.0))
        if r.unratable:
            unratable.extend(rows)
            continue
        {"main": main, "repeat": repeats, "gold": gold}.get(a.kind, main).extend(rows)
        if a.kind == "repeat" and (a.rater, a.item_key) in first:
            n, same, diff = _compare(r.scores, first[(a.rater, a.item_key)].scores)
            if n:
                st["rn"].append(n), st["rx"].append(same), st["rd"].append(diff)
        if a.kind == "gold" and items[a.item_key].gold:
            n, same, diff = _compare(items[a.item_key].gold or {}, r.scores)
            if n:
                st["gn"].append(n), st["gx"].append(same), st["gd"].append(diff)
    for rater, p in progress.items():
        st = stats[rater]
        p.repeat_pairs, p.gold_rated = len(st["rn"]), len(st["gn"])
        if st["rn"]:
            p.repeat_exact, p.repeat_mad = sum(st["rx"]) / sum(st["rn"]), sum(st["rd"]) / sum(st["rn"])
        if st["gn"]:
            p.gold_exact, p.gold_mad = sum(st["gx"]) / sum(st["gn"]), sum(st["gd"]) / sum(st["gn"])
    order = {k: i for i, k in enumerate(keys)}
    sort = lambda rows: sorted(rows, key=lambda r: (r["rater"], r["id"], r["model"], r["condition"],  # noqa: E731
                                                    r["kind"], order.get(r["criterion"], -1)))
    files = {"ratings": out, "repeats": sibling(out, "repeats"), "gold": sibling(out, "gold"),
             "unratable": sibling(out, "unratable")}
    atomic_write_text(files["ratings"], _csv_text(COLUMNS, sort(main)))
    atomic_write_text(files["repeats"], _csv_text(COLUMNS, sort(repeats)))
    atomic_write_text(files["gold"], _csv_text([*COLUMNS, "gold_score"], sort(gold)))
    atomic_write_text(files["unratable"], _csv_text(COLUMNS, sort(unratable)))
    return ExportSummary(files=files, rows=len(main), unratable=len(unratable),
                         raters=[progress[r] for r in sorted(progress)])


# ------------------------------------------------------------------------------------------------ Label Studio

def label_studio_config(rubric: Rubric, *, images: bool = True, reference_images: bool = True) -> str:
    """A Label Studio labeling config (XML text): question, reference and answer, the images, one ``Rating`` per
    rating key (``maxRating`` = the size of its scale) under its description and level descriptors, an
    ``unratable`` choice and a ``comment`` box."""
    view = ET.Element("View")
    ET.SubElement(view, "Header", value="Question")
    ET.SubElement(view, "Text", name="question", value="$question")
    if images:
        ET.SubElement(view, "Image", name="images", valueList="$images")
    ET.SubElement(view, "Header", value="Reference answer")
    ET.SubElement(view, "Text", name="reference", value="$reference")
    if reference_images:
        ET.SubElement(view, "Image", name="reference_images", valueList="$reference_images")
    ET.SubElement(view, "Header", value="Answer to rate")
    ET.SubElement(view, "Text", name="answer", value="$answer")
    for key in rubric.reply_keys:
        sc = rubric.scale_of(key)
        if key == "overall":
            description, levels = rubric.overall.description, rubric.overall.levels or {}
        else:
            crit = next(c for c in rubric.criteria if c.name == key)
            description, levels = crit.description, crit.levels
        box = ET.SubElement(view, "View", style="border-top: 1px solid #ccc; margin-top: 1em")
        ET.SubElement(box, "Header", value=f"{key}: {description}", size="5")
        for level in sc.levels:
            star = level - sc.min + 1
            label = f"{level}" if sc.min == 1 else f"{star} star(s) = {level}"
            ET.SubElement(box, "Header", value=f"{label}: {levels.get(level, '')}".rstrip(": "), size="6")
        ET.SubElement(box, "Rating", name=key, toName="answer", maxRating=str(sc.max - sc.min + 1))
    choices = ET.SubElement(view, "Choices", name="unratable", toName="answer", choice="single")
    ET.SubElement(choices, "Choice", value="cannot be rated")
    ET.SubElement(view, "TextArea", name="comment", toName="answer", maxSubmissions="1", editable="true",
                  placeholder="a comment, or why the answer cannot be rated")
    ET.indent(view)
    return ET.tostring(view, encoding="unicode") + "\n"


def export_label_studio(study: str | Path, out_dir: str | Path, *, image_prefix: str = "") -> dict[str, Path]:
    """Write ``OUT_DIR/tasks.json`` (one task per main item), ``OUT_DIR/config.xml`` and the images
    (``OUT_DIR/images/``); image URLs are ``image_prefix`` + ``images/<name>`` (e.g. ``/data/local-files/?d=``
    + the folder under Label Studio's local storage root). No judge score is written."""
    from judgekit.io.atomic import atomic_write_json, atomic_write_text

    folder, out_dir = Path(study), Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise JudgekitError("is a file, expected a folder", path=out_dir, field="--label-studio")
    with StudyStore(folder, readonly=True) as store:
        rubric = store.rubric
        items = [i for i in store.items() if i.gold is None]
    tasks = [{"data": {"id": i.id, "model": i.model, "condition": i.condition or "", "question": i.question,
                       "reference": i.reference, "answer": i.response,
                       "images": [image_prefix + p for p in i.images],
                       "reference_images": [image_prefix + p for p in i.reference_images]}} for i in items]
    for i in items:
        for p in (*i.images, *i.reference_images):
            target = out_dir / p
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(folder / p, target)
    files = {"tasks": out_dir / "tasks.json", "config": out_dir / "config.xml"}
    atomic_write_json(files["tasks"], tasks)
    atomic_write_text(files["config"], label_studio_config(
        rubric, images=any(i.images for i in items), reference_images=any(i.reference_images for i in items)))
    return files


# ------------------------------------------------------------------------------------------------------ import

@dataclass
class _Row:
    id: str
    model: str
    condition: str
    rater: str
    criterion: str
    score: Any
    where: tuple[str | None, str | None]  # (line, field) for errors
    extra: dict[str, Any] = field(default_factory=dict)


def _load_json(path: Path) -> Any:
    from judgekit.io.strictjson import JSONProblem, StrictJSON

    if not path.is_file():
        raise JudgekitError("file not found" if not path.exists() else "is a folder, expected a file", path=path)
    text = path.read_text(encoding="utf-8-sig")
    try:
        return StrictJSON().loads(text)
    except json.JSONDecodeError as exc:
        if path.suffix.lower() in (".jsonl", ".ndjson") or "Extra data" in exc.msg:
            out = []
            for n, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    try:
                        out.append(StrictJSON().loads(line))
                    except (json.JSONDecodeError, JSONProblem) as e:
                        raise JudgekitError(f"malformed JSON ({e})", path=path, line=n) from None
            return out
        raise JudgekitError(f"malformed JSON ({exc.msg} at column {exc.colno})", path=path, line=exc.lineno) from None
    except JSONProblem as exc:
        raise JudgekitError(exc.message, path=path, field=exc.field) from None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _from_label_studio(path: Path, data: Any, rubric: Rubric | None) -> tuple[list[_Row], int]:
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise JudgekitError("a Label Studio export is a JSON list of tasks", path=path)
    rows: list[_Row] = []
    skipped = 0
    for t, task in enumerate(data):
        at = f"[{t}]"
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise JudgekitError("a task needs a 'data' object", path=path, field=f"{at}.data")
        d = task["data"]
        if _text(d.get("id")) == "":
            raise JudgekitError("the task's data has no 'id' (the answer's id)", path=path, field=f"{at}.data.id")
        anns = task.get("annotations", task.get("completions", []))
        if not isinstance(anns, list):
            raise JudgekitError("not a list", path=path, field=f"{at}.annotations")
        for a, ann in enumerate(anns):
            aat = f"{at}.annotations[{a}]"
            if not isinstance(ann, dict):
                raise JudgekitError("an annotation is an object", path=path, field=aat)
            if ann.get("was_cancelled"):
                continue
            who = ann.get("completed_by")
            rater = _text(who.get("email") or who.get("id")) if isinstance(who, dict) else _text(who)
            if not rater:
                raise JudgekitError("the annotation has no 'completed_by' (the rater)", path=path,
                                    field=f"{aat}.completed_by")
            results = ann.get("result", [])
            if not isinstance(results, list):
                raise JudgekitError("not a list", path=path, field=f"{aat}.result")
            extra: dict[str, Any] = {"time_s": ann.get("lead_time"),
                                     "submitted": ann.get("updated_at") or ann.get("created_at")}
            ratings: list[_Row] = []
            for r, res in enumerate(results):
                rat = f"{aat}.result[{r}]"
                if not isinstance(res, dict):
                    raise JudgekitError("a result is an object", path=path, field=rat)
                value = res.get("value") if isinstance(res.get("value"), dict) else {}
                kind = res.get("type")
                if kind == "rating":
                    if "rating" not in value:
                        raise JudgekitError("a rating result needs value.rating", path=path, field=f"{rat}.value")
                    score: Any = value["rating"]
                    crit = _text(res.get("from_name"))
                    if rubric is not None and crit in rubric.reply_keys and _is_int(score):
                        score = rubric.scale_of(crit).min + int(score) - 1
                    ratings.append(_Row(_text(d["id"]), _text(d.get("model")), _text(d.get("condition")), rater,
                                        crit, score, (None, f"{rat}.value.rating")))
                elif kind == "choices" and res.get("from_name") == "unratable" and value.get("choices"):
                    extra["unratable"] = 1
                elif kind == "textarea" and res.get("from_name") == "comment":
                    extra["comment"] = " ".join(map(str, value.get("text", [])))
            if extra.get("unratable"):
                skipped += 1
                continue
            for row in ratings:
                row.extra = extra
            rows.extend(ratings)
    return rows, skipped


def _from_argilla(path: Path, data: Any) -> tuple[list[_Row], list[str]]:
    if isinstance(data, dict) and isinstance(data.get("records"), list):
        data = data["records"]
    if not isinstance(data, list):
        raise JudgekitError("an Argilla export is a JSON list of records (dataset.records.to_list(flatten=False))",
                            path=path)
    rows: list[_Row] = []
    ignored: set[str] = set()
    for n, rec in enumerate(data):
        at = f"[{n}]"
        if not isinstance(rec, dict) or not isinstance(rec.get("responses", {}), dict):
            raise JudgekitError("a record is an object whose 'responses' map each question to a list of "
                                "{user_id, value} (export with flatten=False)", path=path, field=at)
        meta = rec.get("metadata") if isinstance(rec.get("metadata"), dict) else {}
        fields = rec.get("fields") if isinstance(rec.get("fields"), dict) else {}

        def pick(name: str, meta: dict[str, Any] = meta, fields: dict[str, Any] = fields) -> str:
            return _text(meta.get(name) if meta.get(name) is not None else fields.get(name))

        rid = pick("id") or _text(rec.get("id"))
        if not rid:
            raise JudgekitError("the record has no id (metadata.id, fields.id or id)", path=path, field=f"{at}.id")
        for question, answers in (rec.get("responses") or {}).items():
            if not isinstance(answers, list):
                raise JudgekitError("not a list of responses", path=path, field=f"{at}.responses.{question}")
            for a, ans in enumerate(answers):
                aat = f"{at}.responses.{question}[{a}]"
                if not isinstance(ans, dict) or "value" not in ans:
                    raise JudgekitError("a response is an object with 'value' and 'user_id'", path=path, field=aat)
                if ans.get("status") not in (None, "submitted"):
                    continue  # a draft or a discarded response
                value = ans["value"]
                if isinstance(value, str) and not _is_number(value):
                    ignored.add(question)  # a text question (e.g. a comment)
                    continue
                rater = _text(ans.get("user_id"))
                if not rater:
                    raise JudgekitError("the response has no user_id (the rater)", path=path, field=f"{aat}.user_id")
                rows.append(_Row(rid, pick("model"), pick("condition"), rater, question, value,
                                 (None, f"{aat}.value")))
    return rows, sorted(ignored)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _is_int(value: Any) -> bool:
    return _is_number(value) and float(value) == int(float(value))


def _from_csv(path: Path, fmt: str, criterion: str, raters: Sequence[str] | None) -> tuple[list[_Row], int]:
    from judgekit.io.dataio import iter_rows, row_error

    table = list(iter_rows(path))
    columns = _columns(path, table)
    if "id" not in columns:
        raise JudgekitError("a ratings table needs an 'id' column", path=path)
    rows: list[_Row] = []
    skipped = 0
    if fmt == "csv":
        for col in ("rater", "score"):
            if col not in columns:
                raise JudgekitError(f"a long table needs a {col!r} column (or use --format wide)", path=path)
        for where, r in table:
            for col in ("id", "rater"):
                if not _text(r.get(col)):
                    raise row_error(path, where, "required field is missing", col)
            if _text(r.get("unratable")) in ("1", "true", "True"):
                skipped += 1
                continue
            if _text(r.get("score")) == "":
                raise row_error(path, where, "required field is missing (an unratable row says unratable=1)", "score")
            extra = {k: r.get(k) for k in COLUMNS[6:] if k in r}
            rows.append(_Row(_text(r["id"]), _text(r.get("model")), _text(r.get("condition")), _text(r["rater"]),
                             _text(r.get("criterion")) or criterion, r["score"], (where, "score"), extra))
        return rows, skipped
    names = list(raters) if raters else [c for c in columns if c not in _KEY_COLUMNS]
    missing = [c for c in names if c not in columns]
    if missing:
        raise JudgekitError(f"no column {missing[0]!r} (columns: {', '.join(columns)})", path=path, field="--raters")
    if not names:
        raise JudgekitError("no rater columns (a wide table has id and one column per rater)", path=path)
    for where, r in table:
        if not _text(r.get("id")):
            raise row_error(path, where, "required field is missing", "id")
        for rater in names:
            if _text(r.get(rater)) != "":
                rows.append(_Row(_text(r["id"]), _text(r.get("model")), _text(r.get("condition")), rater,
                                 _text(r.get("criterion")) or criterion, r[rater], (where, rater)))
    return rows, 0


def _columns(path: Path, table: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
    """The columns of a table: a CSV/TSV file's header (empty cells are left out of the rows), else every key."""
    if path.suffix.lower() in (".csv", ".tsv"):
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return next(csv.reader(fh, delimiter="\t" if path.suffix.lower() == ".tsv" else ","), [])
    columns: list[str] = []
    for _, r in table:
        columns.extend(c for c in r if c not in columns)
    return columns


def _guess_format(path: Path, data: Any | None) -> str:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".parquet", ".pq"):
        from judgekit.io.dataio import iter_rows

        return "csv" if {"rater", "score"} <= set(_columns(path, list(iter_rows(path)))) else "wide"
    items = data.get("records", [data]) if isinstance(data, dict) else data
    if isinstance(items, list) and items and isinstance(items[0], dict):
        if "annotations" in items[0] or "completions" in items[0] or "data" in items[0]:
            return "label-studio"
        if "responses" in items[0] or "fields" in items[0]:
            return "argilla"
    raise JudgekitError("cannot tell the format: give --format csv, wide, label-studio or argilla", path=path,
                        field="--format")


def import_ratings(source: str | Path, out: str | Path, *, fmt: str | None = None, criterion: str = "overall",
                   raters: str | Sequence[str] | None = None,
                   rubric: str | Path | Rubric | None = None) -> ImportSummary:
    """Convert ratings gathered elsewhere into the long CSV ``out`` (:data:`COLUMNS`; see the module's
    conventions). ``fmt``: ``csv`` (a long table: id, rater, score[, criterion, model, condition]; validated),
    ``wide`` (id and one column per rater - ``raters`` names them, default every other column - for one
    ``criterion``), ``label-studio`` (a JSON export: ``data.id/model/condition``, ``annotations[].result[]`` of
    type rating, ``from_name`` the criterion, ``completed_by`` the rater) or ``argilla`` (a JSON list of records as
    ``dataset.records.to_list(flatten=False)`` gives: id/model/condition in ``metadata`` or ``fields``,
    ``responses[question] = [{user_id, value}]``, the question being the criterion; text answers are ignored);
    default: guessed from the file. Scores must be finite numbers; with ``rubric``, criteria must be its rating
    keys and scores integers within their scales (Label Studio stars are mapped onto the scale). A rater rating
    the same answer's criterion twice is an error. Unratable rows are left out and counted."""
    from judgekit.io.atomic import atomic_write_text
    from judgekit.judging.rubric import load_rubric

    source, out = Path(source), Path(out)
    _check_out(out, "--out")
    if fmt is not None and fmt not in FORMATS:
        raise JudgekitError(f"unknown format {fmt!r} (use {', '.join(FORMATS)})", field="--format")
    rub = rubric if isinstance(rubric, Rubric) or rubric is None else load_rubric(rubric)
    rater_list = ([s.strip() for s in raters.split(",") if s.strip()] if isinstance(raters, str) else
                  list(raters) if raters else None)
    data = None
    if source.suffix.lower() in (".json", ".jsonl", ".ndjson") or fmt in ("label-studio", "argilla"):
        data = _load_json(source)
    fmt = fmt or _guess_format(source, data)
    notes: list[str] = []
    skipped = 0
    if fmt in ("csv", "wide"):
        if data is not None:
            raise JudgekitError(f"--format {fmt} reads a CSV/TSV/Parquet table, not JSON", path=source,
                                field="--format")
        rows, skipped = _from_csv(source, fmt, criterion, rater_list)
    elif fmt == "label-studio":
        rows, skipped = _from_label_studio(source, data, rub)
    else:
        rows, ignored = _from_argilla(source, data)
        if ignored:
            notes.append(f"text questions left out: {', '.join(ignored)}")
    seen: dict[tuple[str, ...], str] = {}
    out_rows: list[dict[str, Any]] = []
    for row in rows:
        line, fld = row.where
        where = {"path": source, "line": int(line) if line and line.isdigit() else None, "field": fld}
        if line and not line.isdigit():
            where["path"] = f"{source} ({line})"
        if not row.criterion:
            raise JudgekitError("the criterion is empty", **where)  # type: ignore[arg-type]
        if not _is_number(row.score):
            raise JudgekitError(f"not a finite number: {row.score!r}", **where)  # type: ignore[arg-type]
        score = float(row.score)
        if rub is not None:
            if row.criterion not in rub.reply_keys:
                raise JudgekitError(f"criterion {row.criterion!r} is not a rating key of the rubric "
                                    f"({', '.join(rub.reply_keys)})", **where)  # type: ignore[arg-type]
            sc = rub.scale_of(row.criterion)
            if not _is_int(score) or not sc.min <= score <= sc.max:
                raise JudgekitError(f"{row.score!r} is not an integer within the scale {sc.min}-{sc.max}",
                                    **where)  # type: ignore[arg-type]
        key = (row.id, row.model, row.condition, row.rater, row.criterion)
        here = f"line {line}" if line else (fld or "?")
        if key in seen:
            raise JudgekitError(f"rater {row.rater!r} rated {row.criterion!r} of this answer twice (first at "
                                f"{seen[key]})", **where)  # type: ignore[arg-type]
        seen[key] = here
        value: Any = int(score) if score == int(score) else score
        out_rows.append({"id": row.id, "model": row.model, "condition": row.condition, "rater": row.rater,
                         "criterion": row.criterion, "score": value, "kind": "main", "unratable": 0,
                         **{k: v for k, v in row.extra.items() if k in COLUMNS[6:] and k != "unratable"}})
    if not out_rows:
        raise JudgekitError("no ratings in the file", path=source)
    columns = [c for c in COLUMNS if c not in ("model", "condition") or any(r[c] for r in out_rows)]
    atomic_write_text(out, _csv_text(columns, out_rows))
    return ImportSummary(source=source, out=out, format=fmt, rows=len(out_rows),
                         raters=sorted({r["rater"] for r in out_rows}),
                         criteria=sorted({r["criterion"] for r in out_rows}), skipped_unratable=skipped, notes=notes)


__all__ = ["COLUMNS", "FORMATS", "ExportSummary", "ImportSummary", "RaterProgress", "export_label_studio",
           "export_ratings", "import_ratings", "label_studio_config", "sibling"]

"""Human ratings: reading long and wide rating tables and joining them to a judge's results.

Conventions:
- A rated response is identified by ``id`` plus, when the table has them, ``model`` and ``condition`` (the
  key of a response in judgekit). With ``id`` alone, each id must name exactly one response of the results.
- **Long** tables (``rater`` and ``score`` columns): one row per response, rater and criterion; ``criterion``
  is optional (default: the ``--criterion`` asked for, ``overall``).
- **Wide** tables: one row per response, one column per rater, for a single criterion. The rater columns are
  ``raters`` when given, else every column (other than the key columns) whose values are all ratings.
- Values: numbers, or binary labels yes/no, true/false, correct/incorrect, pass/fail, 1/0 (read as 1/0).
  Numeric ratings must lie within the scale; a criterion whose values are all 0/1 or binary words is binary.
- Non-finite numbers are errors, never a rating or a gap: ``NaN``/``Infinity`` tokens in JSONL (refused by the
  reader), and ``nan``/``inf`` text or NaN/infinite floats in a rating cell (an unrated cell is left empty).
- The table is read by :func:`judgekit.io.dataio.iter_rows`, whose rules apply: strict JSON (no duplicate keys,
  lone surrogates or NaN/Infinity), CSV fields of any length, no column named twice.
- Errors name the file, the line (``row N`` for Parquet) and the column, and stop before anything is written.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from judgekit.io.dataio import iter_rows, row_error
from judgekit.io.errors import JudgekitError
from judgekit.io.records import Judgment

KEY_FIELDS = ("id", "model", "condition")
BINARY_WORDS = {"yes": 1.0, "no": 0.0, "true": 1.0, "false": 0.0, "correct": 1.0, "incorrect": 0.0,
                "pass": 1.0, "fail": 0.0, "y": 1.0, "n": 0.0}
Kind = Literal["binary", "ordinal", "continuous"]
Key = tuple[str, ...]


@dataclass
class HumanRatings:
    """The ratings of one file: ``values[criterion][key][rater] = value``; ``binary[criterion]`` says whether
    that criterion's labels are binary."""

    path: Path
    key_fields: tuple[str, ...]
    raters: list[str]
    values: dict[str, dict[Key, dict[str, float]]] = field(default_factory=dict)
    binary: dict[str, bool] = field(default_factory=dict)
    layout: Literal["long", "wide"] = "long"
    extras: dict[Key, dict[str, str]] = field(default_factory=dict)  # other columns (e.g. a group id)


def _parse_value(raw: object) -> tuple[float, bool] | None:
    """(value, is_binary_word) or None when ``raw`` is not a rating."""
    if isinstance(raw, bool):
        return float(raw), True
    if isinstance(raw, int | float):
        return (float(raw), False) if math.isfinite(float(raw)) else None
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text in BINARY_WORDS:
            return BINARY_WORDS[text], True
        try:
            value = float(text)
        except ValueError:
            return None
        return (value, False) if math.isfinite(value) else None
    return None


def _non_finite(raw: object) -> bool:
    """A number (or number text such as ``nan``, ``-inf``) that is not finite."""
    if isinstance(raw, bool):
        return False
    if isinstance(raw, int | float):
        return not math.isfinite(float(raw))
    if isinstance(raw, str):
        try:
            return not math.isfinite(float(raw.strip()))
        except ValueError:
            return False
    return False


def read_ratings(path: str | Path, *, criterion: str = "overall", raters: Sequence[str] | None = None,
                 scale: tuple[float, float] = (1.0, 5.0), exclude: Sequence[str] = ()) -> HumanRatings:
    """Read a long or wide ratings table (see the module's conventions); clear errors for bad values,
    values outside ``scale``, duplicate ratings and missing key columns. ``exclude`` names columns that are
    never rater columns (e.g. the ``--group-by`` column)."""
    path = Path(path)
    rows = list(iter_rows(path))
    if not rows:
        raise JudgekitError("no ratings in file", path=path)
    columns: list[str] = []
    for _, row in rows:
        columns.extend(c for c in row if c not in columns)
    if "id" not in columns:
        raise JudgekitError("a ratings table needs an 'id' column (the response id of the results)", path=path)
    key_fields = tuple(k for k in KEY_FIELDS if k in columns)
    long = "rater" in columns and "score" in columns
    out = HumanRatings(path=path, key_fields=key_fields, raters=[], layout="long" if long else "wide")
    if long:
        rater_cols: list[str] = []
    else:
        candidates = [c for c in columns
                      if c not in KEY_FIELDS and c not in ("criterion", "category", "meta") and c not in exclude]
        if raters:
            missing = [r for r in raters if r not in columns]
            if missing:
                raise JudgekitError(f"no column {', '.join(map(repr, missing))} (columns: {', '.join(columns)})",
                                    path=path, field="--raters")
            rater_cols = list(raters)
        else:
            # a NaN/inf cell does not hide a rater column: it is reported below
            rater_cols = [c for c in candidates
                          if all(_parse_value(r[c]) is not None or _non_finite(r[c])
                                 for _, r in rows if c in r and r[c] is not None)
                          and any(c in r and _parse_value(r[c]) is not None for _, r in rows)]
        if not rater_cols:
            raise JudgekitError("no rater columns found: give a long table (id, rater, score[, criterion]) or "
                                "name the wide table's rater columns with --raters", path=path)
    words: dict[str, set[bool]] = {}
    where_of: dict[tuple[str, Key, str], str] = {}
    for where, row in rows:
        for k in key_fields:
            if k == "id" and (k not in row or row[k] in (None, "")):
                raise row_error(path, where, "required field is missing", "id")
        key = tuple("" if row.get(k) is None else str(row[k]) for k in key_fields)
        skip = {*key_fields, *rater_cols, "rater", "score", "criterion"}
        extra = out.extras.setdefault(key, {})
        for c, v in row.items():
            if c not in skip and v is not None:
                extra.setdefault(c, str(v))
        cells = ([(str(row.get("rater", "")), str(row.get("criterion") or criterion), row.get("score"), "score")]
                 if long else [(c, criterion, row.get(c), c) for c in rater_cols])
        for rater, crit, raw, col in cells:
            if long and not rater:
                raise row_error(path, where, "required field is missing", "rater")
            if raw is None or raw == "":
                if long:
                    raise row_error(path, where, "required field is missing", "score")
                continue  # a rater who did not rate this response
            if _non_finite(raw):
                raise row_error(path, where, f"not a finite number: {raw!r} (leave the cell empty when the rater did "
                                "not rate this response)", col)
            parsed = _parse_value(raw)
            if parsed is None:
                raise row_error(path, where, f"not a rating: {raw!r} (a number, or yes/no, true/false, 1/0)", col)
            value, is_word = parsed
            slot = (crit, key, rater)
            if slot in where_of:
                raise row_error(path, where, f"rater {rater!r} rated this response's {crit!r} twice (first at "
                                f"{where_of[slot]})", col)
            where_of[slot] = where
            out.values.setdefault(crit, {}).setdefault(key, {})[rater] = value
            words.setdefault(crit, set()).add(is_word)
            if rater not in out.raters:
                out.raters.append(rater)
    for crit, per_key in out.values.items():
        vals = [v for d in per_key.values() for v in d.values()]
        is_binary = True in words.get(crit, set()) or set(vals) <= {0.0, 1.0}
        if True in words.get(crit, set()) and not set(vals) <= {0.0, 1.0}:
            raise JudgekitError(f"criterion {crit!r} mixes binary labels (yes/no, true/false) with other numbers",
                                path=path)
        out.binary[crit] = is_binary
        if not is_binary:
            lo, hi = scale
            for key, d in per_key.items():
                for rater, v in d.items():
                    if not lo <= v <= hi:
                        where = where_of[(crit, key, rater)]
                        raise row_error(path, where, f"rating {v:g} of {rater!r} is outside the scale "
                                        f"{lo:g}-{hi:g}", "score" if long else rater)
    if not out.values:
        raise JudgekitError("no ratings in file", path=path)
    return out


@dataclass
class Joined:
    """Judge and human values of one criterion on the rated responses, aligned row by row."""

    criterion: str
    kind: Kind
    keys: list[Key]
    judge: np.ndarray
    humans: np.ndarray  # items x raters, NaN = not rated
    raters: list[str]
    ids: list[str]
    models: list[str]
    conditions: list[str]
    categories: list[str]
    dropped_unscored: int
    unrated_judged: int
    notes: list[str]


def _judge_value(j: Judgment, criterion: str, binary: bool, threshold: float) -> float:
    if j.status != "scored":
        return math.nan
    if binary:
        if criterion in j.flags:
            return float(j.flags[criterion])
        if criterion in ("overall", "pass"):
            return math.nan if j.passed is None else float(j.passed)
        if criterion in j.scores:
            return float(j.scores[criterion] >= threshold)
    else:
        if criterion == "overall":
            return math.nan if j.overall is None else float(j.overall)
        if criterion in j.scores:
            return float(j.scores[criterion])
    raise JudgekitError(f"the results have no criterion {criterion!r} (they have overall, "
                        f"{', '.join(sorted(j.scores)) or '-'}{', ' + ', '.join(sorted(j.flags)) if j.flags else ''})",
                        field="--criterion")


def join(judgments: Sequence[Judgment], ratings: HumanRatings, criterion: str, *, threshold: float = 3.0,
         scale: tuple[float, float] = (1.0, 5.0), judge_label: str | None = None,
         level: Literal["auto", "ordinal", "continuous"] = "auto") -> Joined:
    """Align the judge's values of ``criterion`` with the human ratings, response by response.

    ``level`` chooses the statistics for non-binary ratings: ``auto`` is ordinal when every judge score and
    every human rating is an integer and continuous as soon as one is fractional (the notes then say how many
    and where); ``ordinal`` rounds fractional values half up to integers (and says how many were rounded);
    ``continuous`` keeps them as they are.

    Binary human labels are compared with the judge's pass/fail (``overall``/``pass``), its flag of that name,
    or its score >= ``threshold``. Unscored judgments are left out and counted. Raises for rated responses
    missing from the results, ambiguous ids, judge values outside ``scale`` and an empty join.
    """
    if criterion not in ratings.values:
        raise JudgekitError(f"no ratings of criterion {criterion!r} (the file has: "
                            f"{', '.join(sorted(ratings.values))})", path=ratings.path, field="--criterion")
    judges = sorted({j.judge for j in judgments})
    if judge_label is not None:
        judgments = [j for j in judgments if j.judge == judge_label]
        if not judgments:
            raise JudgekitError(f"no judgments by {judge_label!r} (judges: {', '.join(judges)})", field="--judge-label")
    elif len(judges) > 1:
        raise JudgekitError(f"the results hold several judges ({', '.join(judges)}): pick one with --judge-label",
                            field="--judge")
    binary = ratings.binary[criterion]
    fields = ratings.key_fields
    index: dict[Key, Judgment] = {}
    for j in judgments:
        full = {"id": j.id, "model": j.model, "condition": j.condition or ""}
        key = tuple(full[f] for f in fields)
        if key in index:
            raise JudgekitError(f"ratings are keyed by {', '.join(fields)} but the results hold several responses "
                                f"for {dict(zip(fields, key, strict=True))}; add the columns "
                                f"{', '.join(f for f in KEY_FIELDS if f not in fields)} to the ratings",
                                path=ratings.path)
        index[key] = j
    per_key = ratings.values[criterion]
    missing = [k for k in per_key if k not in index]
    if missing:
        shown = "; ".join(str(dict(zip(fields, k, strict=True))) for k in missing[:3])
        raise JudgekitError(f"{len(missing)} rated response(s) are not in the judge's results (mismatched ids), "
                            f"e.g. {shown}", path=ratings.path)
    keys, judge_vals, rows, dropped = [], [], [], 0
    for key, by_rater in per_key.items():
        value = _judge_value(index[key], criterion, binary, threshold)
        if math.isnan(value):
            dropped += 1
            continue
        if not binary and not scale[0] <= value <= scale[1]:
            raise JudgekitError(f"judge score {value:g} of response {dict(zip(fields, key, strict=True))} is "
                                f"outside the scale {scale[0]:g}-{scale[1]:g}", field="--scale")
        keys.append(key)
        judge_vals.append(value)
        rows.append([by_rater.get(r, math.nan) for r in ratings.raters])
    if not keys:
        raise JudgekitError("no rated response has a scored judgment: nothing to compare (empty join)",
                            path=ratings.path)
    judge = np.asarray(judge_vals, float)
    humans = np.asarray(rows, float)
    used = ~np.all(np.isnan(humans), axis=0)
    raters = [r for r, u in zip(ratings.raters, used, strict=True) if u]
    humans = humans[:, used]
    notes = []
    if binary:
        kind: Kind = "binary"
        notes.append("binary labels: the judge's pass/fail (or flag) against the human labels")
    else:
        rated = humans[~np.isnan(humans)]
        frac_j = int(np.sum(judge != np.round(judge)))
        frac_h = int(np.sum(rated != np.round(rated)))
        if level == "ordinal" or (level == "auto" and frac_j == 0 and frac_h == 0):
            kind = "ordinal"
            notes.append(f"integer ratings on {scale[0]:g}-{scale[1]:g}: ordinal statistics")
            if frac_j or frac_h:  # --level ordinal: round half up, as a rater would
                judge = np.floor(judge + 0.5)
                humans = np.floor(humans + 0.5)
                notes.append(f"--level ordinal rounded {frac_j} fractional judge score(s) and {frac_h} fractional "
                             f"human rating(s) half up")
        else:
            kind = "continuous"
            if frac_j or frac_h:
                where = []
                if frac_j:
                    where.append(f"{frac_j} of {judge.size} judge scores (averaged samples or a panel)")
                if frac_h:
                    where.append(f"{frac_h} of {rated.size} human ratings")
                notes.append(f"fractional values in {' and '.join(where)} switch the analysis to continuous "
                             "statistics (correlations, interval-level alpha, ICC); --level ordinal rounds them "
                             "and keeps kappa and ordinal alpha")
            else:
                notes.append("--level continuous: correlation and interval-level statistics")
    sel = [index[k] for k in keys]
    return Joined(criterion=criterion, kind=kind, keys=keys, judge=judge, humans=humans, raters=raters,
                  ids=[j.id for j in sel], models=[j.model for j in sel], conditions=[j.condition or "" for j in sel],
                  categories=[j.category or "" for j in sel], dropped_unscored=dropped,
                  unrated_judged=len(index) - len(per_key), notes=notes)

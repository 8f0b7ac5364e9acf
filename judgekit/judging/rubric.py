"""Rubrics as data: YAML files with criteria, level descriptors, how ``overall`` is obtained, a pass rule,
derived flags and optional few-shot examples. :func:`load_rubric` validates a file and reports every
problem with its line.

Conventions:
- A rubric is named by a path to its YAML file, or by the bare name of a shipped rubric (``general``,
  ``robustmad``: no suffix, no folder, and no file of that name exists), from any working folder.
- The YAML rules of :mod:`judgekit.io.yamlpos` apply: no anchors/aliases, no duplicate keys, bounded nesting.
- Every number must be finite: ``.inf`` / ``.nan`` are errors wherever they appear (file, line, field).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import operator
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from judgekit.io.errors import JudgekitError
from judgekit.io.records import CheckResult
from judgekit.io.yamlpos import line_for, load_yaml_with_lines
from judgekit.judging.checks import CHECK_TYPES, Check

RESERVED_NAMES = {"overall", "rationale"}
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_COND_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq,
    "!=": operator.ne,
}


class Scale(BaseModel):
    """An integer scale ``min..max`` (inclusive)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    min: int = 1
    max: int = 5

    @model_validator(mode="before")
    @classmethod
    def _from_pair(cls, v: Any) -> Any:
        if isinstance(v, list | tuple):
            if len(v) != 2:
                raise ValueError("a scale is [min, max] or {min: .., max: ..}")
            return {"min": v[0], "max": v[1]}
        return v

    @model_validator(mode="after")
    def _ordered(self) -> Scale:
        if self.max <= self.min:
            raise ValueError(f"scale max ({self.max}) must be greater than min ({self.min})")
        if self.max - self.min > 100:
            raise ValueError("a scale may have at most 101 levels")
        return self

    @property
    def levels(self) -> list[int]:
        return list(range(self.min, self.max + 1))


class Condition(BaseModel):
    """A comparison ``field op value``, written in YAML as ``"technical_accuracy >= 3"``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    field: str
    op: Literal[">=", ">", "<=", "<", "==", "!="] = ">="
    value: float

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, v: Any) -> Any:
        if isinstance(v, str):
            m = _COND_RE.match(v)
            if not m:
                raise ValueError(f"cannot read condition {v!r}; write it like 'overall >= 3'")
            return {"field": m.group(1), "op": m.group(2), "value": float(m.group(3))}
        return v

    def holds(self, values: dict[str, float]) -> bool:
        return _OPS[self.op](values[self.field], self.value)

    def __str__(self) -> str:
        value = int(self.value) if self.value == int(self.value) else self.value
        return f"{self.field} {self.op} {value}"


def _check_levels(levels: dict[int, str], scale: Scale) -> dict[int, str]:
    expected = set(scale.levels)
    got = set(levels)
    if got != expected:
        missing = sorted(expected - got)
        extra = sorted(got - expected)
        parts = []
        if missing:
            parts.append(f"missing descriptor for level(s) {missing}")
        if extra:
            parts.append(f"level(s) {extra} outside the scale {scale.min}-{scale.max}")
        raise ValueError("; ".join(parts))
    for k, text in levels.items():
        if not text or not str(text).strip():
            raise ValueError(f"level {k} has an empty descriptor")
    return dict(sorted(levels.items()))


class Criterion(BaseModel):
    """One scored dimension with a descriptor for every level of its scale."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: str
    description: str = Field(min_length=1)
    scale: Scale | None = None
    levels: dict[int, str]
    weight: float = Field(default=1.0, gt=0)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError(f"criterion name {v!r} must be lower_snake_case (it is a JSON key in replies)")
        if v in RESERVED_NAMES:
            raise ValueError(f"criterion name {v!r} is reserved")
        return v


class Overall(BaseModel):
    """How the overall score is obtained: given by the judge (with its own descriptors) or the weighted
    mean of the criteria."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    method: Literal["judge", "weighted_mean"] = "judge"
    description: str = "Your overall judgement of the answer."
    scale: Scale | None = None
    levels: dict[int, str] | None = None


class Example(BaseModel):
    """A scored few-shot example shown to the judge."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    question: str
    reference: str
    response: str
    scores: dict[str, int]
    rationale: str = ""


class Rubric(BaseModel):
    """A validated rubric. Use :func:`load_rubric` to read one from YAML."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    description: str = ""
    instructions: str = ""
    scale: Scale = Field(default_factory=Scale)
    criteria: list[Criterion] = Field(min_length=1)
    overall: Overall = Field(default_factory=Overall)
    pass_rule: Condition = Field(default_factory=lambda: Condition(field="overall", op=">=", value=3),
                                 alias="pass")
    flags: dict[str, Condition] = Field(default_factory=dict)
    examples: list[Example] = Field(default_factory=list)
    # deterministic fact checks (judgekit.judging.checks): no judge call, never in the judge's reply schema
    checks: list[Check] = Field(default_factory=list)
    tell_judge_checks: bool = False  # add the check results to the judge's user message (a delimited block)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError("Input should be a finite number (a version such as '1.0')")
        return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Rubric:
        if info.context and info.context.get("defer_consistency"):
            return self  # load_rubric reports these problems itself, each with its line
        problems = rubric_problems(self)
        if problems:
            raise ValueError("; ".join(f"{_format_loc(loc)}: {msg}" for loc, msg in problems))
        return self

    # ---- derived views -------------------------------------------------------------------------------
    @property
    def criterion_names(self) -> list[str]:
        return [c.name for c in self.criteria]

    @property
    def overall_scale(self) -> Scale:
        return self.overall.scale or self.scale

    @property
    def reply_keys(self) -> list[str]:
        """The integer keys the judge must return: every criterion, then ``overall`` if judge-given."""
        keys = self.criterion_names
        return [*keys, "overall"] if self.overall.method == "judge" else keys

    def scale_of(self, key: str) -> Scale:
        if key == "overall":
            return self.overall_scale
        for c in self.criteria:
            if c.name == key:
                return c.scale or self.scale
        raise KeyError(key)

    def compute_overall(self, scores: dict[str, float], checks: dict[str, CheckResult] | None = None) -> float:
        """The overall score: the judge's ``overall`` or the weighted mean of the criteria (``base``); with the
        results of weighted fact checks, ``(1 - W) * base + sum(w * (top if passed else bottom))`` where ``w``
        is a check's weight, ``W`` their sum (< 1) and top/bottom the ends of the overall scale."""
        if self.overall.method == "judge":
            base = scores["overall"]
        else:
            total = sum(c.weight for c in self.criteria)
            base = sum(scores[c.name] * c.weight for c in self.criteria) / total
        weighted = [c for c in self.checks if c.weight > 0 and checks and c.name in checks]
        if not weighted:
            return base
        assert checks is not None
        sc = self.overall_scale
        mixed = sum(c.weight * (sc.max if checks[c.name].passed else sc.min) for c in weighted)
        return (1 - sum(c.weight for c in weighted)) * base + mixed

    def passed(self, values: dict[str, float], checks: dict[str, CheckResult] | None = None) -> bool:
        """The pass verdict: the pass rule holds on ``values`` and no gating check of ``checks`` failed."""
        if checks and any(r.gate and not r.passed for r in checks.values()):
            return False
        return self.pass_rule.holds(values)

    @property
    def weighted_checks(self) -> bool:
        return any(c.weight > 0 for c in self.checks)

    def derive_flags(self, values: dict[str, float]) -> dict[str, bool]:
        return {name: cond.holds(values) for name, cond in self.flags.items()}

    def reply_schema(self) -> dict[str, Any]:
        """JSON schema of the flat reply object (used as ``response_format`` where the judge supports it)."""
        props: dict[str, Any] = {}
        for key in self.reply_keys:
            sc = self.scale_of(key)
            props[key] = {"type": "integer", "minimum": sc.min, "maximum": sc.max}
        props["rationale"] = {"type": "string"}
        return {"type": "object", "properties": props, "required": [*self.reply_keys, "rationale"],
                "additionalProperties": False}

    @functools.cached_property
    def fingerprint(self) -> str:
        """sha256 of the rubric's content (part of every judge call's key); computed once."""
        data = self.model_dump(mode="json", by_alias=True)
        for key, default in (("checks", []), ("tell_judge_checks", False)):  # rubrics without checks: as before
            if data.get(key) == default:
                data.pop(key)
        blob = json.dumps(data, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


def _format_loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _constant(cond: Condition, scale: Scale) -> bool | None:
    """True/False when ``cond`` has the same outcome for every value in ``scale`` (a rubric mistake such as
    ``overall >= 9`` on a 1-5 scale), else None. Checked on a fine grid, since reduced scores are fractional."""
    steps = 100 * (scale.max - scale.min)
    outcomes = {cond.holds({cond.field: scale.min + i / 100}) for i in range(steps + 1)}
    return outcomes.pop() if len(outcomes) == 1 else None


def rubric_problems(r: Rubric) -> list[tuple[tuple[str | int, ...], str]]:
    """Cross-field problems of a rubric, each with the location (key path) it concerns."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    names = [c.name for c in r.criteria]
    for i, c in enumerate(r.criteria):
        if names.index(c.name) != i:
            out.append((("criteria", i, "name"), f"duplicate criterion name '{c.name}'"))
        try:
            c.levels = _check_levels(c.levels, c.scale or r.scale)
        except ValueError as exc:
            out.append((("criteria", i, "levels"), str(exc)))
    if r.overall.method == "judge":
        if not r.overall.levels:
            out.append((("overall",), "method 'judge' needs overall.levels (a descriptor per level)"))
        else:
            try:
                r.overall.levels = _check_levels(r.overall.levels, r.overall_scale)
            except ValueError as exc:
                out.append((("overall", "levels"), str(exc)))
    elif r.overall.levels:
        out.append((("overall", "levels"), "levels are only used with method 'judge'"))
    fields = {*names, "overall"}
    if r.pass_rule.field not in fields:
        out.append((("pass",), f"pass rule refers to unknown field '{r.pass_rule.field}' "
                               f"(known: {sorted(fields)})"))
    elif _constant(r.pass_rule, r.scale_of(r.pass_rule.field)) is not None:
        out.append((("pass",), f"pass rule '{r.pass_rule}' is {_constant(r.pass_rule, r.scale_of(r.pass_rule.field))}"
                               " for every score on the scale (the default rule is 'overall >= 3'; set 'pass:')"))
    for flag, cond in r.flags.items():
        if not _NAME_RE.match(flag):
            out.append((("flags", flag), f"flag name {flag!r} must be lower_snake_case"))
        if cond.field not in fields:
            out.append((("flags", flag), f"flag '{flag}' refers to unknown field '{cond.field}'"))
        elif _constant(cond, r.scale_of(cond.field)) is not None:
            out.append((("flags", flag), f"flag '{flag}' ({cond}) is {_constant(cond, r.scale_of(cond.field))} "
                                         "for every score on the scale"))
    for i, check in enumerate(r.checks):
        if check.name in names or [c.name for c in r.checks].index(check.name) != i:
            out.append((("checks", i, "name"), f"duplicate name '{check.name}' (criteria and checks share names)"))
    if sum(c.weight for c in r.checks) >= 1:
        out.append((("checks",), "the weights of the checks must sum to less than 1 (they are shares of overall)"))
    if r.tell_judge_checks and not r.checks:
        out.append((("tell_judge_checks",), "there are no checks to tell the judge"))
    want = set(r.reply_keys)
    for i, ex in enumerate(r.examples):
        if set(ex.scores) != want:
            out.append((("examples", i, "scores"),
                        f"scores must give exactly {sorted(want)}, got {sorted(ex.scores)}"))
            continue
        for key, value in ex.scores.items():
            sc = r.scale_of(key)
            if not sc.min <= value <= sc.max:
                out.append((("examples", i, "scores", key), f"score {value} is outside {sc.min}-{sc.max}"))
    return out


def _problems_despite(data: dict[str, Any],
                      bad: list[tuple[str | int, ...]]) -> list[tuple[tuple[str | int, ...], str]]:
    """Cross-field problems of a file that failed schema validation at ``bad``, so one run reports them all.

    The parts that failed are left out (locations keep the file's list positions), and checks that the
    left-out parts would make misleading are skipped.
    """
    data = dict(data)
    dropped = {loc[0] for loc in bad if len(loc) == 1 or loc[0] not in ("criteria", "examples", "flags")}
    if {"criteria", "scale"} & dropped:
        return []
    keep: dict[str, list[int]] = {}
    removed_names: set[Any] = set()
    for section in ("criteria", "examples"):
        items = data.get(section)
        if isinstance(items, list):
            keep[section] = [i for i in range(len(items)) if not any(loc[:2] == (section, i) for loc in bad)]
            data[section] = [items[i] for i in keep[section]]
            if section == "criteria":
                removed_names = {it["name"] if isinstance(it, dict) and isinstance(it.get("name"), str) else None
                                 for i, it in enumerate(items) if i not in keep[section]}
    if isinstance(data.get("flags"), dict):
        data["flags"] = {k: v for k, v in data["flags"].items() if not any(loc[:2] == ("flags", k) for loc in bad)}
    for key in dropped:
        data.pop(key, None)
    data.setdefault("name", "-")
    data.setdefault("version", "-")
    try:
        r = Rubric.model_validate(data, context={"defer_consistency": True})
    except ValidationError:
        return []
    out = []
    for loc, msg in rubric_problems(r):
        if loc[0] in dropped or (loc[0] == "examples" and (removed_names or "overall" in dropped)):
            continue
        if loc[0] in ("pass", "flags"):
            cond = r.pass_rule if loc[0] == "pass" else r.flags[str(loc[1])]
            if None in removed_names or cond.field in removed_names:
                continue
        if loc[0] in keep and len(loc) > 1 and isinstance(loc[1], int):
            loc = (loc[0], keep[loc[0]][loc[1]], *loc[2:])
        out.append((loc, msg))
    return out


def resolve_rubric(path: str | Path) -> Path:
    """The file a rubric argument names: ``path`` itself when it is a file, else, for a bare name (no suffix,
    no folder) such as ``general``, the shipped rubric of that name.

    Raises :class:`JudgekitError` for an unknown name or a missing file, listing the shipped names.
    """
    from judgekit.sample_data import rubric_path, shipped_rubrics

    path = Path(path)
    if path.is_file():
        return path
    text = str(path)
    if path.suffix or not text or "/" in text or "\\" in text or path.name != text:
        if not path.exists():
            raise JudgekitError(f"file not found (shipped rubrics, usable by name: {', '.join(shipped_rubrics())})",
                                path=path)
        return path  # a folder or other non-file: reported by the reader
    if text in shipped_rubrics():
        return rubric_path(text)
    raise JudgekitError(f"no rubric file or shipped rubric named {text!r} (shipped: {', '.join(shipped_rubrics())}; "
                        "or give the path of a .yaml file)")


def load_rubric(path: str | Path) -> Rubric:
    """Read and validate a rubric YAML file, or a shipped rubric by name (see :func:`resolve_rubric`).

    Raises :class:`JudgekitError` listing every problem as ``file:line: field 'a.b': message``.
    """
    path = resolve_rubric(path)
    data, lines = load_yaml_with_lines(path)
    if not isinstance(data, dict):
        raise JudgekitError("a rubric file must be a YAML mapping (name, version, criteria, ...)", path=path,
                            line=1)
    found: list[tuple[tuple[str | int, ...], str]] = []
    rubric: Rubric | None = None
    try:
        rubric = Rubric.model_validate(data, context={"defer_consistency": True})
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(p for n, p in enumerate(err["loc"]) if not str(p).startswith("function")
                        and not (n == 2 and err["loc"][0] == "checks" and p in CHECK_TYPES))
            found.append((loc, err["msg"].removeprefix("Value error, ")))
        found += _problems_despite(data, [loc for loc, _ in found])
    if rubric is not None:
        found = rubric_problems(rubric)
    if not found:
        assert rubric is not None
        return rubric
    problems = []
    for loc, msg in found:
        line = line_for(lines, loc)
        where = f"{path}:{line}" if line else str(path)
        problems.append(f"{where}: field '{_format_loc(loc)}': {msg}" if loc else f"{where}: {msg}")
    raise JudgekitError(f"invalid rubric ({len(problems)} problem(s)):\n  " + "\n  ".join(problems))

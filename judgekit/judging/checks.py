"""Fact checks: deterministic rubric criteria that need no judge call (issue 15, FORGE-style ground truth).

A rubric's ``checks:`` list declares them next to its LLM criteria; each is evaluated on the answer text against
values taken from the item (``reference``, ``question``, ``category``, ``dataset`` or ``meta.KEY[.KEY...]``).
Four types:

- ``identifier``: an exact identifier (part/model number) after :func:`normalise_identifier`; the answer passes
  when a run of 1 to 8 consecutive whitespace-separated words of it (surrounding punctuation stripped)
  normalises to one of the item's accepted identifiers.
- ``numeric``: a quantity within a tolerance, units converted with pint; numbers followed by a unit are read from
  the answer (a ``± x`` / ``+/- x`` after a number is its stated tolerance and is skipped).
- ``set``: every required component named and no forbidden one, with synonyms; case-insensitive, whole words
  (an optional plural ``s``/``es``).
- ``regex``: a regular expression (the ``regex`` module, with a time limit per search) that must (or must not)
  match.

A check never raises on an answer: every outcome is a :class:`~judgekit.io.records.CheckResult` with ``passed``,
the value ``found`` and a ``reason``. A check whose item lacks the field it reads fails with that reason.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from judgekit.io.records import CheckResult, Item

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # the same pattern as the rubric's names: compiled once
ITEM_PATHS = "reference, question, category, dataset or meta.KEY (nested: meta.a.b)"
MAX_WINDOW = 8  # words in one identifier


# The module's other regular expressions are compiled on first use (functools.cache): every judge run imports this
# module through the rubric, and most rubrics have no checks.
@functools.cache
def _path_re() -> re.Pattern[str]:
    return re.compile(r"^(reference|question|category|dataset|meta(\.[^.\s]+)+)$")


def _valid_path(v: str) -> str:
    if not _path_re().match(v):
        raise ValueError(f"{v!r} is not an item field; use {ITEM_PATHS}")
    return v


class _Missing(Exception):
    """The item lacks a field a check reads."""


def item_value(item: Item, path: str) -> Any:
    """The value at ``path`` (``reference``, ``meta.part_number``, ``meta.a.b``) of ``item``; raises
    :class:`_Missing` when absent or null."""
    head, *rest = path.split(".")
    value: Any = getattr(item, head)
    for key in rest:
        if not isinstance(value, dict) or key not in value:
            raise _Missing(f"the item has no {path}")
        value = value[key]
    if value is None:
        raise _Missing(f"the item has no {path}")
    return value


class _CheckBase(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: str
    description: str = ""
    gate: bool = False
    weight: float = Field(default=0.0, ge=0, lt=1)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError(f"check name {v!r} must be lower_snake_case")
        if v in {"overall", "rationale"}:
            raise ValueError(f"check name {v!r} is reserved")
        return v

    def evaluate(self, item: Item, text: str) -> CheckResult:
        try:
            passed, found, reason = self._evaluate(item, text)
        except _Missing as exc:
            passed, found, reason = False, None, str(exc)
        return CheckResult(passed=passed, found=found, reason=reason, gate=self.gate)

    def _evaluate(self, item: Item, text: str) -> tuple[bool, Any, str]:  # pragma: no cover - abstract
        raise NotImplementedError


# ---- identifier -------------------------------------------------------------------------------------------
@functools.cache
def _sep_re() -> re.Pattern[str]:
    return re.compile(r"[\s_\-\u2010-\u2015\u2212]+")


_EDGE_PUNCT = "\"'`.,;:!?()[]{}<>«»“”‘’"


def normalise_identifier(text: str, *, ignore_leading_zeros: bool = False) -> str:
    """The comparison form of an identifier: Unicode NFKC, upper case, separators (spaces, underscores, hyphens
    and dashes) removed; with ``ignore_leading_zeros`` each run of digits loses its leading zeros ("007" -> "7",
    "000" -> "0"). ``ACME-GEAR-2042``, ``acme gear 2042`` and ``Acme_Gear_2042`` all give ``ACMEGEAR2042``."""
    parts = _sep_re().split(unicodedata.normalize("NFKC", text).upper())
    if ignore_leading_zeros:
        parts = [re.sub(r"\d+", lambda m: m.group().lstrip("0") or "0", p) for p in parts]
    return "".join(parts)


class IdentifierCheck(_CheckBase):
    """``type: identifier``; ``expected``: the item field(s) holding the accepted identifier(s) (a string or a
    list of strings each)."""

    type: Literal["identifier"]
    expected: list[str] = Field(min_length=1)
    ignore_leading_zeros: bool = False

    @field_validator("expected", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("expected")
    @classmethod
    def _paths(cls, v: list[str]) -> list[str]:
        return [_valid_path(p) for p in v]

    def _evaluate(self, item: Item, text: str) -> tuple[bool, Any, str]:
        accepted: dict[str, str] = {}
        for path in self.expected:
            value = item_value(item, path)
            for ident in value if isinstance(value, list) else [value]:
                if str(ident).strip():
                    norm = normalise_identifier(str(ident), ignore_leading_zeros=self.ignore_leading_zeros)
                    accepted[norm] = str(ident)
        if not accepted:
            raise _Missing(f"the item gives no identifier in {', '.join(self.expected)}")
        words = [w.strip(_EDGE_PUNCT) for w in text.split()]
        words = [w for w in words if w]
        for size in range(1, MAX_WINDOW + 1):
            for start in range(len(words) - size + 1):
                span = " ".join(words[start:start + size])
                hit = accepted.get(normalise_identifier(span, ignore_leading_zeros=self.ignore_leading_zeros))
                if hit is not None:
                    return True, span, f"names {hit}"
        guess = next((w for w in words if re.search(r"\d", w) and re.search(r"[^\W\d]", w)), None)
        want = " or ".join(sorted(set(accepted.values())))
        return False, guess, f"no accepted identifier ({want}) in the answer" + (f"; it names {guess}" if guess else "")


# ---- numeric ----------------------------------------------------------------------------------------------
@functools.cache
def _plusminus_re() -> re.Pattern[str]:
    return re.compile(r"\s*(?:±|\+\s*/\s*-|\+-)\s*\d+(?:\.\d+)?")


@functools.cache
def _number_re() -> re.Pattern[str]:
    return re.compile(
        r"(?:(?<![\w.])(?P<sign>[-+\u2212])(?=\d)|(?<![\w.\-\u2212/,]))"
        r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
        r"(?:\s?(?P<unit>°\s?[CFK]|[A-Za-zµμΩ°]+(?:\^?[23²³])?(?:/[A-Za-zµμΩ°]+(?:\^?[23²³])?)?|\"))?")


#: words pint reads as a unit that are far more often English ("5 in total", "10 at most", "3 a day")
NOT_UNITS = frozenset({"a", "an", "and", "as", "at", "by", "in", "is", "it", "of", "on", "or", "to", "the", "per",
                       "for", "from", "with", "are", "be", "pi", "x"})


@functools.cache
def units() -> Any:
    """The pint unit registry (built once; about 0.3 s)."""
    import pint

    return pint.UnitRegistry()


def _parse_unit(text: str) -> Any:
    ureg = units()
    text = text.replace("²", "^2").replace("³", "^3").replace("μ", "µ").replace("° ", "°")
    text = {'"': "inch", "°C": "degC", "°F": "degF", "°K": "kelvin", "Ω": "ohm"}.get(text, text)
    return ureg.parse_units(text)


def _fmt(x: float) -> str:
    return f"{x:.10g}"


class NumericCheck(_CheckBase):
    """``type: numeric``: ``value`` (item field), ``unit`` (a pint unit such as ``mm``, or an item field),
    ``tolerance`` (a number in ``unit``, or an item field); ``bare_numbers: expected_unit`` also reads numbers
    written without a unit as being in ``unit`` (default ``ignore``)."""

    type: Literal["numeric"]
    value: str
    unit: str
    tolerance: float | str = Field(default=0.0)
    bare_numbers: Literal["ignore", "expected_unit"] = "ignore"

    @field_validator("value")
    @classmethod
    def _value_path(cls, v: str) -> str:
        return _valid_path(v)

    @field_validator("tolerance")
    @classmethod
    def _tolerance(cls, v: float | str) -> float | str:
        if isinstance(v, str):
            return _valid_path(v)
        if v < 0:
            raise ValueError("tolerance must be 0 or more")
        return v

    @field_validator("unit")
    @classmethod
    def _unit(cls, v: str) -> str:
        if _path_re().match(v):
            return v
        try:
            _parse_unit(v)
        except Exception:  # pint raises several kinds for text it cannot read
            raise ValueError(f"unknown unit {v!r} (a pint unit such as mm, cm, um, inch, degC; or an item field "
                             f"{ITEM_PATHS})") from None
        return v

    def _number(self, item: Item, spec: float | str, what: str) -> float:
        if not isinstance(spec, str):
            return float(spec)
        raw = item_value(item, spec)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise _Missing(f"the item's {spec} ({what}) is not a number: {raw!r}") from None
        if isinstance(raw, bool) or not math.isfinite(value):
            raise _Missing(f"the item's {spec} ({what}) is not a finite number: {raw!r}")
        return value

    def _evaluate(self, item: Item, text: str) -> tuple[bool, Any, str]:
        ureg = units()
        expected = self._number(item, self.value, "value")
        tol = self._number(item, self.tolerance, "tolerance")
        unit_text = str(item_value(item, self.unit)) if _path_re().match(self.unit) else self.unit
        try:
            unit = _parse_unit(unit_text)
        except Exception:  # pint cannot read it
            raise _Missing(f"the item's unit {unit_text!r} is not a unit pint knows") from None
        compatible: list[tuple[float, str]] = []
        other: list[str] = []
        for m in _number_re().finditer(_plusminus_re().sub("", text)):
            number = float(m.group("num").replace(",", "")) * (-1 if m.group("sign") in ("-", "\u2212") else 1)
            word = m.group("unit")
            quantity = None
            if word and word.lower() not in NOT_UNITS:
                try:
                    quantity = ureg.Quantity(number, _parse_unit(word))
                except Exception:  # an ordinary word after the number: no unit
                    quantity = None
            shown = m.group(0).strip()
            if quantity is None:
                if self.bare_numbers == "expected_unit":
                    compatible.append((number, m.group("num")))
                continue
            try:
                compatible.append((float(quantity.to(unit).magnitude), shown))
            except Exception:  # pint's DimensionalityError (or an offset-unit problem)
                other.append(shown)
        want = f"{_fmt(expected)} ± {_fmt(tol)} {unit_text}"
        if not compatible:
            if other:
                return False, other[0], (f"no value in {unit_text}: {', '.join(other)} cannot be converted to "
                                         f"{unit_text}")
            return False, None, f"no number with a unit convertible to {unit_text} found (expected {want})"
        values = sorted({round(v, 9) for v, _ in compatible})
        if len(values) > 1 and values[-1] - values[0] > 1e-9 * max(1.0, abs(values[-1])):
            shown = ", ".join(s for _, s in compatible)
            return False, shown, f"conflicting values: {shown} (expected {want})"
        value, shown = compatible[0]
        slack = 1e-9 * max(1.0, abs(expected), tol)  # exactly at the tolerance passes despite float rounding
        converted = f"{_fmt(value)} {unit_text}"
        # the value in the expected unit, unless the answer wrote it that way already ("25.1 mm", not "= 25.1 mm")
        said = shown if shown.replace(" ", "") == converted.replace(" ", "") else f"{shown} = {converted}"
        if abs(value - expected) <= tol + slack:
            return True, shown, f"{said}, within {want}"
        return False, shown, f"{said}, outside {want}"


# ---- set --------------------------------------------------------------------------------------------------
def _term_re(term: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in term.split()]
    return re.compile(r"(?<!\w)" + r"[\s\-]+".join(words) + r"(?:e?s)?(?!\w)", re.IGNORECASE)


class SetCheck(_CheckBase):
    """``type: set``: ``required`` and ``forbidden`` components (a list of names, or an item field holding
    one) and ``synonyms`` (a mapping name -> other names, or an item field holding one)."""

    type: Literal["set"]
    required: list[str] | str = Field(default_factory=list)
    forbidden: list[str] | str = Field(default_factory=list)
    synonyms: dict[str, list[str]] | str = Field(default_factory=dict)

    @field_validator("required", "forbidden", "synonyms")
    @classmethod
    def _path_or_literal(cls, v: Any) -> Any:
        return _valid_path(v) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _something(self) -> SetCheck:
        if not self.required and not self.forbidden:
            raise ValueError("a set check needs 'required' or 'forbidden' components")
        return self

    def _names(self, item: Item, spec: list[str] | str) -> list[str]:
        value = item_value(item, spec) if isinstance(spec, str) else spec
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise _Missing(f"the item's {spec} is not a list of names")
        return [str(v) for v in value if str(v).strip()]

    def _evaluate(self, item: Item, text: str) -> tuple[bool, Any, str]:
        synonyms: Any = self.synonyms
        if isinstance(synonyms, str):
            synonyms = item_value(item, synonyms)
            if not isinstance(synonyms, dict):
                raise _Missing(f"the item's {self.synonyms} is not a mapping name -> synonyms")
        lower = {str(k).lower(): v for k, v in synonyms.items()}

        def named(name: str) -> bool:
            alts = lower.get(name.lower(), [])
            terms = [name, *([alts] if isinstance(alts, str) else list(alts))]
            return any(_term_re(str(t)).search(text) for t in terms if str(t).strip())

        required = self._names(item, self.required)
        forbidden = self._names(item, self.forbidden)
        present = [n for n in required if named(n)]
        missing = [n for n in required if n not in present]
        banned = [n for n in forbidden if named(n)]
        problems = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"names forbidden {', '.join(banned)}"] if banned else [])
        if problems:
            return False, present + banned, "; ".join(problems)
        return True, present, f"names all {len(required)} required component(s)" + (
            ", no forbidden one" if forbidden else "")


# ---- regex ------------------------------------------------------------------------------------------------
class RegexCheck(_CheckBase):
    """``type: regex``: ``pattern`` (the ``regex`` module's syntax), ``expect: match | no_match``,
    ``ignore_case``, ``timeout_s`` (the time limit of one search, default 0.1 s: past it the check fails)."""

    type: Literal["regex"]
    pattern: str = Field(min_length=1)
    expect: Literal["match", "no_match"] = "match"
    ignore_case: bool = False
    timeout_s: float = Field(default=0.1, gt=0, le=10)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        import regex  # the regex module (imported when a rubric has a regex check)

        try:
            regex.compile(v)
        except regex.error as exc:
            raise ValueError(f"invalid regular expression {v!r}: {exc}") from None
        return v

    def _evaluate(self, item: Item, text: str) -> tuple[bool, Any, str]:
        import regex

        compiled = regex.compile(self.pattern, regex.IGNORECASE if self.ignore_case else 0)
        try:
            m = compiled.search(text, timeout=self.timeout_s)
        except TimeoutError:
            return False, None, f"the pattern took longer than {self.timeout_s} s on this answer (timed out)"
        found = m.group(0) if m else None
        if self.expect == "match":
            return (True, found, "the pattern matches") if m else (False, None, "the pattern does not match")
        return (False, found, f"the pattern matches {found!r}") if m else (True, None, "the pattern does not match")


Check = Annotated[IdentifierCheck | NumericCheck | SetCheck | RegexCheck, Field(discriminator="type")]
CHECK_TYPES = ("identifier", "numeric", "set", "regex")


def run_checks(checks: Sequence[Any], item: Item, text: str | None = None) -> dict[str, CheckResult]:
    """Every check's result on ``text`` (default: the item's ``response``), by check name."""
    answer = text if text is not None else str(getattr(item, "response", ""))
    return {c.name: c.evaluate(item, answer) for c in checks}


def checks_block(results: dict[str, CheckResult], checks: Sequence[Any]) -> str:
    """The delimited block of check results added to the judge's user message when the rubric says
    ``tell_judge_checks: true``."""
    kinds = {c.name: c.type for c in checks}
    lines = ["Results of deterministic fact checks run by the evaluation harness on the answer (facts for you to "
             "take into account, not criteria to score):", "<<<CHECKS>>>"]
    for name, r in results.items():
        lines.append(f"- {name} ({kinds.get(name, 'check')}): {'passed' if r.passed else 'failed'}; {r.reason}")
    lines.append("<<<END CHECKS>>>")
    return "\n".join(lines)


__all__ = ["CHECK_TYPES", "Check", "IdentifierCheck", "NumericCheck", "RegexCheck", "SetCheck", "checks_block",
           "item_value", "normalise_identifier", "run_checks", "units"]

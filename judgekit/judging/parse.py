"""Parsing and validating a judge's reply. A reply that fails here is never turned into a score.

Accepted: a flat JSON object, alone, inside a Markdown code fence, or with text around it. How the object is
chosen: every top-level JSON object of the reply is a candidate; a verbatim copy of the prompt's example shape
is ignored; if several candidates hold every score the rubric asks for, they must agree on every score, else
the reply is invalid (re-asked, then unscored with the reason) - a quoted, injected verdict cannot steer the
parse; if none is complete, the one with the most expected keys is read (and fails with the missing keys).
Every key the rubric asks for must be present as an integer within its scale (an integral number such as ``4.0`` or the
text ``"4"`` counts as that integer; ``3.5``, ``"four"``, booleans and out-of-range values are rejected).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from judgekit.judging.prompt import reply_example
from judgekit.judging.rubric import Rubric, Scale

_decoder = json.JSONDecoder()
_INT_TEXT = re.compile(r"\s*-?\d+\s*")


@dataclass(frozen=True, slots=True)
class _Expected:
    """What a rubric asks of a reply (the same for every reply: built once per rubric, by fingerprint)."""

    keys: tuple[str, ...]  # the rubric's reply keys
    scales: tuple[Scale, ...]  # the scale of each key
    shape: dict[str, Any]  # the prompt's example shape (only compared, never changed)


_EXPECTED: dict[str, _Expected] = {}


def _expected(rubric: Rubric) -> _Expected:
    cached = _EXPECTED.get(rubric.fingerprint)
    if cached is None:
        keys = tuple(rubric.reply_keys)
        cached = _EXPECTED[rubric.fingerprint] = _Expected(keys, tuple(rubric.scale_of(k) for k in keys),
                                                           reply_example(rubric))
    return cached


class ReplyError(ValueError):
    """The reply cannot be used; ``str(err)`` says why (it is sent back to the judge on a re-ask)."""


@dataclass(slots=True)
class ParsedReply:
    scores: dict[str, int]
    rationale: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _candidates(text: str) -> list[dict[str, Any]]:
    """Every top-level JSON object in ``text``, in order: the whole text when it is one object, else each
    decodable ``{...}`` anywhere (inside code fences or not; an object nested in another is part of it, not a
    candidate of its own)."""
    stripped = text.strip()
    try:
        obj = json.loads(stripped)
        if isinstance(obj, dict):
            return [obj]
    except (json.JSONDecodeError, RecursionError):
        pass
    found: list[dict[str, Any]] = []
    pos = text.find("{")
    while pos != -1:
        try:
            obj, end = _decoder.raw_decode(text, pos)
        except (json.JSONDecodeError, RecursionError):
            pos = text.find("{", pos + 1)
            continue
        if isinstance(obj, dict):
            found.append(obj)
        pos = text.find("{", end)
    return found


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT_TEXT.fullmatch(value):
        return int(value)
    return None


def parse_reply(text: str | None, rubric: Rubric) -> ParsedReply:
    """Extract and validate the judge's scores from ``text``; raise :class:`ReplyError` if unusable."""
    if text is None or not text.strip():
        raise ReplyError("the reply was empty")
    candidates = _candidates(text)
    if not candidates:
        raise ReplyError("no JSON object found in the reply")
    expected = _expected(rubric)
    keys = expected.keys
    # A verbatim quote of the prompt's example shape is never a verdict.
    shape = expected.shape
    complete = [o for o in candidates if all(k in o for k in keys) and o != shape]
    if complete:
        # Every complete score object must say the same: a reply that gives its verdict and also quotes the
        # answer's own (injected) score JSON, or changes its mind, cannot be read without guessing which to trust.
        if len(complete) > 1:  # one complete object (the usual reply) agrees with itself
            verdicts = {json.dumps({k: _as_int(o[k]) if _as_int(o[k]) is not None else o[k] for k in keys},
                                   sort_keys=True) for o in complete}
            if len(verdicts) > 1:
                raise ReplyError(f"the reply holds {len(verdicts)} different score objects; give exactly one JSON "
                                 "object with your scores (do not quote other score JSON)")
        best = complete[-1]
    else:
        best = max(reversed(candidates), key=lambda o: (sum(k in o for k in keys), o != shape))
    missing = [k for k in keys if k not in best]
    if missing:
        raise ReplyError(f"missing score(s) for {', '.join(missing)}")
    scores: dict[str, int] = {}
    for k, sc in zip(keys, expected.scales, strict=True):
        v = _as_int(best[k])
        if v is None:
            raise ReplyError(f"{k} must be an integer, got {json.dumps(best[k])}")
        if not sc.min <= v <= sc.max:
            raise ReplyError(f"{k}={v} is outside the scale {sc.min}-{sc.max}")
        scores[k] = v
    rationale = best.get("rationale", "")
    if not isinstance(rationale, str):
        rationale = json.dumps(rationale)
    extra = {k: v for k, v in best.items() if k not in keys and k != "rationale"}
    return ParsedReply(scores=scores, rationale=rationale, extra=extra)

"""Strict JSON text, as judgekit reads it from every input file (JSONL lines; CSV ``meta``/list cells; the JSON
columns of a results file): a key given twice in one object, the tokens ``NaN``/``Infinity``/``-Infinity`` or a
number too large to be finite (``1e999``), a lone UTF-16 surrogate escape (``"\\ud800"``) and nesting deeper than
:data:`MAX_JSON_DEPTH` are refused, with the dotted field of the refused value (:class:`JSONProblem`).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Written here, on top of the standard library's json (object_pairs_hook, parse_constant): no well-kept JSON
# library refuses duplicate keys and lone surrogates with the path of the value (orjson refuses NaN but accepts
# duplicates silently).
MAX_JSON_DEPTH = 100  # nested objects/lists in one JSON value (a record is 1; a response's meta adds its own)

# a UTF-16 surrogate escape (a valid pair is decoded into one character; what remains is a lone half)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Refused:
    """What the strict decoder leaves in place of a refused value; the walk reports it with its field."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


class JSONProblem(ValueError):
    """Strict JSON text that breaks a rule: ``message`` and the dotted ``field`` (None: the whole value)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class StrictJSON:
    """``json.loads`` with judgekit's rules (see the module's conventions); one instance per thread.

    :meth:`loads` raises ``json.JSONDecodeError`` for malformed text and :class:`JSONProblem` for a broken rule.
    """

    def __init__(self) -> None:
        self._refused = False
        self._decoder = json.JSONDecoder(object_pairs_hook=self._object, parse_constant=self._constant,
                                         parse_float=self._float, parse_int=self._int)

    def _refuse(self, message: str) -> _Refused:
        self._refused = True
        return _Refused(message)

    def _object(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            out[key] = self._refuse(f"duplicate key {key!r} in one JSON object") if key in out else value
        return out

    def _constant(self, name: str) -> _Refused:
        return self._refuse(f"not a finite number: {name} (JSON has no NaN or Infinity; write null)")

    def _float(self, text: str) -> float | _Refused:
        value = float(text)
        return value if math.isfinite(value) else self._refuse(f"not a finite number: {text} (too large)")

    def _int(self, text: str) -> int | _Refused:
        try:
            return int(text)
        except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
            return self._refuse(f"number with too many digits ({len(text)})")

    def loads(self, text: str) -> Any:
        """The value of ``text``, checked: see the class docstring."""
        self._refused = False
        try:
            value = self._decoder.decode(text)
        except RecursionError:
            raise JSONProblem(f"nested more than {MAX_JSON_DEPTH} levels deep") from None
        if (self._refused or _SURROGATE_ESCAPE.search(text)
                or text.count("[") + text.count("{") > MAX_JSON_DEPTH):
            _check(value)
        return value


def _check(value: Any) -> None:
    """Raise :class:`JSONProblem` at the first refused value, lone surrogate or too deep nesting."""
    stack: list[tuple[tuple[str, ...], Any]] = [((), value)]
    while stack:
        loc, v = stack.pop()
        if isinstance(v, _Refused):
            raise JSONProblem(v.message, ".".join(loc) or None)
        if isinstance(v, str):
            m = _SURROGATE.search(v)
            if m:
                raise JSONProblem(f"lone surrogate {ascii(m.group())[1:-1]} in text (not valid Unicode: a "
                                  "\\uD800-\\uDFFF escape must be one half of a pair)", ".".join(loc) or None)
        elif isinstance(v, dict | list):
            if len(loc) >= MAX_JSON_DEPTH:
                raise JSONProblem(f"nested more than {MAX_JSON_DEPTH} levels deep", loc[0] if loc else None)
            if isinstance(v, dict):
                for key in v:
                    m = _SURROGATE.search(key)
                    if m:
                        raise JSONProblem(f"lone surrogate {ascii(m.group())[1:-1]} in a key (not valid Unicode)",
                                          ".".join(loc) or None)
                items = [((*loc, k), x) for k, x in v.items()]
            else:
                items = [((*loc, str(i)), x) for i, x in enumerate(v)]
            stack.extend(reversed(items))  # first problem in document order

"""Keeping secrets out of every text judgekit stores, writes or prints.

A server may echo the request's ``Authorization`` header or key inside a reply (a 200 answer as well as an
error body). Every text that comes back from a judge or a model goes through :func:`redact` before it is
stored, written to a results file or shown: the exact values of the API key in use and of every environment
variable whose name marks it as a secret (``*KEY*``, ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``,
``*CREDENTIAL*``; values of 8 or more characters) become ``***``, and so do bearer tokens and ``sk-...``-style
keys found by their shape, whoever they belong to, and the password of a URL (``http://user:pass@host``; see
:func:`mask_url`).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Sequence

MASK = "***"
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
_MIN_LEN = 8


@functools.cache
def _shapes() -> re.Pattern[str]:
    """Shapes of credentials, whoever they belong to: "Bearer <token>", "sk-..."/"sk-proj-..." keys, the password
    of a URL, and "api_key": "<value>" / api-key=<value> pairs (compiled on first use: most runs never need it)."""
    return re.compile(
        r"(?P<bearer>\b[Bb]earer\s+)[A-Za-z0-9._~+/=-]{8,}"
        r"|\bsk-[A-Za-z0-9_-]{16,}"
        r"|(?P<url>\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^/\s@]+(?=@)"
        r"|(?P<pair>\b(?:api[_-]?key|x-api-key|access[_-]?token)[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9._~+/=-]{8,}",
        re.IGNORECASE)


def _may_hold_shape(text: str) -> bool:
    """False when ``text`` cannot hold a credential shape (:func:`_shapes`): an ASCII text without ``@`` (the URL
    form needs one) whose lower case holds none of ``bearer``, ``sk-``, ``api`` or ``access`` (one of them is in
    every other form). Non-ASCII text is always searched: with IGNORECASE a few non-ASCII letters match ASCII ones
    (the Kelvin sign matches ``k``, the long s ``s``, the dotted and dotless i ``i``)."""
    if "@" in text or not text.isascii():
        return True
    low = text.lower()
    return "bearer" in low or "sk-" in low or "api" in low or "access" in low


def _shape_sub(m: re.Match[str]) -> str:
    prefix = m.group("bearer") or m.group("url") or m.group("pair") or ""
    return prefix + MASK


def secret_values(extra: Iterable[str | None] = ()) -> tuple[str, ...]:
    """The secret strings to mask: ``extra`` (e.g. the key read from ``--api-key-env``) and the values of the
    environment variables named like secrets; only values of 8+ characters, longest first (so a secret that
    contains another is masked whole)."""
    values = {v for v in extra if v and len(v) >= _MIN_LEN}
    values.update(v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= _MIN_LEN)
    return tuple(sorted(values, key=len, reverse=True))


def redact(text: str | None, secrets: Sequence[str] = ()) -> str | None:
    """``text`` with every value of ``secrets`` and every credential-shaped token replaced by ``***``."""
    if not text:
        return text
    for s in secrets:
        if s in text:
            text = text.replace(s, MASK)
    if not _may_hold_shape(text):  # the usual judge reply: the regex search below costs ~30 us, this ~1 us
        return text
    return _shapes().sub(_shape_sub, text)


def mask_url(url: str | None) -> str | None:
    """``url`` with the password of its ``user:password@`` part masked (``http://user:***@host/v1``); a URL without
    credentials is returned as it is."""
    if not url or "@" not in url:
        return url
    return _shapes().sub(_shape_sub, url)

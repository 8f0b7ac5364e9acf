"""The store: SQLite in WAL mode, one row per judge call, committed as it arrives. No other module
touches SQL.

The key of a call (see :func:`call_key`) is the sha256 of everything that makes two calls the same: the
prompt version, the rubric's content hash and version, the judge model and its settings (temperature,
seed, max tokens, response format, image policy), the item (id, question, reference, category,
condition, image file hashes), the response's model and text, and the sample index. Re-asks after an
invalid reply are further attempts under the same key (attempt 0, 1, ...). A re-run reads the stored
attempts and makes no call whose reply is stored; ``kill -9`` loses at most the calls in flight, whose
replies never arrived.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judgekit.errors import JudgekitError
from judgekit.records import Response

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS calls (
    key TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'invalid')),
    response_id TEXT NOT NULL,
    model TEXT NOT NULL,
    condition TEXT,
    judge TEXT NOT NULL,
    sample INTEGER NOT NULL,
    reply TEXT,
    scores TEXT,
    rationale TEXT,
    reason TEXT,
    tokens_in INTEGER NOT NULL DEFAULT 0,
    tokens_out INTEGER NOT NULL DEFAULT 0,
    cost REAL,
    latency_s REAL NOT NULL DEFAULT 0,
    temperature REAL,
    seed INTEGER,
    settings TEXT NOT NULL,
    rubric TEXT NOT NULL,
    rubric_version TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (key, attempt)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS failures (
    key TEXT NOT NULL,
    response_id TEXT NOT NULL,
    judge TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""


@dataclass(slots=True)
class StoredCall:
    """One stored attempt (the columns the runner needs to resume)."""

    attempt: int
    status: str
    reply: str | None
    scores: dict[str, int] | None
    rationale: str | None
    reason: str | None
    tokens_in: int
    tokens_out: int
    cost: float | None
    latency_s: float


@functools.lru_cache(maxsize=65536)
def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# The encoder json.dumps(doc, sort_keys=True, ensure_ascii=False) builds on every call, built once: the same
# text (so the same keys), without the set-up that was a tenth of a re-run's key computation.
_KEY_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False)


def call_key(*, response: Response, judge_identity: dict[str, Any], rubric_fingerprint: str,
             rubric_version: str, prompt_version: str, sample: int) -> str:
    """The store key of one judge call (see the module docstring for what goes into it)."""
    doc = {
        "p": prompt_version, "r": rubric_fingerprint, "rv": rubric_version, "j": judge_identity,
        "id": response.id, "q": response.question, "ref": response.reference, "cat": response.category,
        "cond": response.condition, "m": response.model, "a": response.response,
        "img": [_file_sha256(p) for p in response.images],
        "rimg": [_file_sha256(p) for p in response.reference_images], "s": sample,
    }
    return hashlib.sha256(_KEY_ENCODER.encode(doc).encode()).hexdigest()


class Store:
    """A judgekit store file. Open it with ``Store(path)``; use as a context manager or call ``close()``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable against a killed process in WAL mode (not against power loss).
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT v FROM meta WHERE k='schema'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise JudgekitError(f"not a usable judgekit store: {exc}", path=self.path) from None
        if row is None:
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif row[0] != SCHEMA_VERSION:
            raise JudgekitError(f"store schema {row[0]} is not supported (expected {SCHEMA_VERSION})",
                                path=self.path)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def load(self) -> dict[str, list[StoredCall]]:
        """Every stored attempt, grouped by key and ordered by attempt (one query; used to resume)."""
        out: dict[str, list[StoredCall]] = {}
        cur = self._db.execute(
            "SELECT key, attempt, status, reply, scores, rationale, reason, tokens_in, tokens_out, cost, "
            "latency_s FROM calls ORDER BY key, attempt")
        loads = json.loads
        for key, attempt, status, reply, scores, rationale, reason, t_in, t_out, cost, lat in cur:
            out.setdefault(key, []).append(StoredCall(attempt, status, reply, loads(scores) if scores else None,
                                                      rationale, reason, t_in, t_out, cost, lat))
        return out

    def add_call(self, *, key: str, attempt: int, status: str, response: Response, judge: str, sample: int,
                 reply: str | None, scores: dict[str, int] | None, rationale: str | None, reason: str | None,
                 tokens_in: int, tokens_out: int, cost: float | None, latency_s: float,
                 temperature: float | None, seed: int | None, settings: dict[str, Any], rubric: str,
                 rubric_version: str) -> None:
        """Insert one call and commit at once (autocommit mode)."""
        self._db.execute(
            "INSERT OR IGNORE INTO calls VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (key, attempt, status, response.id, response.model, response.condition, judge, sample, reply,
             json.dumps(scores) if scores is not None else None, rationale, reason, tokens_in, tokens_out,
             cost, latency_s, temperature, seed, json.dumps(settings, sort_keys=True), rubric, rubric_version,
             time.time()))

    def add_failure(self, *, key: str, response: Response, judge: str, reason: str) -> None:
        """Record a call that got no usable reply after all retries (not a finished call: a re-run retries it)."""
        self._db.execute("INSERT INTO failures VALUES (?,?,?,?,?)",
                         (key, response.id, judge, reason, time.time()))

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def iter_calls(self) -> Iterator[dict[str, Any]]:
        """Every stored call as a dict (for export), in insertion-independent key order."""
        cur = self._db.execute("SELECT * FROM calls ORDER BY created_at, key, attempt")
        names = [d[0] for d in cur.description]
        for row in cur:
            rec = dict(zip(names, row, strict=True))
            for col in ("scores", "settings"):
                if rec[col] is not None:
                    rec[col] = json.loads(rec[col])
            yield rec

"""Merging judgekit stores (``judgekit store merge``), and the store identity that guards it.

This module and :mod:`judgekit.judging.store` are the only ones that touch SQL; the merge is set-based SQL
over an ``ATTACH``-ed source, so it is kept here rather than in the row-at-a-time store class.

Conventions:

- **By call key.** A call is the row ``(key, attempt)`` of the ``calls`` table (see
  :func:`judgekit.judging.store.call_key`). A source row whose ``(key, attempt)`` is already in the target with the
  same content (status, reply, scores, reason) is skipped, so merging twice adds nothing. A row with the same
  ``(key, attempt)`` but another content is a *conflict*: it is reported, never overwritten, and no attempt of
  that key is copied (a re-ask chain is only meaningful after its own earlier replies).
- **Identity.** The rubrics and judges a store holds: the ``meta`` rows ``rubric:<fingerprint>`` (value: JSON
  name, version, prompt version) and ``judge:<sha256 of settings>`` (value: the judge's settings, the same JSON
  as the ``settings`` column, which is what the call key hashes) that every run writes
  (:func:`record_identity`), plus, for stores written before those rows existed, the distinct
  ``(rubric, rubric_version)`` and ``settings`` of its calls. A source is merged only when its identity is
  within the target's (every rubric and every judge of the source is one the target already holds), or the
  target holds nothing yet (a new file); rubrics are compared by fingerprint when both stores record them, else
  by name and version. ``allow_mixed=True`` skips the check.
- **Atomic per source.** Each source is merged in one ``BEGIN IMMEDIATE`` transaction: all of its new calls,
  failures and identity rows, or nothing. Claims (live runs' leases) are never copied.
- Sources are only read (through a read-only ``ATTACH``); the target is created when missing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judgekit.io.errors import JudgekitError
from judgekit.judging.store import Store, _ro_uri, settings_text

_CONTENT = ("status", "reply", "scores", "reason")  # what makes two rows of one (key, attempt) the same call
MAX_CONFLICTS_LISTED = 20


@dataclass
class SourceMerge:
    """What merging one source did: calls ``added``, ``skipped`` (already in the target, same content), the
    ``conflicts`` (count, and up to :data:`MAX_CONFLICTS_LISTED` ``(key, attempt)`` pairs), failures added."""

    path: Path
    added: int = 0
    skipped: int = 0
    conflicts: int = 0
    conflict_rows: list[tuple[str, int]] = field(default_factory=list)
    failures_added: int = 0
    seconds: float = 0.0


@dataclass
class MergeReport:
    """The merge of several sources into ``target`` (one :class:`SourceMerge` per source, in order)."""

    target: Path
    sources: list[SourceMerge] = field(default_factory=list)

    @property
    def added(self) -> int:
        return sum(s.added for s in self.sources)

    @property
    def skipped(self) -> int:
        return sum(s.skipped for s in self.sources)

    @property
    def conflicts(self) -> int:
        return sum(s.conflicts for s in self.sources)


@dataclass(frozen=True)
class Identity:
    """The rubrics (fingerprints from meta, and ``name@version`` pairs) and judges (settings JSON) of a store."""

    fingerprints: frozenset[str]
    rubrics: frozenset[str]
    judges: frozenset[str]

    @property
    def empty(self) -> bool:
        return not (self.fingerprints or self.rubrics or self.judges)


def record_identity(store: Store, *, rubric_fingerprint: str, rubric_name: str, rubric_version: str,
                    prompt_version: str, judges: Iterable[dict[str, Any]]) -> None:
    """Write the identity rows of a run into ``store``'s meta table (idempotent; see the module docstring)."""
    rows = [(f"rubric:{rubric_fingerprint}",
             json.dumps({"name": rubric_name, "version": rubric_version, "prompt": prompt_version}, sort_keys=True))]
    for settings in judges:
        text = settings_text(settings)  # exactly the ``settings`` column of Store.add_call
        rows.append((f"judge:{hashlib.sha256(text.encode()).hexdigest()}", text))
    db = store._db  # the store's own connection (autocommit); one statement, so one transaction
    db.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)", rows)


def _identity(db: sqlite3.Connection, schema: str) -> Identity:
    fps: set[str] = set()
    rubrics: set[str] = set()
    judges: set[str] = set()
    for k, v in db.execute(f"SELECT k, v FROM {schema}.meta WHERE k LIKE 'rubric:%' OR k LIKE 'judge:%'"):
        if k.startswith("rubric:"):
            fps.add(k[len("rubric:"):])
            with contextlib.suppress(ValueError, TypeError, KeyError):
                doc = json.loads(v)
                rubrics.add(f"{doc['name']}@{doc['version']}")
        else:
            judges.add(v)
    for name, version, settings in db.execute(
            f"SELECT DISTINCT rubric, rubric_version, settings FROM {schema}.calls"):
        rubrics.add(f"{name}@{version}")
        judges.add(settings)
    return Identity(frozenset(fps), frozenset(rubrics), frozenset(judges))


def _describe(settings: str) -> str:
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        doc = json.loads(settings)
        return str(doc.get("model", settings))
    return settings


def check_identity(source: Identity, target: Identity, path: Path) -> None:
    """Raise JudgekitError (naming ``path``) when ``source`` holds a rubric or judge that ``target`` does not."""
    if target.empty:
        return
    if source.fingerprints and target.fingerprints:
        other = sorted(source.fingerprints - target.fingerprints)
        if other:
            raise JudgekitError(f"another rubric: this store was judged under rubric fingerprint {other[0][:12]}... "
                                f"which the target does not hold (it holds {', '.join(sorted(target.rubrics))}); "
                                "nothing was merged", path=path)
    other_r = sorted(source.rubrics - target.rubrics)
    if other_r:
        raise JudgekitError(f"another rubric: {', '.join(other_r)} is not among the target's "
                            f"({', '.join(sorted(target.rubrics)) or 'none'}); nothing was merged", path=path)
    other_j = sorted(source.judges - target.judges)
    if other_j:
        raise JudgekitError(f"another judge identity: {', '.join(_describe(s) for s in other_j)} with settings the "
                            "target does not hold (judge model, temperature, seed, max tokens, response format or "
                            "image policy differ); nothing was merged", path=path)


@contextlib.contextmanager
def _target(path: Path) -> Iterator[sqlite3.Connection]:
    with Store(path):  # creates a missing store, refuses a file that is not one
        pass
    db = sqlite3.connect(_ro_uri(path).replace("?mode=ro", "?mode=rw"), uri=True, timeout=30.0,
                         isolation_level=None)
    try:
        db.execute("PRAGMA synchronous=NORMAL")
        yield db
    finally:
        db.close()


def _columns(db: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [r[1] for r in db.execute(f"PRAGMA {schema}.table_info({table})")]


@contextlib.contextmanager
def _attached(db: sqlite3.Connection, source: Path) -> Iterator[sqlite3.Connection]:
    """``source`` attached read-only as ``src`` inside one ``BEGIN IMMEDIATE`` transaction: committed when the block
    ends, rolled back on an error, detached in any case."""
    db.execute("ATTACH DATABASE ? AS src", (_ro_uri(source),))
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    finally:
        db.execute("DETACH DATABASE src")


def merge_stores(sources: Sequence[str | Path], into: str | Path, *, allow_mixed: bool = False) -> MergeReport:
    """Copy every call of ``sources`` into the store ``into`` by call key (see the module docstring): each source
    in one transaction, skipping what the target holds, reporting conflicts, refusing another rubric or judge
    identity (JudgekitError, nothing of that source merged) unless ``allow_mixed``. ``into`` may be a new file."""
    import time

    target = Path(into)
    paths = [Path(s) for s in sources]
    if not paths:
        raise JudgekitError("no source stores given")
    for p in paths:
        if target.exists() and p.exists() and p.resolve() == target.resolve():
            raise JudgekitError("is the target itself (--into)", path=p)
        with Store(p, readonly=True):  # a judgekit store of this schema, or a clear error
            pass
    report = MergeReport(target=target)
    with _target(target) as db:
        for p in paths:
            t0 = time.perf_counter()
            report.sources.append(_merge_one(db, p, allow_mixed=allow_mixed))
            report.sources[-1].seconds = time.perf_counter() - t0
    return report


def _merge_one(db: sqlite3.Connection, path: Path, *, allow_mixed: bool) -> SourceMerge:
    out = SourceMerge(path=path)
    with _attached(db, path):
        if not allow_mixed:
            check_identity(_identity(db, "src"), _identity(db, "main"), path)
        same = " AND ".join(f"t.{c} IS s.{c}" for c in _CONTENT)
        db.execute("CREATE TEMP TABLE IF NOT EXISTS merge_conflicts (key TEXT PRIMARY KEY) WITHOUT ROWID")
        db.execute("DELETE FROM merge_conflicts")
        rows = db.execute(f"SELECT s.key, s.attempt FROM src.calls s JOIN main.calls t "
                          f"ON t.key = s.key AND t.attempt = s.attempt WHERE NOT ({same}) "
                          "ORDER BY s.key, s.attempt").fetchall()
        out.conflicts = len(rows)
        out.conflict_rows = [(str(k), int(a)) for k, a in rows[:MAX_CONFLICTS_LISTED]]
        db.executemany("INSERT OR IGNORE INTO merge_conflicts VALUES (?)", [(k,) for k, _ in rows])
        cols = [c for c in _columns(db, "main", "calls") if c in set(_columns(db, "src", "calls"))]
        names = ", ".join(cols)
        total = int(db.execute("SELECT COUNT(*) FROM src.calls").fetchone()[0])
        cur = db.execute(f"INSERT OR IGNORE INTO main.calls ({names}) SELECT {names} FROM src.calls "
                         "WHERE key NOT IN (SELECT key FROM merge_conflicts)")
        out.added = cur.rowcount
        held_back = int(db.execute("SELECT COUNT(*) FROM src.calls WHERE key IN "
                                   "(SELECT key FROM merge_conflicts)").fetchone()[0])
        out.skipped = total - out.added - held_back
        fcols = ", ".join(_columns(db, "main", "failures"))
        cur = db.execute(f"INSERT INTO main.failures ({fcols}) SELECT {fcols} FROM src.failures "
                         f"EXCEPT SELECT {fcols} FROM main.failures")
        out.failures_added = cur.rowcount
        db.execute("INSERT OR IGNORE INTO main.meta SELECT k, v FROM src.meta "
                   "WHERE k LIKE 'rubric:%' OR k LIKE 'judge:%'")
    return out


def seed_store(source: str | Path, into: str | Path, keys: Iterable[str]) -> int:
    """Copy the stored calls of ``keys`` (every attempt) and the identity rows from ``source`` into ``into`` (one
    transaction; created when missing): a shard store gets the earlier attempts of its pending calls, so a re-ask
    continues the stored conversation. Returns the number of calls copied."""
    wanted = [(k,) for k in keys]
    with _target(Path(into)) as db, _attached(db, Path(source)):
        db.execute("CREATE TEMP TABLE IF NOT EXISTS seed_keys (key TEXT PRIMARY KEY) WITHOUT ROWID")
        db.execute("DELETE FROM seed_keys")
        db.executemany("INSERT OR IGNORE INTO seed_keys VALUES (?)", wanted)
        names = ", ".join(_columns(db, "main", "calls"))
        cur = db.execute(f"INSERT OR IGNORE INTO main.calls ({names}) SELECT {names} FROM src.calls "
                         "WHERE key IN (SELECT key FROM seed_keys)")
        copied = cur.rowcount
        db.execute("INSERT OR IGNORE INTO main.meta SELECT k, v FROM src.meta "
                   "WHERE k LIKE 'rubric:%' OR k LIKE 'judge:%'")
    return copied


def stored_calls(path: str | Path) -> list[tuple[str, int, float | None, int, int]]:
    """``(key, attempt, cost, tokens_in, tokens_out)`` of every call in the store ``path`` (read only): what a
    shard store holds, to count the calls its workers made (also those of a worker that was lost)."""
    db = sqlite3.connect(_ro_uri(Path(path)), uri=True, timeout=30.0)
    try:
        return [(str(k), int(a), c, int(ti), int(to)) for k, a, c, ti, to in
                db.execute("SELECT key, attempt, cost, tokens_in, tokens_out FROM calls")]
    finally:
        db.close()


__all__ = ["Identity", "MergeReport", "SourceMerge", "check_identity", "merge_stores", "record_identity",
           "seed_store", "stored_calls"]

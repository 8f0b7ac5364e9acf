"""The store: SQLite in WAL mode, one row per judge call, committed as it arrives. No other module touches
its SQL but :mod:`judgekit.judging.merge` (merging stores by call key, which attaches them to one connection).

The key of a call (see :func:`call_key`) is the sha256 of everything that makes two calls the same: the
prompt version, the rubric's content hash and version, the judge model and its settings (temperature,
seed, max tokens, response format, image policy), the item (id, question, reference, category,
condition, image file hashes; point-cloud file hashes and the render version, for an item that has point clouds
only), the response's model and text, and the sample index. Re-asks after an
invalid reply are further attempts under the same key (attempt 0, 1, ...). A re-run reads the stored
attempts and makes no call whose reply is stored; ``kill -9`` loses at most the calls in flight, whose
replies never arrived.

Claims (table ``claims``): several runs may share one store at once. Before a run sends the first call of a
key it *claims* the key (:meth:`Store.claim_many`): a row with the run's owner token (a uuid per
:class:`Store` object), pid, host and a lease (``expires``, :data:`LEASE_S` seconds ahead, renewed by
:meth:`Store.renew` while the run lives). A key whose claim another live run holds is not sent; the run
waits for that run's stored attempts instead. A claim is free to take when its lease has expired, or when
its host is this host and its pid is dead (or is this process's own pid under another owner token: a
reused pid). Claims are deleted when their key is settled and all of an owner's claims when its store is
closed; a ``kill -9`` leaves them to the lease or to the dead-pid rule. Claims divide work between
processes: two runs at once inside one process (same pid) would take each other's claims.

Batches (table ``batches``, :mod:`judgekit.judging.batch`): one row per provider batch a ``--batch`` run
submitted (batch id, judge, input file id, last-seen status or ``collected``, created, the JSON list of the
``<call key>.<attempt>`` custom ids it covers), written as soon as the provider created it, so that a later run
re-attaches to a batch instead of submitting (and paying for) its requests again.

Opening: ``Store(path)`` creates a missing store (and its folder) and otherwise accepts only a judgekit store,
an empty (0-byte) file or an SQLite database without any table (what SQLite itself calls an empty database:
a run starting at the same moment may see the other's just-created file); any other file is refused,
unchanged. ``Store(path, readonly=True)`` opens through ``file:...?mode=ro`` and accepts only a judgekit
store; it never writes the file (SQLite may leave the ``-wal``/``-shm`` files beside a WAL store).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import random
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

from judgekit.io.errors import JudgekitError
from judgekit.io.records import Response

SCHEMA_VERSION = "1"
LEASE_S = 60.0
OPEN_RETRY_S = 30.0  # how long opening a store retries SQLite's immediate "database is locked" (see Store)
"""How long a claim lasts without renewal (seconds); a run renews its claims every third of it."""

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
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    expires REAL NOT NULL,
    created REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    judge TEXT NOT NULL,
    input_file_id TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    custom_ids TEXT NOT NULL
) WITHOUT ROWID;
"""
_STORE_TABLES = {"meta", "calls"}


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
    doc.update(cloud_key_fields(response.point_clouds))
    return hashlib.sha256(_KEY_ENCODER.encode(doc).encode()).hexdigest()


def call_keys(*, judge_identity: dict[str, Any], rubric_fingerprint: str, rubric_version: str,
              prompt_version: str) -> Callable[[Response, int], str]:
    """``key(response, sample)``: :func:`call_key` for one judge of one run, with the run's constant parts (the
    judge's settings, the rubric, the prompt version) encoded once. The text hashed is the same as
    :func:`call_key`'s, character for character (so are the keys: a test compares them on awkward text), written
    out in :func:`call_key`'s sorted key order with the string encoder its JSON encoder uses; a response with
    point clouds, or constant parts that are not text, take :func:`call_key` itself. Why: the generic encoder
    sorted and encoded the judge's settings again for every key, 3/4 of a 2,000-response run's key time."""
    generic = functools.partial(call_key, judge_identity=judge_identity, rubric_fingerprint=rubric_fingerprint,
                                rubric_version=rubric_version, prompt_version=prompt_version)
    if not all(type(c) is str for c in (rubric_fingerprint, rubric_version, prompt_version)):
        return lambda response, sample: generic(response=response, sample=sample)
    enc = encode_basestring  # what _KEY_ENCODER writes a str with (ensure_ascii=False)
    j, p, r, rv = _KEY_ENCODER.encode(judge_identity), enc(prompt_version), enc(rubric_fingerprint), enc(rubric_version)

    def text_or_null(value: str | None) -> str:
        return "null" if value is None else enc(value)

    def hashes(paths: list[str]) -> str:
        return "[" + ", ".join([enc(_file_sha256(path)) for path in paths]) + "]"

    def key(response: Response, sample: int) -> str:
        if response.point_clouds or type(sample) is not int:
            return generic(response=response, sample=sample)
        text = (f'{{"a": {enc(response.response)}, "cat": {text_or_null(response.category)}, '
                f'"cond": {text_or_null(response.condition)}, "id": {enc(response.id)}, '
                f'"img": {hashes(response.images)}, "j": {j}, "m": {enc(response.model)}, "p": {p}, '
                f'"q": {enc(response.question)}, "r": {r}, "ref": {enc(response.reference)}, '
                f'"rimg": {hashes(response.reference_images)}, "rv": {rv}, "s": {sample}}}')
        return hashlib.sha256(text.encode()).hexdigest()

    return key


def settings_text(settings: dict[str, Any]) -> str:
    """The ``settings`` column of a call: a judge's identity (:meth:`~judgekit.judging.backends.JudgeSpec.identity`)
    as JSON with sorted keys. A run computes it once per judge and passes the text to :meth:`Store.add_call`."""
    return json.dumps(settings, sort_keys=True)


def cloud_key_fields(clouds: list[str]) -> dict[str, Any]:
    """What point clouds add to a call key: nothing without clouds (every earlier key stays the same), else the
    clouds' content hashes (``pc``) and the render settings' version (``pcr``), since the judge sees the views."""
    if not clouds:
        return {}
    from judgekit.io.pointclouds import RENDER_VERSION

    return {"pc": [_file_sha256(p) for p in clouds], "pcr": RENDER_VERSION}


@dataclass(slots=True)
class Claims:
    """The outcome of :meth:`Store.claim_many`. Every asked key not in ``held`` is now claimed by this store's
    owner; ``stored`` gives, for such keys, every stored attempt when the store holds more of them than the
    caller knew (another run stored them since), so the caller can absorb them before sending anything."""

    held: dict[str, tuple[int, str]] = field(default_factory=dict)  # key -> (pid, host) of the live holder
    stored: dict[str, list[StoredCall]] = field(default_factory=dict)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host is running (a zombie, killed but not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


def _ro_uri(path: Path) -> str:
    """The SQLite URI that opens ``path`` read-only (``?`` and ``#`` in the name escaped)."""
    text = str(path.resolve()).replace("%", "%25").replace("?", "%3f").replace("#", "%23")
    return f"file:{text}?mode=ro"


def _tables(path: Path) -> set[str]:
    """The table names of the SQLite file ``path``, read through a read-only connection (nothing written)."""
    db = sqlite3.connect(_ro_uri(path), uri=True, timeout=30.0)
    try:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        db.close()


def _check_existing(path: Path, *, readonly: bool) -> None:
    """Refuse (JudgekitError naming ``path``) a file that is not a judgekit store, before anything opens it for
    writing; a writing run also accepts an empty file or an SQLite database without tables (see the module)."""
    if path.stat().st_size == 0:
        if readonly:
            raise JudgekitError("not a judgekit store: the file is empty", path=path)
        return
    try:
        tables = _tables(path)
    except sqlite3.OperationalError as exc:  # locked, unreadable: not a verdict on what the file is
        raise JudgekitError(f"cannot read the store: {exc}", path=path) from None
    except sqlite3.DatabaseError as exc:
        raise JudgekitError(f"not a judgekit store: not an SQLite database ({exc})", path=path) from None
    if tables >= _STORE_TABLES or (not tables and not readonly):
        return
    what = "an SQLite database without tables" if not tables else "an SQLite database without judgekit's tables"
    raise JudgekitError(f"not a judgekit store: {what} (it was left unchanged; give another --store path)",
                        path=path)


class Store:
    """A judgekit store file. Open it with ``Store(path)`` (``readonly=True`` for commands that only read);
    use as a context manager or call ``close()``, which also deletes this store object's claims."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.owner = uuid.uuid4().hex
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self.lease_s = LEASE_S
        if self.path.is_dir():
            raise JudgekitError("is a folder, not a store file", path=self.path)
        exists = self.path.exists()
        if exists:
            _check_existing(self.path, readonly=readonly)
        elif readonly:
            raise JudgekitError("store file not found", path=self.path)
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise JudgekitError(f"cannot create the store's folder: {exc.strerror or exc}",
                                    path=self.path.parent) from None
        try:
            if readonly:
                self._db = sqlite3.connect(_ro_uri(self.path), uri=True, timeout=30.0, isolation_level=None)
                row = self._db.execute("SELECT v FROM meta WHERE k='schema'").fetchone()
            else:
                row = self._open_writable()
        except sqlite3.DatabaseError as exc:
            with_db = getattr(self, "_db", None)
            if with_db is not None:
                with_db.close()
            verb = "open" if exists else "create"
            raise JudgekitError(f"cannot {verb} the store: {exc}", path=self.path) from None
        if row is None or row[0] != SCHEMA_VERSION:
            self._db.close()
            raise JudgekitError(f"store schema {row[0] if row else 'unknown'} is not supported "
                                f"(expected {SCHEMA_VERSION})", path=self.path)

    def _open_writable(self) -> tuple[str] | None:
        """Open for writing and create the tables in one transaction; the schema row (None: not a store).

        Two runs starting at the same moment on a new file can both read its header and then both need the
        exclusive lock that switching to WAL takes: SQLite then answers "database is locked" at once, without
        waiting for the busy timeout (it would otherwise be a deadlock). That is retried, with a short jittered
        pause, for up to ``OPEN_RETRY_S`` seconds; any other error is raised as it is."""
        deadline = time.monotonic() + OPEN_RETRY_S
        while True:
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            try:
                return self._create_tables()
            except sqlite3.OperationalError as exc:
                self._db.close()
                if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02 + 0.08 * random.random())

    def _create_tables(self) -> tuple[str] | None:
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable against a killed process in WAL mode (not against power loss).
        self._db.execute("PRAGMA synchronous=NORMAL")
        # One transaction (a write lock first: it also proves the file writable before any call), so a run
        # starting at the same moment never sees half of the tables. A store of another schema version is left
        # as it is.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            has_meta = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
            row = self._db.execute("SELECT v FROM meta WHERE k='schema'").fetchone() if has_meta else None
            if row is None or row[0] == SCHEMA_VERSION:
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        self._db.execute(stmt)
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
                row = (SCHEMA_VERSION,)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return row

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Delete this store object's claims (if any) and close the connection."""
        if not self.readonly:
            with contextlib.suppress(sqlite3.Error):  # closing must still close
                self.release_all()
        self._db.close()

    # ---- claims (see the module docstring) ------------------------------------------------------------
    def _free(self, owner: str, pid: int, host: str, expires: float, now: float) -> bool:
        """Whether a claim row held by another owner may be taken over."""
        if expires <= now:
            return True
        if host != self.host:
            return False
        return pid == self.pid or not pid_alive(pid)  # our own pid under another token: a reused pid

    def claim_many(self, keys: dict[str, int]) -> Claims:
        """Claim every key of ``keys`` (key -> number of its attempts the caller knows) that no other live run
        holds, in one ``BEGIN IMMEDIATE`` transaction; see :class:`Claims` for the outcome. A key is taken
        when it has no claim row, when the row is ours, or when its holder's lease expired or its holder (on
        this host) is dead."""
        out = Claims()
        if not keys:
            return out
        now = time.time()
        expires = now + self.lease_s
        db = self._db
        more: list[str] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT OR IGNORE INTO claims VALUES (?,?,?,?,?,?)",
                           [(k, self.owner, self.pid, self.host, expires, now) for k in keys])
            names = list(keys)
            for i in range(0, len(names), 500):  # within SQLite's limit on bound parameters
                part = names[i:i + 500]
                marks = ",".join("?" * len(part))
                rows = db.execute(f"SELECT key, owner, pid, host, expires FROM claims WHERE key IN ({marks}) "
                                  "AND owner != ?", (*part, self.owner)).fetchall()
                for key, owner, pid, host, exp in rows:
                    if self._free(owner, pid, host, exp, now):
                        db.execute("UPDATE claims SET owner=?, pid=?, host=?, expires=?, created=? WHERE key=?",
                                   (self.owner, self.pid, self.host, expires, now, key))
                    else:
                        out.held[key] = (int(pid), str(host))
                counts = dict(db.execute(f"SELECT key, COUNT(*) FROM calls WHERE key IN ({marks}) GROUP BY key",
                                         part).fetchall())
                more.extend(k for k in part if k not in out.held and counts.get(k, 0) != keys[k])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if more:
            out.stored = self.attempts(more)
        return out

    def claim(self, key: str) -> tuple[int, str] | None:
        """Claim one key: None when this run holds it now, else the (pid, host) of the live run holding it."""
        return self.claim_many({key: 0}).held.get(key)

    def release(self, keys: Iterable[str]) -> None:
        """Delete this owner's claims on ``keys`` (settled keys), in one transaction."""
        names = list(keys)
        if not names:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for i in range(0, len(names), 500):  # within SQLite's limit on bound parameters
                part = names[i:i + 500]
                self._db.execute(f"DELETE FROM claims WHERE owner=? AND key IN ({','.join('?' * len(part))})",
                                 (self.owner, *part))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def release_all(self) -> None:
        """Delete every claim of this owner (the end of a run), and the stale claims of runs that are gone (lease
        expired, or a dead process on this host): a run killed between storing a call and releasing its claim
        leaves a claim on a settled key, which no later run needs to claim again and so would never free."""
        db = self._db
        db.execute("DELETE FROM claims WHERE owner=?", (self.owner,))
        now = time.time()
        stale = [key for key, pid, host, expires in db.execute("SELECT key, pid, host, expires FROM claims").fetchall()
                 if expires <= now or (host == self.host and pid != self.pid and not pid_alive(pid))]
        if stale:
            db.executemany("DELETE FROM claims WHERE key=?", [(k,) for k in stale])

    def renew(self) -> None:
        """Extend the lease of every claim of this owner by :attr:`lease_s` from now (the heartbeat)."""
        self._db.execute("UPDATE claims SET expires=? WHERE owner=?", (time.time() + self.lease_s, self.owner))

    def attempts(self, keys: Iterable[str]) -> dict[str, list[StoredCall]]:
        """The stored attempts of ``keys`` (ordered by attempt; keys without any are left out)."""
        out: dict[str, list[StoredCall]] = {}
        loads = json.loads
        for key in keys:
            cur = self._db.execute(
                "SELECT attempt, status, reply, scores, rationale, reason, tokens_in, tokens_out, cost, latency_s "
                "FROM calls WHERE key=? ORDER BY attempt", (key,))
            calls = [StoredCall(a, st, rep, loads(sc) if sc else None, rat, rea, ti, to, co, la)
                     for a, st, rep, sc, rat, rea, ti, to, co, la in cur]
            if calls:
                out[key] = calls
        return out

    def holders(self, keys: Iterable[str]) -> dict[str, tuple[int, str]]:
        """For each of ``keys`` claimed by another run whose claim is still valid: that run's (pid, host)."""
        now = time.time()
        out: dict[str, tuple[int, str]] = {}
        for key in keys:
            row = self._db.execute("SELECT owner, pid, host, expires FROM claims WHERE key=?", (key,)).fetchone()
            if row is not None and row[0] != self.owner and not self._free(*row, now):
                out[key] = (int(row[1]), str(row[2]))
        return out

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
                 temperature: float | None, seed: int | None, settings: dict[str, Any] | str, rubric: str,
                 rubric_version: str) -> None:
        """Insert one call and commit at once (autocommit mode). ``settings``: the judge's identity, as a dict or
        as its :func:`settings_text` already (what the runner passes: computed once per judge)."""
        self._db.execute(
            "INSERT OR IGNORE INTO calls VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (key, attempt, status, response.id, response.model, response.condition, judge, sample, reply,
             json.dumps(scores) if scores is not None else None, rationale, reason, tokens_in, tokens_out,
             cost, latency_s, temperature, seed, settings if isinstance(settings, str) else settings_text(settings),
             rubric, rubric_version, time.time()))

    def add_failure(self, *, key: str, response: Response, judge: str, reason: str) -> None:
        """Record a call that got no usable reply after all retries (not a finished call: a re-run retries it)."""
        self._db.execute("INSERT INTO failures VALUES (?,?,?,?,?)",
                         (key, response.id, judge, reason, time.time()))

    # ---- provider batches (judgekit.judging.batch) -------------------------------------------------------
    def add_batch(self, *, batch_id: str, judge: str, input_file_id: str, status: str,
                  custom_ids: list[str]) -> None:
        """Record a batch the provider created (``custom_ids``: the ``<call key>.<attempt>`` of each request)."""
        self._db.execute("INSERT OR REPLACE INTO batches VALUES (?,?,?,?,?,?)",
                         (batch_id, judge, input_file_id, status, time.time(), json.dumps(custom_ids)))

    def set_batch_status(self, batch_id: str, status: str) -> None:
        """The provider's last-seen status of a batch, or ``collected`` once its replies are stored."""
        self._db.execute("UPDATE batches SET status=? WHERE batch_id=?", (status, batch_id))

    def open_batches(self) -> list[dict[str, Any]]:
        """Every recorded batch not yet ``collected``, oldest first, as dicts (``custom_ids`` a list)."""
        cur = self._db.execute("SELECT batch_id, judge, input_file_id, status, created, custom_ids FROM batches "
                               "WHERE status != 'collected' ORDER BY created")
        return [{"batch_id": b, "judge": j, "input_file_id": f, "status": st, "created": c,
                 "custom_ids": json.loads(ids)} for b, j, f, st, c, ids in cur]

    def batches(self) -> list[dict[str, Any]]:
        """Every recorded batch (collected or not), oldest first, as :meth:`open_batches` gives them."""
        cur = self._db.execute("SELECT batch_id, judge, input_file_id, status, created, custom_ids FROM batches "
                               "ORDER BY created")
        return [{"batch_id": b, "judge": j, "input_file_id": f, "status": st, "created": c,
                 "custom_ids": json.loads(ids)} for b, j, f, st, c, ids in cur]

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

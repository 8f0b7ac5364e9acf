"""The study database: one SQLite file (``STUDY/study.sqlite``) holding the rubric, the items, the raters, the
assignments and every rating ever submitted.

Conventions:

- secrets: a rater's link carries a random token (``secrets.token_urlsafe(24)``, 192 bits); the database keeps
  only its sha256 (``raters.token_hash``), so a copy of the database does not open the app. The admin token is
  kept the same way (``meta.admin_token_hash``). ``meta.csrf_key`` is a random key the app signs its form
  tokens with (HMAC-SHA256 of the rater's token hash);
- ids in URLs are opaque: an item is ``items.item_key`` and an assignment ``assignments.slot``, both random
  (``secrets.token_urlsafe(12)``); a slot belongs to exactly one rater;
- ratings are a history: every submission is a new row of ``ratings`` (``revision`` 1, 2, ... per slot); the
  latest row of a slot counts. A rating is committed (WAL, ``synchronous=FULL``) before :meth:`StudyStore.rate`
  returns, so a killed server loses no acknowledged rating;
- scores are integers within the rubric's scale of each key (the criteria, then ``overall`` when the rubric's
  overall is given by the judge), checked by :meth:`StudyStore.rate` against the rubric stored in the study;
- an assignment's ``kind`` is ``main`` (a sampled answer), ``repeat`` (a second showing of one of the rater's
  main items, for intra-rater consistency) or ``gold`` (an answer with known scores).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judgekit.io.errors import JudgekitError
from judgekit.judging.rubric import Rubric

SCHEMA_VERSION = "1"
DB_NAME = "study.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    item_key TEXT PRIMARY KEY,
    id TEXT NOT NULL, model TEXT NOT NULL, condition TEXT, category TEXT, judge TEXT,
    question TEXT NOT NULL, reference TEXT NOT NULL, response TEXT NOT NULL,
    images TEXT NOT NULL DEFAULT '[]', reference_images TEXT NOT NULL DEFAULT '[]',
    judge_scores TEXT, judge_overall REAL, judge_passed INTEGER,
    gold TEXT
);
CREATE TABLE IF NOT EXISTS raters (
    rater TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS assignments (
    slot TEXT PRIMARY KEY, rater TEXT NOT NULL REFERENCES raters(rater), position INTEGER NOT NULL,
    item_key TEXT NOT NULL REFERENCES items(item_key), kind TEXT NOT NULL,
    UNIQUE (rater, position)
);
CREATE TABLE IF NOT EXISTS ratings (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    slot TEXT NOT NULL REFERENCES assignments(slot), rater TEXT NOT NULL, item_key TEXT NOT NULL,
    revision INTEGER NOT NULL, scores TEXT NOT NULL, unratable INTEGER NOT NULL DEFAULT 0, reason TEXT,
    comment TEXT, seconds REAL, submitted REAL NOT NULL,
    UNIQUE (slot, revision)
);
CREATE INDEX IF NOT EXISTS ratings_by_slot ON ratings (slot, revision);
"""

#: The longest comment or unratable reason kept (characters).
MAX_TEXT = 4000


def token_hash(token: str) -> str:
    """The sha256 (hex) a token is stored as."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    """A secret token for a link: 192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


def new_key() -> str:
    """An opaque id for an item or an assignment (96 random bits): not enumerable."""
    return secrets.token_urlsafe(12)


@dataclass(frozen=True)
class Item:
    """One answer to rate (what the rater sees, plus the hidden judge verdict and gold scores)."""

    item_key: str
    id: str
    model: str
    condition: str | None
    category: str | None
    judge: str | None
    question: str
    reference: str
    response: str
    images: tuple[str, ...]  # paths relative to the study folder
    reference_images: tuple[str, ...]
    judge_scores: dict[str, float] | None
    judge_overall: float | None
    judge_passed: bool | None
    gold: dict[str, int] | None


@dataclass(frozen=True)
class Assignment:
    """One item in one rater's queue."""

    slot: str
    rater: str
    position: int  # 0-based place in the rater's shuffled order
    item_key: str
    kind: str  # main, repeat, gold


@dataclass(frozen=True)
class Rating:
    """One submission (a row of the history)."""

    slot: str
    rater: str
    item_key: str
    revision: int
    scores: dict[str, int]
    unratable: bool
    reason: str | None
    comment: str | None
    seconds: float | None
    submitted: float


def _item(row: sqlite3.Row) -> Item:
    return Item(item_key=row["item_key"], id=row["id"], model=row["model"], condition=row["condition"],
                category=row["category"], judge=row["judge"], question=row["question"], reference=row["reference"],
                response=row["response"], images=tuple(json.loads(row["images"])),
                reference_images=tuple(json.loads(row["reference_images"])),
                judge_scores=json.loads(row["judge_scores"]) if row["judge_scores"] else None,
                judge_overall=row["judge_overall"],
                judge_passed=None if row["judge_passed"] is None else bool(row["judge_passed"]),
                gold=json.loads(row["gold"]) if row["gold"] else None)


def _rating(row: sqlite3.Row) -> Rating:
    return Rating(slot=row["slot"], rater=row["rater"], item_key=row["item_key"], revision=row["revision"],
                  scores=json.loads(row["scores"]), unratable=bool(row["unratable"]), reason=row["reason"],
                  comment=row["comment"], seconds=row["seconds"], submitted=row["submitted"])


class StudyStore:
    """The study database at ``folder / study.sqlite``. ``create=True`` makes a new one (the folder may exist
    but must not hold a study); otherwise the study must exist. One connection per store, used from one thread
    at a time (the web app opens one per request thread, or serialises through a lock)."""

    def __init__(self, folder: str | Path, *, create: bool = False, readonly: bool = False) -> None:
        self.folder = Path(folder)
        self.path = self.folder / DB_NAME
        self._rubric: Rubric | None = None
        if create:
            if self.path.exists():
                raise JudgekitError("already holds a study (choose another --out, or use --add-raters)",
                                    path=self.folder)
            self.folder.mkdir(parents=True, exist_ok=True)
        elif not self.path.is_file():
            raise JudgekitError(f"no study here (no {DB_NAME}; create one with 'judgekit study create')",
                                path=self.folder)
        uri = f"file:{self.path}?mode=ro" if readonly else f"file:{self.path}"
        try:
            self.db = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None, check_same_thread=False)
            self.db.row_factory = sqlite3.Row
            if not readonly:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            if create:
                self.db.executescript(_SCHEMA)
                self._set_meta({"schema_version": SCHEMA_VERSION, "csrf_key": secrets.token_hex(32),
                                "created": str(time.time())})
            elif self.meta("schema_version") != SCHEMA_VERSION:
                raise JudgekitError(f"not a study database of this judgekit (schema {self.meta('schema_version')!r})",
                                    path=self.path)
        except sqlite3.DatabaseError as exc:
            raise JudgekitError(f"not a study database: {exc}", path=self.path) from None

    # ---- housekeeping ------------------------------------------------------------------------------------
    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> StudyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on an error)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _set_meta(self, values: dict[str, str]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(values.items()))

    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else str(row["value"])

    def set_meta(self, **values: str) -> None:
        """Store study settings (strings; JSON for structures)."""
        with self.transaction():
            self._set_meta(values)

    # ---- the rubric ----------------------------------------------------------------------------------------
    def set_rubric(self, rubric: Rubric) -> None:
        """Keep the study's rubric (as JSON of the validated model): ratings are checked against it."""
        self.set_meta(rubric=rubric.model_dump_json(by_alias=True))
        self._rubric = None

    @property
    def rubric(self) -> Rubric:
        """The study's rubric (read once)."""
        if self._rubric is None:
            text = self.meta("rubric")
            if text is None:
                raise JudgekitError("the study has no rubric", path=self.path)
            self._rubric = Rubric.model_validate_json(text)
        return self._rubric

    def rating_keys(self) -> list[str]:
        """The scores a rater gives: the rubric's criteria, then ``overall`` when the rubric's overall is given
        by the judge (a weighted-mean overall is computed, not asked)."""
        return list(self.rubric.reply_keys)

    # ---- items, raters, assignments ------------------------------------------------------------------------
    def add_items(self, items: Sequence[Item]) -> None:
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO items (item_key, id, model, condition, category, judge, question, reference, response, "
                "images, reference_images, judge_scores, judge_overall, judge_passed, gold) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(i.item_key, i.id, i.model, i.condition, i.category, i.judge, i.question, i.reference, i.response,
                  json.dumps(list(i.images)), json.dumps(list(i.reference_images)),
                  json.dumps(i.judge_scores) if i.judge_scores is not None else None, i.judge_overall,
                  None if i.judge_passed is None else int(i.judge_passed),
                  json.dumps(i.gold) if i.gold is not None else None) for i in items])

    def items(self) -> list[Item]:
        return [_item(r) for r in self.db.execute("SELECT * FROM items ORDER BY rowid")]

    def item(self, item_key: str) -> Item | None:
        row = self.db.execute("SELECT * FROM items WHERE item_key = ?", (item_key,)).fetchone()
        return None if row is None else _item(row)

    def add_rater(self, rater: str) -> str:
        """Register ``rater`` and return their new secret token (shown once; only its hash is kept)."""
        token = new_token()
        try:
            with self.transaction() as db:
                db.execute("INSERT INTO raters (rater, token_hash, created) VALUES (?, ?, ?)",
                           (rater, token_hash(token), time.time()))
        except sqlite3.IntegrityError:
            raise JudgekitError(f"rater {rater!r} already exists", path=self.path) from None
        return token

    def enroll(self, raters: Sequence[str], assignments: Sequence[Assignment]) -> dict[str, str]:
        """Register new ``raters`` and add ``assignments`` (theirs or others') in one transaction: all of it
        or nothing. Returns each new rater's secret token (shown once; only its hash is kept)."""
        tokens = {r: new_token() for r in raters}
        try:
            with self.transaction() as db:
                now = time.time()
                db.executemany("INSERT INTO raters (rater, token_hash, created) VALUES (?, ?, ?)",
                               [(r, token_hash(t), now) for r, t in tokens.items()])
                db.executemany("INSERT INTO assignments (slot, rater, position, item_key, kind) VALUES "
                               "(?, ?, ?, ?, ?)", [(a.slot, a.rater, a.position, a.item_key, a.kind)
                                                   for a in assignments])
        except sqlite3.IntegrityError as exc:
            raise JudgekitError(f"cannot add the raters: {exc}", path=self.path) from None
        return tokens

    def new_admin_token(self) -> str:
        """A new admin token (replacing any earlier one); only its hash is kept."""
        token = new_token()
        self.set_meta(admin_token_hash=token_hash(token))
        return token

    def raters(self) -> list[str]:
        return [r["rater"] for r in self.db.execute("SELECT rater FROM raters ORDER BY created, rater")]

    def rater_of(self, token: str) -> str | None:
        """The rater whose token this is, else None (constant-time comparison of the hashes)."""
        h = token_hash(token)
        row = self.db.execute("SELECT rater, token_hash FROM raters WHERE token_hash = ?", (h,)).fetchone()
        if row is None or not secrets.compare_digest(row["token_hash"], h):
            return None
        return str(row["rater"])

    def is_admin(self, token: str) -> bool:
        stored = self.meta("admin_token_hash")
        return stored is not None and secrets.compare_digest(stored, token_hash(token))

    def add_assignments(self, assignments: Sequence[Assignment]) -> None:
        with self.transaction() as db:
            db.executemany("INSERT INTO assignments (slot, rater, position, item_key, kind) VALUES (?, ?, ?, ?, ?)",
                           [(a.slot, a.rater, a.position, a.item_key, a.kind) for a in assignments])

    def assignments(self, rater: str | None = None) -> list[Assignment]:
        """A rater's queue in order (or every assignment, by rater then position)."""
        if rater is None:
            rows = self.db.execute("SELECT * FROM assignments ORDER BY rater, position")
        else:
            rows = self.db.execute("SELECT * FROM assignments WHERE rater = ? ORDER BY position", (rater,))
        return [Assignment(slot=r["slot"], rater=r["rater"], position=r["position"], item_key=r["item_key"],
                           kind=r["kind"]) for r in rows]

    def assignment(self, slot: str, rater: str) -> Assignment | None:
        """The assignment ``slot`` when it belongs to ``rater``, else None (another rater's slot is not found)."""
        r = self.db.execute("SELECT * FROM assignments WHERE slot = ? AND rater = ?", (slot, rater)).fetchone()
        return None if r is None else Assignment(slot=r["slot"], rater=r["rater"], position=r["position"],
                                                 item_key=r["item_key"], kind=r["kind"])

    # ---- ratings -----------------------------------------------------------------------------------------------
    def check_scores(self, scores: dict[str, Any]) -> dict[str, int]:
        """``scores`` as integers within the rubric's scale of every rating key; a JudgekitError naming the key
        for a missing, extra, non-integer or out-of-range score."""
        rubric = self.rubric
        keys = list(rubric.reply_keys)
        extra = sorted(set(scores) - set(keys))
        if extra:
            raise JudgekitError(f"unknown score(s) {', '.join(extra)}", field=extra[0])
        out: dict[str, int] = {}
        for k in keys:
            if k not in scores or scores[k] in (None, ""):
                raise JudgekitError("missing score", field=k)
            v = scores[k]
            integral = isinstance(v, int) or (isinstance(v, str) and v.strip().isascii()
                                              and v.strip().lstrip("-").isdigit())
            if isinstance(v, bool) or not integral:
                raise JudgekitError(f"not an integer: {str(v)[:20]!r}", field=k)
            v = int(v)
            sc = rubric.scale_of(k)
            if not sc.min <= v <= sc.max:
                raise JudgekitError(f"{v} is outside the scale {sc.min}-{sc.max}", field=k)
            out[k] = v
        return out

    def rate(self, slot: str, rater: str, scores: dict[str, Any] | None, *, unratable: bool = False,
             reason: str | None = None, comment: str | None = None, seconds: float | None = None) -> Rating:
        """Store one submission for ``rater``'s assignment ``slot`` and return it (committed before it
        returns). Scores are checked against the rubric (:meth:`check_scores`); an unratable flag needs a
        reason and carries no scores. Texts are cut to :data:`MAX_TEXT` characters; ``seconds`` (time on the
        page) must be finite and non-negative (else it is dropped)."""
        a = self.assignment(slot, rater)
        if a is None:
            raise JudgekitError("no such assignment for this rater", field="slot")
        if unratable:
            if not (reason or "").strip():
                raise JudgekitError("say why the item cannot be rated", field="reason")
            checked: dict[str, int] = {}
        else:
            checked = self.check_scores(scores or {})
        if seconds is not None and not (isinstance(seconds, int | float) and 0 <= seconds < 1e7):
            seconds = None
        reason = (reason or "").strip()[:MAX_TEXT] or None
        comment = (comment or "").strip()[:MAX_TEXT] or None
        now = time.time()
        with self.transaction() as db:
            row = db.execute("SELECT COALESCE(MAX(revision), 0) FROM ratings WHERE slot = ?", (slot,)).fetchone()
            revision = int(row[0]) + 1
            db.execute("INSERT INTO ratings (slot, rater, item_key, revision, scores, unratable, reason, comment, "
                       "seconds, submitted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (slot, rater, a.item_key, revision, json.dumps(checked), int(unratable), reason, comment,
                        seconds, now))
        return Rating(slot=slot, rater=rater, item_key=a.item_key, revision=revision, scores=checked,
                      unratable=unratable, reason=reason, comment=comment, seconds=seconds, submitted=now)

    def history(self, slot: str | None = None) -> list[Rating]:
        """Every submission (of one slot), oldest first."""
        if slot is None:
            rows = self.db.execute("SELECT * FROM ratings ORDER BY n")
        else:
            rows = self.db.execute("SELECT * FROM ratings WHERE slot = ? ORDER BY revision", (slot,))
        return [_rating(r) for r in rows]

    def latest(self, rater: str | None = None) -> dict[str, Rating]:
        """The latest submission of every rated slot (of one rater), by slot."""
        sql = ("SELECT r.* FROM ratings r JOIN (SELECT slot, MAX(revision) AS rev FROM ratings GROUP BY slot) m "
               "ON r.slot = m.slot AND r.revision = m.rev")
        rows = (self.db.execute(sql + " WHERE r.rater = ?", (rater,)) if rater is not None
                else self.db.execute(sql))
        return {r["slot"]: _rating(r) for r in rows}

    def time_spent(self, slot: str) -> float:
        """Seconds spent on a slot over all its submissions."""
        row = self.db.execute("SELECT COALESCE(SUM(seconds), 0) FROM ratings WHERE slot = ?", (slot,)).fetchone()
        return float(row[0])


__all__ = ["DB_NAME", "MAX_TEXT", "Assignment", "Item", "Rating", "StudyStore", "new_key", "new_token",
           "token_hash"]

"""The rater web app of a study (``judgekit study serve``): Starlette + Jinja2 server-rendered pages, served by
uvicorn. Works without JavaScript (plain forms that POST); a little inline-free script (``static/rate.js``) adds
keyboard shortcuts and time-on-page.

Routes (``TOKEN`` is a rater's secret, ``ADMIN`` the admin's; both only ever compared by their sha256):

- ``GET /r/TOKEN``: the rater's home (progress, continue, every item to review);
- ``GET /r/TOKEN/i/SLOT``: one item to rate, blind (no model, judge, judge scores or item id);
  ``POST`` the same URL stores a rating (:meth:`StudyStore.rate`) and redirects (303) to the next unrated item;
- ``GET /r/TOKEN/img/SLOT/K``: the K-th image of the rater's own assignment (query images, then reference images),
  read from inside the study folder only;
- ``GET /a/ADMIN``: progress and live agreement (:func:`study_summary`); ``GET /a/ADMIN/export.csv``: the long CSV.

Safety: unknown tokens, other raters' slots and bad admin tokens all give the same 404; every POST carries a
CSRF token (HMAC-SHA256 of the rater's token hash under ``meta.csrf_key``, compared in constant time; else 403);
bodies over :data:`MAX_BODY` bytes are refused with 413 before they are read; Jinja2 autoescapes everything;
every response carries a strict Content-Security-Policy (no inline script or style), ``X-Frame-Options: DENY``,
``Referrer-Policy: no-referrer`` (the token in the URL never leaves in a Referer) and ``Cache-Control: no-store``;
the server logs requests with the tokens masked (uvicorn's own access log is off). Each request opens its own
:class:`StudyStore` connection in a worker thread (SQLite WAL, ``synchronous=FULL``), and a rating is committed
before the redirect is sent.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import logging
import math
import re
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from human_study.store import MAX_TEXT, Assignment, Item, Rating, StudyStore, token_hash
from judgekit.io.errors import JudgekitError

#: The largest request body accepted (bytes); larger ones get 413 before they are read.
MAX_BODY = 64 * 1024

#: Image types served, by suffix (anything else in a study's image list is not served).
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
               ".gif": "image/gif", ".bmp": "image/bmp"}

SECURITY_HEADERS = {
    "content-security-policy": ("default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}

_HERE = Path(__file__).parent
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,128}")
_SLOT_RE = re.compile(r"[A-Za-z0-9_-]{4,64}")
_SECRET_IN_PATH = re.compile(r"(/[ra]/)[^/\s?#\"']+")
_TRUE = {"1", "on", "yes", "true"}
_INT_RE = re.compile(r"-?[0-9]{1,6}")

log = logging.getLogger("human_study.access")

ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
                   Awaitable[None]]


def mask_secrets(text: str) -> str:
    """``text`` with the token of every ``/r/TOKEN`` and ``/a/TOKEN`` path replaced by ``***``."""
    return _SECRET_IN_PATH.sub(r"\1***", text)


class MaskSecretsFilter(logging.Filter):
    """A logging filter that masks the tokens of study URLs in a record's message and traceback (attach it to
    every handler of the server's loggers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place (always keeps it)."""
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the raw message
            message = str(record.msg)
        record.msg, record.args = mask_secrets(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_secrets(logging.Formatter().formatException(record.exc_info))
        return True


# ---- middleware -------------------------------------------------------------------------------------------------
class _TooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuses a request body over ``limit`` bytes with 413: at once when Content-Length says so, else as soon
    as the streamed bytes pass the limit (nothing of it reaches the app's handler)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                if not value.isdigit():
                    await PlainTextResponse("Bad Content-Length", 400)(scope, receive, send)
                    return
                if int(value) > self.limit:
                    await _too_large(scope, receive, send)
                    return
        seen = 0
        started = False

        async def limited_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await _too_large(scope, receive, send)


async def _too_large(scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Any]],
                     send: Callable[[Any], Awaitable[None]]) -> None:
    await PlainTextResponse(f"Request too large (the limit is {MAX_BODY // 1024} KiB)", 413,
                            headers={"connection": "close"})(scope, receive, send)


class SecurityHeadersMiddleware:
    """Adds :data:`SECURITY_HEADERS` to every HTTP response, and logs each request with its tokens masked."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [0]

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = list(message.get("headers", []))
                have = {k.lower() for k, _ in headers}
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k.encode() not in have]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, with_headers)
        finally:
            log.info("%s %s %s %.0fms", scope.get("method"), mask_secrets(scope.get("path", "")), status[0] or 500,
                     1000 * (time.perf_counter() - t0))


# ---- the study ----------------------------------------------------------------------------------------------------
class _Study:
    """What the app knows of its study folder; :meth:`open` gives a fresh store per request (each worker thread
    its own SQLite connection, so concurrent requests are safe)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        with StudyStore(self.folder) as store:
            key = store.meta("csrf_key")
            if not key:
                raise JudgekitError("the study has no csrf_key", path=store.path)
            self.key = key.encode()
            self.rubric = store.rubric
            self.keys = store.rating_keys()
            self.title = store.meta("title") or f"{self.rubric.name} rating study"

    def open(self) -> StudyStore:
        return StudyStore(self.folder)

    def csrf(self, rater_hash: str) -> str:
        return hmac.new(self.key, f"csrf|{rater_hash}".encode(), hashlib.sha256).hexdigest()

    def issued(self, rater_hash: str, slot: str, ms: int | None = None) -> str:
        """A signed stamp of when a form was issued (so time on the page is measured without JavaScript)."""
        ms = int(time.time() * 1000) if ms is None else ms
        sig = hmac.new(self.key, f"issued|{rater_hash}|{slot}|{ms}".encode(), hashlib.sha256).hexdigest()[:32]
        return f"{ms}.{sig}"

    def issued_at(self, rater_hash: str, slot: str, stamp: str) -> float | None:
        """The time (epoch seconds) of a stamp from :meth:`issued`, or None when it is not ours."""
        ms_text, _, _sig = stamp.partition(".")
        if not ms_text.isdigit() or len(ms_text) > 15:
            return None
        if not hmac.compare_digest(self.issued(rater_hash, slot, int(ms_text)), stamp):
            return None
        return int(ms_text) / 1000


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _num
    return env


def _num(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}f}"


def _level_text(levels: dict[Any, str] | None, v: int) -> str:
    if not levels:
        return ""
    return str(levels.get(v) or levels.get(str(v)) or "")


def _rubric_rows(study: _Study) -> list[dict[str, Any]]:
    """Each rating key with its label, description and levels ``(value, descriptor)``."""
    rubric = study.rubric
    by_name = {c.name: c for c in rubric.criteria}
    rows = []
    for k in study.keys:
        sc = rubric.scale_of(k)
        if k in by_name:
            c = by_name[k]
            desc, levels = c.description, c.levels
        else:
            desc, levels = rubric.overall.description, rubric.overall.levels
        rows.append({"key": k, "label": k.replace("_", " ").capitalize(), "description": desc or "",
                     "levels": [(v, _level_text(levels, v)) for v in range(sc.min, sc.max + 1)]})
    return rows


def _next_unrated(assigns: list[Assignment], latest: dict[str, Rating], after: int) -> Assignment | None:
    """The first unrated assignment after position ``after`` (wrapping round), else None."""
    order = assigns[after + 1:] + assigns[:after + 1]
    return next((a for a in order if a.slot not in latest), None)


def _float(text: Any) -> float | None:
    try:
        v = float(str(text))
    except ValueError:
        return None
    return v if math.isfinite(v) and v >= 0 else None


# ---- the admin's summary ---------------------------------------------------------------------------------------
def _safe(f: Callable[[], float]) -> float:
    try:
        v = float(f())
    except Exception:
        return math.nan
    return v


def _clamp(x: float, labels: list[int]) -> int:
    return min(max(round(x), labels[0]), labels[-1])


def study_summary(store: StudyStore) -> dict[str, Any]:
    """Progress and live agreement of a study (what the admin page shows).

    - ``raters``: per rater ``done``, ``total``, ``unratable``, ``revisions`` (extra submissions), ``median_s``
      (median seconds per rated item), ``last`` (epoch of the latest submission);
    - ``inter``: per rating key, over items rated (latest, not unratable) by 2+ raters on their main or gold
      assignment: ``n_items``, Krippendorff's ``alpha`` (ordinal) and the ``kappa`` (quadratic weights) averaged
      over the ``n_pairs`` rater pairs with 2+ common items;
    - ``judge``: per rater, their overall (the ``overall`` key, else the rubric's computed overall) against the
      judge's ``items.judge_overall``: ``n``, ``kappa`` (quadratic, both rounded to the scale), ``spearman``,
      ``bias`` (mean rater minus judge);
    - ``repeats``: per rater, ``pairs`` of main and repeat ratings of one item: ``exact`` share of equal overall
      scores, ``mad`` mean absolute difference over every key;
    - ``gold``: per rater, ``n`` gold items rated: ``exact`` and ``within1`` shares of scores equal to (within one
      of) the gold scores;
    - ``models``: per model, ``n`` ratings of main assignments, the mean ``human`` overall and the mean ``judge``
      overall of the same ratings.
    """
    from judgekit.stats import cohen_kappa, krippendorff_alpha, spearman

    rubric = store.rubric
    keys = store.rating_keys()
    items = {i.item_key: i for i in store.items()}
    assigns = store.assignments()
    latest = store.latest()
    history = store.history()
    n_subs: dict[str, int] = defaultdict(int)
    for r in history:
        n_subs[r.slot] += 1
    overall_scale = rubric.overall_scale
    labels = list(range(overall_scale.min, overall_scale.max + 1))

    def overall_of(r: Rating) -> float:
        return float(r.scores["overall"]) if "overall" in r.scores else float(rubric.compute_overall(r.scores))

    raters: list[dict[str, Any]] = []
    by_rater: dict[str, list[Assignment]] = defaultdict(list)
    for a in assigns:
        by_rater[a.rater].append(a)
    for name in store.raters():
        mine = by_rater.get(name, [])
        done = [latest[a.slot] for a in mine if a.slot in latest]
        secs = [s for a in mine if a.slot in latest if (s := store.time_spent(a.slot)) > 0]
        raters.append({"rater": name, "done": len(done), "total": len(mine),
                       "unratable": sum(r.unratable for r in done),
                       "revisions": sum(n_subs[a.slot] - 1 for a in mine if a.slot in latest),
                       "median_s": statistics.median(secs) if secs else None,
                       "last": max((r.submitted for r in done), default=None)})

    # inter-rater agreement: items x raters on main/gold assignments
    scored = [(a, latest[a.slot]) for a in assigns if a.slot in latest and not latest[a.slot].unratable]
    per_item: dict[str, dict[str, Rating]] = defaultdict(dict)
    for a, r in scored:
        if a.kind != "repeat":
            per_item[a.item_key][a.rater] = r
    shared = {k: v for k, v in per_item.items() if len(v) >= 2}
    rater_names = sorted({r for v in shared.values() for r in v})
    inter = []
    for key in keys:
        sc = rubric.scale_of(key)
        matrix = [[float(v[rn].scores[key]) if rn in v else math.nan for rn in rater_names] for v in shared.values()]
        alpha = _safe(lambda m=matrix: krippendorff_alpha(m, level="ordinal")) if matrix else math.nan
        kappas = []
        for i, ra in enumerate(rater_names):
            for rb in rater_names[i + 1:]:
                both = [(v[ra].scores[key], v[rb].scores[key]) for v in shared.values() if ra in v and rb in v]
                if len(both) >= 2:
                    k = _safe(lambda b=both, lo=sc.min, hi=sc.max: cohen_kappa(
                        [x for x, _ in b], [y for _, y in b], weights="quadratic", labels=range(lo, hi + 1)))
                    if math.isfinite(k):
                        kappas.append(k)
        inter.append({"key": key, "n_items": len(shared), "alpha": alpha,
                      "kappa": statistics.fmean(kappas) if kappas else math.nan, "n_pairs": len(kappas)})

    judge = []
    repeats = []
    gold = []
    for name in store.raters():
        mine = [(a, r) for a, r in scored if a.rater == name]
        pairs = [(overall_of(r), items[a.item_key].judge_overall) for a, r in mine
                 if a.kind != "repeat" and items[a.item_key].judge_overall is not None]
        h = [p[0] for p in pairs]
        j = [float(p[1]) for p in pairs if p[1] is not None]
        hr, jr = [_clamp(x, labels) for x in h], [_clamp(x, labels) for x in j]
        judge.append({"rater": name, "n": len(pairs),
                      "kappa": _safe(lambda a=hr, b=jr: cohen_kappa(a, b, weights="quadratic", labels=labels))
                      if len(pairs) >= 2 else math.nan,
                      "spearman": _safe(lambda h=h, j=j: spearman(h, j)) if len(pairs) >= 3 else math.nan,
                      "bias": statistics.fmean(x - y for x, y in zip(h, j, strict=True)) if pairs else math.nan})
        main_of = {a.item_key: r for a, r in mine if a.kind == "main"}
        rep = [(main_of[a.item_key], r) for a, r in mine if a.kind == "repeat" and a.item_key in main_of]
        diffs = [abs(x.scores[k] - y.scores[k]) for x, y in rep for k in keys if k in x.scores and k in y.scores]
        repeats.append({"rater": name, "pairs": len(rep),
                        "exact": statistics.fmean(overall_of(x) == overall_of(y) for x, y in rep) if rep
                        else math.nan,
                        "mad": statistics.fmean(diffs) if diffs else math.nan})
        gold_cmp = [(r.scores[k], g[k]) for a, r in mine if a.kind == "gold"
                    if (g := items[a.item_key].gold) for k in g if k in r.scores]
        n_gold = sum(1 for a, _ in mine if a.kind == "gold" and items[a.item_key].gold)
        gold.append({"rater": name, "n": n_gold,
                     "exact": statistics.fmean(x == y for x, y in gold_cmp) if gold_cmp else math.nan,
                     "within1": statistics.fmean(abs(x - y) <= 1 for x, y in gold_cmp) if gold_cmp else math.nan})
    by_model: dict[str, list[tuple[float, float | None]]] = defaultdict(list)
    for a, r in scored:
        if a.kind == "main":
            it = items[a.item_key]
            by_model[it.model].append((overall_of(r), it.judge_overall))
    models = []
    for model in sorted(by_model):
        rows = by_model[model]
        judged = [j for _, j in rows if j is not None]
        models.append({"model": model, "n": len(rows), "human": statistics.fmean(h for h, _ in rows),
                       "judge": statistics.fmean(judged) if judged else math.nan})
    return {"raters": raters, "inter": inter, "judge": judge, "repeats": repeats, "gold": gold, "models": models,
            "done": sum(r["done"] for r in raters), "total": len(assigns), "n_items": len(items),
            "submissions": len(history)}


def export_rows(store: StudyStore) -> list[dict[str, Any]]:
    """The long table of the latest scores (the admin's CSV): ``id, model, condition, rater, criterion, score,
    time_s, revisions``, one row per rated main or gold assignment and rating key. Repeats and unratable items
    are left out, so the table reads straight into ``judgekit agree`` (one score per rater, response and
    criterion)."""
    items = {i.item_key: i for i in store.items()}
    latest = store.latest()
    counts: dict[str, int] = defaultdict(int)
    for r in store.history():
        counts[r.slot] += 1
    rows = []
    for a in store.assignments():
        r = latest.get(a.slot)
        if r is None or r.unratable or a.kind == "repeat":
            continue
        it = items[a.item_key]
        spent = store.time_spent(a.slot)
        for k, v in r.scores.items():
            rows.append({"id": it.id, "model": it.model, "condition": it.condition or "", "rater": a.rater,
                         "criterion": k, "score": v, "time_s": round(spent, 1) if spent else "",
                         "revisions": counts[a.slot]})
    return rows


# ---- the app ------------------------------------------------------------------------------------------------------
def create_app(study_folder: str | Path) -> Starlette:
    """The web app of the study in ``study_folder`` (which must hold a study with a rubric)."""
    study = _Study(Path(study_folder))
    env = _env()
    rubric_rows = _rubric_rows(study)

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(name).render(title=study.title, **context)
        return HTMLResponse(html, status_code=status)

    def not_found() -> HTMLResponse:
        return page("not_found.html", 404)

    def rater_of(store: StudyStore, token: str) -> tuple[str, str] | None:
        if not _TOKEN_RE.fullmatch(token):
            return None
        rater = store.rater_of(token)
        return None if rater is None else (rater, token_hash(token))

    def images_of(item: Item) -> list[str]:
        return [*item.images, *item.reference_images]

    # -- rater pages
    def home(token: str, saved: str | None) -> Response:
        with study.open() as store:
            who = rater_of(store, token)
            if who is None:
                return not_found()
            rater, _ = who
            assigns = store.assignments(rater)
            latest = store.latest(rater)
        first = _next_unrated(assigns, latest, -1)
        tiles = [{"n": a.position + 1, "slot": a.slot,
                  "state": ("todo" if a.slot not in latest else "unratable" if latest[a.slot].unratable else "done")}
                 for a in assigns]
        return page("home.html", token=token, rater=rater, done=len(latest), total=len(assigns), first=first,
                    tiles=tiles, rubric=study.rubric, saved=saved if saved and saved.isdigit() else None)

    def item_page(store: StudyStore, token: str, rater: str, rhash: str, a: Assignment, *, status: int = 200,
                  values: dict[str, Any] | None = None, error: str | None = None, error_fields: set[str] | None = None,
                  issued: str | None = None, elapsed: str = "") -> Response:
        item = store.item(a.item_key)
        assert item is not None
        assigns = store.assignments(rater)
        latest = store.latest(rater)
        if values is None:
            prev = latest.get(a.slot)
            values = ({"scores": {k: str(v) for k, v in prev.scores.items()}, "comment": prev.comment or "",
                       "unratable": prev.unratable, "reason": prev.reason or ""} if prev else
                      {"scores": {}, "comment": "", "unratable": False, "reason": ""})
        idx = [x.slot for x in assigns].index(a.slot)
        prev_a = assigns[idx - 1] if idx > 0 else None
        next_a = assigns[idx + 1] if idx + 1 < len(assigns) else None
        n_img = len(item.images)
        images = [{"k": k, "reference": k >= n_img} for k in range(len(images_of(item)))]
        return page("item.html", status, token=token, slot=a.slot, number=idx + 1, total=len(assigns),
                    done=len(latest), revising=a.slot in latest, item=item, images=images, rubric=study.rubric,
                    rows=rubric_rows, values=values, error=error, error_fields=error_fields or set(),
                    csrf=study.csrf(rhash), issued=issued or study.issued(rhash, a.slot), elapsed=elapsed,
                    prev=prev_a, next=next_a, max_text=MAX_TEXT)

    def own(store: StudyStore, token: str, slot: str) -> tuple[str, str, Assignment] | None:
        """(rater, token hash, assignment) when ``slot`` is the token's rater's own, else None."""
        who = rater_of(store, token) if _SLOT_RE.fullmatch(slot) else None
        a = store.assignment(slot, who[0]) if who else None
        return None if who is None or a is None else (who[0], who[1], a)

    def show_item(token: str, slot: str) -> Response:
        with study.open() as store:
            found = own(store, token, slot)
            return not_found() if found is None else item_page(store, token, *found)

    def submit(token: str, slot: str, form: FormData) -> Response:
        with study.open() as store:
            found = own(store, token, slot)
            if found is None:
                return not_found()
            rater, rhash, a = found
            sent = form.get("csrf")
            if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), study.csrf(rhash).encode()):
                return page("forbidden.html", 403)
            text = {k: v for k, v in form.multi_items() if isinstance(v, str)}
            scores = {k: text.get(f"score_{k}") for k in study.keys}
            unratable = text.get("unratable", "").lower() in _TRUE
            comment, reason = text.get("comment", ""), text.get("reason", "")
            stamp = text.get("issued", "")
            t_issued = study.issued_at(rhash, slot, stamp)
            server_s = max(0.0, time.time() - t_issued) if t_issued is not None else None
            client_s = _float(text.get("elapsed", ""))
            if server_s is not None:
                seconds = client_s if client_s is not None and client_s <= server_s + 2 else server_s
            else:
                seconds = client_s if client_s is not None and client_s < 1e6 else None
            values = {"scores": {k: v or "" for k, v in scores.items()}, "comment": comment,
                      "unratable": unratable, "reason": reason}
            error_fields: set[str] = set()
            try:
                if not unratable:
                    missing = [k for k, v in scores.items() if not (v or "").strip()]
                    if missing:
                        error_fields.update(missing)
                        raise JudgekitError("Score every criterion (missing: " + ", ".join(
                            k.replace("_", " ") for k in missing) + ")")
                    for k, v in scores.items():  # ASCII digits only (the store's int() would take "٣" as 3)
                        if v and not _INT_RE.fullmatch(v.strip()):
                            raise JudgekitError(f"not an integer: {v[:20]!r}", field=k)
                if len(comment) > MAX_TEXT or len(reason) > MAX_TEXT:
                    raise JudgekitError(f"at most {MAX_TEXT} characters, please",
                                        field="comment" if len(comment) > MAX_TEXT else "reason")
                store.rate(slot, rater, None if unratable else scores, unratable=unratable, reason=reason,
                           comment=comment, seconds=seconds)
            except JudgekitError as exc:
                field, message = exc.field, exc.message
                label = next((r["label"] for r in rubric_rows if r["key"] == field), field)
                if field:
                    error_fields.add(field)
                message = message[:1].upper() + message[1:]
                return item_page(store, token, rater, rhash, a, status=422, values=values,
                                 error=f"{label}: {message}" if label else message, error_fields=error_fields,
                                 issued=stamp if t_issued is not None else None, elapsed=text.get("elapsed", ""))
            assigns = store.assignments(rater)
            latest = store.latest(rater)
        nxt = _next_unrated(assigns, latest, [x.slot for x in assigns].index(slot))
        base = f"/r/{quote(token)}"
        url = f"{base}/i/{nxt.slot}?saved={a.position + 1}" if nxt else f"{base}?saved={a.position + 1}"
        return RedirectResponse(url, status_code=303)

    def image(token: str, slot: str, k: str) -> Response:
        if not _SLOT_RE.fullmatch(slot) or not k.isdigit():
            return not_found()
        with study.open() as store:
            who = rater_of(store, token)
            a = store.assignment(slot, who[0]) if who else None
            item = store.item(a.item_key) if a else None
        if item is None:
            return not_found()
        paths = images_of(item)
        if int(k) >= len(paths):
            return not_found()
        rel = Path(paths[int(k)])
        if rel.is_absolute():
            return not_found()
        path = (study.folder / rel).resolve()
        kind = IMAGE_TYPES.get(path.suffix.lower())
        if kind is None or not path.is_relative_to(study.folder) or not path.is_file():
            return not_found()
        return FileResponse(path, media_type=kind)

    # -- admin pages
    def admin(token: str) -> Response:
        with study.open() as store:
            if not _TOKEN_RE.fullmatch(token) or not store.is_admin(token):
                return not_found()
            summary = study_summary(store)
        return page("admin.html", token=token, s=summary, keys=study.keys, now=time.time(),
                    has_gold=any(g["n"] for g in summary["gold"]),
                    has_repeats=any(r["pairs"] for r in summary["repeats"]))

    def export(token: str) -> Response:
        with study.open() as store:
            if not _TOKEN_RE.fullmatch(token) or not store.is_admin(token):
                return not_found()
            rows = export_rows(store)
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=["id", "model", "condition", "rater", "criterion", "score", "time_s",
                                            "revisions"], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        return Response(buf.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": 'attachment; filename="ratings.csv"'})

    # -- async wrappers: the store work runs in a worker thread
    async def r_home(request: Request) -> Response:
        return await run_in_threadpool(home, request.path_params["token"], request.query_params.get("saved"))

    async def r_item(request: Request) -> Response:
        p = request.path_params
        if request.method == "POST":
            try:
                form = await request.form(max_files=0, max_fields=100, max_part_size=MAX_BODY)
            except _TooLarge:
                raise
            except Exception:
                return PlainTextResponse("Bad form", 400)
            try:
                return await run_in_threadpool(submit, p["token"], p["slot"], form)
            finally:
                await form.close()
        return await run_in_threadpool(show_item, p["token"], p["slot"])

    async def r_image(request: Request) -> Response:
        p = request.path_params
        return await run_in_threadpool(image, p["token"], p["slot"], p["k"])

    async def r_admin(request: Request) -> Response:
        return await run_in_threadpool(admin, request.path_params["token"])

    async def r_export(request: Request) -> Response:
        return await run_in_threadpool(export, request.path_params["token"])

    async def r_health(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def r_404(request: Request) -> Response:
        return not_found()

    routes = [
        Route("/healthz", r_health),
        Route("/r/{token}", r_home),
        Route("/r/{token}/i/{slot}", r_item, methods=["GET", "POST"]),
        Route("/r/{token}/img/{slot}/{k}", r_image),
        Route("/a/{token}", r_admin),
        Route("/a/{token}/export.csv", r_export),
        Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
        Route("/{path:path}", r_404, methods=["GET", "POST", "HEAD"]),
    ]
    return Starlette(routes=routes, middleware=[Middleware(SecurityHeadersMiddleware),
                                                Middleware(BodyLimitMiddleware)])


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with :class:`MaskSecretsFilter` on every handler, and the app's own
    (masked) access log on stderr."""
    fmt = "%(asctime)s %(levelname)s %(message)s"
    return {
        "version": 1, "disable_existing_loggers": False,
        "filters": {"mask": {"()": "human_study.app.MaskSecretsFilter"}},
        "formatters": {"plain": {"format": fmt}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "plain",
                                "filters": ["mask"]}},
        "loggers": {"uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
                    "uvicorn.error": {"level": "INFO"},
                    "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
                    "human_study": {"handlers": ["stderr"], "level": "INFO", "propagate": False}},
    }


def serve(study_folder: str | Path, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve the study in ``study_folder`` at ``http://host:port/`` until interrupted (uvicorn; its access log
    off, the app's own request log with tokens masked). The links to hand out are in ``STUDY/links.csv``."""
    import uvicorn

    app = create_app(study_folder)
    print(f"Serving the study in {study_folder} at http://{host}:{port}/ - the rater links and the admin link are "
          f"in {Path(study_folder) / 'links.csv'} (replace their host and port with these). Ctrl+C stops.",
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, access_log=False, log_config=log_config(), server_header=False,
                proxy_headers=False, timeout_graceful_shutdown=5)


__all__ = ["IMAGE_TYPES", "MAX_BODY", "SECURITY_HEADERS", "BodyLimitMiddleware", "MaskSecretsFilter",
           "SecurityHeadersMiddleware", "create_app", "export_rows", "log_config", "mask_secrets", "serve",
           "study_summary"]

"""Several servers behind one judge: the deployments, their YAML file, and how each call picks a server.

Conventions:

- A *server* (deployment) is one base URL serving the same judge model. Which server answered never changes a
  result: the store key (:meth:`JudgeSpec.identity`) holds no URL, so a call is stored once whichever server
  made it, and a re-run with other servers reads the same store.
- Choice (:meth:`ServerPool.acquire`), the same on the lean and the litellm path: the *least busy* server, i.e.
  the fewest calls in flight divided by its ``weight``, among the servers that are not cooling down, are below
  their ``max_concurrency`` and (with ``rpm``/``tpm``) have allowance left now; ties go round robin, so idle
  servers all get a share. When every healthy server is at its ``max_concurrency`` the call waits for a slot.
  When every server is cooling down, the one whose cooldown ends first is tried (the runner's back-off already
  spaces the retries).
- Cooldown: a transient failure (nothing answered, dropped connection, timeout, 429, 5xx) cools the server for
  ``min(COOLDOWN_BASE_S * 2 ** (n - 1), COOLDOWN_MAX_S)`` seconds, ``n`` its consecutive failures (longer when
  the server sent a Retry-After, within the same cap); its first success resets ``n``. The failed call still
  raises :class:`TransientError`, so the runner retries it, and the retry goes to another server.
- A failure counts as "nothing answered" (``kind="connect"``, which lets the runner stop early on a wrong
  address) only when the last try of *every* server found nothing answering: one dead server among live ones
  is cooled down, not a reason to stop the run.
- Accounting per server (:meth:`ServerPool.stats`): ``calls`` (replies received, so they sum to the run's calls
  made), ``failures`` (tries without a usable reply) and ``latency_s`` (mean over calls), keyed by the base URL
  with any ``user:password@`` masked (:func:`judgekit.io.redact.mask_url`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from judgekit.io.errors import JudgekitError
from judgekit.io.redact import mask_url

COOLDOWN_BASE_S = 1.0
COOLDOWN_MAX_S = 30.0
_FIELDS = ("api_base", "rpm", "tpm", "weight", "max_concurrency")


@dataclass(frozen=True, slots=True)
class Deployment:
    """One server of a judge: ``api_base`` (its base URL), optional ``rpm``/``tpm`` limits of its own,
    ``weight`` (its share of the load relative to the others, default 1) and ``max_concurrency`` (calls in
    flight to it at most)."""

    api_base: str
    rpm: float | None = None
    tpm: float | None = None
    weight: float = 1.0
    max_concurrency: int | None = None


def _check_base(value: Any, where: str, *, path: Path | None = None, line: int | None = None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise JudgekitError(f"{where}: api_base must be a URL (text), got {value!r}", path=path, line=line,
                            field=None if path else "--api-base")
    if not value.startswith(("http://", "https://")):
        raise JudgekitError(f"{where}: api_base must start with http:// or https://, got {mask_url(value)!r}",
                            path=path, line=line, field=None if path else "--api-base")
    parts = urlsplit(value.strip())
    try:
        problem = None if parts.hostname else "has no host"
        parts.port  # noqa: B018 - reading it checks it (a port out of range or not a number raises)
    except ValueError:
        problem = "has a bad port"
    if problem:
        raise JudgekitError(f"{where}: api_base {problem}: {mask_url(value)!r}", path=path, line=line,
                            field=None if path else "--api-base")
    return value.strip()


def deployment_of(value: Deployment | dict[str, Any] | str, where: str = "deployments", *,
                  path: Path | None = None, lines: dict[Any, int] | None = None,
                  loc: tuple[Any, ...] = ()) -> Deployment:
    """A checked :class:`Deployment` from a Deployment, a URL or a mapping with the fields of one (a YAML item
    when ``path``/``lines`` are given: errors then name the file and line). Raises :class:`JudgekitError`."""
    from judgekit.io.yamlpos import line_for

    def line(*key: Any) -> int | None:
        return line_for(lines, (*loc, *key)) if lines is not None else None

    if isinstance(value, Deployment):
        value = {k: getattr(value, k) for k in _FIELDS}
    elif isinstance(value, str):
        value = {"api_base": value}
    if not isinstance(value, dict):
        raise JudgekitError(f"{where}: expected a mapping with api_base (and optional rpm, tpm, weight, "
                            f"max_concurrency), got {type(value).__name__}", path=path, line=line(),
                            field=None if path else "deployments")
    unknown = [k for k in value if k not in _FIELDS]
    if unknown:
        raise JudgekitError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(_FIELDS)})", path=path,
                            line=line(unknown[0]), field=None if path else "deployments")
    if "api_base" not in value:
        raise JudgekitError(f"{where}: api_base is missing", path=path, line=line(),
                            field=None if path else "deployments")
    base = _check_base(value["api_base"], where, path=path, line=line("api_base"))
    nums: dict[str, Any] = {}
    for name in ("rpm", "tpm", "weight", "max_concurrency"):
        v = value.get(name)
        if v is None:
            continue
        ok = isinstance(v, int | float) and not isinstance(v, bool) and v > 0 and v == v and v != float("inf")
        if name == "max_concurrency":
            ok = ok and isinstance(v, int)
        if not ok:
            kind = "a positive integer" if name == "max_concurrency" else "a positive number"
            raise JudgekitError(f"{where}: {name} must be {kind}, got {v!r}", path=path, line=line(name),
                                field=None if path else "deployments")
        nums[name] = v if name == "max_concurrency" else float(v)
    return Deployment(api_base=base, **nums)


def load_deployments(path: str | Path) -> list[Deployment]:
    """The servers listed in a YAML file: a list of mappings ``- api_base: URL`` with optional ``rpm``, ``tpm``,
    ``weight``, ``max_concurrency``. Raises :class:`JudgekitError` naming the file and line of a mistake (not a
    list, an empty list, an unknown field, a bad value, the same api_base twice)."""
    from judgekit.io.yamlpos import load_yaml_with_lines

    path = Path(path)
    data, lines = load_yaml_with_lines(path)
    if not isinstance(data, list) or not data:
        raise JudgekitError("expected a non-empty YAML list of servers, e.g. '- api_base: http://host:8000/v1'",
                            path=path, line=lines.get(()) if isinstance(data, list) else 1)
    out = [deployment_of(item, f"server {i + 1}", path=path, lines=lines, loc=(i,)) for i, item in enumerate(data)]
    check_distinct(out, path=path, lines=lines)
    return out


def check_distinct(deployments: Sequence[Deployment], *, path: Path | None = None,
                   lines: dict[Any, int] | None = None) -> None:
    """Refuse the same server given twice (its calls would be counted as two servers')."""
    seen: dict[str, int] = {}
    for i, d in enumerate(deployments):
        key = d.api_base.rstrip("/")
        if key in seen:
            raise JudgekitError(f"server {i + 1}: api_base {mask_url(d.api_base)!r} is already server {seen[key] + 1}",
                                path=path, line=(lines or {}).get((i, "api_base")),
                                field=None if path else "--api-base")
        seen[key] = i


def _limiter(per_minute: float | None) -> Any:
    if not per_minute:
        return None
    from judgekit.judging.control import _limiter as make

    return make(per_minute)


@dataclass(slots=True, eq=False)
class Server:
    """One server's live state (in flight, cooldown) and accounting."""

    dep: Deployment
    index: int
    label: str
    rpm: Any = None
    tpm: Any = None
    in_flight: int = 0
    consecutive: int = 0
    cool_until: float = 0.0
    last_connect: bool = False
    calls: int = 0
    failures: int = 0
    latency_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def open(self) -> bool:
        cap = self.dep.max_concurrency
        return cap is None or self.in_flight < cap

    def has_allowance(self, tokens: int) -> bool:
        if self.rpm is not None and not self.rpm.has_capacity():
            return False
        return self.tpm is None or self.tpm.has_capacity(min(tokens, self.tpm.max_rate))


class ServerPool:
    """The servers of one judge and the choice among them (see the module docstring for the rules)."""

    def __init__(self, deployments: Sequence[Deployment], *, clock: Callable[[], float] = time.monotonic) -> None:
        if not deployments:
            raise ValueError("a ServerPool needs at least one server")
        self.servers = [Server(dep=d, index=i, label=mask_url(d.api_base.rstrip("/")) or d.api_base,
                               rpm=_limiter(d.rpm), tpm=_limiter(d.tpm)) for i, d in enumerate(deployments)]
        self._clock = clock
        self._next = 0
        self._freed: asyncio.Event | None = None
        self.limited = any(s.rpm is not None or s.tpm is not None for s in self.servers)

    def pick(self) -> Server | None:
        """The server for a call now (its in-flight count is raised), or None when it has to wait for a slot."""
        return self._pick(0)

    def _pick(self, tokens: int) -> Server | None:
        servers = self.servers
        n = len(servers)
        if n == 1:  # the common case, kept cheap
            s = servers[0]
            if not s.open():
                return None
            s.in_flight += 1
            return s
        now = self._clock()
        healthy = [s for s in servers if s.cool_until <= now]
        if healthy:
            cand = [s for s in healthy if s.open()]
            if self.limited and cand:
                cand = [s for s in cand if s.has_allowance(tokens)] or cand
        else:  # every server cooling down: the one that recovers first
            first = min((s for s in servers if s.open()), key=lambda s: s.cool_until, default=None)
            cand = [first] if first is not None else []
        if not cand:
            return None
        rr = self._next
        chosen = min(cand, key=lambda s: (s.in_flight / s.dep.weight, (s.index - rr) % n))
        self._next = (chosen.index + 1) % n
        chosen.in_flight += 1
        return chosen

    async def acquire(self, tokens: int = 0) -> Server:
        """A server for one call (see the module docstring); waits while every healthy server is at its
        ``max_concurrency``, then for the chosen server's rpm/tpm allowance. Pair with :meth:`done`."""
        while True:
            s = self._pick(tokens)
            if s is not None:
                break
            if self._freed is None:
                self._freed = asyncio.Event()
            freed = self._freed
            now = self._clock()
            cooling = [x.cool_until - now for x in self.servers if x.cool_until > now]
            with contextlib.suppress(TimeoutError):  # wake when a slot frees up, or when a cooldown ends
                await asyncio.wait_for(freed.wait(), timeout=max(0.01, min(cooling, default=1.0)))
        try:
            if s.rpm is not None:
                await s.rpm.acquire()
            if s.tpm is not None:
                await s.tpm.acquire(min(tokens, s.tpm.max_rate))
        except BaseException:
            self.done(s, counted=False)
            raise
        return s

    def done(self, server: Server, *, latency: float | None = None, error: BaseException | None = None,
             transient: bool = False, retry_after: float | None = None, connect: bool = False,
             counted: bool = True) -> None:
        """A call to ``server`` ended: a reply after ``latency`` seconds, or ``error`` (``transient``: cool the
        server down; ``connect``: nothing answered). ``counted=False``: cancelled, no outcome to record."""
        server.in_flight -= 1
        if self._freed is not None:
            self._freed.set()
            self._freed = None
        if not counted:
            return
        if error is None:
            server.calls += 1
            server.latency_s += latency or 0.0
            server.consecutive = 0
            server.cool_until = 0.0
            server.last_connect = False
            return
        server.failures += 1
        if not transient:  # a request the server refused (e.g. 400): not the server's fault
            return
        server.consecutive += 1
        server.last_connect = connect
        cool = min(COOLDOWN_BASE_S * 2 ** (server.consecutive - 1), COOLDOWN_MAX_S)
        if retry_after:
            cool = max(cool, min(retry_after, COOLDOWN_MAX_S))
        server.cool_until = self._clock() + cool

    def nothing_answers(self) -> bool:
        """Whether the last try of every server found nothing answering (see the module docstring)."""
        return all(s.consecutive and s.last_connect for s in self.servers)

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per server (masked base URL): calls, failures, mean latency_s over its calls."""
        return {s.label: {"calls": s.calls, "failures": s.failures,
                          "latency_s": s.latency_s / s.calls if s.calls else 0.0} for s in self.servers}


def merge_stats(into: dict[str, dict[str, Any]], more: dict[str, dict[str, Any]]) -> None:
    """Add ``more`` (per-server stats) to ``into`` (the same server seen by two judges of a panel adds up)."""
    for label, s in more.items():
        old = into.get(label)
        if old is None:
            into[label] = dict(s)
            continue
        calls = old["calls"] + s["calls"]
        lat = old["latency_s"] * old["calls"] + s["latency_s"] * s["calls"]
        into[label] = {"calls": calls, "failures": old["failures"] + s["failures"],
                       "latency_s": lat / calls if calls else 0.0}


def deployments_of(value: str | Path | Sequence[Deployment | dict[str, Any] | str]) -> list[Deployment]:
    """The servers given to ``judgekit.judge(deployments=...)``: a YAML file (see :func:`load_deployments`) or a
    list of :class:`Deployment`, mappings or URLs. Raises :class:`JudgekitError` (file and line, or the item)."""
    if isinstance(value, str | Path):
        return load_deployments(value)
    out = [deployment_of(item, f"deployments[{i}]") for i, item in enumerate(value)]
    if not out:
        raise JudgekitError("no servers given", field="deployments")
    check_distinct(out)
    return out

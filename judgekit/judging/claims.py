"""Claims: runs that share a store divide its keys, so that no key is paid for twice.

:class:`ClaimScheduler` runs units of work (one store key each, a judge sample or a candidate answer) under
claims in the store (:meth:`judgekit.judging.store.Store.claim_many`): claimed in chunks of the queue ahead,
deferred while another live run holds them, then read from the store when that run settled them or run here
when its claim ended without a result. Used by :mod:`judgekit.judging.runner` and
:mod:`judgekit.generation.candidates`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Generic, TypeVar

from judgekit.judging.store import Store, StoredCall

U = TypeVar("U")


class ClaimScheduler(Generic[U]):
    """Runs units (one store key each) under claims in ``store``, for the judge runner and ``judgekit generate``.

    ``workers`` coroutines take units from the queue; when the claimed units run out, the next ``chunk``
    units are claimed in one transaction (:meth:`Store.claim_many`). A unit whose key the store holds more
    attempts of than ``known(unit)`` gets them through ``absorb(unit, attempts)``, which returns True when
    they settle it (it is then not run). A unit that another live run holds is deferred; after the queue
    the deferred units are polled every ``poll_s`` seconds: absorbed when settled, run here when their claim
    is free again. ``settled(unit)`` is called once per unit settled here (run or absorbed). A heartbeat
    renews this run's leases every third of the lease; claims of settled units are released in batches and
    all of them when :meth:`run` ends, however it ends. ``notify`` gets the waiting note, once. Once
    ``stopped()`` is true (the run was stopped: budget, abort, Ctrl-C), deferred units are no longer waited
    for and the units not yet claimed are not claimed any more: they go to ``run`` unclaimed, which must then
    settle them without a call.
    """

    def __init__(self, store: Store, *, chunk: int, key: Callable[[U], str], known: Callable[[U], int],
                 absorb: Callable[[U, list[StoredCall]], bool], run: Callable[[U], Awaitable[None]],
                 settled: Callable[[U], None], notify: Callable[[str], None] | None = None,
                 what: str = "call", poll_s: float = 0.5, stopped: Callable[[], bool] | None = None) -> None:
        self.store = store
        self.chunk = max(1, chunk)
        self._key, self._known, self._absorb, self._run = key, known, absorb, run
        self._settled, self._notify, self.what, self.poll_s = settled, notify, what, poll_s
        self._stopped = stopped
        self._ready: deque[U] = deque()
        self._deferred: list[tuple[U, tuple[int, str]]] = []
        self._release: list[str] = []
        self._unclaimed: set[str] = set()  # taken after the stop: run (settled without a call), never claimed
        self.note: str | None = None

    def _claim(self, batch: list[U]) -> None:
        res = self.store.claim_many({self._key(u): self._known(u) for u in batch})
        for u in batch:
            k = self._key(u)
            holder = res.held.get(k)
            if holder is not None:
                self._deferred.append((u, holder))
            elif k in res.stored and self._absorb(u, res.stored[k]):
                self._done(u)
            else:
                self._ready.append(u)

    def _next(self, source: Iterator[U]) -> U | None:
        while not self._ready:
            if self._stopped is not None and self._stopped():  # no new call starts: nothing more to claim
                u = next(source, None)
                if u is not None:
                    self._unclaimed.add(self._key(u))
                return u
            batch = list(itertools.islice(source, self.chunk))
            if not batch:
                return None
            self._claim(batch)
        return self._ready.popleft()

    def _done(self, u: U) -> None:
        k = self._key(u)
        if k in self._unclaimed:
            self._unclaimed.discard(k)
        else:
            self._release.append(k)
            if len(self._release) >= self.chunk:
                self._flush()
        self._settled(u)

    def _flush(self) -> None:
        keys, self._release = self._release, []
        self.store.release(keys)

    async def _drain(self, units: Iterable[U], workers: int) -> int:
        """Run every unit of ``units`` this run can claim (the others are deferred); returns how many ran."""
        source = iter(units)
        ran = 0

        async def worker() -> None:
            nonlocal ran
            while (u := self._next(source)) is not None:  # one shared iterator: asyncio runs one worker at a time
                await self._run(u)
                ran += 1
                self._done(u)

        await asyncio.gather(*(worker() for _ in range(max(1, workers))))
        return ran

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.store.lease_s / 3)
            with contextlib.suppress(sqlite3.OperationalError):  # busy this time: the next beat renews
                self.store.renew()
                self._flush()

    def _wait_note(self) -> str:
        holders = Counter(h for _, h in self._deferred)
        (pid, host), _ = holders.most_common(1)[0]
        others = f" and {len(holders) - 1} other run(s)" if len(holders) > 1 else ""
        n = len(self._deferred)
        return (f"waiting for {n} {self.what}{'s' if n != 1 else ''} claimed by another judgekit run "
                f"(pid {pid} on {host}{others}); their results are read from the store as they arrive")

    async def run(self, units: Sequence[U], workers: int) -> None:
        """Run or absorb every unit of ``units`` (see the class docstring)."""
        if not units:
            return
        beat = asyncio.create_task(self._heartbeat())
        try:
            await self._drain(units, min(workers, len(units)))
            while self._deferred:
                waiting, self._deferred = [u for u, _ in self._deferred], []
                stored = self.store.attempts({self._key(u) for u in waiting})
                rest = []
                for u in waiting:
                    calls = stored.get(self._key(u))
                    if calls and len(calls) > self._known(u) and self._absorb(u, calls):
                        self._done(u)
                    else:
                        rest.append(u)
                if rest and self._stopped is not None and self._stopped():
                    for u in rest:  # stopped: no call is made, the unit is settled as not run
                        await self._run(u)
                        self._settled(u)
                    break
                ran = await self._drain(rest, min(workers, len(rest))) if rest else 0
                if self._deferred and not ran:
                    if self.note is None:
                        self.note = self._wait_note()
                        if self._notify is not None:
                            self._notify(self.note)
                    self._flush()
                    await asyncio.sleep(self.poll_s)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            self._release.clear()
            with contextlib.suppress(sqlite3.Error):  # never mask the run's own error; Store.close() retries
                self.store.release_all()

"""Sharded runs on a Ray cluster (``judgekit judge --ray [ADDRESS|auto|local] --workers W``).

How a sharded run goes (the driver is the process that called :func:`run_sharded`):

1. **Leftovers first.** Shard stores ``STORE.shard-<k>.sqlite`` left by an earlier sharded run that stopped (the
   driver killed, a worker lost) are merged into the main store by call key
   (:func:`judgekit.judging.merge.merge_stores`) and removed, so nothing they hold is paid again.
2. **Plan.** The ordinary runner's plan (:meth:`Runner._plan`) on the main store gives the samples still to judge
   (response x judge x sample without a settled stored result); the responses they belong to are split into
   at most W contiguous shards. Nothing pending: no cluster is started at all.
3. **Shards.** Each shard gets a Ray actor (one per shard, ``num_cpus=1``) that runs the ordinary
   :class:`Runner` on its responses against its own shard store next to the main one (seeded with the stored
   earlier attempts of its pending calls, so a re-ask continues the stored conversation). A ``local/...``
   judge's model is loaded once per actor. ``concurrency`` applies per worker; ``rpm``, ``tpm`` and the
   ``max_cost`` budget are divided among the shards (by their share of the responses).
4. **Merge and assemble.** Every shard store is merged into the main store by call key and removed; the
   runner then runs once more on *all* responses against the main store: it makes no call and assembles the
   judgments exactly as a plain run does. The report counts the calls the workers made as made now
   (``calls_made``, ``cost``, tokens) and the rest as read from the store, per judgment too.

Failures: a worker that dies (``ray.kill``, a crashed node: ``RayActorError``) leaves its shard store holding
every call it finished; the driver retries that shard once (``shard_retries``) with a new actor on the same
shard store, which resumes from it. If the retry fails too, its unjudged samples are unscored with
:data:`NOT_RUN_WORKER` and counted as transport failures (the run is incomplete, the CLI's exit 3); the same
command again resumes with nothing paid twice. An exception inside a worker (a setup mistake) is raised in the
driver after what the shards stored has been merged.

Ray is an optional extra (``pip install 'judgekit[ray]'``), imported only inside :func:`run_sharded`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from judgekit.io.errors import JudgekitError
from judgekit.io.records import Response, SampleResult
from judgekit.judging.backends import JudgeSpec
from judgekit.judging.merge import merge_stores, record_identity, seed_store, stored_calls
from judgekit.judging.prompt import PROMPT_VERSION
from judgekit.judging.rubric import Rubric
from judgekit.judging.runner import Runner, RunOptions, RunReport, _Unit
from judgekit.judging.store import Store

NOT_RUN_WORKER = "not judged: its Ray worker was lost (re-run to continue)"
RAY_MISSING = "--ray needs Ray, an optional extra: pip install 'judgekit[ray]'"


def import_ray() -> Any:
    """The ``ray`` module, or JudgekitError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise JudgekitError(RAY_MISSING, field="--ray") from None
    return ray


def shard_path(store: Path, k: int) -> Path:
    """The shard store of worker ``k`` next to the main store: ``STORE.shard-<k>.sqlite``."""
    return store.with_name(f"{store.name}.shard-{k}.sqlite")


def leftover_shards(store: Path) -> list[Path]:
    """Shard stores of ``store`` left by an earlier sharded run (sorted by name)."""
    return sorted(Path(p) for p in glob.glob(glob.escape(str(store)) + ".shard-*.sqlite"))


def remove_store(path: Path) -> None:
    """Delete a store file with its ``-wal``/``-shm`` files."""
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def split(items: Sequence[int], parts: int) -> list[list[int]]:
    """``items`` cut into at most ``parts`` contiguous non-empty pieces of sizes differing by at most 1."""
    n = len(items)
    parts = max(1, min(parts, n))
    size, extra = divmod(n, parts)
    out, i = [], 0
    for k in range(parts):
        j = i + size + (1 if k < extra else 0)
        out.append(list(items[i:j]))
        i = j
    return [p for p in out if p]


class _ShardRunner(Runner):
    """The ordinary runner, also keeping the units it assembled (for the unscored samples' reasons)."""

    units: list[_Unit]

    def _assemble(self, units):  # type: ignore[no-untyped-def]
        self.units = units
        return super()._assemble(units)


def run_shard(responses: list[Response], rubric: Rubric, specs: list[JudgeSpec], options: RunOptions,
              store: str) -> dict[str, Any]:
    """Judge one shard into its shard store (what a worker does); the run's accounting as plain data."""
    with Store(store) as st:
        runner = _ShardRunner(responses, rubric, specs, st, options)
        runner.units = []
        rep = runner.run_sync()
    return {"calls_made": rep.calls_made, "cost": rep.cost, "unpriced_calls": rep.unpriced_calls,
            "tokens_in": rep.tokens_in, "tokens_out": rep.tokens_out,
            "transport_failures": rep.transport_failures, "failure_reasons": dict(rep.failure_reasons),
            "budget_reached": rep.budget_reached, "interrupted": rep.interrupted,
            "reasons": {u.key: u.result.reason for u in runner.units
                        if u.result is not None and u.result.status == "unscored"}}


class ShardWorker:
    """The Ray actor class (wrapped by ``ray.remote`` in :func:`run_sharded`): one per shard."""

    def run(self, responses: list[Response], rubric: Rubric, specs: list[JudgeSpec], options: RunOptions,
            store: str) -> dict[str, Any]:
        return run_shard(responses, rubric, specs, options, store)

    def ping(self) -> bool:
        return True


class _Assembler(Runner):
    """The final pass on the main store: makes no call; pending samples are unscored with the worker's reason."""

    made: dict[str, int]
    reasons: dict[str, str | None]
    lost: int

    def _plan(self) -> list[_Unit]:
        units = super()._plan()
        for u in units:
            n = self.made.get(u.key)
            if n:  # made by a worker in this run: not read from the store, as in a plain run
                u.cached_calls -= min(n, u.cached_calls)
        return units

    async def _run_unit(self, unit: _Unit, backend: Any) -> None:
        reason = self.reasons.get(unit.key)
        if reason is None:
            self.lost += 1
        unit.result = SampleResult(sample=unit.sample, status="unscored", attempts=len(unit.stored),
                                   reason=reason or NOT_RUN_WORKER)


def _shard_options(options: RunOptions, share: float, shards: int) -> RunOptions:
    def part(v: float | None) -> float | None:
        return None if v is None else v * share

    return dataclasses.replace(options, max_cost=part(options.max_cost),
                               requests_per_minute=part(options.requests_per_minute),
                               tokens_per_minute=part(options.tokens_per_minute))


def _init_ray(ray: Any, address: str | None, workers: int) -> bool:
    """Connect to (or start) a cluster unless one is connected; True when this call did it."""
    if ray.is_initialized():
        return False
    import logging

    if address in (None, "", "local"):
        ray.init(num_cpus=workers, include_dashboard=False, logging_level=logging.WARNING)
    else:
        ray.init(address=address, logging_level=logging.WARNING)
    return True


def run_sharded(responses: Sequence[Response], rubric: Rubric, specs: Sequence[JudgeSpec], options: RunOptions,
                store: str | Path, *, address: str | None = "local", workers: int = 2, shard_retries: int = 1,
                worker_api_bases: Sequence[str] | None = None,
                progress: Callable[[int, int, float], None] | None = None,
                notify: Callable[[str], None] | None = None,
                on_actors: Callable[[list[Any]], None] | None = None) -> RunReport:
    """Judge ``responses`` on a Ray cluster in up to ``workers`` shards (see the module docstring) and return the
    report of the final assembly, with the workers' calls counted as made by this run.

    ``address``: ``"local"`` (or None) starts a local cluster of ``workers`` CPUs, ``"auto"`` or ``HOST:PORT``
    joins one (an already connected Ray session is used as it is). ``worker_api_bases``: worker k sends to
    ``worker_api_bases[k % len]`` (the API base is not part of a call's key). ``on_actors`` gets the actor
    handles once submitted (for tests)."""
    if workers < 1:
        raise JudgekitError("must be at least 1", field="--workers")
    ray = import_ray()
    store = Path(store)
    responses = list(responses)
    specs = list(specs)
    options.validate()
    t0 = time.perf_counter()
    with Store(store) as st:  # the main store's identity first: leftover shards are checked against it
        record_identity(st, rubric_fingerprint=rubric.fingerprint, rubric_name=rubric.name,
                        rubric_version=rubric.version, prompt_version=PROMPT_VERSION,
                        judges=[s.identity() for s in specs])
    _merge_shards(leftover_shards(store), store, notify)
    with Store(store) as st:
        units = Runner(responses, rubric, specs, st, options)._plan()
    pending: dict[int, list[_Unit]] = {}
    for u in units:
        if u.result is None:
            pending.setdefault(u.ri, []).append(u)
    shards = split(sorted(pending), workers)
    pending_units = {u.key: u.stored for us in pending.values() for u in us}
    totals: dict[str, Any] = {"calls_made": 0, "cost": 0.0, "unpriced_calls": 0, "tokens_in": 0, "tokens_out": 0,
                              "transport_failures": 0, "budget_reached": False, "interrupted": False}
    reasons_all: Counter[str] = Counter()
    made: dict[str, int] = {}
    reasons: dict[str, str | None] = {}
    if shards:
        results, made_rows = _run_on_ray(
                              ray, shards, pending, responses, rubric, specs, options, store, address=address,
                              workers=workers, shard_retries=shard_retries, worker_api_bases=worker_api_bases,
                              progress=progress, total=len(units), done0=len(units) - sum(map(len, pending.values())),
                              on_actors=on_actors, notify=notify)
        for res in results:
            for name in ("transport_failures", "budget_reached", "interrupted"):
                value = totals[name]
                totals[name] = (value or res[name]) if isinstance(value, bool) else value + res[name]
            reasons_all.update(res["failure_reasons"])
            reasons.update(res["reasons"])
        # the calls made now: what the shard stores hold beyond what they were seeded with (a lost worker's too)
        for key, attempt, cost, t_in, t_out in made_rows:
            if attempt < len(pending_units.get(key, ())):
                continue
            made[key] = made.get(key, 0) + 1
            totals["calls_made"] += 1
            totals["tokens_in"] += t_in
            totals["tokens_out"] += t_out
            if cost is None:
                totals["unpriced_calls"] += 1
            else:
                totals["cost"] += cost
    with Store(store) as st:
        asm = _Assembler(responses, rubric, specs, st, options, progress)
        asm.made, asm.reasons, asm.lost = made, reasons, 0
        report = asm.run_sync()
    report.calls_made = totals["calls_made"]
    report.cost = totals["cost"]
    report.unpriced_calls = totals["unpriced_calls"]
    report.tokens_in, report.tokens_out = totals["tokens_in"], totals["tokens_out"]
    report.transport_failures = totals["transport_failures"] + asm.lost
    report.failure_reasons = reasons_all
    if asm.lost:
        report.failure_reasons["Ray worker lost"] += asm.lost
    report.budget_reached = report.budget_reached or totals["budget_reached"]
    report.interrupted = report.interrupted or totals["interrupted"]
    report.wall_s = time.perf_counter() - t0
    return report


def _merge_shards(paths: Sequence[Path], store: Path, notify: Callable[[str], None] | None) -> None:
    """Merge shard stores into the main one and remove each once merged; conflicts are noted, never written."""
    for p in paths:
        rep = merge_stores([p], store)
        if rep.conflicts and notify is not None:
            notify(f"{p.name}: {rep.conflicts} call(s) differ from the main store's and were left out")
        if not rep.conflicts:
            remove_store(p)


def _run_on_ray(ray: Any, shards: list[list[int]], pending: dict[int, list[_Unit]], responses: list[Response],
                rubric: Rubric, specs: list[JudgeSpec], options: RunOptions, store: Path, *, address: str | None,
                workers: int, shard_retries: int, worker_api_bases: Sequence[str] | None,
                progress: Callable[[int, int, float], None] | None, total: int, done0: int,
                on_actors: Callable[[list[Any]], None] | None,
                notify: Callable[[str], None] | None) -> tuple[list[dict[str, Any]], list[Any]]:
    """Run every shard on its actor; merge every shard store into ``store`` (also on failure); the results of
    the shards that finished, and the calls the shard stores held (see :func:`stored_calls`)."""
    from ray.exceptions import RayActorError, RayTaskError

    try:
        from ray.exceptions import WorkerCrashedError
        lost_errors: tuple[type[BaseException], ...] = (RayActorError, WorkerCrashedError)
    except ImportError:  # pragma: no cover - older Ray
        lost_errors = (RayActorError,)
    n_pending = sum(len(pending[ri]) for ri in pending)
    started = _init_ray(ray, address, workers)
    remote_cls = ray.remote(num_cpus=1, max_restarts=0)(ShardWorker)
    paths = [shard_path(store, k) for k in range(len(shards))]
    jobs: list[tuple[list[Response], list[JudgeSpec], RunOptions]] = []
    for k, idx in enumerate(shards):
        remove_store(paths[k])  # leftovers were merged above
        seeded = [u.key for ri in idx for u in pending[ri] if u.stored]
        if seeded:
            seed_store(store, paths[k], seeded)
        share = sum(len(pending[ri]) for ri in idx) / n_pending
        ks = specs
        if worker_api_bases:
            ks = [dataclasses.replace(s, api_base=worker_api_bases[k % len(worker_api_bases)]) for s in specs]
        jobs.append(([responses[ri] for ri in idx], ks, _shard_options(options, share, len(shards))))
    rubric_ref = ray.put(rubric)
    tries = [0] * len(shards)
    actors: dict[int, Any] = {}
    futures: dict[Any, int] = {}

    def submit(k: int) -> None:
        actors[k] = remote_cls.remote()
        resp, ks, opts = jobs[k]
        futures[actors[k].run.remote(resp, rubric_ref, ks, opts, str(paths[k]))] = k

    results: list[dict[str, Any]] = []
    failure: BaseException | None = None
    done = done0
    try:
        for k in range(len(shards)):
            submit(k)
        if on_actors is not None:
            on_actors([actors[k] for k in range(len(shards))])
        while futures:
            ready, _ = ray.wait(list(futures), num_returns=1)
            for fut in ready:
                k = futures.pop(fut)
                try:
                    res = ray.get(fut)
                except lost_errors as exc:
                    tries[k] += 1
                    if notify is not None:
                        notify(f"Ray worker of shard {k} lost ({type(exc).__name__}); "
                               + ("retrying it on a new worker" if tries[k] <= shard_retries else "giving it up"))
                    if tries[k] <= shard_retries:
                        submit(k)  # the new actor resumes from the shard store: nothing finished is paid again
                    continue
                except RayTaskError as exc:  # an error inside the runner (a setup mistake): stop every shard
                    cause = getattr(exc, "cause", None)
                    failure = cause if isinstance(cause, BaseException) else exc
                    for other in list(futures):
                        ray.cancel(other, force=True)
                    futures.clear()
                    break
                results.append(res)
                done += len([u for ri in shards[k] for u in pending[ri]])
                if progress is not None:
                    progress(done, total, sum(r["cost"] for r in results))
    except KeyboardInterrupt:
        for a in actors.values():
            with contextlib.suppress(Exception):
                ray.kill(a, no_restart=True)
        _merge_shards([p for p in paths if p.exists()], store, notify)
        raise
    finally:
        for a in actors.values():
            with contextlib.suppress(Exception):
                ray.kill(a, no_restart=True)
        if started:
            ray.shutdown()
    rows = [row for p in paths if p.exists() for row in stored_calls(p)]
    _merge_shards([p for p in paths if p.exists()], store, notify)
    if failure is not None:
        raise failure
    return results, rows


__all__ = ["NOT_RUN_WORKER", "ShardWorker", "import_ray", "leftover_shards", "run_shard", "run_sharded", "shard_path",
           "split"]


class ShardedRun:
    """:func:`run_sharded` behind the runner's ``run_sync()`` / ``report`` interface (what ``judgekit.judge`` runs
    for ``ray=``)."""

    def __init__(self, responses: Sequence[Response], rubric: Rubric, specs: Sequence[JudgeSpec], store: Path,
                 options: RunOptions, progress: Callable[[int, int, float], None] | None = None, *,
                 notify: Callable[[str], None] | None = None, address: str | None = "local",
                 workers: int | None = None) -> None:
        self.args = (responses, rubric, specs, options, store)
        self.kw: dict[str, Any] = {"address": address, "workers": workers or 2, "progress": progress,
                                   "notify": notify}
        self.report = RunReport(judgments=[])

    def run_sync(self) -> RunReport:
        self.report = run_sharded(*self.args, **self.kw)
        return self.report

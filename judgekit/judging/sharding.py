"""Sharded runs on a Ray cluster (``judgekit judge --ray [ADDRESS|auto|local] --workers W``).

How a sharded run goes (the driver is the process that called :func:`run_sharded`):

1. **Leftovers first.** Shard stores ``STORE.shard-<k>.sqlite`` left by an earlier sharded run that stopped (the
   driver killed, a worker lost) are merged into the main store by call key
   (:func:`judgekit.judging.merge.merge_stores`) and removed, so nothing they hold is paid again.
2. **Plan.** The ordinary runner's plan (:meth:`Runner._plan`) on the main store gives the samples still to judge
   (response x judge x sample without a settled stored result); the responses they belong to are split into
   at most W contiguous shards. Nothing pending: no cluster is started at all.
3. **Warm-up.** Starting a local cluster and its actors takes seconds (~5-7 s on a 2-core machine: bench/
   scale_shards.py). For judges behind servers the driver does not wait idle meanwhile: a thread runs the
   ordinary runner (at W x ``concurrency``, standing in for the W workers) on the pending samples against the
   main store while the main thread starts the cluster and
   the W actors and pings them; once every actor answers, the runner is told to hand over: it starts no new
   call, lets the calls in flight finish and store, and returns. The pending samples are planned again from
   the main store (what the warm-up judged is settled there) and the rest is sharded. Nothing is lost or
   paid twice at the hand-over, by the runner's own resume rule. ``local/...`` judges skip the warm-up (it
   would load the model once more, in the driver); ``warm_up=False`` skips it too.
4. **Shards.** Each shard gets a Ray actor (one per shard, ``num_cpus=1``) that runs the ordinary
   :class:`Runner` on its responses against its own shard store next to the main one (seeded with the stored
   earlier attempts of its pending calls, so a re-ask continues the stored conversation). A ``local/...``
   judge's model is loaded once per actor. ``concurrency`` applies per worker; ``rpm``, ``tpm`` and the
   ``max_cost`` budget are divided among the shards (by their share of the responses).
5. **Merge and assemble.** Every shard store is merged into the main store by call key and removed; the
   runner then runs once more on *all* responses against the main store: it makes no call and assembles the
   judgments exactly as a plain run does (with the call keys of step 2, not computed again). The report counts
   the calls the warm-up and the workers made as made now (``calls_made``, ``cost``, tokens) and the rest as
   read from the store, per judgment too. A cluster started here shuts down (~1.4 s of waiting for its
   processes) in a thread while that pass runs.

Failures: a worker that dies (``ray.kill``, a crashed node: ``RayActorError``) leaves its shard store holding
every call it finished; the driver retries that shard once (``shard_retries``) with a new actor on the same
shard store, which resumes from it. If the retry fails too, its unjudged samples are unscored with
:data:`NOT_RUN_WORKER` and counted as transport failures (the run is incomplete, the CLI's exit 3); the same
command again resumes with nothing paid twice. An exception inside a worker (a setup mistake) is raised in the
driver after what the shards stored has been merged. Ctrl-C during the start stops the warm-up at once (its
calls in flight finish and are stored) and takes effect when ``ray.init`` returns; during the shards it kills
the workers (their shard stores are merged: only their calls in flight are sent again on resume). Either way
the report comes back with ``interrupted`` set and the judgments so far, as a plain run's does.

Ray is an optional extra (``pip install 'judgekit[ray]'``), imported only inside :func:`run_sharded`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from judgekit.io.errors import JudgekitError
from judgekit.io.records import Response, SampleResult
from judgekit.judging.backends import JudgeSpec
from judgekit.judging.merge import merge_stores, record_identity, seed_store, stored_calls
from judgekit.judging.prompt import PROMPT_VERSION
from judgekit.judging.raycluster import Cluster, ShardWorker, run_shard, warm_up_while_starting
from judgekit.judging.rubric import Rubric
from judgekit.judging.runner import NOT_RUN_STOPPED, Runner, RunOptions, RunReport, _Unit
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


class _Assembler(Runner):
    """The final pass on the main store: makes no call; pending samples are unscored with the worker's reason."""

    made: dict[str, int]
    reasons: dict[str, str | None]
    lost: int
    not_run: str | None = None  # the reason of samples no one judged when the run was interrupted

    def _plan(self, keys: Sequence[str] | None = None) -> list[_Unit]:
        units = super()._plan(keys)
        for u in units:
            n = self.made.get(u.key)
            if n:  # made by a worker in this run: not read from the store, as in a plain run
                u.cached_calls -= min(n, u.cached_calls)
        return units

    async def _run_unit(self, unit: _Unit, backend: Any) -> None:
        reason = self.reasons.get(unit.key) or self.not_run
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


def _pending_units(units: list[_Unit]) -> dict[int, list[_Unit]]:
    pending: dict[int, list[_Unit]] = {}
    for u in units:
        if u.result is None:
            pending.setdefault(u.ri, []).append(u)
    return pending


def run_sharded(responses: Sequence[Response], rubric: Rubric, specs: Sequence[JudgeSpec], options: RunOptions,
                store: str | Path, *, address: str | None = "local", workers: int = 2, shard_retries: int = 1,
                worker_api_bases: Sequence[str] | None = None,
                progress: Callable[[int, int, float], None] | None = None,
                notify: Callable[[str], None] | None = None,
                on_actors: Callable[[list[Any]], None] | None = None, warm_up: bool = True) -> RunReport:
    """Judge ``responses`` on a Ray cluster in up to ``workers`` shards (see the module docstring) and return the
    report of the final assembly, with the calls the warm-up and the workers made counted as made by this run.

    ``address``: ``"local"`` (or None) starts a local cluster of ``workers`` CPUs, ``"auto"`` or ``HOST:PORT``
    joins one (an already connected Ray session is used as it is). ``worker_api_bases``: worker k sends to
    ``worker_api_bases[k % len]`` (the API base is not part of a call's key). ``warm_up``: the driver judges
    while the cluster starts (step 3; never for ``local/...`` judges). ``on_actors`` gets the actor handles
    once the shards are submitted (for tests)."""
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
    keys = [u.key for u in units]  # in the plan's order (judge, response, sample): every later plan reuses them
    total = len(units)
    pending = _pending_units(units)
    tally = RunReport(judgments=[])  # the accounting of the warm-up and the shards together
    made: dict[str, int] = {}  # calls made now, per key
    reasons: dict[str, str | None] = {}  # unscored samples' reasons, per key
    cluster: Cluster | None = None
    if pending:
        cluster = Cluster(ray, address, workers)
        try:
            shard_options = options
            if warm_up and not any(s.model.startswith("local/") for s in specs):
                # the driver stands in for all W workers: their calls in flight together
                driver = dataclasses.replace(options, concurrency=options.concurrency * workers)
                ris, n_samples = sorted(pending), options.samples
                sub_keys = [keys[(ji * len(responses) + ri) * n_samples + s]
                            for ji in range(len(specs)) for ri in ris for s in range(n_samples)]
                warm, pressed = warm_up_while_starting(cluster, [responses[ri] for ri in ris], sub_keys, rubric,
                                                       specs, driver, store, progress, total)
                tally.interrupted = pressed
                if warm is not None:
                    tally.add_accounting(warm.report)
                    made.update((u.key, u.calls) for u in warm.units if u.calls)
                    if warm.report.calls_made and notify is not None:
                        notify(f"{warm.report.calls_made} call(s) made in this process while the Ray cluster "
                               "started")
                    if options.max_cost is not None:
                        shard_options = dataclasses.replace(options, max_cost=max(0.0, options.max_cost - tally.cost))
                with Store(store) as st:  # what the warm-up settled is no longer pending
                    pending = _pending_units(Runner(responses, rubric, specs, st, options)._plan(keys))
            else:
                tally.interrupted = not cluster.start()
            if pending and not (tally.interrupted or tally.budget_reached):
                shards = split(sorted(pending), workers)
                results, made_rows, pressed = _run_on_ray(
                    cluster, shards, pending, responses, rubric, specs, shard_options, store,
                    shard_retries=shard_retries, worker_api_bases=worker_api_bases, progress=progress, total=total,
                    done0=total - sum(map(len, pending.values())), on_actors=on_actors, notify=notify)
                tally.interrupted = tally.interrupted or pressed
                for shard_report, shard_reasons in results:  # their calls: counted from their stores below
                    tally.add_accounting(shard_report, calls=False)
                    reasons.update(shard_reasons)
                seeded = {u.key: len(u.stored) for us in pending.values() for u in us}
                _count_rows(tally, made, made_rows, seeded)
            cluster.release()  # the shutdown of a cluster started here overlaps the final pass
        except BaseException:
            cluster.close()
            raise
    with Store(store) as st:
        asm = _Assembler(responses, rubric, specs, st, options, progress)
        asm.made, asm.reasons, asm.lost, asm.plan_keys = made, reasons, 0, keys
        asm.not_run = NOT_RUN_STOPPED if tally.interrupted else None
        try:
            report = asm.run_sync()
        finally:
            if cluster is not None:
                cluster.close()  # waits for the shutdown begun above
    report.add_accounting(tally)  # the final pass made no call: its own counts are zero
    report.transport_failures += asm.lost
    if asm.lost:
        report.failure_reasons["Ray worker lost"] += asm.lost
    report.wall_s = time.perf_counter() - t0
    return report


def _count_rows(tally: RunReport, made: dict[str, int], rows: list[Any], seeded: dict[str, int]) -> None:
    """The calls the shard stores hold beyond what they were seeded with: made now (a lost worker's too)."""
    for key, attempt, cost, t_in, t_out in rows:
        if attempt >= seeded.get(key, 0):
            made[key] = made.get(key, 0) + 1
            tally.count_call(t_in, t_out, cost)


def _merge_shards(paths: Sequence[Path], store: Path, notify: Callable[[str], None] | None) -> None:
    """Merge shard stores into the main one and remove each once merged; conflicts are noted, never written."""
    for p in paths:
        rep = merge_stores([p], store)
        if rep.conflicts and notify is not None:
            notify(f"{p.name}: {rep.conflicts} call(s) differ from the main store's and were left out")
        if not rep.conflicts:
            remove_store(p)


def _run_on_ray(cluster: Cluster, shards: list[list[int]], pending: dict[int, list[_Unit]],
                responses: list[Response], rubric: Rubric, specs: list[JudgeSpec], options: RunOptions, store: Path,
                *, shard_retries: int, worker_api_bases: Sequence[str] | None,
                progress: Callable[[int, int, float], None] | None, total: int, done0: int,
                on_actors: Callable[[list[Any]], None] | None,
                notify: Callable[[str], None] | None) -> tuple[list[Any], list[Any], bool]:
    """Run every shard on an actor of ``cluster`` (started); merge every shard store into ``store`` (also on
    failure); the results of the shards that finished, the calls the shard stores held (see
    :func:`stored_calls`) and whether Ctrl-C stopped it."""
    from ray.exceptions import RayActorError, RayTaskError

    try:
        from ray.exceptions import WorkerCrashedError
        lost_errors: tuple[type[BaseException], ...] = (RayActorError, WorkerCrashedError)
    except ImportError:  # pragma: no cover - older Ray
        lost_errors = (RayActorError,)
    ray = cluster.ray
    n_pending = sum(len(pending[ri]) for ri in pending)
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

    def submit(k: int, actor: Any) -> None:
        actors[k] = actor
        resp, ks, opts = jobs[k]
        futures[actor.run.remote(resp, rubric_ref, ks, opts, str(paths[k]))] = k

    results: list[Any] = []  # (report, reasons) of each shard that finished (raycluster.run_shard)
    failure: BaseException | None = None
    pressed = False
    done = done0
    try:
        for k in range(len(shards)):
            submit(k, cluster.actors[k] if k < len(cluster.actors) else cluster.new_actor())
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
                        submit(k, cluster.new_actor())  # resumes from the shard store: nothing finished is repaid
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
                    progress(done, total, sum(rep.cost for rep, _ in results))
    except KeyboardInterrupt:  # the workers are killed: what their shard stores hold is merged and counted
        pressed = True
    finally:
        cluster.kill_actors()  # no actor writes to a shard store any more
    rows = [row for p in paths if p.exists() for row in stored_calls(p)]
    _merge_shards([p for p in paths if p.exists()], store, notify)
    if failure is not None:
        raise failure
    return results, rows, pressed


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

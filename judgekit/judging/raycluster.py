"""The Ray side of a sharded run (:mod:`judgekit.judging.sharding`): the actor class and what it runs, the
cluster's start and end, and the driver's warm-up while the cluster starts.

Kept apart from the orchestration in :mod:`judgekit.judging.sharding` (plan, shards, merge, assembly); Ray itself
is only ever reached through the ``ray`` module handed in, so importing this module does not import Ray.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from judgekit.io.records import Response, SampleResult
from judgekit.judging.backends import JudgeSpec
from judgekit.judging.rubric import Rubric
from judgekit.judging.runner import NOT_RUN_STOPPED, Runner, RunOptions, RunReport, _Unit
from judgekit.judging.store import Store


class ShardRunner(Runner):
    """The ordinary runner, also keeping the units it assembled (for the unscored samples' reasons)."""

    units: list[_Unit]

    def _assemble(self, units):  # type: ignore[no-untyped-def]
        self.units = units
        return super()._assemble(units)


def run_shard(responses: list[Response], rubric: Rubric, specs: list[JudgeSpec], options: RunOptions,
              store: str) -> tuple[RunReport, dict[str, str | None]]:
    """Judge one shard into its shard store (what a worker does): the run's report without its judgments
    (:func:`accounting`), and the reasons of its unscored samples by call key."""
    with Store(store) as st:
        runner = ShardRunner(responses, rubric, specs, st, options)
        runner.units = []
        rep = runner.run_sync()
    return accounting(rep), {u.key: u.result.reason for u in runner.units
                             if u.result is not None and u.result.status == "unscored"}


class ShardWorker:
    """The Ray actor class (wrapped by ``ray.remote`` in :func:`run_sharded`): one per shard."""

    def run(self, responses: list[Response], rubric: Rubric, specs: list[JudgeSpec], options: RunOptions,
            store: str) -> tuple[RunReport, dict[str, str | None]]:
        return run_shard(responses, rubric, specs, options, store)

    def ping(self) -> bool:
        return True


def accounting(rep: RunReport) -> RunReport:
    """``rep`` without its judgments (what goes back from a worker to the driver)."""
    return dataclasses.replace(rep, judgments=[], per_judge={})


@contextlib.contextmanager
def sigint_calls(handler: Callable[[], None]) -> Iterator[None]:
    """While inside, Ctrl-C (SIGINT) calls ``handler()`` instead of raising KeyboardInterrupt (in the main thread
    only; elsewhere nothing changes)."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, lambda *_: handler())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


class Cluster:
    """The Ray side of a sharded run: the cluster (started here or joined) and the W actors, created and pinged
    up front (:meth:`start`); :meth:`close` kills the actors and shuts down a cluster this run started."""

    def __init__(self, ray: Any, address: str | None, workers: int) -> None:
        self.ray, self.address, self.workers = ray, address, workers
        self.started = False
        self.remote_cls: Any = None
        self.actors: list[Any] = []
        self._closing: threading.Thread | None = None

    def start(self, until: Callable[[], bool] | None = None, on_ctrl_c: Callable[[], None] | None = None) -> bool:
        """Connect to (or start) the cluster and create the actors; wait until each answers a ping, or until
        ``until()`` is true (checked every 0.1 s: the warm-up judged everything, no actor is needed). False when
        Ctrl-C was pressed meanwhile (``on_ctrl_c`` is called at once, from the signal handler).

        Ctrl-C is taken by a handler of its own here, not as KeyboardInterrupt: raised inside ``ray.init``, that
        can be swallowed by Ray's fork handlers (the run then went on) or leave a half-started cluster."""
        ray = self.ray
        pressed = threading.Event()

        def ctrl_c() -> None:
            pressed.set()
            if on_ctrl_c is not None:
                on_ctrl_c()

        with sigint_calls(ctrl_c):
            try:
                if not ray.is_initialized():
                    import logging

                    self.started = True  # before ray.init: a failed start still shuts down what it started
                    if self.address in (None, "", "local"):
                        ray.init(num_cpus=self.workers, include_dashboard=False, logging_level=logging.WARNING)
                    else:
                        ray.init(address=self.address, logging_level=logging.WARNING)
                if not pressed.is_set():
                    self.remote_cls = ray.remote(num_cpus=1, max_restarts=0)(ShardWorker)
                    self.actors = [self.remote_cls.remote() for _ in range(self.workers)]
                    pings = [a.ping.remote() for a in self.actors]
                    while pings and not pressed.is_set() and not (until is not None and until()):
                        _, pings = ray.wait(pings, num_returns=len(pings), timeout=0.1)
            except Exception:
                if not pressed.is_set():
                    raise
                # else the cluster's own processes got the Ctrl-C too: an interrupted start, not an error
        return not pressed.is_set()

    def new_actor(self) -> Any:
        """One more actor (a lost worker's shard is retried on it)."""
        actor = self.remote_cls.remote()
        self.actors.append(actor)
        return actor

    def kill_actors(self) -> None:
        for a in self.actors:
            with contextlib.suppress(Exception):
                self.ray.kill(a, no_restart=True)
        self.actors = []

    def release(self) -> None:
        """Kill the actors and, for a cluster started here, begin its shutdown in a thread: ``ray.shutdown``
        spends ~1.4 s waiting for the cluster's processes to exit (bench/scale_shards.py), which overlaps the
        final pass this way; :meth:`close` waits for it. Called once no Ray object of the run is referenced any
        more: one released during the shutdown would make Ray end the process."""
        self.kill_actors()
        if self.started:
            gc.collect()  # Ray object references held in reference cycles go now, not during the shutdown
            self.started = False
            self._closing = threading.Thread(target=self.ray.shutdown, name="judgekit-ray-shutdown", daemon=True)
            self._closing.start()

    def close(self) -> None:
        """:meth:`release`, then wait until the cluster started here has shut down."""
        self.release()
        if self._closing is not None:
            self._closing.join()
            self._closing = None


class WarmUp(Runner):
    """The driver's own run while the cluster starts (module docstring, step 3): the ordinary runner that, once
    ``handed`` is set (from the main thread), starts no new call; the calls in flight finish and are stored.
    Its units are kept for the accounting; it assembles no judgments (the final pass does)."""

    assemble_early = False
    handed: threading.Event
    units: list[_Unit]
    skipped: int  # samples handed over unjudged (settled for the runner, not judged: the progress leaves them out)

    def _halted(self) -> bool:
        return self.handed.is_set() or super()._halted()

    async def _run_unit(self, unit: _Unit, backend: Any) -> None:
        if self.handed.is_set():  # handed over before its first call: the shards judge it
            self.skipped += 1
            unit.result = SampleResult(sample=unit.sample, status="unscored", attempts=len(unit.stored),
                                       reason=NOT_RUN_STOPPED)
            return
        await super()._run_unit(unit, backend)

    def _assemble(self, units):  # type: ignore[no-untyped-def]
        self.units = units
        return []


def warm_up_while_starting(cluster: Cluster, responses: list[Response], keys: list[str], rubric: Rubric,
                           specs: list[JudgeSpec], options: RunOptions, store: Path,
                           progress: Callable[[int, int, float], None] | None,
                           total: int) -> tuple[WarmUp | None, bool]:
    """Judge ``responses`` in a thread of the driver while ``cluster`` starts in this one; hand over once every
    actor answers, or at once on Ctrl-C. Returns the warm-up runner (its report and units) and whether Ctrl-C
    was pressed; raises what the runner raised."""
    handed = threading.Event()
    box: dict[str, Any] = {}

    def prog(done: int, of: int, cost: float) -> None:  # the warm-up's counts as the whole run's
        if progress is not None:
            progress(total - of + done - box["runner"].skipped, total, cost)

    def work() -> None:
        try:
            with Store(store) as st:
                runner = WarmUp(responses, rubric, specs, st, options, prog)
                runner.handed, runner.units, runner.skipped, runner.plan_keys = handed, [], 0, keys
                box["runner"] = runner
                runner.run_sync()  # Ctrl-C reaches the main thread, which hands over (see Cluster.start)
        except BaseException as exc:  # raised in the driver below
            box["error"] = exc

    thread = threading.Thread(target=work, name="judgekit-warm-up", daemon=True)
    thread.start()
    started = False
    try:
        started = cluster.start(until=lambda: not thread.is_alive(), on_ctrl_c=handed.set)
    finally:  # also on a cluster that cannot start: the calls in flight finish and are stored
        handed.set()
        thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("runner"), not started


__all__ = ["Cluster", "ShardRunner", "ShardWorker", "WarmUp", "accounting", "run_shard", "sigint_calls",
           "warm_up_while_starting"]

"""The alert stage of a hunt: each rule's hits → its alerts (`alerts.build.alerts_for_hits`), rule by rule in the
report's order, over two cores when there are many.

Building alerts is pure Python (a document read and parsed again, its alert made and serialized: ~30 µs each), so
one thread cannot use the machine's second core. Asked for (TRAILHOUND_ALERT_WORKERS=1), with many hits and NDJSON
lines wanted (no whole documents to hand back), a forked worker builds some rules' batches while this process builds the others; the rules are shared out
by their number of hits (largest first, each to the less loaded side), and the batches are handed over strictly in
the report's order, each as soon as it and every one before it are ready: the output is the same bytes in the same
order as with one process. The worker reads its rules' documents itself (it inherits the hunt's table), and sends
back each alert's NDJSON line and the few fields the report counts (`alerts.build.report_fact`). If the worker
fails, the batches it owed are built here.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterator, Sequence
from typing import Any

from ..alerts.build import AlertBatch, alerts_for_hits

#: hits (in all rules) from which a worker is worth its fork and the lines' trip back
PARALLEL_MIN_HITS = 20_000
#: the share of a hit's cost this process pays again for every alert: writing its line, counting its fields
_DELIVERY_WEIGHT = 0.25

_SHARED: tuple[Any, Sequence[Any], str, int | None] | None = None  # what a forked worker builds from


def build_batch(result: Any, run: Any, now: str, max_signals: int | None, form: str) -> AlertBatch:
    """One rule's batch: its hits' documents read from its table, then `alerts_for_hits`."""
    rows = sorted({r for h in run.hits for r in h.rows if r is not None})
    docs = dict(zip(rows, (run.table if run.table is not None else result.table).documents(rows)))
    return alerts_for_hits(run.check.rule, run.kind, run.hits, docs, run.timestamp_field, now, max_signals, form=form)


def _in_worker(i: int) -> AlertBatch:
    assert _SHARED is not None  # set before the fork
    result, runs, now, max_signals = _SHARED
    return build_batch(result, runs[i], now, max_signals, "lines")


#: the signals the worker takes with their default action (it ends by them), blocked from its fork until it has
#: reset them: a terminate that comes earlier waits for that, rather than meeting the parent's handler
_STOPS = frozenset({signal.SIGTERM, signal.SIGHUP})


def _worker_start() -> None:
    """The worker's own signal dispositions: it is forked from a process that may have its own handlers (`watch`
    sets SIGTERM's to a flag), under which a terminate would be a flag the sleeping worker never reads. They are
    blocked from the fork (`alert_batches`) until reset here; one sent in between is delivered now."""
    for sig in _STOPS:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)


def _stop(procs: list) -> None:
    """Stop the worker: a terminate, and a kill if it is still there after a moment."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join(5)


def workers_wanted(runs: Sequence[Any], form: str) -> bool:
    """Whether to use a worker process: asked for (TRAILHOUND_ALERT_WORKERS=1; off by default: measured, it saved
    at most 0.3 s of the 1M hunt's 3.9 s alert stage with a core free, and cost ~1 s of CPU and 100 MB more),
    lines wanted, many hits, a second core, fork available."""
    if form != "lines" or os.environ.get("TRAILHOUND_ALERT_WORKERS", "0") != "1":
        return False
    if (os.cpu_count() or 1) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return False
    return sum(len(r.hits) for r in runs) >= PARALLEL_MIN_HITS


def alert_batches(result: Any, runs: Sequence[Any], now: str, max_signals: int | None,
                  form: str) -> Iterator[tuple[Any, AlertBatch | None]]:
    """(run, its batch or None without hits) for every run of `runs`, in their order."""
    if not workers_wanted(runs, form):
        for run in runs:
            yield run, build_batch(result, run, now, max_signals, form) if run.hits else None
        return
    # share the rules out: largest first, each to the side with less work (this side also delivers every alert)
    mine: set[int] = set()
    theirs: set[int] = set()
    load_mine = load_theirs = 0.0
    for i in sorted((i for i, r in enumerate(runs) if r.hits), key=lambda i: -len(runs[i].hits)):
        n = len(runs[i].hits)
        if load_mine <= load_theirs:  # the largest here: delivered as soon as it is built
            mine.add(i)
            load_mine += n * (1 + _DELIVERY_WEIGHT)
        else:
            theirs.add(i)
            load_theirs += n
    for run in runs:  # each table's line index, made once here rather than in both processes
        if run.hits:
            row = next((r for h in run.hits for r in h.rows if r is not None), None)
            if row is not None:
                (run.table if run.table is not None else result.table).documents([row])
            break
    global _SHARED
    _SHARED = (result, runs, now, max_signals)
    from concurrent.futures import Future, ProcessPoolExecutor

    # a worker that dies (killed, out of memory) fails its futures (BrokenProcessPool) rather than hanging them
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"), initializer=_worker_start)
    handed = 0
    procs: list = []
    try:
        owed: dict[int, Future] = {}
        # the fork (at the first submit) inherits this thread's mask: the worker's stops wait for its start
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
        try:
            for i in sorted(theirs):
                owed[i] = pool.submit(_in_worker, i)
        except Exception:  # noqa: BLE001 - no process to be had: what was not handed out is built here
            pass
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        # the worker's process, to stop it if this ends early (shutdown forgets it; there is no public handle)
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False)  # the worker ends with its last batch: this process's pages are its own again
        built: dict[int, AlertBatch] = {}

        def ready(j: int) -> bool:
            return not runs[j].hits or j in built or (j in owed and owed[j].done())

        def take(j: int) -> AlertBatch | None:
            if not runs[j].hits:
                return None
            if j in built:
                return built.pop(j)
            if j in owed:
                try:
                    return owed.pop(j).result()
                except Exception:  # noqa: BLE001 - the worker died or failed: build it here, the same batch
                    pass
            return build_batch(result, runs[j], now, max_signals, form)

        for i in sorted(mine):
            built[i] = build_batch(result, runs[i], now, max_signals, form)
            while handed < len(runs) and ready(handed):
                yield runs[handed], take(handed)
                handed += 1
        while handed < len(runs):  # the worker's last batches, waited for in order
            yield runs[handed], take(handed)
            handed += 1
    finally:
        if handed < len(runs):  # left early (an error, a closed pipe): what the worker still does is not wanted
            _stop(procs)
        pool.shutdown(wait=True, cancel_futures=True)
        _SHARED = None

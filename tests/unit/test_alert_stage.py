"""The alert stage over two processes gives what one gives: the same NDJSON bytes in the same order, the same
report; and the same as the alert documents serialized (the form other sinks and reports read)."""

from __future__ import annotations

import glob
from pathlib import Path

import orjson
import pytest

from trailhound.pipeline import alert_stage
from trailhound.pipeline.hunt import plan, run_hunt
from trailhound.rules.loader import load_rules
from trailhound.sinks import NdjsonSink

ROOT = Path(__file__).resolve().parents[2]
LAB = sorted(glob.glob(str(ROOT / "tests/fixtures/lab/*/audit.log"))) + sorted(
    glob.glob(str(ROOT / "tests/fixtures/lab/*/auth.log")))
PACK = ROOT / "src" / "trailhound" / "pack"
NOW = "2026-01-01T00:00:00.000Z"


@pytest.fixture(scope="module")
def planned():
    if not LAB:
        pytest.skip("the lab capture fixtures are absent")
    return plan(load_rules([PACK]))


def _hunt(planned, tmp_path: Path, name: str, **kw):
    out = tmp_path / f"{name}.ndjson"
    sink = NdjsonSink(out)
    report = run_hunt(planned, LAB, sinks=[sink], now=NOW, **kw)
    sink.close()
    summary = report.to_dict()
    summary.pop("timings")
    for r in summary["rules"]:
        r.pop("seconds")
    return out.read_bytes(), summary, report


def test_a_worker_process_gives_the_same_bytes_and_report(planned, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAILHOUND_ALERT_WORKERS", "0")
    one, one_summary, _ = _hunt(planned, tmp_path, "one")
    monkeypatch.setenv("TRAILHOUND_ALERT_WORKERS", "1")
    monkeypatch.setattr(alert_stage, "PARALLEL_MIN_HITS", 1)
    forked = []
    real = alert_stage.multiprocessing.get_context

    def spy(method):
        forked.append(method)
        return real(method)

    monkeypatch.setattr(alert_stage.multiprocessing, "get_context", spy)
    two, two_summary, _ = _hunt(planned, tmp_path, "two")
    assert forked == ["fork"]  # the worker really ran
    assert one.count(b"\n") == one_summary["alerts"] > 0
    assert two == one and two_summary == one_summary


def test_lines_are_the_documents_serialized(planned, tmp_path):
    lines, summary, _ = _hunt(planned, tmp_path, "lines")
    kept, kept_summary, report = _hunt(planned, tmp_path, "dicts", keep_alerts=True)  # whole documents kept
    docs = [a for r in report.rules for a in (r.alert_documents or [])]
    assert b"".join(orjson.dumps(a, default=str) + b"\n" for a in docs) == lines == kept
    assert summary == kept_summary


def test_a_failing_worker_is_replaced_by_this_process(planned, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAILHOUND_ALERT_WORKERS", "0")
    want, want_summary, _ = _hunt(planned, tmp_path, "want")
    monkeypatch.setenv("TRAILHOUND_ALERT_WORKERS", "1")
    monkeypatch.setattr(alert_stage, "PARALLEL_MIN_HITS", 1)
    monkeypatch.setattr(alert_stage, "_in_worker", _fails)
    got, got_summary, _ = _hunt(planned, tmp_path, "got")
    assert got == want and got_summary == want_summary


def _fails(i: int):
    raise RuntimeError("the worker fails")


def test_a_worker_that_dies_is_replaced_by_this_process(planned, tmp_path, monkeypatch):
    """Killed mid-way (out of memory, a signal): its batches are built here, nothing hangs or is lost."""
    monkeypatch.setenv("TRAILHOUND_ALERT_WORKERS", "0")
    want, want_summary, _ = _hunt(planned, tmp_path, "want")
    monkeypatch.setenv("TRAILHOUND_ALERT_WORKERS", "1")
    monkeypatch.setattr(alert_stage, "PARALLEL_MIN_HITS", 1)
    monkeypatch.setattr(alert_stage, "_in_worker", _dies)
    got, got_summary, _ = _hunt(planned, tmp_path, "got")
    assert got == want and got_summary == want_summary


def _dies(i: int):
    import os

    os._exit(9)


@pytest.mark.parametrize("handler", ["default", "a flag", "a flag, slow start"])
def test_leaving_early_stops_the_worker(planned, monkeypatch, handler):
    """A consumer that stops (a closed pipe, an error) does not wait for the worker's remaining work; nor is the
    worker left running when this process has a SIGTERM handler of its own (`watch` set one to a flag), which the
    forked worker inherits and under which a terminate is a flag it never reads. A terminate that comes before the
    worker has reset its handlers (on a loaded machine it may not have run yet) still stops it as a terminate."""
    import multiprocessing
    import signal
    import time

    from trailhound.engine.hunt import hunt

    previous = signal.signal(signal.SIGTERM, (lambda *_: None) if handler.startswith("a flag") else signal.SIG_DFL)
    try:
        result = hunt(planned.checks, LAB, planned.rules.exceptions)
        runs = sorted(result.runs, key=lambda r: (-len(r.hits), r.check.rule.name))
        assert sum(bool(r.hits) for r in runs) >= 2
        monkeypatch.setenv("TRAILHOUND_ALERT_WORKERS", "1")
        monkeypatch.setattr(alert_stage, "PARALLEL_MIN_HITS", 1)
        monkeypatch.setattr(alert_stage, "_in_worker", _sleeps)
        if handler == "a flag, slow start":
            monkeypatch.setattr(alert_stage, "_worker_start", _slow_start)
        batches = alert_stage.alert_batches(result, runs, NOW, None, "lines")
        first_run, first = next(batches)
        assert first_run is runs[0] and first is not None and first.lines  # the largest rule, built here
        [worker] = multiprocessing.active_children()
        t0 = time.perf_counter()
        batches.close()
        assert time.perf_counter() - t0 < 60
        worker.join(60)
        # the pool's own thread may reap the worker first: then this join finds no child to wait for, and the exit
        # code is the pool thread's to record, a moment later (a worker left sleeping, 120 s, outlasts join and loop)
        deadline = time.monotonic() + 20
        while worker.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not worker.is_alive()  # stopped, not left sleeping (nor waited for at exit)
        assert worker.exitcode == -signal.SIGTERM  # by the terminate, not the kill that follows one ignored
    finally:
        signal.signal(signal.SIGTERM, previous)


def _slow_start() -> None:
    """The worker's start after a second, in which the terminate comes (the test's consumer stops at once)."""
    import time

    time.sleep(1)
    _WORKER_START()


_WORKER_START = alert_stage._worker_start


def _sleeps(i: int):
    import time

    time.sleep(120)


def test_no_worker_unless_asked(planned, tmp_path, monkeypatch):
    monkeypatch.delenv("TRAILHOUND_ALERT_WORKERS", raising=False)
    monkeypatch.setattr(alert_stage, "PARALLEL_MIN_HITS", 1)
    monkeypatch.setattr(alert_stage.multiprocessing, "get_context", _fails)
    lines, _, _ = _hunt(planned, tmp_path, "default")
    assert lines

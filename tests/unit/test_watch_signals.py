"""`watch` sets SIGTERM and SIGINT to stop it cleanly, and gives the process its own handlers back when it ends: a
program (or a test suite) that runs it in-process keeps its handlers, and a process it forks later (the alert
stage's worker) does not inherit a flag in place of the default terminate."""

from __future__ import annotations

import signal
from pathlib import Path
from types import SimpleNamespace

from typer.testing import CliRunner

from trailhound.cli.main import app
from trailhound.pipeline import watch as pipeline_watch

PACK = Path(__file__).resolve().parents[2] / "src" / "trailhound" / "pack"


def test_watch_restores_the_signal_handlers(tmp_path, monkeypatch):
    seen = {}

    def fake_run_watch(planned, paths, alert_file, *, stop, **kwargs):
        seen["term"], seen["int"] = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)  # as the signal would: the stop is asked for
        seen["stopped"] = stop.is_set()
        return SimpleNamespace(engine=SimpleNamespace(rules=[]), stats=SimpleNamespace(events=0, alerts=0, late=0))

    monkeypatch.setattr(pipeline_watch, "run_watch", fake_run_watch)
    mine = lambda *_: None  # noqa: E731 - a handler of the caller's own
    before_term = signal.signal(signal.SIGTERM, mine)
    before_int = signal.signal(signal.SIGINT, mine)
    try:
        log = tmp_path / "auth.log"
        log.write_text("")
        r = CliRunner().invoke(app, ["watch", str(log), "--rules", str(PACK), "--out", str(tmp_path / "a.ndjson")])
        assert r.exit_code == 0, r.output
        assert seen["term"] is not mine and seen["int"] is not mine and seen["stopped"]  # watch's own, while it ran
        assert signal.getsignal(signal.SIGTERM) is mine and signal.getsignal(signal.SIGINT) is mine  # given back
    finally:
        signal.signal(signal.SIGTERM, before_term)
        signal.signal(signal.SIGINT, before_int)

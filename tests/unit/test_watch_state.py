"""The live pipeline's state: checkpoints (atomic, refused when damaged or of another rule set), the documents it
keeps (bounded by what the correlators hold), late events, and `trailhound watch` on standard input."""

from __future__ import annotations

import glob
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from trailhound.engine.incremental import IncrementalHunt
from trailhound.pipeline import checkpoint
from trailhound.pipeline.hunt import plan
from trailhound.pipeline.watch import StreamPipeline, run_watch
from trailhound.rules.loader import load_rules
from trailhound.sources import load_events

REPO = Path(__file__).resolve().parents[2]
PACK = REPO / "src/trailhound/pack"
SEQ_RULE = '''[rule]
name = "seq"
rule_id = "seq-1"
description = "d"
risk_score = 21
severity = "low"
type = "eql"
language = "eql"
query = """sequence by h with maxspan=2s [a where true] [b where true]"""
'''


def seq_plan(tmp_path, body=SEQ_RULE):
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "r.toml").write_text(body)
    return plan(load_rules([tmp_path / "rules"]))


def doc(t_ms, cat, h="x", **extra):
    return {"@timestamp": t_ms, "event": {"category": cat}, "h": h, **extra}


class Keep:
    def __init__(self):
        self.alerts = []

    def write(self, alerts):
        self.alerts.extend(orjson.loads(orjson.dumps(a)) for a in alerts)

    def close(self):
        pass


# ---- checkpoint files ----------------------------------------------------------------------


def test_checkpoint_is_replaced_atomically_and_read_back(tmp_path):
    lock = checkpoint.open_state(tmp_path / "st")
    assert checkpoint.load(tmp_path / "st", "f") is None
    checkpoint.save(tmp_path / "st", {"fingerprint": "f", "pipeline": {"a": 1}, "follower": [], "out": 10})
    checkpoint.save(tmp_path / "st", {"fingerprint": "f", "pipeline": {"a": 2}, "follower": [], "out": 20})
    assert checkpoint.load(tmp_path / "st", "f")["pipeline"] == {"a": 2}
    assert sorted(p.name for p in (tmp_path / "st").iterdir()) == ["checkpoint.json", "lock"]  # no temporary left
    assert (tmp_path / "st" / "checkpoint.json").stat().st_mode & 0o077 == 0
    with pytest.raises(checkpoint.CheckpointError, match="another trailhound watch is using it"):
        checkpoint.open_state(tmp_path / "st")
    lock.close()
    checkpoint.open_state(tmp_path / "st").close()  # free again


@pytest.mark.parametrize("content, reason", [
    (b'{"version": 1, "fingerprint": "f", "pipe', "damaged checkpoint (not JSON"),
    (b"[1, 2]", "not a Trailhound checkpoint"),
    (b'{"version": 99, "fingerprint": "f"}', "a checkpoint of version 99"),
    (b'{"version": 1, "fingerprint": "other", "pipeline": {}, "follower": [], "out": null}', "another rule set"),
    (b'{"version": 1, "fingerprint": "f", "follower": [], "out": null}', "no 'pipeline'"),
])
def test_a_bad_checkpoint_is_refused_with_the_reason(tmp_path, content, reason):
    (tmp_path / "checkpoint.json").write_bytes(content)
    with pytest.raises(checkpoint.CheckpointError, match="--reset-state") as e:
        checkpoint.load(tmp_path, "f")
    assert reason in str(e.value) and "checkpoint.json" in str(e.value)
    assert checkpoint.reset(tmp_path) and not checkpoint.reset(tmp_path)


def test_engine_state_of_another_rule_set_is_refused(tmp_path):
    planned = seq_plan(tmp_path)
    other = plan(load_rules([PACK]))
    saved = IncrementalHunt(planned.runnable).to_dict()
    with pytest.raises(ValueError, match="another rule set"):
        IncrementalHunt.from_dict(other.runnable, [], saved)
    changed = seq_plan(tmp_path, SEQ_RULE.replace("maxspan=2s", "maxspan=3s"))
    with pytest.raises(ValueError, match="another rule set"):
        IncrementalHunt.from_dict(changed.runnable, [], saved)


# ---- what the pipeline holds ---------------------------------------------------------------


def test_documents_kept_are_those_the_correlators_hold(tmp_path):
    """A sequence's first event waits in the store until the sequence completes or maxspan passes; the rest go."""
    planned = seq_plan(tmp_path)
    sink = Keep()
    pipe = StreamPipeline(planned, [sink])
    src = pipe.add_source("s", False)
    t = 1_700_000_000_000
    for i in range(20_000):  # "c" events nobody correlates, now and then an "a"
        pipe.add(src, doc(t + i, "a" if i % 5000 == 4990 else "c", h=f"h{i}"), i + 1)
        if i % 1000 == 999:
            pipe.step()
    assert pipe.stats.evaluated > 19_000
    assert len(pipe.store) <= 4096 + 1000  # pruned: not every document read
    pipe.prune()
    held = pipe.engine.live_rows()
    assert len(held) == 1 and set(pipe.store) == held  # the last "a": the earlier ones are past maxspan
    pipe.add(src, doc(t + 20_000, "b", h="h19990"), 20_001)
    pipe.add(src, doc(t + 30_000, "c"), 20_002)
    pipe.step()
    assert [a["kibana.alert.rule.name"] for a in sink.alerts] == ["seq"] * 3  # two building blocks and the shell
    assert sink.alerts[0]["h"] == "h19990"
    pipe.prune()
    assert pipe.store == {}


def test_a_late_event_is_counted_and_left_out_of_correlation(tmp_path):
    planned = seq_plan(tmp_path)
    sink = Keep()
    pipe = StreamPipeline(planned, [sink])
    src = pipe.add_source("s", False)
    t = 1_700_000_000_000
    pipe.add(src, doc(t, "a"), 1)
    pipe.add(src, doc(t + 1000, "c"), 2)
    pipe.step()
    pipe.add(src, doc(t - 5000, "a"), 3)  # older than what was evaluated
    pipe.add(src, doc(t + 1500, "b"), 4)
    pipe.step(final=True)
    assert pipe.stats.late == 1
    assert pipe.engine.rules[0].late == 1
    assert len(sink.alerts) == 3  # the sequence of rows 1 and 4


def test_watermark_waits_for_every_active_source(tmp_path):
    planned = seq_plan(tmp_path)
    pipe = StreamPipeline(planned, lateness_ns=0)  # no reorder window (test_watch_reorder.py has it)
    a, b = pipe.add_source("a", False), pipe.add_source("b", False)
    t = 1_700_000_000_000
    pipe.add(a, doc(t, "a"), 1)
    pipe.add(a, doc(t + 10, "a"), 2)
    assert pipe.watermark() is None and pipe.step() == 0 and len(pipe.buffer) == 2  # b may still give earlier events
    pipe.add(b, doc(t + 5, "c"), 1)
    pipe.step()
    # up to b's latest (t+5) only: b's next event may come before t+10, and a's before t+5
    assert sorted(e[0] // 1_000_000 - t for e in pipe.buffer) == [5, 10]
    pipe.set_idle(b, True)  # quiet: it holds a back no longer; a itself may still give another event at t+10
    pipe.step()
    assert [e[0] // 1_000_000 - t for e in pipe.buffer] == [10]
    pipe.close_source(a)
    pipe.step()
    assert pipe.buffer == []


# ---- trailhound watch over standard input -----------------------------------------------------


def lab_logs() -> list[Path]:
    return [Path(p) for p in sorted(glob.glob(str(REPO / "tests/fixtures/lab/brute_force/*.log")))]


def test_watch_standard_input_to_its_end_writes_what_hunt_writes(tmp_path):
    """`-` alone: read to its end, then everything is decided, as `hunt` decides it."""
    log = REPO / "tests/fixtures/lab/brute_force/auth.log"
    out = tmp_path / "alerts.ndjson"
    run = subprocess.run([sys.executable, "-m", "trailhound", "watch", "-", "--out", str(out)], input=log.read_bytes(),
                         capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    assert b'"msg":"stopped"' in run.stderr
    hunt_out = tmp_path / "hunt.ndjson"
    subprocess.run([sys.executable, "-m", "trailhound", "hunt", str(log), "--out", str(hunt_out), "--year", "2026"],
                   capture_output=True, timeout=120)

    def by_id(path):
        return {a["kibana.alert.uuid"]: {k: v for k, v in a.items() if k != "@timestamp"}
                for a in map(orjson.loads, path.read_bytes().splitlines())}

    want = by_id(hunt_out)
    assert len(want) > 5
    got = by_id(out)
    assert got.keys() == want.keys()
    # standard input has no name: host.name falls back to "-" where hunt uses the file's name
    assert all(got[k].get("kibana.alert.rule.name") == want[k].get("kibana.alert.rule.name") for k in want)


def test_watch_refuses_a_damaged_state_and_starts_over_when_asked(tmp_path):
    log = REPO / "tests/fixtures/lab/brute_force/auth.log"
    (tmp_path / "st").mkdir()
    (tmp_path / "st" / "checkpoint.json").write_text("{not json")
    cmd = [sys.executable, "-m", "trailhound", "watch", "-", "--out", str(tmp_path / "a.ndjson"), "--state",
           str(tmp_path / "st")]
    run = subprocess.run(cmd, input=log.read_bytes(), capture_output=True, timeout=120)
    assert run.returncode == 2
    err = run.stderr.decode()
    assert "damaged checkpoint" in err and "--reset-state" in err and "Traceback" not in err
    run = subprocess.run(cmd + ["--reset-state"], input=log.read_bytes(), capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    assert b"checkpoint removed" in run.stderr
    saved = orjson.loads((tmp_path / "st" / "checkpoint.json").read_bytes())
    assert saved["version"] == 1 and saved["follower"] == []  # standard input cannot be resumed


def test_run_watch_stops_on_its_event_and_checkpoints(tmp_path):
    import threading

    log = tmp_path / "auth.log"
    log.write_bytes((REPO / "tests/fixtures/lab/brute_force/auth.log").read_bytes())
    planned = plan(load_rules([PACK]))
    stop = threading.Event()
    sink = Keep()
    timer = threading.Timer(3.0, stop.set)
    timer.start()
    pipe = run_watch(planned, [str(log)], None, sinks=[sink], state_dir=str(tmp_path / "st"), from_start=True,
                     stop=stop)
    assert pipe.stats.events == load_events([str(log)]).report.events and sink.alerts
    saved = checkpoint.load(tmp_path / "st", pipe.engine.fingerprint)
    assert saved["follower"][0]["offset"] == log.stat().st_size
    # and a second run resumes there: nothing new, nothing written again
    stop2 = threading.Event()
    threading.Timer(2.0, stop2.set).start()
    again = Keep()
    pipe2 = run_watch(planned, [str(log)], None, sinks=[again], state_dir=str(tmp_path / "st"), stop=stop2)
    assert again.alerts == [] and pipe2.stats.events == pipe.stats.events


def test_a_rule_that_needs_the_end_of_input_is_said_at_start(tmp_path):
    import threading

    planned = seq_plan(tmp_path, SEQ_RULE.replace("[b where true]", "[b where true] | tail 3"))
    notes: list[str] = []
    stop = threading.Event()
    stop.set()
    run_watch(planned, [str(tmp_path / "none.log")], None, stop=stop, on_note=notes.append)
    assert any(n.startswith("rule not run live: seq: | tail keeps the last results") for n in notes), notes


def test_alerts_are_readable_in_the_out_file_before_any_checkpoint(tmp_path):
    # regression: AlertFile buffered its writes until the next checkpoint (5 s by default), so a reader of --out
    # saw an alert seconds after watch had raised it
    import threading
    import time

    from trailhound.pipeline.watch import AlertFile, WatchSettings

    log = tmp_path / "events.ndjson"
    log.write_bytes(orjson.dumps(doc("2026-01-01T00:00:00Z", "a")) + b"\n")  # one small alert: not a buffer's worth
    planned = seq_plan(tmp_path, SEQ_RULE.replace("sequence by h with maxspan=2s [a where true] [b where true]",
                                                  "a where true"))
    out = tmp_path / "alerts.ndjson"
    stop = threading.Event()
    seen: list[bytes] = []

    def reader() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not stop.is_set():
            if out.exists() and (data := out.read_bytes()):
                seen.append(data)
                stop.set()
                return
            time.sleep(0.02)
        stop.set()

    thread = threading.Thread(target=reader)
    thread.start()
    alert_file = AlertFile(str(out))
    run_watch(planned, [str(log)], alert_file, state_dir=str(tmp_path / "st"), from_start=True,
              stop=stop, settings=WatchSettings(checkpoint_seconds=3600))
    thread.join()
    alert_file.close()
    assert seen, "an alert was readable while watch ran"
    assert [orjson.loads(line)["kibana.alert.rule.name"] for line in seen[0].splitlines()] == ["seq"]


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's malloc arenas")
def test_watch_bounds_malloc_arenas_unless_the_user_chose(tmp_path):
    # the resident set of a long watch rose by a fifth from glibc's per-thread arenas (bench/RESULTS.md); watch
    # bounds them at start, and leaves MALLOC_ARENA_MAX to the user when set
    code = "from trailhound.pipeline.watch import bound_malloc_arenas; print(bound_malloc_arenas())"
    env = {k: v for k, v in __import__("os").environ.items() if k != "MALLOC_ARENA_MAX"}
    libc = subprocess.run(["ldd", "--version"], capture_output=True, text=True)
    if "GLIBC" not in (libc.stdout + libc.stderr).upper():
        pytest.skip("not glibc")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout.strip() == "True"
    chosen = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**env, "MALLOC_ARENA_MAX": "4"})
    assert chosen.stdout.strip() == "False"

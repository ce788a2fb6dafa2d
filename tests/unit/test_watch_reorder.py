"""An input's events out of time order (auditd writes an event when its syscall returns, stamped when it began):
within the reorder window (`pipeline.watch.REORDER_SECONDS`) watch sorts them as `hunt` sorts a whole load; beyond
it they are late, counted and left out of correlation, as documented."""

from __future__ import annotations

from pathlib import Path

import orjson

from trailhound.pipeline.hunt import plan, run_hunt
from trailhound.pipeline.watch import REORDER_SECONDS, StreamPipeline
from trailhound.rules.loader import load_rules
from trailhound.sources.formats import ReadOptions
from trailhound.sources.inputs import Source
from trailhound.sources.normalize import head_lines
from trailhound.sources.tail import LineCutter, StreamDecoder, format_for, read_options

REPO = Path(__file__).resolve().parents[2]
NOW = "2026-01-01T00:00:00.000Z"
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


class Keep:
    def __init__(self):
        self.out: dict[str, bytes] = {}

    def write(self, alerts):
        for a in alerts:
            self.out[a["kibana.alert.uuid"]] = orjson.dumps(a, option=orjson.OPT_SORT_KEYS)

    def close(self):
        pass


def doc(t_ms, cat, h="x"):
    return {"@timestamp": t_ms, "event": {"category": cat}, "h": h}


def seq_pipe(tmp_path, **kw):
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "r.toml").write_text(SEQ_RULE)
    sink = Keep()
    return StreamPipeline(plan(load_rules([tmp_path / "rules"])), [sink], now=NOW, **kw), sink


def test_an_event_a_little_out_of_order_is_correlated_in_order(tmp_path):
    pipe, sink = seq_pipe(tmp_path)
    src = pipe.add_source("s", False)
    t = 1_700_000_000_000
    pipe.add(src, doc(t + 25, "b"), 1)
    pipe.add(src, doc(t + 30, "b"), 2)
    pipe.step()  # the watermark is now 30 ms less the window: nothing may pass yet
    assert pipe.stats.evaluated == 0
    pipe.add(src, doc(t + 20, "a"), 3)  # written after the "b"s it precedes (as an execve's audit record)
    pipe.add(src, doc(t + int(REORDER_SECONDS * 1000) + 100, "c"), 4)
    pipe.step()
    assert pipe.stats.evaluated == 3 and pipe.stats.late == 0
    pipe.finish()
    assert pipe.engine.rules[0].late == 0
    assert len(sink.out) == 3  # the sequence a (row 3) then b (row 1): two building blocks and the shell


def test_without_the_window_the_same_event_is_late(tmp_path):
    pipe, sink = seq_pipe(tmp_path, lateness_ns=0)
    src = pipe.add_source("s", False)
    t = 1_700_000_000_000
    pipe.add(src, doc(t + 25, "b"), 1)
    pipe.add(src, doc(t + 30, "b"), 2)
    pipe.step()  # the "b" of row 1 reaches the correlator
    pipe.add(src, doc(t + 20, "a"), 3)
    pipe.finish()
    assert pipe.stats.late == 1 and pipe.engine.rules[0].late == 1
    assert sink.out == {}


def test_an_event_behind_by_more_than_the_window_is_late(tmp_path):
    pipe, sink = seq_pipe(tmp_path)
    src = pipe.add_source("s", False)
    t = 1_700_000_000_000
    behind = int(REORDER_SECONDS * 1000) * 2
    pipe.add(src, doc(t + 25, "b"), 1)
    pipe.add(src, doc(t + behind + 30, "b"), 2)
    pipe.step()
    pipe.add(src, doc(t + 20, "a"), 3)
    pipe.finish()
    assert pipe.stats.late == 1 and pipe.engine.rules[0].late == 1 and sink.out == {}


def decoded(path: str):
    src = Source.open(path)
    fmt = format_for(head_lines(src), None)
    decoder = StreamDecoder(src.name, fmt, read_options(path, ReadOptions()), lambda n, r: None)
    cutter = LineCutter()
    out = decoder.push(cutter.feed(Path(path).read_bytes()))
    return src.name, fmt is not None, out + decoder.push(cutter.flush()) + decoder.close()


def test_lab_audit_events_out_of_order_give_hunts_alerts(tmp_path):
    """remote_forward/audit.log has an exec written 8 ms after a later event: a step just before it must not
    make it late (it did, with the watermark at the latest event read)."""
    folder = REPO / "tests/fixtures/lab/remote_forward"
    paths = [str(folder / "audit.log"), str(folder / "auth.log")]
    planned = plan(load_rules([REPO / "src/trailhound/pack"]))
    want = Keep()
    run_hunt(planned, paths, sinks=[want], now=NOW)
    for window in (None, 0):
        pipe = StreamPipeline(planned, [Keep()], now=NOW, **({} if window is None else {"lateness_ns": window}))
        sink = pipe.sinks[0]
        inputs = [decoded(p) for p in paths]
        for name, enrich, _ in inputs:
            pipe.add_source(name, enrich)
        audit, auth = inputs[0][2], inputs[1][2]
        newest, cut = None, None
        for k, (d, _) in enumerate(audit):  # the first event older than one before it
            ts = pipe_time(d)
            if newest is not None and ts < newest:
                cut = k
                break
            newest = ts if newest is None else max(newest, ts)
        assert cut is not None, "the capture has an event out of order"
        for d, line in auth:
            pipe.add(1, d, line)
        pipe.close_source(1)
        for d, line in audit[:cut]:
            pipe.add(0, d, line)
        pipe.step()
        for d, line in audit[cut:]:
            pipe.add(0, d, line)
        pipe.close_source(0)
        pipe.finish()
        if window is None:
            assert pipe.stats.late == 0
            assert sink.out == want.out
        else:
            assert pipe.stats.late >= 1


def pipe_time(d) -> int:
    from trailhound.pipeline.watch import _event_time

    ts = _event_time(d)
    assert ts is not None
    return ts

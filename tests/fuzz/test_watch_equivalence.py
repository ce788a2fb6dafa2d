"""`watch` writes the alerts `hunt` writes (issue 11): the same ids and the same documents, over any chunking.

The inputs are cut at random byte offsets (inside lines, between the records of one audit event), appended in a
random interleaving, evaluated in micro-batches at random points, and the whole live state goes through a JSON
checkpoint at others. The final version of every alert (a suppression fold rewrites one) must equal, byte for byte,
what `pipeline.run_hunt` writes over the completed files (both are given one creation time).
* the lab's recorded capture (tests/fixtures/lab: raw auditd and sshd auth logs) with the SSH pack, which has
  sequences with runs and maxspan, new_terms, threshold-like sequences and the process tree;
* generated ECS NDJSON from two hosts with many equal timestamps, and rules of every kind: sequences with
  maxspan, until, runs and missing steps, samples, new_terms, threshold with cardinality, alert suppression
  (per execution and with a duration), max_signals and exceptions.
"""

from __future__ import annotations

import glob
import random
from functools import cache
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from watch_harness import NOW, Keep, stream

from trailhound.pipeline.hunt import plan, run_hunt
from trailhound.rules.loader import load_rules
from trailhound.sources import load_events

REPO = Path(__file__).resolve().parents[2]


def hunt_alerts(planned, paths) -> dict[str, bytes]:
    sink = Keep()
    run_hunt(planned, paths, sinks=[sink], now=NOW)
    return sink.out


def assert_same(got: dict[str, bytes], want: dict[str, bytes]) -> None:
    assert sorted(set(want) - set(got)) == [], "alerts hunt writes and watch does not"
    assert sorted(set(got) - set(want)) == [], "alerts watch writes and hunt does not"
    for uid, doc in want.items():
        assert got[uid] == doc, orjson.loads(doc)["kibana.alert.rule.name"]


# ---- the lab capture -----------------------------------------------------------------------


@cache
def lab() -> tuple:
    paths = sorted(glob.glob(str(REPO / "tests/fixtures/lab/*/audit.log"))) + sorted(
        glob.glob(str(REPO / "tests/fixtures/lab/*/auth.log")))
    planned = plan(load_rules([REPO / "src/trailhound/pack"]))
    # the scenarios ran one after another: their files are appended in that order, each scenario's two logs at once
    first = {}
    for i, p in enumerate(paths):
        frame = load_events([p], ["@timestamp"]).frame
        first[i] = frame["@timestamp"].min() if frame.height else ""
    scenarios: dict[str, list[int]] = {}
    for i, p in enumerate(paths):
        scenarios.setdefault(str(Path(p).parent), []).append(i)
    order = sorted(scenarios.values(), key=lambda g: min(first[i] for i in g))
    return paths, planned, order, hunt_alerts(planned, paths)


def test_lab_capture_random_chunkings():
    paths, planned, order, want = lab()
    kinds = {orjson.loads(a)["kibana.alert.rule.type"] for a in want.values()}
    assert len(want) > 50 and {"eql", "new_terms"} <= kinds
    for seed in range(3):
        got, pipe = stream(planned, paths, random.Random(seed), order=order)
        assert pipe.stats.batches > 5, "the stream was not cut into micro-batches"
        assert pipe.stats.late == 0
        assert all(r.status == "ok" for r in pipe.engine.rules)
        assert_same(got.out, want)


def test_lab_capture_all_files_at_once():
    """Every file appended at once (the scenarios' logs overlap nobody in time): events wait for the watermark."""
    paths, planned, _, want = lab()
    got, _ = stream(planned, paths, random.Random(7), checkpoints=0.5)
    assert_same(got.out, want)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32))
def test_lab_capture_any_chunking(seed):
    paths, planned, order, want = lab()
    got, _ = stream(planned, paths, random.Random(seed), order=order, max_chunks=60)
    assert_same(got.out, want)


# ---- generated events ---------------------------------------------------------------------

HEAD = '''[rule]
name = "{name}"
rule_id = "{rid}"
description = "generated"
risk_score = 21
severity = "low"
interval = "5s"
'''

RULES = {
    "seq_maxspan": ('type = "eql"\nlanguage = "eql"\nquery = """sequence by h with maxspan=3s '
                    '[a where true] [b where true] [c where true]"""\n'),
    "seq_missing": ('type = "eql"\nlanguage = "eql"\nquery = """sequence by h with maxspan=3s '
                    '[a where true] ![b where true] [c where true]"""\n'),
    "seq_trailing_missing": ('type = "eql"\nlanguage = "eql"\nquery = """sequence by h with maxspan=3s '
                             '[a where true] [b where true] ![c where true]"""\n'),
    "seq_until": ('type = "eql"\nlanguage = "eql"\nquery = """sequence by h [a where true] [b where true] '
                  'until [c where true]"""\n'),
    "seq_runs": ('type = "eql"\nlanguage = "eql"\nquery = """sequence by h with maxspan=2s [a where true] '
                 'with runs=2 [b where true]"""\n'),
    "sample": 'type = "eql"\nlanguage = "eql"\nquery = """sample by h [a where true] [b where true]"""\n',
    "events_capped": 'type = "eql"\nlanguage = "eql"\nmax_signals = 3\nquery = """c where n > 2"""\n',
    "events_suppressed": ('type = "query"\nlanguage = "kuery"\nquery = "event.category:b"\n'
                          '[rule.alert_suppression]\ngroup_by = ["h"]\n'),
    "events_suppressed_for": ('type = "query"\nlanguage = "kuery"\nquery = "event.category:a"\n'
                              '[rule.alert_suppression]\ngroup_by = ["h", "u"]\nduration = {unit = "s", value = 7}\n'
                              'missing_fields_strategy = "doNotSuppress"\n'),
    "new_terms": ('type = "new_terms"\nlanguage = "kuery"\nquery = "event.category:a or event.category:c"\n'
                  '[rule.new_terms]\nfield = "new_terms_fields"\nvalue = ["h", "u"]\n'
                  '[[rule.new_terms.history_window_start]]\nfield = "history_window_start"\nvalue = "now-4s"\n'),
    "threshold": ('type = "threshold"\nlanguage = "kuery"\nquery = "event.category:b"\n'
                  '[rule.threshold]\nfield = ["h"]\nvalue = 2\n'
                  '[[rule.threshold.cardinality]]\nfield = "u"\nvalue = 2\n'),
    "excepted": 'type = "eql"\nlanguage = "eql"\nquery = """a where true"""\n',  # with EXCEPTIONS
}

EXCEPTIONS = '''
[metadata]
list_name = "gen"
rule_ids = ["gen-11"]
rule_names = []

[[exceptions]]
[exceptions.container]
list_id = "gen"
name = "gen"
description = "d"
namespace_type = "single"
type = "detection"

[[exceptions.items]]
name = "not u1"
[[exceptions.items.entries]]
field = "u"
type = "match"
operator = "included"
value = "u1"
'''


@cache
def generated_rules(folder: str):
    root = Path(folder)
    for i, (name, body) in enumerate(RULES.items()):
        (root / f"{name}.toml").write_text(HEAD.format(name=name, rid=f"gen-{i}") + body)
    (root / "exceptions.toml").write_text(EXCEPTIONS)
    return plan(load_rules([root]))


def write_events(path: Path, rng: random.Random, host: str, n: int) -> None:
    t = 1_700_000_000_000
    lines = []
    for _ in range(n):
        t += rng.choice([0, 0, 250, 500, 1000, 2500])
        doc = {"@timestamp": t, "event": {"category": rng.choice("abc")}, "h": rng.choice([host, host + "2"]),
               "u": rng.choice(["u1", "u2", "u3", None]), "n": rng.randint(0, 5), "host": {"name": host}}
        if doc["u"] is None:
            del doc["u"]
        lines.append(orjson.dumps(doc))
    path.write_bytes(b"\n".join(lines) + b"\n")


@pytest.fixture(scope="module")
def gen_plan(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rules")
    planned = generated_rules(str(folder))
    assert not planned.rules.errors, planned.rules.errors
    assert [lst.list_id for lst in planned.rules.exceptions] == ["gen"]
    assert all(c.status == "ok" for c in planned.checks), [(c.rule.name, c.reason) for c in planned.checks]
    return planned


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**32))
def test_generated_events_any_chunking(gen_plan, tmp_path_factory, seed):
    rng = random.Random(seed)
    folder = tmp_path_factory.mktemp("events")
    paths = []
    for host in ("x", "y"):
        path = folder / f"{host}.ndjson"
        write_events(path, rng, host, rng.randint(5, 120))
        paths.append(str(path))
    want = hunt_alerts(gen_plan, paths)
    got, _ = stream(gen_plan, paths, rng, checkpoints=0.3)
    assert_same(got.out, want)


def test_generated_events_make_alerts_of_every_rule(gen_plan, tmp_path):
    """So that the comparison above bites: over a longer input every generated rule alerts."""
    rng = random.Random(11)
    paths = []
    for host in ("x", "y"):
        write_events(tmp_path / f"{host}.ndjson", rng, host, 400)
        paths.append(str(tmp_path / f"{host}.ndjson"))
    want = hunt_alerts(gen_plan, paths)
    names = {orjson.loads(a)["kibana.alert.rule.name"] for a in want.values()}
    assert names == set(RULES)
    excepted = [orjson.loads(a) for a in want.values() if orjson.loads(a)["kibana.alert.rule.name"] == "excepted"]
    assert excepted and all(a.get("u") != "u1" for a in excepted)
    assert any(b"suppression.docs_count" in a and b'"docs_count":0' not in a for a in want.values())
    got, pipe = stream(gen_plan, paths, rng, checkpoints=0.3)
    assert_same(got.out, want)
    assert got.writes > len(got.out), "suppression folds rewrite alerts already written"

"""Fuzzing the rule loader: any [rule] field of a valid rule (of each runnable type) set to a
value of a wrong type, out of range, with control characters, or deleted. Whatever the value:

* the file loads, or it is one load error naming the file and the key (the good rule beside it
  still loads);
* a rule that loads is classified by check_rule (ok / unsupported / error, with a reason);
* a rule that check_rule calls ok runs in a hunt over a small fixture without a traceback,
  the good rule keeps its hits, and its alerts build and serialize;
* each example stays within a time budget.
"""

import copy
import json
import math
import resource
import tempfile
import time
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trailhound.alerts.build import alerts_for_hits
from trailhound.engine.hunt import hunt
from trailhound.rules.check import check_rule
from trailhound.rules.errors import RuleError
from trailhound.rules.loader import load_rules, rule_from_document
from trailhound.rules.model import SCHEMA

BUDGET_S = 15  # per example, on a loaded 2-core machine
BUDGET_RSS_MB = 512  # growth of the process's peak memory over one example


def _common(**over):
    rule = {
        "author": ["Trailhound"], "description": "d", "license": "Elastic License v2", "risk_score": 47,
        "severity": "medium", "tags": ["OS: Linux"], "index": ["logs-*"], "from": "now-9m", "interval": "5m",
        "max_signals": 100, "references": ["https://example.com"], "false_positives": ["admins"], "note": "n",
        "setup": "s", "timestamp_override": "event.ingested", "rule_name_override": "rule.name",
        "building_block_type": "default",
        "threat": [{"framework": "MITRE ATT&CK",
                    "tactic": {"id": "TA0008", "name": "Lateral Movement",
                               "reference": "https://attack.mitre.org/tactics/TA0008/"},
                    "technique": [{"id": "T1021", "name": "Remote Services",
                                   "reference": "https://attack.mitre.org/techniques/T1021/",
                                   "subtechnique": [{"id": "T1021.004", "name": "SSH", "reference":
                                                     "https://attack.mitre.org/techniques/T1021/004/"}]}]}],
        "severity_mapping": [{"field": "user.name", "operator": "equals", "value": "root", "severity": "high"}],
        "risk_score_mapping": [{"field": "event.risk_score", "operator": "equals", "value": ""}],
        "exceptions_list": [{"id": "l", "list_id": "l", "namespace_type": "single", "type": "detection"}],
    }
    rule.update(over)
    return rule


BASES = {
    "eql": _common(rule_id="fz-eql", name="eql", type="eql", language="eql",
                   query='process where process.name == "ssh"', event_category_override="event.category",
                   tiebreaker_field="event.sequence", timestamp_field="@timestamp",
                   alert_suppression={"group_by": ["host.name"], "missing_fields_strategy": "suppress",
                                      "duration": {"unit": "m", "value": 5}}),
    "sequence": _common(rule_id="fz-seq", name="seq", type="eql", language="eql",
                        query="sequence by host.name [process where true] [authentication where true]"),
    "query": _common(rule_id="fz-kql", name="kql", type="query", language="kuery", query="process.name:ssh",
                     alert_suppression={"group_by": ["user.name"], "missing_fields_strategy": "doNotSuppress"}),
    "new_terms": _common(rule_id="fz-nt", name="nt", type="new_terms", language="kuery",
                         query="event.category:authentication",
                         new_terms={"field": "new_terms_fields", "value": ["source.ip"],
                                    "history_window_start": [{"field": "history_window_start", "value": "now-5d"}]}),
    "threshold": _common(rule_id="fz-th", name="th", type="threshold", language="kuery",
                         query="event.category:authentication",
                         threshold={"field": ["source.ip"], "value": 2,
                                    "cardinality": [{"field": "user.name", "value": 1}]},
                         alert_suppression={"duration": {"unit": "h", "value": 1}}),
}

GOOD = '''[rule]
rule_id = "good"
name = "good"
description = "d"
risk_score = 21
severity = "low"
type = "eql"
language = "eql"
query = 'process where process.name == "ssh"'
'''


def _event(i, category, **fields):
    return {"@timestamp": f"2026-01-01T00:00:{i:02d}Z", "event": {"category": [category], "id": f"e{i}",
                                                                  "sequence": i}, "host": {"name": "h1"}, **fields}


EVENTS = [
    _event(1, "process", process={"name": "ssh", "args": ["ssh", "-R"]}, user={"name": "root"}),
    _event(2, "authentication", source={"ip": "10.0.0.1"}, user={"name": "root"}),
    _event(3, "authentication", source={"ip": "10.0.0.1"}, user={"name": "bob"}),
    _event(4, "process", process={"name": "ssh"}, user={"name": "bob"}, rule={"name": "\x1b]0;x\x07"}),
    _event(5, "authentication", source={"ip": "10.0.0.2"}),
]
GOOD_HITS = [(0,), (3,)]  # rows of the two ssh process events

# where a value goes: every [rule] key the schema knows, and the keys inside the tables
TOP = sorted(SCHEMA)
NESTED = [
    ("threshold", "field"), ("threshold", "value"), ("threshold", "cardinality"), ("threshold", "cardinality", 0),
    ("threshold", "cardinality", 0, "value"), ("threshold", "cardinality", 0, "field"),
    ("new_terms", "value"), ("new_terms", "value", 0), ("new_terms", "history_window_start"),
    ("new_terms", "history_window_start", 0), ("new_terms", "history_window_start", 0, "value"),
    ("alert_suppression", "group_by"), ("alert_suppression", "group_by", 0), ("alert_suppression", "duration"),
    ("alert_suppression", "duration", "value"), ("alert_suppression", "duration", "unit"),
    ("alert_suppression", "missing_fields_strategy"),
    ("threat", 0), ("threat", 0, "framework"), ("threat", 0, "tactic"), ("threat", 0, "tactic", "id"),
    ("threat", 0, "technique"), ("threat", 0, "technique", 0, "subtechnique"),
    ("severity_mapping", 0), ("severity_mapping", 0, "severity"), ("severity_mapping", 0, "field"),
    ("severity_mapping", 0, "value"), ("risk_score_mapping", 0, "field"), ("exceptions_list", 0, "list_id"),
    ("exceptions_list", 0, "namespace_type"),
]
PATHS = [(k,) for k in TOP] + NESTED

TRICKY = [
    "", " ", "\x00", "a\x00b", "\x1b]0;pwned\x07", "\u202e", "now", "now-0s", "0s", "5", "now-5", "now-1d/d",
    "now-99999999999999999999y", "now+5m", "garbage", "5m", "now-5m", "1y", "-1", "²", "now-²m", "process.name",
    "@timestamp", "host.name", "process", "eql", "kuery", "lucene", "low", "default", "s", "h", "d",
    "suppress", "a" * 2000, "a." * 30 + "b",
]
scalars = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64), st.integers(min_value=10**30, max_value=10**40),
    st.booleans(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(TRICKY),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.text(max_size=6), st.sampled_from(
                                ["field", "value", "unit", "id", "name", "group_by"])), inner, max_size=4)),
    max_leaves=8,
)


def _toml_str(s: str) -> str:
    out = []
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return "{" + ", ".join(f"{_toml_str(k)} = {_toml(x)}" for k, x in v.items()) + "}"


def rule_text(table: dict) -> str:
    return "[rule]\n" + "".join(f"{_toml_str(k)} = {_toml(v)}\n" for k, v in table.items())


def _mutate(table: dict, path: tuple, value, delete: bool) -> bool:
    """Set (or delete) the value at `path`; False when the base rule has nothing there."""
    node = table
    for step in path[:-1]:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return False
    last = path[-1]
    if delete:
        if isinstance(node, dict) and last in node:
            del node[last]
            return True
        if isinstance(node, list) and isinstance(last, int) and last < len(node):
            del node[last]
            return True
        return False
    if isinstance(node, dict):
        node[last] = value
        return True
    if isinstance(node, list) and isinstance(last, int) and last < len(node):
        node[last] = value
        return True
    return False


def _hunt_and_alert(checks, data: Path):
    result = hunt(checks, [data])
    for run in result.runs:
        if not run.hits:
            continue
        rows = sorted({r for h in run.hits for r in h.rows if r is not None})
        docs = dict(zip(rows, result.table.documents(rows)))
        batch = alerts_for_hits(run.check.rule, run.kind, run.hits, docs, run.timestamp_field)
        for alert in batch.alerts:
            orjson.dumps(alert, default=str)
    return result


def _write(folder: Path, table: dict | None) -> Path:
    rules = folder / "rules"
    rules.mkdir()
    (rules / "good.toml").write_text(GOOD)
    if table is not None:
        (rules / "bad.toml").write_text(rule_text(table))
    data = folder / "events.ndjson"
    data.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    return data


def test_every_base_rule_loads_checks_ok_and_raises_alerts():
    for name, base in BASES.items():
        with tempfile.TemporaryDirectory() as tmp:
            data = _write(Path(tmp), base)
            loaded = load_rules([Path(tmp) / "rules"])
            assert loaded.errors == [] and len(loaded.rules) == 2, name
            checks = [check_rule(r) for r in loaded.rules]
            assert [c.status for c in checks] == ["ok", "ok"], (name, [c.reason for c in checks])
            runs = {r.check.rule.rule_id: r for r in _hunt_and_alert(checks, data).runs}
            assert all(r.error is None for r in runs.values()), name
            assert [h.rows for h in runs["good"].hits] == GOOD_HITS
            assert runs[base["rule_id"]].hits, name  # the fixture exercises each rule type's alerts


@given(kind=st.sampled_from(sorted(BASES)), path=st.sampled_from(PATHS), value=values, delete=st.booleans())
def test_any_field_with_any_value_loads_cleanly_or_is_one_error(kind, path, value, delete):
    started = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    table = copy.deepcopy(BASES[kind])
    if not _mutate(table, path, value, delete):
        table[path[0]] = value  # the base has no such table: give it this value instead
    with tempfile.TemporaryDirectory() as tmp:
        data = _write(Path(tmp), table)
        loaded = load_rules([Path(tmp) / "rules"])
        assert [r.rule_id for r in loaded.rules if r.source.endswith("good.toml")] == ["good"]
        bad = [r for r in loaded.rules if r.source.endswith("bad.toml")]
        if not bad:
            assert len(loaded.errors) == 1
            error = loaded.errors[0]
            assert isinstance(error, RuleError) and error.source.endswith("bad.toml")
            assert error.key is not None and error.message, str(error)
            assert "Traceback" not in str(error)
        else:
            assert loaded.errors == []
            checks = [check_rule(r) for r in loaded.rules]
            for c in checks:
                assert c.status in ("ok", "unsupported", "error")
                assert c.status == "ok" or c.reason.strip()
            result = _hunt_and_alert(checks, data)
            good = [r for r in result.runs if r.check.rule.source.endswith("good.toml")]
            assert [h.rows for h in good[0].hits] == GOOD_HITS and good[0].error is None
    assert time.perf_counter() - started < BUDGET_S
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < BUDGET_RSS_MB * 1024


WRONG = [0, -1, 2**64, 10**40, True, False, 1.5, math.nan, math.inf, [], [1, "a"], {}, {"x": [None, 1]}, "",
         "\x00", "a\x1b[2Jb", "now-0s", "now-1d/d", ["\x00"], [{"field": 5, "value": "x"}]]


@pytest.mark.parametrize("kind", sorted(BASES))
def test_every_field_with_every_wrong_value(kind):
    """Exhaustive, beside the random search above: each top-level and nested key of each rule
    type, each value of WRONG; load, then check what loads (the hunt is the fuzz test's job)."""
    started = time.perf_counter()
    checked = 0
    for path in PATHS:
        for value in WRONG:
            table = copy.deepcopy(BASES[kind])
            if not _mutate(table, path, value, False):
                continue
            try:
                r = rule_from_document({"rule": table}, "bad.toml")
            except RuleError as e:
                assert e.source == "bad.toml" and e.key and e.key.startswith(str(path[0])) and e.message, str(e)
                continue
            c = check_rule(r)
            assert c.status in ("ok", "unsupported", "error") and (c.status == "ok" or c.reason.strip())
            checked += 1
    assert checked > 0 and time.perf_counter() - started < 20

"""`hunt --engine spark` on a real local Spark: the same alerts (ids, documents, order) and the same
report as the local engine."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trailhound.cli.main import app
from trailhound.pipeline import plan, run_hunt
from trailhound.rules.loader import load_rules

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "tests" / "fixtures" / "lab"
NOW = "2026-12-01T00:00:00.000Z"
THRESHOLD_RULE = """
[rule]
name = "Failed logins"
description = "d"
risk_score = 47
rule_id = "th-failures"
severity = "medium"
type = "threshold"
language = "kuery"
query = "event.category:authentication and event.outcome:failure"

[rule.threshold]
field = ["source.ip"]
value = 3
"""
EXCEPTIONS = """
[metadata]
list_name = "ok"
rule_ids = ["th-failures"]
rule_names = []

[[exceptions]]
[exceptions.container]
list_id = "not-oracle"
name = "ok"
description = "d"
namespace_type = "single"
type = "detection"

[[exceptions.items]]
name = "oracle probes"
item_id = "i1"
list_id = "not-oracle"
type = "simple"
description = "d"
entries = [{ field = "user.name", type = "match", operator = "included", value = "oracle" }]
"""


def _both(spark, rule_paths, files, exceptions=()):
    from trailhound.spark.driver import run_hunt_spark

    planned = plan(load_rules(rule_paths, exceptions))
    local = run_hunt(planned, files, now=NOW, keep_alerts=True)
    # split_bytes=0: every rule that can be split is, however small its candidates
    remote = run_hunt_spark(planned, files, spark=spark, now=NOW, keep_alerts=True, split_bytes=0)
    return local, remote


def _alerts(report) -> list[dict]:
    return [a for r in report.rules for a in r.alert_documents or ()]


def _same_report(local, remote) -> None:
    assert _alerts(remote) == _alerts(local)
    assert [(r.name, r.status, r.kind, r.hits, r.alerts, r.notes, r.excepted) for r in remote.rules] == \
        [(r.name, r.status, r.kind, r.hits, r.alerts, r.notes, r.excepted) for r in local.rules]
    assert remote.load.events == local.load.events
    assert remote.load.inputs == local.load.inputs
    assert remote.load.skipped == local.load.skipped and remote.load.skipped_count == local.load.skipped_count


@pytest.mark.skipif(not LAB.is_dir(), reason="no recorded lab capture")
def test_lab_capture_with_the_pack(spark, tmp_path, monkeypatch):
    """Raw audit and auth logs (normalized in Spark, the process tree across files as locally): sequences,
    new_terms, threshold and event rules of the pack; and the same through Parquet."""
    from trailhound.pack import DIR as PACK

    files = sorted(str(p) for p in LAB.glob("*/*.log"))
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "failures.toml").write_text(THRESHOLD_RULE)
    # an exception list: the pack's sshpass rule without the brute-force scenario's target user
    (extra / "exceptions.toml").write_text(EXCEPTIONS)
    seen = _splits(monkeypatch)
    local, remote = _both(spark, [PACK, extra], files)
    _same_report(local, remote)
    assert seen["Failed logins"] == "threshold by terms"  # with an exception list
    assert any(how == "new_terms by terms" for how in seen.values()), seen
    kinds = {r.kind for r in local.rules if r.hits}
    assert {"events", "sequences", "threshold"} <= kinds and len(_alerts(local)) > 50
    assert any(r.hits for r in local.rules if "First" in r.name)  # new_terms
    failures = next(r for r in local.rules if r.name == "Failed logins")
    assert failures.hits and failures.excepted == {"not-oracle/oracle probes": 2}
    store = tmp_path / "store"
    assert CliRunner().invoke(app, ["normalize", *files, "--to", "parquet", "-o", str(store)]).exit_code == 0
    local_pq, remote_pq = _both(spark, [PACK, extra], [str(store)])
    assert _alerts(remote_pq) == _alerts(local_pq) == _alerts(local)


@pytest.mark.skipif(not LAB.is_dir(), reason="no recorded lab capture")
def test_cli_engine_spark_writes_the_same_alert_file(spark, tmp_path):
    files = sorted(str(p) for p in LAB.glob("*/*.log"))[:8]
    outs = {}
    for engine in ("local", "spark"):
        out = tmp_path / f"{engine}.ndjson"
        args = ["hunt", *files, "--exit-zero", "--out", str(out), "--engine", engine]
        r = CliRunner().invoke(app, args + (["--master", "local[2]"] if engine == "spark" else []))
        assert r.exit_code == 0, r.output
        outs[engine] = [json.loads(line) for line in out.read_text().splitlines()]
    for docs in outs.values():
        for d in docs:
            d.pop("@timestamp")  # the time of the run
    assert outs["spark"] == outs["local"] and outs["local"]
    # the alerts as Parquet files from the Spark engine: the same documents, read back
    from trailhound.sinks.parquet import read_alerts

    store = tmp_path / "alerts"
    r = CliRunner().invoke(app, ["hunt", *files, "--exit-zero", "--out", str(store), "--out-format", "parquet",
                                 "--engine", "spark", "--master", "local[2]"])
    assert r.exit_code == 0, r.output
    back = read_alerts(store)
    for d in back:
        d.pop("@timestamp")
    assert back == outs["local"]
    r = CliRunner().invoke(app, ["hunt", files[0], "--master", "local[1]"])
    assert r.exit_code == 2 and "--master goes with --engine spark" in r.output


def test_bad_lines_are_counted_with_file_and_line_never_a_failed_job(spark, tmp_path):
    rule = tmp_path / "rules" / "ssh.toml"
    rule.parent.mkdir()
    rule.write_text('[rule]\nname = "ssh"\nrule_id = "r-ssh"\ndescription = "d"\nrisk_score = 21\n'
                    'severity = "low"\ntype = "eql"\nlanguage = "eql"\n'
                    'query = "sequence by host.name [process where process.name == \\"ssh\\"] '
                    '[process where process.name == \\"scp\\"]"\n')
    a, b = tmp_path / "a.ndjson", tmp_path / "b.ndjson.gz"
    ev = {"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": "process"}, "host": {"name": "h"}}
    a.write_text(json.dumps({**ev, "process": {"name": "ssh"}}) + "\n{broken\n[1]\n")
    import gzip

    b.write_bytes(gzip.compress((json.dumps({**ev, "@timestamp": "2026-01-01T00:00:01Z",
                                             "process": {"name": "scp"}}) + "\n").encode())[:-6])
    local, remote = _both(spark, [rule.parent], [str(a), str(b)])
    _same_report(local, remote)
    assert remote.load.skipped_count == 3
    assert [(s.file, s.line) for s in remote.load.skipped][:2] == [(str(a), 2), (str(a), 3)]
    from trailhound.sources import SourceError
    from trailhound.spark.driver import run_hunt_spark

    with pytest.raises(SourceError, match="no such file"):
        run_hunt_spark(plan(load_rules([rule.parent])), [str(tmp_path / "missing.ndjson")], spark=spark)


def test_es_eql_qa_queries_as_rules(spark, tmp_path, monkeypatch):
    """Every event, sequence and sample query of Elasticsearch's EQL QA suite, each as a rule over its
    data set split in three NDJSON files (and once as Parquet): identical alerts."""
    es_eql = pytest.importorskip("es_eql")
    if not es_eql.available():
        pytest.skip(f"ES EQL suite not found at {es_eql.SUITE}")
    from trailhound.lang import ir
    from trailhound.lang.parser import parse
    from trailhound.sources import parquet_writer as store

    counted = {"events": 0, "sequences": 0, "samples": 0}
    ways = _splits(monkeypatch)
    split_samples = 0
    for cls in es_eql.CLASSES:
        if cls.name == "EqlDateNanosSpecTestCase":
            continue  # the queries of EqlSpecTestCase again, on nanosecond times
        table, _, aliases = es_eql.dataset(cls.name)
        # copies: the data set is cached for the conformance tests, and its documents are the cached objects
        docs = [json.loads(json.dumps(d)) for d in table.documents(range(table.frame.height))]
        for d in docs:  # the index's field aliases (event.category → event_type...) as fields: rules read ECS names
            for alias, target in aliases.items():
                if target in d and alias.split(".")[0] not in d:
                    node = d
                    *parents, last = alias.split(".")
                    for part in parents:
                        node = node.setdefault(part, {})
                    node[last] = d[target]
        data = tmp_path / cls.name
        rules = data / "rules"
        rules.mkdir(parents=True)
        third = len(docs) // 3 + 1
        files = []
        for k in range(3):
            f = data / f"part{k}.ndjson"
            f.write_text("".join(json.dumps(d) + "\n" for d in docs[k * third:(k + 1) * third]))
            files.append(str(f))
        seen = set()
        for c, spec in es_eql.all_cases():
            if c.name != cls.name or spec.query in seen:
                continue
            seen.add(spec.query)
            q = parse(spec.query)
            kind = "events" if isinstance(q, ir.EventQuery) else "sequences" if isinstance(q, ir.SequenceQuery) \
                else "samples"
            counted[kind] += 1
            text = (f'[rule]\nname = {json.dumps(spec.name)}\nrule_id = "qa-{len(seen)}"\ndescription = "qa"\n'
                    f'risk_score = 21\nseverity = "low"\ntype = "eql"\nlanguage = "eql"\nmax_signals = 10000\n'
                    + (f'tiebreaker_field = "{cls.tiebreaker}"\n' if cls.tiebreaker else "")
                    + f"query = {json.dumps(spec.query)}\n")
            (rules / f"q{len(seen):04d}.toml").write_text(text)
        ways.clear()
        local, remote = _both(spark, [rules], files)
        _same_report(local, remote)
        split_samples += sum(how == "sample by key" for how in ways.values())
        counted["hits"] = counted.get("hits", 0) + sum(r.hits for r in local.rules)
        if cls.name == "EqlSpecTestCase":
            writer = store.ParquetWriter(data / "store" if (data / "store").mkdir() is None else data)
            for k, d in enumerate(docs, 1):
                writer.add(d, "qa", k)
            writer.close()
            local_pq, remote_pq = _both(spark, [rules], [str(data / "store")])
            assert _alerts(remote_pq) == _alerts(local_pq)
    print("QA queries compared:", counted, "samples split by key:", split_samples)
    assert split_samples >= 10
    assert counted["hits"] > 100 and counted["events"] > 50 and counted["sequences"] > 100 and counted["samples"] > 20


RULES = Path(os.environ.get("TRAILHOUND_SHARED", REPO.parent / "shared")) / "corpora" / "detection-rules" / "rules"


def _splits(monkeypatch) -> dict[str, str]:
    """Records, per rule, how stage 2 correlates it: split (and by what) or whole (and why)."""
    from trailhound.spark import driver, tasks

    seen: dict[str, str] = {}

    def recording(spec, types):
        got = tasks.split_of(spec, types)
        seen[spec.check.rule.name] = f"{got.kind} by {got.by}" if isinstance(got, tasks.Split) else f"whole: {got}"
        return got

    monkeypatch.setattr(driver, "split_of", recording)
    return seen


@pytest.mark.skipif(not (RULES / "linux").is_dir(), reason="no detection-rules corpus (set TRAILHOUND_SHARED)")
def test_linux_new_terms_and_threshold_rules_split_by_terms(spark, tmp_path, monkeypatch):
    """Elastic's Linux new_terms and threshold rules over 30,000 events of bench/generate.py (a share of its
    process starts made ping sweeps and kills, with host.id, some as arrays, so that the threshold rules
    count): split by term and by group on Spark, identical alerts to the local engine."""
    import random
    import shutil
    import sys

    sys.path.insert(0, str(REPO / "bench"))
    from generate import generate

    generate(str(tmp_path / "all.ndjson"), 30_000, seed=5, hours=6.0, n_hosts=60, progress=False)
    rng = random.Random(2)
    events = [json.loads(line) for line in (tmp_path / "all.ndjson").read_text().splitlines()]
    for i, ev in enumerate(events):
        host = ev.get("host", {})
        host["id"] = f"id-{host.get('name')}" if i % 50 else [f"id-{host.get('name')}", f"id-{i % 7}"]
        proc = ev.get("process")
        if proc is None or "process" not in ev["event"]["category"] or rng.random() > 0.08:
            continue
        proc["parent"] = {**proc.get("parent", {}), "entity_id": f"p{rng.randrange(40)}"}
        if rng.random() < 0.5:
            proc.update(name="ping", executable=rng.choice(["/usr/bin/ping", "/bin/ping"]), args=["ping", "10.0.0.1"])
        else:
            proc.update(name="kill", executable="/usr/bin/kill", args=["kill", "-9", str(rng.randrange(9999))])
    # bursts: ping sweeps (120 distinct targets in 4 minutes from one parent) and kill series (20 in 2 minutes)
    from datetime import datetime, timedelta

    starts = [e for e in events if "process" in e["event"]["category"] and e.get("user")]
    for n, ev in enumerate(rng.sample(starts, 24)):
        at = datetime.fromisoformat(ev["@timestamp"].replace("Z", "+00:00"))
        sweep = n % 2 == 0
        for k in range(120 if sweep else 20):
            copy = json.loads(json.dumps(ev))
            copy["@timestamp"] = (at + timedelta(seconds=2 * k + n % 3)).isoformat().replace("+00:00", "Z")
            copy["event"]["id"] = f"burst-{n}-{k}"
            proc = copy["process"]
            proc["parent"] = {**proc.get("parent", {}), "entity_id": f"burst-{n // 4}"}  # parents shared
            if sweep:
                proc.update(name="ping", executable="/usr/bin/ping", args=["ping", "-c1", f"10.{n}.{k // 50}.{k}"])
            else:
                proc.update(name="kill", executable="/usr/bin/kill", args=["kill", "-9", str(1000 + k)])
            events.append(copy)
    rng.shuffle(events)
    files = []
    for k in range(3):
        f = tmp_path / f"part{k}.ndjson"
        f.write_text("".join(json.dumps(e) + "\n" for e in events[k::3]))
        files.append(str(f))
    rules = tmp_path / "rules"
    rules.mkdir()
    for path in sorted((RULES / "linux").glob("*.toml")):
        text = path.read_text()
        if 'type = "new_terms"' in text or 'type = "threshold"' in text:
            shutil.copy(path, rules)
    seen = _splits(monkeypatch)
    local, remote = _both(spark, [rules], files)
    _same_report(local, remote)
    hits = {r.name: r.hits for r in local.rules if r.hits}
    split = sorted(n for n, how in seen.items() if "by terms" in how)
    print(f"Linux rules compared: {len(local.rules)}, with hits {len(hits)}, alerts {len(_alerts(local))}; "
          f"split by terms {len(split)}; hits {hits}")
    kinds = {r.kind for r in local.rules if r.hits}
    assert kinds == {"events", "threshold"} and len(_alerts(local)) > 100
    assert all(n in split for n in hits), (hits, seen)

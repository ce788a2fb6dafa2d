"""`watch --engine spark`: Structured Streaming over a directory where the lab capture's files arrive, scenario by
scenario, across two runs sharing a checkpoint location: the same alerts (ids and documents) as `hunt` over the
same files."""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

import orjson
import pytest

from trailhound.pipeline import plan, run_hunt
from trailhound.rules.loader import load_rules

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "tests" / "fixtures" / "lab"
NOW = "2026-12-01T00:00:00.000Z"


class _Keep:
    def __init__(self) -> None:
        self.out: dict[str, bytes] = {}

    def write(self, alerts) -> None:
        for a in alerts:
            self.out[a["kibana.alert.uuid"]] = orjson.dumps(a, default=str)

    def close(self) -> None:
        pass


@pytest.mark.skipif(not LAB.is_dir(), reason="no recorded lab capture")
def test_lab_capture_as_arriving_files_equals_hunt(spark, tmp_path):
    from trailhound.pack import DIR as PACK
    from trailhound.pipeline.watch import AlertFile
    from trailhound.sources import load_events
    from trailhound.spark.stream import run_watch_spark

    paths = sorted(glob.glob(str(LAB / "*/audit.log"))) + sorted(glob.glob(str(LAB / "*/auth.log")))
    planned = plan(load_rules([PACK]))
    want = _Keep()
    run_hunt(planned, paths, sinks=[want], now=NOW)
    assert len(want.out) > 50
    # the scenarios ran one after another: each arrives as a folder of its two logs, in time order
    first = {}
    for p in paths:
        frame = load_events([p], ["@timestamp"]).frame
        if frame.height:
            first[str(Path(p).parent)] = min(first.get(str(Path(p).parent), "~"), frame["@timestamp"].min())
    scenarios = sorted(first, key=first.__getitem__)
    incoming, checkpoint, out = tmp_path / "incoming", tmp_path / "checkpoint", tmp_path / "alerts.ndjson"
    incoming.mkdir()

    def arrive(group: list[str], k0: int) -> None:
        for k, scenario in enumerate(group, k0):
            staging = tmp_path / "staging" / f"{k:02d}-{Path(scenario).name}"
            staging.mkdir(parents=True)
            for name in ("audit.log", "auth.log"):
                if (Path(scenario) / name).exists():
                    shutil.copy(Path(scenario) / name, staging / name)
                    os.utime(staging / name, (1_700_000_000 + k, 1_700_000_000 + k))
            os.rename(staging, incoming / staging.name)  # whole, at once, as a collector should deliver them

    half = len(scenarios) // 2
    arrive(scenarios[:half], 0)
    alerts = AlertFile(str(out))
    pipe = run_watch_spark(planned, str(incoming), alerts, spark=spark, checkpoint=str(checkpoint), once=True,
                           final=False, now=NOW, files_per_batch=2)  # a scenario a batch
    alerts.close()
    assert pipe.stats.batches >= 2 and pipe.stats.late == 0
    assert (checkpoint / "commits").is_dir() and (checkpoint / "trailhound").is_dir()  # Spark's, and ours beside
    # the keyed rules' state is in Spark's state store, per (rule, key), and not in the driver's state
    keyed = _keyed_rules(pipe)
    assert {"sequence", "new_terms"} <= set(keyed.values())
    held = _state_store(spark, checkpoint)
    assert {rule for rule, _ in held} <= set(keyed) and {keyed[rule] for rule, _ in held} >= {"sequence", "new_terms"}
    driver = _driver_state(checkpoint)
    for i in keyed:
        run = driver["engine"]["rules"][i]["run"]
        assert not run["state"].get("pending") and not run["state"].get("last_seen"), run
    arrive(scenarios[half:], half)
    alerts = AlertFile(str(out))
    pipe = run_watch_spark(planned, str(incoming), alerts, spark=spark, checkpoint=str(checkpoint), once=True,
                           now=NOW)  # the second run takes only the new files: Spark's checkpoint says which
    alerts.close()
    assert all(r.status == "ok" for r in pipe.engine.rules)
    got: dict[str, bytes] = {}
    for line in out.read_bytes().splitlines():
        doc = orjson.loads(line)
        assert doc["kibana.alert.uuid"] not in got, "an alert written twice"
        got[doc["kibana.alert.uuid"]] = orjson.dumps(doc, default=str)
    assert sorted(set(want.out) - set(got)) == [], "alerts hunt writes and the stream does not"
    assert sorted(set(got) - set(want.out)) == [], "alerts the stream writes and hunt does not"
    for uid, doc in want.out.items():
        assert got[uid] == doc, orjson.loads(doc)["kibana.alert.rule.name"]
    names = {pipe.engine.rules[i].check.rule.name for i in keyed}
    from_keyed = [d for d in got.values() if orjson.loads(d)["kibana.alert.rule.name"] in names]
    assert len(from_keyed) > 20  # so that the comparison bites on the keyed rules too


def _keyed_rules(pipe) -> dict[int, str]:
    """The rules of a pipeline whose correlation runs on Spark's keyed state: index → kind."""
    from trailhound.spark.keyed import StashedNewTerms, StashedSample, StashedSequence

    kinds = {StashedSequence: "sequence", StashedSample: "sample", StashedNewTerms: "new_terms"}
    return {i: kinds[type(live.run)] for i, live in enumerate(pipe.engine.rules) if type(live.run) in kinds}


def _state_store(spark, checkpoint: Path) -> dict[tuple[int, str], dict]:
    """What Spark's state store holds for the keyed step, read with Spark's state data source."""
    rows = spark.read.format("statestore").load(str(checkpoint / "keyed" / "state")).collect()
    return {(r.key.rule, r.key.key): orjson.loads(r.value.groupState.state) for r in rows}


def _driver_state(checkpoint: Path) -> dict:
    saved = sorted((checkpoint / "trailhound").glob("batch-*.json"), key=lambda p: int(p.stem[6:]))
    return orjson.loads(saved[-1].read_bytes())["pipeline"]


SEQ_RULES = {
    "seq": 'type = "eql"\nlanguage = "eql"\nquery = """sequence by h with maxspan=1h [a where true] [b where true] '
           '[c where true]"""\n',
    "terms": ('type = "new_terms"\nlanguage = "kuery"\nquery = "event.category:a"\n'
              '[rule.new_terms]\nfield = "new_terms_fields"\nvalue = ["u"]\n'
              '[[rule.new_terms.history_window_start]]\nfield = "history_window_start"\nvalue = "now-1d"\n'),
    "smp": 'type = "eql"\nlanguage = "eql"\nquery = """sample by h [a where true] [c where true]"""\n',
}
HEAD = '''[rule]
name = "{name}"
rule_id = "k-{name}"
description = "d"
risk_score = 21
severity = "low"
'''


def _rules(folder: Path):
    folder.mkdir()
    for name, body in SEQ_RULES.items():
        (folder / f"{name}.toml").write_text(HEAD.format(name=name) + body)
    planned = plan(load_rules([folder]))
    assert all(c.status == "ok" for c in planned.checks)
    return planned


def _arrive(incoming: Path, name: str, docs: list[dict], k: int) -> None:
    staging = incoming.parent / f"staging-{name}"
    staging.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs))
    os.utime(staging, (1_700_000_000 + k, 1_700_000_000 + k))
    os.rename(staging, incoming / name)


def test_a_sequence_begun_before_a_restart_completes_from_sparks_state_store(spark, tmp_path):
    """Run 1 sees the first event of a sequence (key x) and a first-seen term; it stops. Its state is in Spark's
    state store (read back with Spark's state data source), and the driver's saved state holds neither the
    partial sequence nor its event's document. Run 2, from the same checkpoint, completes the sequence (its first
    event's document comes back from the state store) and does not alert again on the term seen in run 1."""
    from trailhound.pipeline.watch import AlertFile
    from trailhound.spark.stream import run_watch_spark

    planned = _rules(tmp_path / "rules")
    incoming, checkpoint, out = tmp_path / "incoming", tmp_path / "checkpoint", tmp_path / "alerts.ndjson"
    incoming.mkdir()
    t = 1_767_225_600_000  # 2026-01-01
    first = [{"@timestamp": t, "event": {"category": "a"}, "h": "x", "u": "alice", "n": 1},
             {"@timestamp": t + 10, "event": {"category": "a"}, "h": "y", "u": "bob", "n": 2}]
    _arrive(incoming, "1.ndjson", first, 1)
    alerts = AlertFile(str(out))
    pipe = run_watch_spark(planned, str(incoming), alerts, spark=spark, checkpoint=str(checkpoint), once=True,
                           final=False, now=NOW)
    alerts.close()
    keyed = _keyed_rules(pipe)
    assert sorted(keyed.values()) == ["new_terms", "sample", "sequence"]
    held = _state_store(spark, checkpoint)
    seq = next(i for i, kind in keyed.items() if kind == "sequence")
    smp = next(i for i, kind in keyed.items() if kind == "sample")
    terms = next(i for i, kind in keyed.items() if kind == "new_terms")
    assert set(held) == {(seq, '["x"]'), (seq, '["y"]'), (terms, '["alice"]'), (terms, '["bob"]'), (smp, '["x"]'),
                         (smp, '["y"]')}
    assert held[(seq, '["x"]')]["run"]["state"]["pending"]  # the partial sequence of x, in Spark's store
    assert len(held[(seq, '["x"]')]["docs"]) == 1  # with its event's document
    driver = _driver_state(checkpoint)
    assert driver["engine"]["rules"][seq]["run"]["state"]["pending"] == []
    assert driver["store"] == []  # the driver keeps no document for the keyed rules
    before = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert sorted(a["u"] for a in before) == ["alice", "bob"]  # two first-seen terms
    second = [{"@timestamp": t + 1000, "event": {"category": "b"}, "h": "x", "n": 3},
              {"@timestamp": t + 2000, "event": {"category": "a"}, "h": "z", "u": "alice", "n": 4},
              {"@timestamp": t + 3000, "event": {"category": "c"}, "h": "x", "n": 5},
              {"@timestamp": t + 4000, "event": {"category": "a"}, "h": "z", "u": "carol", "n": 6}]
    _arrive(incoming, "2.ndjson", second, 2)
    alerts = AlertFile(str(out))
    run_watch_spark(planned, str(incoming), alerts, spark=spark, checkpoint=str(checkpoint), once=True,
                    final=False, now=NOW)
    alerts.close()
    after = [orjson.loads(line) for line in out.read_bytes().splitlines()][len(before):]
    blocks = sorted(a["n"] for a in after if a["kibana.alert.rule.name"] == "seq" and "n" in a)
    assert blocks == [1, 3, 5]  # the sequence of x, its first event from run 1
    assert [a["u"] for a in after if a["kibana.alert.rule.name"] == "terms"] == ["carol"]  # alice is not new
    assert (seq, '["x"]') not in _state_store(spark, checkpoint)  # done: nothing held for x, its state removed
    assert not [a for a in after if a["kibana.alert.rule.name"] == "smp"]  # samples: at the end of input
    alerts = AlertFile(str(out))
    run_watch_spark(planned, str(incoming), alerts, spark=spark, checkpoint=str(checkpoint), once=True, now=NOW)
    alerts.close()  # the end of input: the samples are made per key from the state store
    last = [orjson.loads(line) for line in out.read_bytes().splitlines()][len(before) + len(after):]
    assert sorted(a["n"] for a in last if "n" in a) == [1, 5]  # the sample of x: a from run 1, c from run 2
    want = _Keep()
    paths = sorted(str(p) for p in incoming.iterdir())
    run_hunt(planned, paths, sinks=[want], now=NOW)
    got = {a["kibana.alert.uuid"]: orjson.dumps(a, default=str) for a in before + after + last}
    assert got == want.out


EXPIRY_RULES = {
    "seq": 'type = "eql"\nlanguage = "eql"\nquery = """sequence by h with maxspan=2s [a where true] [b where true] '
           '[c where true]"""\n',
    "terms": ('type = "new_terms"\nlanguage = "kuery"\nquery = "event.category:a"\n'
              '[rule.new_terms]\nfield = "new_terms_fields"\nvalue = ["u"]\n'
              '[[rule.new_terms.history_window_start]]\nfield = "history_window_start"\nvalue = "now-2s"\n'),
}


def test_idle_keys_state_is_dropped_from_sparks_state_store_when_the_rules_window_passes(spark, tmp_path):
    """Keys that receive no more events: their partial sequences and first-seen terms leave Spark's state store
    (read back with Spark's state data source) at the batch where the local correlators drop them, i.e. once
    their own rule's clock has passed maxspan or the history window; a key left empty is removed. Run 2 moves
    the sequence rule's clock only (an event the new_terms rule does not take): the terms stay, as locally.
    The alerts are those of `hunt`."""
    from trailhound.pipeline.watch import AlertFile
    from trailhound.spark.keyed import keyed_spec
    from trailhound.spark.stream import _Batches, run_watch_spark

    folder = tmp_path / "rules"
    folder.mkdir()
    for name, body in EXPIRY_RULES.items():
        (folder / f"{name}.toml").write_text(HEAD.format(name=name) + body)
    planned = plan(load_rules([folder]))
    assert all(c.status == "ok" for c in planned.checks)
    incoming, checkpoint, out = tmp_path / "incoming", tmp_path / "checkpoint", tmp_path / "alerts.ndjson"
    incoming.mkdir()
    t = 1_767_225_600_000
    runs = [[{"@timestamp": t, "event": {"category": "a"}, "h": "x", "u": "alice"},
             {"@timestamp": t + 10, "event": {"category": "a"}, "h": "y", "u": "bob"}],
            [{"@timestamp": t + 10_000, "event": {"category": "c"}, "h": "w"}],
            [{"@timestamp": t + 20_000, "event": {"category": "a"}, "h": "z", "u": "carol"}]]
    reference = _Batches(planned, None, [], str(tmp_path / "reference"), None, None, None, NOW)
    held = []
    for k, docs in enumerate(runs):
        _arrive(incoming, f"{k}.ndjson", docs, k)
        alerts = AlertFile(str(out))
        pipe = run_watch_spark(planned, str(incoming), alerts, spark=spark, checkpoint=str(checkpoint), once=True,
                               final=False, now=NOW)
        alerts.close()
        keyed = {kind: i for i, kind in _keyed_rules(pipe).items()}
        store = _state_store(spark, checkpoint)
        held.append(sorted((kind, key) for kind, i in keyed.items() for rule, key in store if rule == i))
        # what the store holds is what the local correlators hold after the same batch
        reference(_Batch([incoming / f"{k}.ndjson"]), k)
        states = {(rule, key): (orjson.dumps(v).decode(), None) for (rule, key), v in store.items()}
        specs = {i: spec for i, live in enumerate(reference.pipe.engine.rules) if (spec := keyed_spec(i, live))}
        assert set(specs) == set(keyed.values())
        assert _held_in_store(specs, states) == _held(reference.pipe.engine.rules)
    assert held == [[("new_terms", '["alice"]'), ("new_terms", '["bob"]'), ("sequence", '["x"]'),
                     ("sequence", '["y"]')],
                    [("new_terms", '["alice"]'), ("new_terms", '["bob"]')],  # the sequences' maxspan has passed
                    [("new_terms", '["carol"]'), ("sequence", '["z"]')]]  # the terms' window has passed too
    want = _Keep()
    run_hunt(planned, sorted(str(p) for p in incoming.iterdir()), sinks=[want], now=NOW)
    got = {(a := orjson.loads(line))["kibana.alert.uuid"]: orjson.dumps(a, default=str)
           for line in out.read_bytes().splitlines()}
    assert got == want.out and len(got) == 3  # alice, bob, carol: first seen


class _CrashOnce:
    """A sink that fails the first time it is given an alert of `rule`: the batch fails after the keyed step."""

    def __init__(self, rule: str) -> None:
        self.rule, self.crashed = rule, False

    def write(self, alerts) -> None:
        if not self.crashed and any(a["kibana.alert.rule.name"] == self.rule for a in alerts):
            self.crashed = True
            raise RuntimeError("crash")

    def close(self) -> None:
        pass


@pytest.mark.skipif(not LAB.is_dir(), reason="no recorded lab capture")
def test_a_batch_that_fails_after_the_keyed_step_is_run_again_with_no_alert_lost_or_repeated(spark, tmp_path):
    """The batch that brings the brute force's hits (a keyed sequence) fails as its alerts are written, after
    Spark's keyed state took the batch: the stream stops with the error. Restarted from the same checkpoint,
    Spark runs that batch again; the driver goes back to its state before the batch, cuts the alert file back,
    and builds the keyed rules' alerts from the hits the keyed step kept for that batch (the state store has
    moved on: feeding it again would lose them). The alerts are those of `hunt`, each once."""
    from trailhound.pack import DIR as PACK
    from trailhound.pipeline.watch import AlertFile
    from trailhound.spark.stream import SparkWatchError, run_watch_spark

    planned = plan(load_rules([PACK]))
    from trailhound.sources import load_events

    def start(name: str):
        return min(load_events([str(p)], ["@timestamp"]).frame["@timestamp"].min() for p in (LAB / name).glob("*.log"))

    names = sorted(["brute_force", "authorized_keys", "ssh_password"], key=start)  # they arrive in time order
    incoming, checkpoint, out = tmp_path / "incoming", tmp_path / "checkpoint", tmp_path / "alerts.ndjson"
    incoming.mkdir()
    paths = []
    for k, name in enumerate(names):
        folder = incoming / f"{k:02d}-{name}"
        folder.mkdir()
        for log in ("audit.log", "auth.log"):
            if (LAB / name / log).exists():
                shutil.copy(LAB / name / log, folder / log)
                os.utime(folder / log, (1_700_000_000 + k, 1_700_000_000 + k))
                paths.append(str(folder / log))
    want = _Keep()
    run_hunt(planned, paths, sinks=[want], now=NOW)
    crash = _CrashOnce("SSH Brute Force From a Single Source")
    alerts = AlertFile(str(out))
    with pytest.raises(SparkWatchError, match="the stream stopped"):
        run_watch_spark(planned, str(incoming), alerts, spark=spark, checkpoint=str(checkpoint), once=True,
                        final=False, now=NOW, files_per_batch=2, sinks=[crash])
    alerts.close()
    assert crash.crashed and list((checkpoint / "keyed" / "hits").glob("batch-*.json"))
    written = out.read_bytes().count(b"\n")
    alerts = AlertFile(str(out))
    run_watch_spark(planned, str(incoming), alerts, spark=spark, checkpoint=str(checkpoint), once=True, now=NOW,
                    files_per_batch=2)
    alerts.close()
    got: dict[str, bytes] = {}
    for line in out.read_bytes().splitlines():
        doc = orjson.loads(line)
        assert doc["kibana.alert.uuid"] not in got, "an alert written twice"
        got[doc["kibana.alert.uuid"]] = orjson.dumps(doc, default=str)
    assert got == want.out
    assert written > 0 and any(orjson.loads(d)["kibana.alert.rule.name"] == crash.rule for d in got.values())


class _Batch:
    """What foreachBatch hands over, as far as the stream reads it: the batch's files."""

    def __init__(self, files: list[Path]) -> None:
        from collections import namedtuple

        row = namedtuple("row", "path modificationTime")
        self.rows = [row(f"file://{f}", k) for k, f in enumerate(files)]

    def select(self, *_):
        return self

    def collect(self):
        return self.rows


@pytest.mark.skipif(not LAB.is_dir(), reason="no recorded lab capture")
def test_a_batch_run_again_after_a_crash_starts_from_the_state_before_it(tmp_path):
    """Spark runs the last uncommitted batch again after a crash: the pipeline goes back to the state saved
    before that batch and the alert file is cut back to its size then, so no alert is lost or written twice;
    a bad line is counted with its file and line, never a failed batch. (No Spark needed: the batch function.)"""
    from trailhound.pack import DIR as PACK
    from trailhound.pipeline.watch import AlertFile
    from trailhound.spark.stream import _Batches

    planned = plan(load_rules([PACK]))
    scenarios = [LAB / "brute_force", LAB / "authorized_keys"]
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": "process"}}\n{broken\n')
    out, checkpoint = tmp_path / "alerts.ndjson", tmp_path / "ckpt"
    skipped: list[tuple[str, int, str]] = []

    def run(batches: list[tuple[int, list[Path]]], final: bool) -> bytes:
        alerts = AlertFile(str(out))
        handler = _Batches(planned, alerts, [], str(checkpoint), None, None, None, NOW,
                           lambda f, n, r: skipped.append((f, n, r)))
        for batch_id, files in batches:
            handler(_Batch(files), batch_id)
        if final:
            handler.pipe.finish()
        alerts.close()
        return out.read_bytes()

    first = [(0, [scenarios[0] / "audit.log", scenarios[0] / "auth.log"]),
             (1, [scenarios[1] / "audit.log", scenarios[1] / "auth.log", bad])]
    clean = run(first, final=True)
    assert clean.count(b"\n") > 5
    out.unlink()
    import shutil

    shutil.rmtree(checkpoint)
    skipped.clear()
    run(first, final=False)  # batch 1 ran, and Spark did not get to commit it: the crash
    skipped.clear()
    again = run([(1, first[1][1])], final=True)  # Spark runs batch 1 again
    assert again == clean
    assert [(f, n) for f, n, _ in skipped] == [(str(bad), 2)] and skipped[0][2].startswith("not JSON")


def test_watch_engine_spark_wants_one_directory_and_a_checkpoint_location(tmp_path):
    from typer.testing import CliRunner

    from trailhound.cli.main import app

    log = tmp_path / "a.log"
    log.write_text("")
    for args in ([str(log), "--state", str(tmp_path / "s")], [str(tmp_path)], [str(tmp_path), str(tmp_path)]):
        r = CliRunner().invoke(app, ["watch", *args, "--out", str(tmp_path / "o.ndjson"), "--engine", "spark"])
        assert r.exit_code == 2 and "one directory" in r.output, r.output
    r = CliRunner().invoke(app, ["watch", str(log), "--out", str(tmp_path / "o.ndjson"), "--master", "local[1]"])
    assert r.exit_code == 2 and "--master goes with --engine spark" in r.output


GEN_RULES = {
    "seq_maxspan": 'sequence by h with maxspan=3s [a where true] [b where true] [c where true]',
    "seq_missing": 'sequence by h with maxspan=3s [a where true] ![b where true] [c where true]',
    "seq_trailing_missing": 'sequence by h with maxspan=3s [a where true] [b where true] ![c where true]',
    "seq_until": 'sequence by h [a where true] [b where true] until [c where true]',
    "seq_runs": 'sequence by h with maxspan=2s [a where true] with runs=2 [b where true]',
    "seq_two_keys": 'sequence by h, u with maxspan=5s [a where true] [c where n > 1]',
    "seq_stage_keys": 'sequence with maxspan=5s [a where true] by u [b where true] by v',
    "seq_capped": 'sequence by h with maxspan=5s [a where true] [b where true]',  # max_signals: order matters
    "sample": 'sample by h [a where true] [b where true]',
    "sample_two_keys": 'sample by h, u [a where true] [c where true] [b where true]',
}
GEN_TERMS = ('type = "new_terms"\nlanguage = "kuery"\nquery = "event.category:a or event.category:c"\n'
             '[rule.new_terms]\nfield = "new_terms_fields"\nvalue = ["h", "u"]\n'
             '[[rule.new_terms.history_window_start]]\nfield = "history_window_start"\nvalue = "now-4s"\n')


def _gen_rules(folder: Path):
    folder.mkdir()
    for name, query in GEN_RULES.items():
        body = f'type = "eql"\nlanguage = "eql"\nquery = """{query}"""\n'
        if name == "seq_capped":
            body += 'max_signals = 2\ninterval = "10s"\n'
        (folder / f"{name}.toml").write_text(HEAD.format(name=name) + body)
    (folder / "terms.toml").write_text(HEAD.format(name="terms") + GEN_TERMS)
    planned = plan(load_rules([folder]))
    assert all(c.status == "ok" for c in planned.checks), [(c.rule.name, c.reason) for c in planned.checks]
    return planned


def _gen_batches(folder: Path, rng, batches: int) -> list[list[Path]]:
    """Files of ECS NDJSON, a few per batch, each batch after the one before in time; join keys and terms are
    sometimes arrays (the correlators explode them), sometimes missing."""
    t = 1_700_000_000_000
    out = []
    for b in range(batches):
        files, last = [], t
        for host in ("x", "y")[:rng.randint(1, 2)]:
            lines, ts = [], t
            for _ in range(rng.randint(0, 25)):
                ts += rng.choice([0, 250, 500, 1000, 2500])
                h = rng.choice([host, host + "2", [host, host + "2"], [host], []])
                doc = {"@timestamp": ts, "event": {"category": rng.choice("abc")}, "h": h,
                       "u": rng.choice(["u1", "u2", ["u1", "u3"], None]), "v": rng.choice(["u1", "u2"]),
                       "n": rng.randint(0, 3)}
                lines.append(orjson.dumps({k: v for k, v in doc.items() if v is not None}))
            path = folder / f"{b:03d}-{host}.ndjson"
            path.write_bytes(b"".join(line + b"\n" for line in lines))
            files.append(path)
            last = max(last, ts)
        t = last + rng.choice([1, 1000, 4000])
        out.append(files)
    return out


def _local_keyed_state(stores: dict):
    """In place of the Spark query of `KeyedStep._advance`, the same `keyed.run_key` per (rule, key) with the
    state in a dict (`stores[checkpoint]`) and Spark's event-time timeouts as applyInPandasWithState runs them: a
    micro-batch per units file (its keys with rows, then the keys whose timeout is before the watermark of the
    files before), then, the watermark moved, a batch of the keys now timed out alone. The keyed step's split,
    merge, exactly-once files and state expiry, fast, over many generated inputs (the real state store is tested
    above)."""
    import polars as pl

    from trailhound.spark.keyed import CLOCK, NO_CLOCK, run_key, timeout_ms

    def local(self) -> None:
        store = stores.setdefault(self.root, {"taken": set(), "state": {}, "watermark": 0})
        state = store["state"]  # (rule, key) → (saved state, timeout ms or None)

        def call(rule: int, key: str, units: list) -> list[tuple[int, str]]:
            saved = state.get((rule, key), (None, None))[0]
            kept, found, due = run_key(self.specs[rule], orjson.loads(key), saved, units, self.clocks.get(rule))
            if kept is None:
                state.pop((rule, key), None)
            else:
                state[(rule, key)] = (kept, None if due is None else timeout_ms(due, store["watermark"]))
            return found

        def timed_out(done: set) -> list[tuple[int, str]]:
            return [k for k, (_, t) in sorted(state.items()) if k not in done and t is not None
                    and t < store["watermark"]]

        for f in sorted(Path(self.units).glob("batch-*.parquet"), key=lambda p: int(p.stem[6:])):
            if f.name in store["taken"]:
                continue
            groups: dict[tuple[int, str], list] = {}
            clock = 0
            for r in pl.read_parquet(f).iter_rows(named=True):
                clock = max(clock, r["clock"] // 1000)
                if r["rule"] != CLOCK:
                    groups.setdefault((r["rule"], r["key"]), []).append(
                        (r["batch"], r["payload"], r["types"], r["es"], None if r["wm"] == NO_CLOCK else r["wm"]))
            per_batch: dict[int, list[dict]] = {}
            for (rule, key), units in groups.items():
                for batch, hits in call(rule, key, units):
                    per_batch.setdefault(batch, []).append({"rule": rule, "key": key, "hits": hits})
            for rule, key in timed_out(set(groups)):
                assert call(rule, key, []) == []
            for batch, items in per_batch.items():
                (Path(self.hits) / f"batch-{batch}.json").write_bytes(orjson.dumps(items))
            if clock > store["watermark"]:  # Spark's batch without data: the keys the new watermark times out
                store["watermark"] = clock
                for rule, key in timed_out(set()):
                    assert call(rule, key, []) == []
            store["taken"].add(f.name)

    def finish(self, specs: dict, payloads: dict) -> list[tuple[int, str]]:
        from trailhound.spark.keyed import finish_key

        out = []
        for (rule, key), (state, _) in stores.get(self.root, {"state": {}})["state"].items():
            if rule in specs:
                hits = finish_key(specs[rule], orjson.loads(key), state, *payloads[rule])
                if hits is not None:
                    out.append((rule, hits))
        return out

    return local, finish


def _held(rules) -> dict:
    """What the time-bounded correlators of `rules` (sequences and new_terms) hold: first-seen terms with their
    time, partial sequences per key and stage (their rows and times), missing-stage times per key."""
    from trailhound.engine.correlate import NewTermsRun, SequenceRun

    out: dict = {}
    for i, live in enumerate(rules):
        run = getattr(live, "run", None)
        if type(run) is NewTermsRun:
            out.update({(i, "term", t): s for t, s in run.state.last_seen.items()})
        elif type(run) is SequenceRun:
            for key, slots in run.state.pending.items():
                out.update({(i, "partial", key, k): (p.start_ts, p.rows, p.times) for k, p in enumerate(slots) if p})
            for stage, per_key in run.absent.items():
                out.update({(i, "absent", stage, key): tuple(times) for key, times in per_key.items() if times})
    return out


def _held_in_store(specs: dict, state: dict) -> dict:
    """`_held` of the keyed rules' states in the (emulated) state store: their keys' correlators together."""
    from types import SimpleNamespace

    runs: list = [None] * (max(specs) + 1)
    out: dict = {}
    for (rule, _), (saved, _) in state.items():
        if specs[rule].kind != "sample":
            runs[rule] = SimpleNamespace(run=specs[rule].restore(orjson.loads(saved)["run"]))
            part = _held(runs)
            assert not set(part) & set(out)
            out.update(part)
            runs[rule] = None
    return out


@pytest.mark.parametrize("seed", range(12))
def test_keyed_split_and_merge_equal_one_correlator_on_generated_events(seed, tmp_path, monkeypatch):
    _generated(seed, tmp_path, monkeypatch)


def test_generated_events_make_alerts_of_every_keyed_rule(tmp_path, monkeypatch):
    """So that the comparison above bites: over a longer input every keyed rule alerts."""
    names = _generated(99, tmp_path, monkeypatch, batches=14)
    assert {"seq_maxspan", "seq_missing", "seq_until", "seq_runs", "seq_two_keys", "seq_capped", "terms",
            "sample", "sample_two_keys"} <= names


def _generated(seed: int, tmp_path: Path, monkeypatch, batches: int | None = None) -> set[str]:
    """Generated events arriving batch after batch, with restarts and batches run again: sequences (maxspan,
    missing steps, until, runs, two keys, array keys) and first-seen terms (array terms) split by key, each key
    through its own correlator, give the alerts of `hunt` over the same files."""
    import random

    from trailhound.pipeline.watch import AlertFile
    from trailhound.spark import stream

    stores: dict = {}
    local, finish = _local_keyed_state(stores)
    monkeypatch.setattr(stream.KeyedStep, "_advance", local)
    monkeypatch.setattr(stream.KeyedStep, "_finish", finish)
    rng = random.Random(seed)
    planned = _gen_rules(tmp_path / "rules")
    folder = tmp_path / "events"
    folder.mkdir()
    batches = _gen_batches(folder, rng, batches or rng.randint(3, 10))
    want = _Keep()
    run_hunt(planned, [str(f) for fs in batches for f in fs], sinks=[want], now=NOW)
    # the local engine's correlators over the same batches (watch's, no keyed step): their state after each batch
    reference = stream._Batches(planned, None, [], str(tmp_path / "reference"), None, None, None, NOW)
    held_locally = []
    for b, files in enumerate(batches):
        reference(_Batch(files), b)
        held_locally.append(_held(reference.pipe.engine.rules))
    out, checkpoint = tmp_path / "alerts.ndjson", tmp_path / "ckpt"
    alerts = AlertFile(str(out))
    handler = stream._Batches(planned, alerts, [], str(checkpoint), None, None, None, NOW, spark=object())
    b = 0
    while b < len(batches):
        handler(_Batch(batches[b]), b)
        # the keys' states in the store hold, together, what the local correlators hold after the batch: an entry
        # expired there is gone here at the same batch, whether or not its key had rows
        held = _held_in_store(handler.keyed.specs, stores[handler.keyed.root]["state"])
        assert held == {k: v for k, v in held_locally[b].items() if k[0] in handler.keyed.specs}
        if rng.random() < 0.3:  # a restart; sometimes Spark then runs the last batch again (it did not commit)
            alerts.close()
            alerts = AlertFile(str(out))
            handler = stream._Batches(planned, alerts, [], str(checkpoint), None, None, None, NOW, spark=object())
            if rng.random() < 0.5:
                continue  # b again
        b += 1
    handler.pipe.finish()
    handler.keyed_step(handler.batch + 1)
    handler.keyed.finish(handler.pipe, NOW)
    alerts.close()
    assert handler.pipe.stats.late == 0
    keyed = {handler.pipe.engine.rules[i].check.rule.name for i in handler.keyed.specs}
    assert keyed == {"seq_maxspan", "seq_missing", "seq_until", "seq_runs", "seq_two_keys", "seq_capped", "terms",
                     "sample", "sample_two_keys"}
    got: dict[str, bytes] = {}
    for line in out.read_bytes().splitlines():
        doc = orjson.loads(line)
        got[doc["kibana.alert.uuid"]] = orjson.dumps(doc, default=str)  # the last line of an id is its state
    assert sorted(set(want.out) - set(got)) == [], "alerts hunt writes and the stream does not"
    assert sorted(set(got) - set(want.out)) == [], "alerts the stream writes and hunt does not"
    for uid, doc in want.out.items():
        assert got[uid] == doc, orjson.loads(doc)["kibana.alert.rule.name"]
    return {orjson.loads(d)["kibana.alert.rule.name"] for d in got.values()}

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

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

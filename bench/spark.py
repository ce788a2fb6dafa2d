"""`hunt --engine spark` against the local engine, and local[1] against local[2]: time per stage.

    python bench/spark.py [--data /work/main/bench/data/events_1m.ndjson] [--events 200000] [--files 4]
                          [--rules DIR] [--masters local[1],local[2]] [--parquet]

The first `--events` lines of `--data` are split into `--files` NDJSON files (or, with `--parquet`, a
Parquet data set of them) under bench/data/spark/. Each configuration runs in a fresh process: the
local engine (`pipeline.run_hunt`), then Spark with each master. Reported per run: stage 1 (load and
filter, one task per file), stage 2 (correlate and build alerts, one group per rule), the driver's
part (report, alerts in order), the session start, and whether the alerts equal the local engine's.
Figures: bench/RESULTS.md, "Parquet and Spark".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from run import HUNT_RULES  # noqa: E402 - the Linux rules of the main bench

MAIN_DATA = "/work/main/bench/data/events_1m.ndjson"
NOW = "2026-12-01T00:00:00.000Z"


def prepare(data: str, events: int, files: int, parquet: bool) -> list[str]:
    out = os.path.join(HERE, "data", "spark", f"{events}x{files}")
    os.makedirs(out, exist_ok=True)
    paths = [os.path.join(out, f"part{k}.ndjson") for k in range(files)]
    if not all(os.path.exists(p) for p in paths):
        per = -(-events // files)
        with open(data, "rb") as src:
            for p in paths:
                with open(p, "wb") as dst:
                    for _ in range(per):
                        line = src.readline()
                        if not line:
                            break
                        dst.write(line)
    if not parquet:
        return paths
    store = out + ".parquet"
    if not os.path.isdir(store):
        subprocess.run([sys.executable, "-m", "trailhound.cli.main", "normalize", *paths, "--to", "parquet",
                        "-o", store], check=True)
    return [store]


def child(engine: str, rules: str, paths: list[str]) -> dict:
    from trailhound.pipeline import plan, run_hunt
    from trailhound.rules.loader import load_rules

    planned = plan(load_rules([rules]))
    started = time.perf_counter()
    spark_start = 0.0
    if engine == "local":
        report = run_hunt(planned, paths, now=NOW, keep_alerts=True)
    else:
        from trailhound.spark.driver import run_hunt_spark, session

        spark = session(engine)
        spark.sparkContext.setLogLevel("ERROR")
        spark_start = time.perf_counter() - started
        report = run_hunt_spark(planned, paths, spark=spark, now=NOW, keep_alerts=True)
    seconds = time.perf_counter() - started - spark_start
    alerts = [a for r in report.rules for a in r.alert_documents or ()]
    digest = hashlib.sha1(b"".join(json.dumps(a, sort_keys=True).encode() for a in alerts)).hexdigest()
    return {"engine": engine, "seconds": seconds, "session": spark_start, "timings": report.timings,
            "events": report.load.events, "rules": len(report.with_status("ran")), "alerts": len(alerts),
            "digest": digest}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default=MAIN_DATA)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--rules", default=HUNT_RULES)
    ap.add_argument("--masters", default="local[1],local[2]")
    ap.add_argument("--parquet", action="store_true")
    ap.add_argument("--_child")
    ap.add_argument("--_paths")
    a = ap.parse_args()
    if a._child:
        print("@@" + json.dumps(child(a._child, a.rules, json.loads(a._paths))))
        return
    paths = prepare(a.data, a.events, a.files, a.parquet)
    want = None
    for engine in ["local", *a.masters.split(",")]:
        p = subprocess.run([sys.executable, __file__, "--_child", engine, "--rules", a.rules,
                            "--_paths", json.dumps(paths)], capture_output=True, text=True)
        lines = [x for x in p.stdout.splitlines() if x.startswith("@@")]
        if p.returncode or not lines:
            raise SystemExit(f"{engine} failed:\n{p.stderr[-3000:]}")
        r = json.loads(lines[-1][2:])
        want = want or r["digest"]
        t = r["timings"]
        stages = (f"load {t['load']:.2f} s, evaluate {t['evaluate']:.2f} s, alerts {t['alerts']:.2f} s"
                  if engine == "local" else
                  f"stage 1 (load+filter) {t['load']:.2f} s, stage 2 (correlate+alerts) {t['evaluate']:.2f} s, "
                  f"driver {t['alerts']:.2f} s; session start {r['session']:.1f} s")
        print(f"{engine:9} {r['events']} events in {len(paths)} input(s), {r['rules']} rules: {r['seconds']:.2f} s "
              f"({r['events'] / r['seconds'] / 1e3:.0f}k events/s); {stages}; {r['alerts']} alerts, "
              f"{'identical' if r['digest'] == want else 'DIFFERENT'}", flush=True)


if __name__ == "__main__":
    main()

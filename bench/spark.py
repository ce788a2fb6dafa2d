"""`hunt --engine spark` against the local engine, and local[1] against local[2]: time per stage.

    python bench/spark.py [--data /work/main/bench/data/events_1m.ndjson] [--events 200000] [--files 4]
                          [--rules DIR] [--masters local[1],local[2]] [--parquet] [--out-format parquet] [--warm]
                          [--uris]

The issue's scaling run (5M generated events; on a quiet machine):

    python bench/generate.py --events 5000000 --out bench/data/events_5m.ndjson
    python bench/spark.py --data bench/data/events_5m.ndjson --events 5000000 --files 20 --parquet

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


def _cpu_of_tree(root: int) -> float:
    """CPU seconds (user + system) of process `root` and its live descendants (the JVM and its Python workers),
    read from /proc; 0 where /proc is not there."""
    tick = os.sysconf("SC_CLK_TCK")
    parents, cpu = {}, {}
    for name in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(name)] = int(fields[1])
        cpu[int(name)] = (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / tick
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += cpu.get(pid, 0.0)
        stack.extend(p for p, parent in parents.items() if parent == pid)
    return total


def child(engine: str, rules: str, paths: list[str], out_format: str, warm: bool = False) -> dict:
    import resource
    import tempfile

    from trailhound.pipeline import plan, run_hunt
    from trailhound.rules.loader import load_rules
    from trailhound.sinks import NdjsonSink
    from trailhound.sinks.parquet import ParquetSink

    planned = plan(load_rules([rules]))
    started = time.perf_counter()
    spark_start = 0.0
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    with tempfile.TemporaryDirectory() as tmp:
        sink = (NdjsonSink(os.path.join(tmp, "alerts.ndjson")) if out_format == "ndjson"
                else ParquetSink(os.path.join(tmp, "alerts")))
        if engine == "local":
            report = run_hunt(planned, paths, now=NOW, keep_alerts=True, sinks=[sink])
        else:
            from trailhound.spark.driver import run_hunt_spark, session

            spark = session(engine)
            spark.sparkContext.setLogLevel("ERROR")
            spark_start = time.perf_counter() - started
            if warm:  # a first hunt in the session, not timed: the JVM's and the Python workers' warm-up
                run_hunt_spark(planned, paths, spark=spark, now=NOW)
                spark_start = time.perf_counter() - started
            report = run_hunt_spark(planned, paths, spark=spark, now=NOW, keep_alerts=True, sinks=[sink])
        w0 = time.perf_counter()
        sink.close()
        report.timings["alerts"] = report.timings.get("alerts", 0.0) + time.perf_counter() - w0
    seconds = time.perf_counter() - started - spark_start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    jvm = 0.0
    if engine != "local":
        proc = getattr(getattr(spark.sparkContext, "_gateway", None), "proc", None)
        jvm = _cpu_of_tree(proc.pid) if proc is not None else 0.0  # the session's CPU, its start included
    alerts = [a for r in report.rules for a in r.alert_documents or ()]
    digest = hashlib.sha1(b"".join(json.dumps(a, sort_keys=True).encode() for a in alerts)).hexdigest()
    return {"engine": engine, "seconds": seconds, "session": spark_start, "timings": report.timings,
            "events": report.load.events, "rules": len(report.with_status("ran")), "alerts": len(alerts),
            "digest": digest, "cpu": cpu, "jvm_cpu": jvm}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default=MAIN_DATA)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--rules", default=HUNT_RULES)
    ap.add_argument("--masters", default="local[1],local[2]")
    ap.add_argument("--parquet", action="store_true", help="read a Parquet store of the events instead of NDJSON")
    ap.add_argument("--out-format", default="ndjson", choices=("ndjson", "parquet"), help="how the alerts are written")
    ap.add_argument("--warm", action="store_true", help="time a second hunt in each Spark session (the first one "
                    "pays the session's warm-up: JIT, Python workers)")
    ap.add_argument("--uris", action="store_true", help="give Spark the inputs as file: URIs, read through Spark's "
                    "filesystems (binaryFile) instead of opened by path in the tasks")
    ap.add_argument("--_child")
    ap.add_argument("--_paths")
    a = ap.parse_args()
    if a._child:
        print("@@" + json.dumps(child(a._child, a.rules, json.loads(a._paths), a.out_format, a.warm)))
        return
    paths = prepare(a.data, a.events, a.files, a.parquet)
    want = None
    for engine in ["local", *a.masters.split(",")]:
        given = ["file://" + os.path.abspath(x) for x in paths] if a.uris and engine != "local" else paths
        p = subprocess.run([sys.executable, __file__, "--_child", engine, "--rules", a.rules, "--out-format",
                            a.out_format, "--_paths", json.dumps(given), *(["--warm"] if a.warm else [])],
                           capture_output=True, text=True)
        lines = [x for x in p.stdout.splitlines() if x.startswith("@@")]
        if p.returncode or not lines:
            raise SystemExit(f"{engine} failed:\n{p.stderr[-3000:]}")
        r = json.loads(lines[-1][2:])
        want = want or r["digest"]
        t = r["timings"]
        stages = (f"load {t['load']:.2f} s, evaluate {t['evaluate']:.2f} s, alerts + write {t['alerts']:.2f} s"
                  if engine == "local" else
                  f"stage 1 {t['load']:.2f} s (first task after {t.get('stage1.first_task', 0):.1f} s; in the "
                  f"tasks: load {t.get('stage1.load', 0):.2f} s, filter {t.get('stage1.filter', 0):.2f} s, encode "
                  f"{t.get('stage1.encode', 0):.2f} s), stage 2 {t['evaluate']:.2f} s (correlate "
                  f"{t.get('stage2.correlate', 0):.2f} s in the tasks), driver alerts + write {t['alerts']:.2f} s; "
                  f"session start {r['session']:.1f} s")
        cpu = f"CPU {r['cpu']:.1f} s" + (f" + JVM and workers {r['jvm_cpu']:.1f} s" if r["jvm_cpu"] else "")
        print(f"{engine:9} {r['events']} events in {len(paths)} input(s), {r['rules']} rules: {r['seconds']:.2f} s "
              f"({r['events'] / r['seconds'] / 1e3:.0f}k events/s; {cpu}); {stages}; {r['alerts']} alerts, "
              f"{'identical' if r['digest'] == want else 'DIFFERENT'}", flush=True)


if __name__ == "__main__":
    main()

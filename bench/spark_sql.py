#!/usr/bin/env python3
"""Stage 1 of `hunt --engine spark` two ways, on the same Parquet store and rules:

* `local`: today's stage 1 (spark/driver.py `_stage1`): one task per file, the local loader and our Polars
  filters inside the task, candidates (Arrow IPC per rule) and their documents cached in Spark;
* `sql`: spark/sql_stage.py: `spark.read.parquet`, every rule's filters compiled to Spark SQL
  (compile/sql.py's Spark dialect) as one boolean column per rule in one pass, the candidate rows
  (the fields the rules read, `__source`, file and row, the rules they match) cached in Spark.

Both are materialized the same way (cached, counted). The candidates are compared rule by rule (file and
row of each), so the figures are for the same answer. CPU is the user+sys time of this process and all
its descendants (the JVM, Python workers), read from /proc before and after each run.

    .venv/bin/python bench/spark_sql.py [--store DIR] [--events 200000] [--masters local[1],local[2]] [--repeat 2]

`--events N` takes the first N events of the store (written once to bench/data/); 0 takes all of it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
LINUX = Path(os.environ.get("TRAILHOUND_SHARED", "/work/shared")) / "corpora" / "detection-rules" / "rules" / "linux"
STORE = Path("/work/wt/data/events_1m.parquet")


def tree_cpu() -> float:
    """User+sys seconds of this process and its live descendants (/proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, float] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            fields = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ppid = int(fields[1])
        children.setdefault(ppid, []).append(int(d))
        stats[int(d)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [os.getpid()]
    while todo:
        p = todo.pop()
        total += stats.get(p, 0.0)
        todo.extend(children.get(p, []))
    return total


def sliced(store: Path, events: int, per_file: int = 25_000) -> Path:
    """The first `events` events of the store, as a store of their own (bench/data/, written once)."""
    if not events:
        return store
    import polars as pl

    out = REPO / "bench" / "data" / f"spark_sql_{events}_{per_file}"
    if (out / "done").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    left, k = events, 0
    import pyarrow.parquet as pq

    for part in sorted(store.glob("*.parquet")):
        if left <= 0:
            break
        pf = pq.ParquetFile(part)
        frame = pl.read_parquet(part, n_rows=left)
        left -= frame.height
        for start in range(0, frame.height, per_file):  # several files: stage 1 runs one task per file
            table = frame.slice(start, per_file).to_arrow().replace_schema_metadata(pf.schema_arrow.metadata)
            pq.write_table(table, out / f"part-{k:05d}.parquet", compression="zstd", row_group_size=32768)
            k += 1
    (out / "done").write_text("")
    return out


def run_local(spark, files, specs):
    from trailhound.spark import driver
    from trailhound.spark.tasks import FILE_COLUMN, ROW_COLUMN, from_ipc

    scans, stage1 = driver._stage1(spark, files, specs, None, None)
    stage1.count()
    by_rule: dict[int, set] = {}
    names = {s.file_no: s.name for s in scans}
    for row in stage1.filter("kind = 'cand'").select("rule", "payload").collect():
        part = from_ipc(row.payload)
        by_rule.setdefault(row.rule, set()).update(
            (os.path.abspath(names[f]), r) for f, r in zip(part[FILE_COLUMN].to_list(), part[ROW_COLUMN].to_list()))
    stage1.unpersist()
    return by_rule


def run_sql(spark, store: Path, specs, per_pass: int):
    from urllib.parse import unquote, urlparse

    from trailhound.spark import sql_stage

    df = spark.read.parquet(str(store))
    compiled = sql_stage.compile_specs(specs, sql_stage.schema_of(df.schema))
    sql_stage.register_spark_udfs(spark, compiled.udfs)
    keep = sorted({f for s in specs if s.index in compiled.wheres for f in s.fields if f in df.columns}
                  | {"__source"})
    by_rule: dict[int, set] = {}
    items = sorted(compiled.wheres.items())
    with sql_stage.ansi_off(spark), sql_stage.interpreted(spark):
        for k in range(0, len(items), per_pass):  # one pass per `per_pass` rules
            cand = sql_stage.candidates(df, dict(items[k:k + per_pass]), keep).cache()
            cand.count()
            for row in cand.select("__path", "__index", "__rules").collect():
                path = os.path.abspath(unquote(urlparse(row["__path"]).path))
                for r in row["__rules"]:
                    by_rule.setdefault(r, set()).add((path, row["__index"]))
            cand.unpersist()
    return by_rule, compiled


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, default=STORE)
    ap.add_argument("--events", type=int, default=200_000, help="first N events of the store (0: all)")
    ap.add_argument("--rules", type=Path, default=LINUX)
    ap.add_argument("--masters", default="local[1],local[2]")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--per-pass", type=int, default=40,
                    help="rules per Spark SQL pass (all 355 in one pass: the driver's 1 GB heap runs out in analysis)")
    ap.add_argument("--only", choices=("local", "sql"), help="run one of the two")
    args = ap.parse_args(argv)

    from trailhound.pipeline import plan
    from trailhound.rules.loader import load_rules
    from trailhound.spark.driver import session
    from trailhound.spark.tasks import rule_specs

    store = sliced(args.store, args.events)
    files = sorted(str(p) for p in store.glob("*.parquet"))
    planned = plan(load_rules([args.rules]))
    specs = rule_specs(planned.checks, planned.rules.exceptions)
    print(f"store {store} ({len(files)} files), {len(specs)} runnable rules; load average {os.getloadavg()}")
    for master in args.masters.split(","):
        spark = session(master)
        spark.sparkContext.setLogLevel("ERROR")
        try:
            for k in range(args.repeat):
                for how in [args.only] if args.only else ("local", "sql"):
                    load0 = os.getloadavg()[0]
                    c0, t0 = tree_cpu(), time.perf_counter()
                    if how == "local":
                        local = run_local(spark, files, specs)
                    else:
                        sql, compiled = run_sql(spark, store, specs, args.per_pass)
                    wall, cpu = time.perf_counter() - t0, tree_cpu() - c0
                    print(f"{master} run {k + 1} {how:5s}: wall {wall:6.1f} s  cpu {cpu:6.1f} s  "
                          f"load {load0:.1f}->{os.getloadavg()[0]:.1f}", flush=True)
            if args.only:
                continue
            rules = sorted(compiled.wheres)
            same = sum(local.get(i, set()) == sql.get(i, set()) for i in rules)
            differ = [specs[i].check.rule.name for i in rules if local.get(i, set()) != sql.get(i, set())]
            print(f"{master}: {len(rules)} rules as SQL ({compiled.filters} filters, {compiled.filters_with_udfs} "
                  f"call Python UDFs), {len(compiled.refused)} refused; candidates equal for {same} rules, "
                  f"{sum(len(v) for v in sql.values())} candidate (rule, row) pairs; differ: {differ[:5]}")
            for i, why in sorted(compiled.refused.items()):
                print(f"  refused: {specs[i].check.rule.name}: {why.splitlines()[0]}")
        finally:
            spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

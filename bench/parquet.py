"""The columnar store against NDJSON: the same query and the same rule set over the same events.

    python bench/parquet.py [--ndjson bench/data/events_1m.ndjson] [--parquet bench/data/events_1m.parquet]
                            [--repeat 3] [--cases event,event_wide,hunt]

The Parquet data set is written first when missing (`trailhound normalize NDJSON --to parquet DIR`,
timed). Each measurement is a fresh process; the best of `--repeat` is reported, with the results
(hits) so that both inputs can be seen to agree. Figures: bench/RESULTS.md, "Parquet and Spark".
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from run import CASES, HUNT_RULES  # noqa: E402 - the query texts and the rules of the main bench

MAIN_DATA = "/work/main/bench/data/events_1m.ndjson"


def dump_hits(result, out: str) -> str:
    """Every rule's outcome, all its hits (before max_signals), as NDJSON to `out`; returns its sha256. Two builds
    agree when the digests do (a stricter check than alerts, which max_signals caps)."""
    import hashlib

    h = hashlib.sha256()
    with open(out, "w") as fh:
        for run in result.runs:
            line = json.dumps({"rule": run.check.rule.rule_id, "status": run.status, "kind": run.kind,
                               "error": run.error, "warnings": run.warnings, "excepted": run.excepted,
                               "hits": [[list(x.rows), None if x.join_keys is None else list(x.join_keys)]
                                        for x in run.hits]}, default=str, sort_keys=True) + "\n"
            h.update(line.encode())
            fh.write(line)
    return h.hexdigest()


def child(case: str, path: str, hits_out: str | None = None) -> dict:
    t = time.perf_counter()
    if case == "hunt":
        from trailhound.engine.hunt import hunt
        from trailhound.rules.check import check_rule
        from trailhound.rules.loader import load_rules

        checks = [check_rule(r) for r in load_rules([HUNT_RULES]).rules]
        t = time.perf_counter()
        cpu = time.process_time()
        result = hunt(checks, [path])
        seconds = time.perf_counter() - t
        cpu = time.process_time() - cpu
        kinds: dict[str, float] = {}
        for run in result.runs:
            kind = run.check.rule.type + (":" + type(run.check.query).__name__ if run.check.rule.type == "eql" else "")
            kinds[kind] = kinds.get(kind, 0.0) + run.seconds
        out = {"seconds": seconds, "cpu_seconds": cpu, "load_seconds": result.load_seconds, "rules": len(result.runs),
               "results": sum(len(r.hits) for r in result.runs), "events": result.table.frame.height,
               "kinds": {k: round(v, 3) for k, v in sorted(kinds.items())}}
        if hits_out:
            out["hits_sha256"] = dump_hits(result, hits_out)
        return out
    from trailhound.api import search

    t = time.perf_counter()
    result = search(CASES[case]["query"], [path])
    return {"seconds": time.perf_counter() - t, "results": len(result.hits)}


def measure(case: str, path: str, repeat: int, hits_out: str | None = None) -> dict:
    runs = []
    for _ in range(repeat):
        extra = ["--_hits", hits_out] if hits_out and case == "hunt" else []
        p = subprocess.run([sys.executable, __file__, "--_child", case, "--_path", path, *extra], capture_output=True,
                           text=True)
        if p.returncode:
            raise SystemExit(f"{case} over {path} failed:\n{p.stderr[-2000:]}")
        runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
    best = min(runs, key=lambda r: r["seconds"])
    best["all"] = [round(r["seconds"], 3) for r in runs]
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ndjson", default=MAIN_DATA if os.path.exists(MAIN_DATA) else os.path.join(HERE, "data",
                                                                                               "events_1m.ndjson"))
    ap.add_argument("--parquet", default=os.path.join(HERE, "data", "events_1m.parquet"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cases", default="event,event_wide,hunt")
    ap.add_argument("--inputs", default="ndjson,parquet", help="which inputs to measure (ndjson, parquet or both)")
    ap.add_argument("--hits", metavar="DIR", help="hunt: write every rule's hits to DIR/hunt-INPUT.ndjson and print "
                    "their digest (compare two builds' digests or files)")
    ap.add_argument("--_child")
    ap.add_argument("--_path")
    ap.add_argument("--_hits")
    a = ap.parse_args()
    if a._child:
        print(json.dumps(child(a._child, a._path, a._hits)))
        return
    if not os.path.isdir(a.parquet):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "trailhound.cli.main", "normalize", a.ndjson, "--to", "parquet",
                        "-o", a.parquet], check=True)
        print(f"normalize --to parquet: {time.perf_counter() - t:.1f} s")
    # A user's Python reads trailhound's bytecode (pip compiles it on install, an editable install on first import);
    # where the environment forbids writing it (PYTHONDONTWRITEBYTECODE), every fresh child would compile the source
    # again (0.05-0.1 s, the parser tables most). Compile it once here, as an install would.
    package = importlib.util.find_spec("trailhound")
    if package and package.submodule_search_locations:
        compileall.compile_dir(package.submodule_search_locations[0], quiet=1)
    size = sum(e.stat().st_size for e in os.scandir(a.parquet))
    print(f"NDJSON {os.path.getsize(a.ndjson) / 1e6:.0f} MB, Parquet {size / 1e6:.0f} MB")
    print(f"load average {os.getloadavg()[0]:.2f} (a shared machine: compare CPU and wall, runs alternated)")
    events = 1_000_000
    inputs = {"ndjson": a.ndjson, "parquet": a.parquet}
    if a.hits:
        os.makedirs(a.hits, exist_ok=True)
    for case in a.cases.split(","):
        for label in a.inputs.split(","):
            path = inputs[label]
            r = measure(case, path, a.repeat, os.path.join(a.hits, f"hunt-{label}.ndjson") if a.hits else None)
            events = r.get("events", events)
            extra = (f", CPU {r['cpu_seconds']:.2f} s, load {r['load_seconds']:.2f} s, {r['rules']} rules"
                     if case == "hunt" else "")
            median = statistics.median(r["all"])
            print(f"{case:10} {label:8} best {r['seconds']:.3f} s ({events / r['seconds'] / 1e6:.2f}M events/s), median "
                  f"{median:.3f} s ({events / median / 1e6:.2f}M){extra}, {r['results']} results; runs {r['all']}",
                  flush=True)
            if case == "hunt":
                print(f"{'':19} seconds by rule kind {r['kinds']}" +
                      (f"\n{'':19} hits sha256 {r['hits_sha256']}" if "hits_sha256" in r else ""), flush=True)
            print(f"{'':19} load average now {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()

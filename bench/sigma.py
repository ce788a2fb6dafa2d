#!/usr/bin/env python3
"""SigmaHQ's Linux rules over ECS events, end to end: `trailhound hunt DATA --rules SIGMA_DIR [--rules PACK]`.

    python bench/sigma.py [--data bench/data/events_1m.ndjson] [--sigma DIR] [--with-pack] [--limit N] [--repeat 3]
                          [--cache off|warm] [--alert-workers on|off]

Runs the command in a fresh process and prints wall time, the CPU time it used (user + system, all its
threads: on a shared machine wall time grows with the others' load, CPU time much less), events/s and
the child's peak RSS; best of --repeat (by wall time). `--cache off` (the default) parses and translates
the Sigma rules each time, as on a first run; `--cache warm` runs once untimed with a fresh rule cache,
then times runs that read it, as every later run does (the warming run reads 1,000 events).
The data defaults to bench/data/events_1m.ndjson, else the main checkout's copy; --limit N hunts
over its first N lines (written once to bench/data/). The rules default to the SigmaHQ corpus
under $TRAILHOUND_SHARED (../shared), `rules/linux`. `--alert-workers on` has a forked worker build some rules' alerts
on the second core (TRAILHOUND_ALERT_WORKERS=1; by default every alert is built in the hunt's own process).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TRAILHOUND_SHARED", REPO.parent / "shared"))
DATA = [REPO / "bench" / "data" / "events_1m.ndjson", Path("/work/main/bench/data/events_1m.ndjson")]
TRAILHOUND = Path(sys.executable).with_name("trailhound")


def prefix(path: Path, n: int) -> Path:
    out = REPO / "bench" / "data" / f"{path.stem}.head{n}.ndjson"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        with path.open("rb") as src, out.open("wb") as dst:
            for i, line in enumerate(src):
                if i >= n:
                    break
                dst.write(line)
    return out


def once(data: Path, rules: list[Path], cache: str = "off", workers: str = "off") -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        summary = Path(tmp) / "summary.json"
        cmd = [str(TRAILHOUND), "hunt", str(data), "--summary", str(summary), "--exit-zero", "--out", os.devnull]
        for r in rules:
            cmd += ["--rules", str(r)]
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        before, cpu_before = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TRAILHOUND_CACHE_DIR": cache,
                                                                        "TRAILHOUND_ALERT_WORKERS": "1" if workers == "on" else "0"})
        seconds = time.perf_counter() - t0
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime - cpu_before
        if proc.returncode not in (0, 1):
            sys.exit(f"hunt failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        report = json.loads(summary.read_text())
    rules_run = [r for r in report["rules"] if r.get("status") == "ran"]
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": max(peak, before) / 1024, "rules": len(report["rules"]),
            "ran": len(rules_run), "not_run": [(r["name"], r.get("status"), r.get("reason")) for r in report["rules"]
                                               if r.get("status") != "ran"],
            "hits": sum(r.get("hits", 0) for r in report["rules"]),
            "timings": report.get("timings", {})}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=next((p for p in DATA if p.exists()), DATA[0]))
    ap.add_argument("--sigma", type=Path, default=SHARED / "corpora" / "sigma" / "rules-linux" / "rules" / "linux")
    ap.add_argument("--with-pack", action="store_true", help="also run Trailhound's SSH pack (TOML), batched with them")
    ap.add_argument("--limit", type=int, default=0, help="only the first N events")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--cache", choices=("off", "warm"), default="off",
                    help="off: parse and translate the rules each run; warm: read them from a rule cache")
    ap.add_argument("--alert-workers", choices=("on", "off"), default="off",
                    help="on: a forked worker builds some rules' alerts on the second core (TRAILHOUND_ALERT_WORKERS=1)")
    a = ap.parse_args(argv)
    if not a.data.exists() or not a.sigma.is_dir():
        sys.exit(f"missing {a.data if not a.data.exists() else a.sigma}")
    data = prefix(a.data, a.limit) if a.limit else a.data
    with data.open("rb") as fh:
        events = sum(1 for _ in fh)
    rules = [a.sigma] + ([REPO / "src" / "trailhound" / "pack"] if a.with_pack else [])
    with tempfile.TemporaryDirectory() as cache_dir:
        cache = "off" if a.cache == "off" else cache_dir
        if a.cache == "warm":
            once(prefix(a.data, 1000), rules, cache)  # fills the rule cache (it holds rules, not events)
        runs = [once(data, rules, cache, a.alert_workers) for _ in range(a.repeat)]
    best = min(runs, key=lambda r: r["seconds"])
    print(json.dumps({"data": str(data), "events": events, "rules": best["rules"], "ran": best["ran"],
                      "not_run": best["not_run"], "hits": best["hits"], "cache": a.cache, "alert_workers": a.alert_workers,
                      "seconds": round(best["seconds"], 2), "cpu_seconds": round(best["cpu_seconds"], 2),
                      "events_per_s": round(events / best["seconds"]), "peak_rss_mb": round(best["peak_rss_mb"]),
                      "all_seconds": [round(r["seconds"], 2) for r in runs],
                      "all_cpu_seconds": [round(r["cpu_seconds"], 2) for r in runs], "timings": best["timings"]}, indent=1))


if __name__ == "__main__":
    main()

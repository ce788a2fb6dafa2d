#!/usr/bin/env python3
"""Latency and memory of `trailhound watch` on a steady stream.

    python bench/watch.py [--rate 5000] [--seconds 120] [--linux-rules DIR] [--events 200000] [--seed 1]

A writer appends ECS NDJSON events (bench/generate.py's fleet: process, file, network and sshd events with
lateral-movement material) to a file at `--rate` events per second, in 20 ms slices, each event's `@timestamp` set
to the moment it is appended. `trailhound watch` follows the file as a real process with the SSH pack and the Linux
rules of detection-rules (`--linux-rules`, default /work/shared/corpora/detection-rules/rules/linux; skipped with a
note when absent), checkpointing to a state directory. The generated events are cycled when the stream outlasts them.

* Latency, from append to alert: each alert's creation time (`@timestamp`, written by watch when it writes the
  alert) minus the time its event was appended (`kibana.alert.original_time`); for a sequence, its last event (the
  latest original time among its building blocks). p50, p99 and max, over the alerts of the second half of the run
  (the first is warm-up).
* Memory: watch's resident set (VmRSS) every 5 s; the figures at 1/6 of the run and at its end (the issue's minute 5
  and minute 30 of a 30-minute run: `--seconds 1800`).
* Throughput: the events watch evaluated (its last status line) against those appended.
Prints a JSON summary (also to bench/data/watch_last.json).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
LINUX = "/work/shared/corpora/detection-rules/rules/linux"


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--events", type=int, default=200_000, help="events generated (cycled)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--linux-rules", default=LINUX)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)

    from generate import generate

    work = Path(tempfile.mkdtemp(prefix="trailhound-bench-watch-"))
    source = work / "source.ndjson"
    generate(str(source), args.events, seed=args.seed, progress=False)
    lines = source.read_bytes().splitlines()
    log, out = work / "events.ndjson", work / "alerts.ndjson"
    log.write_bytes(b"")
    rules = ["--rules", str(REPO / "src/trailhound/pack")]
    notes = []
    if Path(args.linux_rules).is_dir():
        rules += ["--rules", args.linux_rules]
    else:
        notes.append(f"{args.linux_rules} not found: the SSH pack alone")
    cmd = [sys.executable, "-m", "trailhound", "watch", str(log), "--out", str(out), "--state", str(work / "state"),
           *rules]
    stderr = open(work / "watch.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr)
    while not (work / "state" / "checkpoint.json").exists():  # loaded its rules, found the file
        if proc.poll() is not None:
            print((work / "watch.log").read_text(), file=sys.stderr)
            return 2
        time.sleep(0.1)

    memory: list[tuple[float, int]] = []
    sent = 0
    slice_s = 0.02
    per_slice = max(1, round(args.rate * slice_s))
    started = time.time()
    next_t = started
    next_mem = started
    behind = 0.0
    with open(log, "ab") as fh:
        while (now := time.time()) - started < args.seconds:
            if now < next_t:
                time.sleep(next_t - now)
            stamp = iso(time.time())
            chunk = []
            for _ in range(per_slice):
                doc = orjson.loads(lines[sent % len(lines)])
                doc["@timestamp"] = stamp
                chunk.append(orjson.dumps(doc))
                sent += 1
            fh.write(b"\n".join(chunk) + b"\n")
            fh.flush()
            next_t += slice_s
            behind = max(behind, time.time() - next_t)
            if time.time() >= next_mem:
                if (kb := rss_kb(proc.pid)) is not None:
                    memory.append((time.time() - started, kb))
                next_mem += 5.0
    elapsed = time.time() - started
    time.sleep(3)  # the last slices evaluated
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=120)
    stderr.close()

    status = [json.loads(x) for x in (work / "watch.log").read_text().splitlines() if x.startswith("{")]
    stopped = next((s for s in status if s.get("msg") == "stopped"), {})
    alerts = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    groups: dict[str, float] = {}
    for a in alerts:
        gid = a.get("kibana.alert.group.id")
        if gid and a.get("kibana.alert.building_block_type") and a.get("kibana.alert.original_time"):
            groups[gid] = max(groups.get(gid, 0.0), parse(a["kibana.alert.original_time"]))
    latencies, everything = [], []
    half = started + elapsed / 2
    for a in alerts:
        if a.get("kibana.alert.building_block_type"):
            continue
        uid = a["kibana.alert.uuid"]
        appended = groups.get(uid) or (parse(a["kibana.alert.original_time"]) if a.get("kibana.alert.original_time")
                                       else None)
        if appended is None:
            continue
        everything.append(parse(a["@timestamp"]) - appended)
        if appended >= half:
            latencies.append(everything[-1])
    latencies.sort()
    everything.sort()

    def pct(p: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 3) if latencies else None

    def mem_at(t: float) -> int | None:
        near = [kb for s, kb in memory if s <= t]
        return near[-1] if near else None

    summary = {
        "rate_asked": args.rate, "seconds": round(elapsed, 1), "appended": sent, "rate_appended": round(sent / elapsed),
        "writer_behind_max_s": round(behind, 3), "evaluated": stopped.get("events"), "late": stopped.get("late"),
        "exit": code, "alerts": len(alerts), "alerts_timed": len(latencies),
        "latency_p50_s": pct(0.50), "latency_p99_s": pct(0.99), "latency_max_s": latencies[-1] if latencies else None,
        "latency_all_p50_s": round(everything[len(everything) // 2], 3) if everything else None,
        "latency_all_max_s": round(everything[-1], 3) if everything else None,
        "rss_mb_at_1_6": (mem_at(elapsed / 6) or 0) // 1024, "rss_mb_end": (memory[-1][1] // 1024) if memory else None,
        "rss_mb_series": [[round(s), kb // 1024] for s, kb in memory], "notes": notes,
    }
    if summary["rss_mb_at_1_6"] and summary["rss_mb_end"]:
        summary["rss_growth_pct"] = round(100 * (summary["rss_mb_end"] / summary["rss_mb_at_1_6"] - 1), 1)
    print(json.dumps(summary, indent=1))
    (REPO / "bench/data").mkdir(exist_ok=True)
    (REPO / "bench/data/watch_last.json").write_text(json.dumps(summary, indent=1))
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"work directory: {work}", file=sys.stderr)
    return 0 if code == 0 else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())

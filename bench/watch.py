#!/usr/bin/env python3
"""Latency and memory of `trailhound watch` on a steady stream.

    python bench/watch.py [--rate 5000] [--seconds 120] [--linux-rules DIR] [--events 200000] [--seed 1]
    python bench/watch.py --long [--rate 1000] [--tracemalloc]      # 35 minutes: is memory flat?

A writer appends ECS NDJSON events (bench/generate.py's fleet: process, file, network and sshd events with
lateral-movement material) to a file at `--rate` events per second, in 20 ms slices, each event's `@timestamp` set
to the moment it is appended. `trailhound watch` follows the file as a real process with the SSH pack and the Linux
rules of detection-rules (`--linux-rules`, default /work/shared/corpora/detection-rules/rules/linux; skipped with a
note when absent), checkpointing to a state directory. The generated events are cycled when the stream outlasts them.

* Latency, from append to alert: each alert's creation time (`@timestamp`, written by watch when it writes the
  alert) minus the time its event was appended (`kibana.alert.original_time`); for a sequence, its last event (the
  latest original time among its building blocks). p50, p99 and max, over the alerts of the second half of the run
  (the first is warm-up); `latency_by_kind` splits them by kind (event query, sequence, threshold, new_terms), since
  some alerts are decided by time rather than by their last event (a threshold execution closing, a sequence's
  maxspan passing for a missing step), and `slowest_rules` names the rules with the latest alerts.
* Memory: watch's resident set (VmRSS) every 5 s; the figures at 1/6 of the run and at its end (the issue's minute 5
  and minute 30 of a 30-minute run: `--seconds 1800`).
* Throughput: the events watch evaluated (its last status line) against those appended; watch's CPU time
  (user+sys, from /proc) beside the wall time.
Prints a JSON summary (also to bench/data/watch_last.json).

`--long` is the issue's memory case: 35 minutes (unless `--seconds` says otherwise), VmRSS every 10 s, and the
summary compares minute 5 with minute 30 (`rss_growth_5_30_pct`, the minimum and maximum between them) beside what
watch said it held then (its status lines: documents buffered and kept, lag). The samples so far are written to
bench/data/watch_long_progress.json as the run goes. With `--tracemalloc` watch runs under Python's tracemalloc
(slower: use a lower rate) and the summary lists the allocation sites that grew most from `--snapshot-at` (minute 5)
to the end (`tracemalloc_growth`), to find what grows.
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


def cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a live process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Runs watch under tracemalloc: SIGUSR1 writes a snapshot to $TRAILHOUND_BENCH_SNAPSHOT.N (N counting up).
TRACED = """
import os, signal, sys, tracemalloc
tracemalloc.start(8)
_n = [0]
def _dump(*_):
    _n[0] += 1
    tracemalloc.take_snapshot().dump(f"{os.environ['TRAILHOUND_BENCH_SNAPSHOT']}.{_n[0]}")
signal.signal(signal.SIGUSR1, _dump)
from trailhound.cli.main import run
sys.argv[0] = "trailhound"
sys.exit(run())
"""


def growth(first: Path, last: Path, top: int = 15) -> list[dict]:
    """The allocation sites that grew most between two tracemalloc snapshots."""
    import tracemalloc

    keep = [tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"), tracemalloc.Filter(False, tracemalloc.__file__)]
    a = tracemalloc.Snapshot.load(str(first)).filter_traces(keep)
    b = tracemalloc.Snapshot.load(str(last)).filter_traces(keep)
    out = [{"traced_mb_first": sum(st.size for st in a.statistics("filename")) >> 20,
            "traced_mb_last": sum(st.size for st in b.statistics("filename")) >> 20}]
    for stat in b.compare_to(a, "traceback")[:top]:
        frames = [f"{f.filename.split('site-packages/')[-1].split('src/')[-1]}:{f.lineno}" for f in stat.traceback]
        out.append({"kb_diff": stat.size_diff // 1024, "kb": stat.size // 1024, "count_diff": stat.count_diff,
                    "where": frames[-4:]})
    return out


def watch_status(path: Path) -> list[dict]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--events", type=int, default=200_000, help="events generated (cycled)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--linux-rules", default=LINUX)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--long", action="store_true", help="the memory case: 35 minutes, minute 5 against minute 30")
    ap.add_argument("--tracemalloc", action="store_true", help="run watch under tracemalloc (with --long: what grew)")
    ap.add_argument("--snapshot-at", type=float, default=300.0, help="with --tracemalloc: the first snapshot's "
                    "time (seconds; the second is at the end)")
    args = ap.parse_args(argv)
    if args.long and "--seconds" not in (argv if argv is not None else sys.argv[1:]):
        args.seconds = 2100.0
    mem_every = 10.0 if args.long else 5.0

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
    env = dict(os.environ)
    snapshots: list[Path] = []
    if args.tracemalloc:
        cmd = [sys.executable, "-c", TRACED, *cmd[3:]]
        env["TRAILHOUND_BENCH_SNAPSHOT"] = str(work / "snapshot")
    stderr = open(work / "watch.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr, env=env)
    while not (work / "state" / "checkpoint.json").exists():  # loaded its rules, found the file
        if proc.poll() is not None:
            print((work / "watch.log").read_text(), file=sys.stderr)
            return 2
        time.sleep(0.1)

    memory: list[tuple[float, int]] = []
    cpu: list[tuple[float, float]] = []
    progress = REPO / "bench/data/watch_long_progress.json"
    if args.long:
        progress.parent.mkdir(exist_ok=True)
    cpu_start = cpu_s(proc.pid) or 0.0
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
                if (c := cpu_s(proc.pid)) is not None:
                    cpu.append((time.time() - started, c - cpu_start))
                if args.long:
                    progress.write_text(json.dumps({"appended": sent, "rss_mb_series": [
                        [round(t), k // 1024] for t, k in memory]}))
                if args.tracemalloc and not snapshots and time.time() - started >= min(args.snapshot_at, args.seconds / 2):
                    proc.send_signal(signal.SIGUSR1)
                    snapshots.append(work / "snapshot.1")
                next_mem += mem_every
    elapsed = time.time() - started
    time.sleep(3)  # the last slices evaluated
    if args.tracemalloc and snapshots:
        proc.send_signal(signal.SIGUSR1)
        snapshots.append(work / "snapshot.2")
        deadline = time.time() + 300
        while not snapshots[-1].exists() and time.time() < deadline:
            time.sleep(1)
        time.sleep(5)  # written whole
    cpu_end = cpu_s(proc.pid)
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=120)
    stderr.close()

    status = watch_status(work / "watch.log")
    stopped = next((s for s in status if s.get("msg") == "stopped"), {})
    alerts = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    # a sequence's building blocks are written just before its shell, whose uuid is their group id: each shell
    # takes the blocks written since the previous alert of that id (the generated events are cycled, and a
    # sequence found again over a later cycle has the same ids: pairing over the whole file mixed the cycles)
    pending: dict[str, float] = {}
    sequence_of: dict[int, float] = {}  # a shell's line → its last event's append time
    for n, a in enumerate(alerts):
        gid = a.get("kibana.alert.group.id")
        if gid and a.get("kibana.alert.building_block_type"):
            if a.get("kibana.alert.original_time"):
                pending[gid] = max(pending.get(gid, 0.0), parse(a["kibana.alert.original_time"]))
        elif a["kibana.alert.uuid"] in pending:
            sequence_of[n] = pending.pop(a["kibana.alert.uuid"])
    latencies, everything = [], []
    by_kind: dict[str, list[float]] = {}  # a threshold execution, a sequence ending in a missing event... wait on time
    by_rule: dict[str, float] = {}
    half = started + elapsed / 2
    for n, a in enumerate(alerts):
        if a.get("kibana.alert.building_block_type"):
            continue
        appended = sequence_of.get(n) or (parse(a["kibana.alert.original_time"]) if a.get("kibana.alert.original_time")
                                          else None)
        if appended is None:
            continue
        everything.append(parse(a["@timestamp"]) - appended)
        if appended >= half:
            latencies.append(everything[-1])
            kind = ("sequence" if n in sequence_of else a.get("kibana.alert.rule.type") or "?")
            by_kind.setdefault(kind, []).append(everything[-1])
            rule = str(a.get("kibana.alert.rule.name"))
            by_rule[rule] = max(by_rule.get(rule, 0.0), everything[-1])
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
        "watch_cpu_s": round(cpu_end - cpu_start, 1) if cpu_end is not None else None,
        "latency_by_kind": {k: {"alerts": len(v), "p50_s": round(sorted(v)[len(v) // 2], 3),
                                "p99_s": round(sorted(v)[min(len(v) - 1, int(0.99 * len(v)))], 3)}
                            for k, v in sorted(by_kind.items())},
        "slowest_rules": [[r, round(t, 1)] for r, t in sorted(by_rule.items(), key=lambda x: -x[1])[:8]],
        "rss_mb_series": [[round(s), kb // 1024] for s, kb in memory], "notes": notes,
    }
    if summary["rss_mb_at_1_6"] and summary["rss_mb_end"]:
        summary["rss_growth_pct"] = round(100 * (summary["rss_mb_end"] / summary["rss_mb_at_1_6"] - 1), 1)
    if args.long:
        summary.update(long_figures(memory, cpu, status, started))
    if len(snapshots) == 2 and all(p.exists() for p in snapshots):
        summary["tracemalloc_growth"] = growth(*snapshots)
    print(json.dumps(summary, indent=1))
    (REPO / "bench/data").mkdir(exist_ok=True)
    (REPO / "bench/data/watch_last.json").write_text(json.dumps(summary, indent=1))
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"work directory: {work}", file=sys.stderr)
    return 0 if code == 0 else 1


def long_figures(memory: list[tuple[float, int]], cpu: list[tuple[float, float]], status: list[dict],
                 started: float) -> dict:
    """Minute 5 against minute 30: VmRSS, its range between them, and what watch held then (its status lines)."""

    def at(series, t):
        near = [v for s, v in series if s <= t]
        return near[-1] if near else None

    def said(t: float) -> dict:
        for s in reversed(status):
            if s.get("msg") == "status" and parse(s["ts"]) - started <= t:
                return {k: s.get(k) for k in ("events", "lag", "state", "alerts")}
        return {}

    five, thirty = at(memory, 300), at(memory, 1800)
    between = [kb for s, kb in memory if 300 <= s <= 1800]
    out: dict = {"rss_mb_at_5min": five // 1024 if five else None, "rss_mb_at_30min": thirty // 1024 if thirty else None,
                 "rss_mb_min_5_30": min(between) // 1024 if between else None,
                 "rss_mb_max_5_30": max(between) // 1024 if between else None,
                 "cpu_s_at_5min": at(cpu, 300), "cpu_s_at_30min": at(cpu, 1800),
                 "watch_at_5min": said(300), "watch_at_30min": said(1800)}
    if five and thirty:
        out["rss_growth_5_30_pct"] = round(100 * (thirty / five - 1), 1)
    return out


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())

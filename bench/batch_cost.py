#!/usr/bin/env python3
"""The in-process cost of one `watch` micro-batch: CPU and wall time of `StreamPipeline.step` (pipeline/watch.py).

    python bench/batch_cost.py [--batches 200,1000,5000] [--repeat 15] [--events 60000] [--linux-rules DIR]
                               [--profile 200]

The rules of `bench/watch.py`: the SSH pack and detection-rules' `rules/linux` (378 runnable rules; the pack alone
where DIR is absent). bench/generate.py's events (200 hosts: process, file, network, sshd events with
lateral-movement material) are added to one StreamPipeline and evaluated `size` events at a time; after a few
warm-up batches (the first compiles every rule's filters), each step is timed: CPU of the process (user + sys, all
threads, `resource.getrusage`) and wall. Prints the median and the spread per batch size, and the events per second
one core could follow at that batch size (size / median CPU). `--profile N` prints cProfile's top functions over
batches of N events instead.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
LINUX = os.path.join(os.environ.get("TRAILHOUND_SHARED", "/work/shared"), "corpora", "detection-rules", "rules",
                     "linux")


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def planned_rules(linux: str):
    from trailhound.pack import DIR as PACK
    from trailhound.pipeline import plan
    from trailhound.rules.loader import load_rules

    paths = [PACK] + ([linux] if Path(linux).is_dir() else [])
    return plan(load_rules(paths))


def documents(n: int, seed: int) -> list[dict]:
    from generate import generate

    with tempfile.TemporaryDirectory() as work:
        path = os.path.join(work, "events.ndjson")
        generate(path, n, seed=seed, progress=False)
        return [orjson.loads(line) for line in Path(path).read_bytes().splitlines()]


def run_batches(planned, docs: list[dict], size: int, count: int, warmup: int, profile: bool = False):
    """(cpu seconds, wall seconds, alerts) per timed step."""
    from trailhound.pipeline.watch import StreamPipeline

    pipe = StreamPipeline(planned, now="2026-01-01T00:00:00.000Z")
    source = pipe.add_source("bench", enrich=False)
    out = []
    line = 0
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
    for i in range(warmup + count):
        for doc in docs[line:line + size]:
            line += 1
            pipe.add(source, dict(doc), line)
        if line >= len(docs):
            line = 0  # cycled: later events are older, which only the correlators notice (as late events)
        timed = i >= warmup
        if timed and prof is not None:
            prof.enable()
        c0, w0 = cpu(), time.perf_counter()
        written = pipe.step(final=True)
        c1, w1 = cpu(), time.perf_counter()
        if timed and prof is not None:
            prof.disable()
        if timed:
            out.append((c1 - c0, w1 - w0, written))
    return out, prof


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="200,1000,5000", help="batch sizes (events), comma-separated")
    ap.add_argument("--repeat", type=int, default=15, help="timed batches per size")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--events", type=int, default=60_000, help="events generated (cycled)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--linux-rules", default=LINUX)
    ap.add_argument("--profile", type=int, default=0, help="profile batches of this size instead")
    ap.add_argument("--top", type=int, default=40)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    planned = planned_rules(args.linux_rules)
    docs = documents(args.events, args.seed)
    load = os.getloadavg()
    print(f"{len(planned.runnable)} runnable rules, {len(docs)} events generated ({time.perf_counter() - t0:.1f} s); "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}", flush=True)
    if args.profile:
        import pstats

        _, prof = run_batches(planned, docs, args.profile, args.repeat, args.warmup, profile=True)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(args.top)
        return 0
    print(f"{'batch':>7} {'CPU median':>11} {'CPU min-max':>15} {'wall median':>12} {'events/s per core':>18}")
    for size in (int(s) for s in args.batches.split(",")):
        runs, _ = run_batches(planned, docs, size, args.repeat, args.warmup)
        c = [r[0] for r in runs]
        w = [r[1] for r in runs]
        med = statistics.median(c)
        print(f"{size:>7} {med:>10.3f}s {min(c):>7.3f}-{max(c):.3f}s {statistics.median(w):>11.3f}s "
              f"{size / med if med else float('inf'):>18,.0f}", flush=True)
    load = os.getloadavg()
    print(f"load average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

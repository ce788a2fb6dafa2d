#!/usr/bin/env python3
"""The fixed cost of a command: what a rule author or a CI job pays on every call.

    python bench/startup.py [--repeat 7] [--trailhound .venv/bin/trailhound]

Times three whole commands as fresh processes, alternating them, and prints the median and the
range of each against its target (issue 16):

* `trailhound --help`                                          target 0.3 s
* `trailhound query` over a 100-event ECS file                 target 0.6 s
* `trailhound hunt` with the SSH pack over the bundled lab capture (the README's first command,
  2,239 events from 40 raw audit and sshd logs, 80 alerts)     target 1.0 s

The rule cache is warm for the hunt (a first run after an install parses and compiles the pack
once; that run is reported apart). The 100-event file is written to a temporary folder.

The commands run as a user's would: with Python's bytecode cache. PYTHONDONTWRITEBYTECODE, which
some development shells set, is removed from their environment (with it, every module of ours is
compiled from source on every call, ~0.15 s more), and one untimed run of each fills the cache.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"help": 0.3, "query": 0.6, "hunt": 1.0}


def events(path: Path, n: int = 100) -> None:
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"@timestamp": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z",
                                "event": {"category": ["process"], "type": ["start"]},
                                "host": {"name": f"h{i % 5}"},
                                "process": {"name": "ssh" if i % 10 == 0 else "bash", "pid": 1000 + i,
                                            "args": ["ssh", "-i", "/tmp/k", "host"] if i % 10 == 0 else ["bash"]}})
                    + "\n")


CPU: dict[str, list[float]] = {}


def timed(cmd: list[str], env: dict, name: str | None = None) -> float:
    """Wall time of one run; its CPU time (user + system) is kept in CPU[name], a figure that a busy
    machine disturbs less than the wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=REPO)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.decode()[-500:]}")
    if name:
        CPU.setdefault(name, []).append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--trailhound", default=str(Path(sys.executable).with_name("trailhound")))
    args = ap.parse_args()
    th = args.trailhound
    lab = sorted(glob.glob(str(REPO / "tests/fixtures/lab/*/audit.log"))) + \
        sorted(glob.glob(str(REPO / "tests/fixtures/lab/*/auth.log")))
    with tempfile.TemporaryDirectory(prefix="trailhound-startup-") as tmp:
        data = Path(tmp) / "events.ndjson"
        events(data)
        env = {**os.environ, "TRAILHOUND_CACHE_DIR": str(Path(tmp) / "cache")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        cmds = {
            "help": [th, "--help"],
            "query": [th, "query", 'process where process.name == "ssh" and process.args : "-i"', str(data)],
            "hunt": [th, "hunt", *lab, "--exit-zero"],
        }
        cold = timed(cmds["hunt"], env)  # fills the rule cache
        for cmd in cmds.values():
            timed(cmd, env)  # and Python's bytecode cache
        times: dict[str, list[float]] = {k: [] for k in cmds}
        for _ in range(args.repeat):
            for name, cmd in cmds.items():
                times[name].append(timed(cmd, env, name))
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)")
    print(f"{'command':<8} {'median':>8} {'min':>7} {'max':>7} {'target':>7}      {'cpu median':>10}")
    for name, ts in times.items():
        med = statistics.median(ts)
        mark = "ok" if med <= TARGETS[name] else "over"
        print(f"{name:<8} {med:8.3f} {min(ts):7.3f} {max(ts):7.3f} {TARGETS[name]:7.1f}  {mark:<4} "
              f"{statistics.median(CPU[name]):10.3f}")
    print(f"hunt, first run with an empty rule cache: {cold:.3f} s")


if __name__ == "__main__":
    main()

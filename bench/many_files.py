#!/usr/bin/env python3
"""Many small inputs against the same events in a few: the fixed cost of an input file.

    python bench/many_files.py [--records 60000] [--small 24] [--big 2] [--repeat 3] [--dir bench/data/many_files]

Writes a synthetic audit.log with bench/auditd.py's generator (deterministic for a seed), cuts it
at event boundaries (after an EOE) into --small files and into --big files, as rotated logs are,
then times `load_events` on each layout, alternating them, best of --repeat: once with the
fields a hunt reads (a fixed list) and once with every field (`fields=None`, as `query --format
ndjson` and `normalize` do). Prints the times and the ratio small/big; the target is 1.3 at most.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

from auditd import generate  # noqa: E402

from trailhound.sources import load_events  # noqa: E402

HUNT_FIELDS = ["@timestamp", "event.category", "event.type", "event.action", "event.outcome", "host.id", "host.name",
               "process.name", "process.args", "process.executable", "process.parent.name", "process.entity_id",
               "user.id", "user.name", "file.path", "destination.ip", "destination.port", "source.ip"]


def split(lines: list[str], parts: int) -> list[list[str]]:
    """`lines` cut into `parts` runs of about equal size, each ending after an EOE record."""
    size = len(lines) // parts
    out: list[list[str]] = []
    current: list[str] = []
    for line in lines:
        current.append(line)
        if len(current) >= size and len(out) < parts - 1 and " type=EOE " in f" {line}":
            out.append(current)
            current = []
    out.append(current)
    return out


def layout(directory: Path, lines: list[str], parts: int) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("audit.log*"):
        old.unlink()
    paths = []
    for k, chunk in enumerate(split(lines, parts)):
        path = directory / (f"audit.log.{parts - 1 - k}" if k < parts - 1 else "audit.log")
        path.write_text("".join(chunk))
        paths.append(str(path))
    return paths


def best(paths: list[str], fields, repeat: int) -> tuple[float, int]:
    times, events = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        table = load_events(paths, fields)
        times.append(time.perf_counter() - start)
        events = table.report.events
    return min(times), events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=60_000)
    ap.add_argument("--small", type=int, default=24)
    ap.add_argument("--big", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", type=Path, default=REPO / "bench" / "data" / "many_files")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    source = args.dir / "audit.log"
    generate(source, args.records, args.seed)
    lines = source.read_text().splitlines(keepends=True)
    small = layout(args.dir / f"files{args.small}", lines, args.small)
    big = layout(args.dir / f"files{args.big}", lines, args.big)
    print(f"{len(lines)} records ({source.stat().st_size / 1e6:.1f} MB): {len(small)} files vs {len(big)} files")
    for label, fields in (("hunt fields", HUNT_FIELDS), ("every field", None)):
        results = {}
        for _ in range(args.repeat):  # alternate the layouts: a busy machine slows both alike
            for name, paths in (("small", small), ("big", big)):
                t, events = best(paths, fields, 1)
                old = results.get(name)
                results[name] = (min(t, old[0]) if old else t, events)
        (ts, es), (tb, eb) = results["small"], results["big"]
        assert es == eb, f"the layouts gave {es} and {eb} events"
        print(f"{label:12s} {len(small):3d} files {ts:7.3f} s  {len(big):3d} files {tb:7.3f} s  "
              f"ratio {ts / tb:.2f}  ({es} events)")


if __name__ == "__main__":
    main()

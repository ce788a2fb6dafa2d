#!/usr/bin/env python3
"""Are two builds' alerts the same? Runs fixed hunts with a given `trailhound` and compares the outputs.

    python bench/alerts_equal.py make OUT_DIR [--trailhound PATH] [--cases sigma-1m,elastic-1m,pack-lab,sigma-lab]
    python bench/alerts_equal.py compare BEFORE_DIR AFTER_DIR

`make` writes, per case, the alerts (`CASE.ndjson`) and the summary (`CASE.summary.json`) of
`trailhound hunt ... --out CASE.ndjson --summary CASE.summary.json`, rule cache off. `compare` then holds the
alerts byte-identical line by line, once the run's creation time (every alert's top-level `@timestamp`, the
same in one run) is blanked, and the summaries equal but for their timings (`timings`, each rule's
`seconds`). Exit 1 on any difference, naming the first differing line.

Cases: SigmaHQ's 210 Linux rules and Elastic's Linux rules over bench/data/events_1m.ndjson (else the main
checkout's copy); the SSH pack and the SigmaHQ rules over the lab's recorded capture (README's first hunt).
Use it to make the reference outputs with the code before a change (e.g. a `git archive` of main installed
in its own venv) and to check the code after it.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TRAILHOUND_SHARED", REPO.parent / "shared"))
DATA = [REPO / "bench" / "data" / "events_1m.ndjson", Path("/work/main/bench/data/events_1m.ndjson")]
SIGMA = SHARED / "corpora" / "sigma" / "rules-linux" / "rules" / "linux"
ELASTIC = SHARED / "corpora" / "detection-rules" / "rules" / "linux"
LAB = sorted(glob.glob(str(REPO / "tests/fixtures/lab/*/audit.log"))) + sorted(
    glob.glob(str(REPO / "tests/fixtures/lab/*/auth.log")))


def cases() -> dict[str, list[str]]:
    data = str(next((p for p in DATA if p.exists()), DATA[0]))
    return {"sigma-1m": [data, "--rules", str(SIGMA)],
            "elastic-1m": [data, "--rules", str(ELASTIC)],
            "pack-lab": LAB,
            "sigma-lab": [*LAB, "--rules", str(SIGMA)]}


def make(out: Path, trailhound: str, names: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        args = cases()[name]
        cmd = [trailhound, "hunt", *args, "--exit-zero", "--out", str(out / f"{name}.ndjson"),
               "--summary", str(out / f"{name}.summary.json")]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TRAILHOUND_CACHE_DIR": "off"})
        if proc.returncode != 0:
            sys.exit(f"{name}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
        print(f"{name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)


def _normalized_lines(path: Path):
    """The alert lines with the run's creation time blanked (it is every alert's top-level @timestamp)."""
    now: bytes | None = None
    with path.open("rb") as fh:
        for line in fh:
            if now is None:
                now = b'"@timestamp":' + orjson.dumps(orjson.loads(line)["@timestamp"])
            yield line.replace(now, b'"@timestamp":"<now>"')


def _summary(path: Path) -> dict:
    """The summary but its timings and the paths that name the checkout or the output directory."""
    s = orjson.loads(path.read_bytes())
    s.pop("timings", None)
    for r in s.get("rules", []) + s.get("errors", []):
        r.pop("seconds", None)
        if isinstance(r.get("file"), str) and "/src/trailhound/" in r["file"]:
            r["file"] = r["file"].split("/src/trailhound/", 1)[1]
    for sink in s.get("sinks", []):
        sink["sink"] = Path(sink["sink"]).name
    return s


def compare(before: Path, after: Path) -> bool:
    same = True
    for b in sorted(before.glob("*.ndjson")):
        a = after / b.name
        if not a.exists():
            print(f"{b.name}: missing in {after}")
            same = False
            continue
        n, digest, ok = 0, hashlib.sha256(), True
        for n, (x, y) in enumerate(zip(_normalized_lines(b), _normalized_lines(a), strict=False), 1):
            digest.update(x)
            if x != y:
                print(f"{b.name}: line {n} differs\n  before: {x[:600]!r}\n  after:  {y[:600]!r}")
                ok = False
                break
        if ok:
            nb = sum(1 for _ in b.open("rb"))
            na = sum(1 for _ in a.open("rb"))
            if nb != na:
                print(f"{b.name}: {nb} alerts before, {na} after")
                ok = False
        sb, sa = _summary(b.with_suffix(".summary.json")), _summary(a.with_suffix(".summary.json"))
        if sb != sa:
            diff = [k for k in sb if sb.get(k) != sa.get(k)]
            print(f"{b.with_suffix('.summary.json').name}: summaries differ in {diff}")
            ok = False
        if ok:
            print(f"{b.name}: {n} alerts identical (sha256 {digest.hexdigest()[:16]}), summaries equal")
        same &= ok
    return same


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("out", type=Path)
    m.add_argument("--trailhound", default=str(Path(sys.executable).with_name("trailhound")))
    m.add_argument("--cases", default=",".join(cases()))
    c = sub.add_parser("compare")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    a = ap.parse_args(argv)
    if a.cmd == "make":
        make(a.out, a.trailhound, a.cases.split(","))
    else:
        sys.exit(0 if compare(a.before, a.after) else 1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The fuzzing tests with many examples: what CI runs with a small count, run long.

    python bench/fuzz.py [--examples 5000] [-k EXPR] [--seed N]

Runs tests/fuzz under hypothesis's `bench` profile (tests/fuzz/conftest.py), with --examples per
test, and prints each file's outcome and time. A failure prints hypothesis's shrunk example and
the seed to replay it; add it as a regression test beside the code it found wrong.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=5000)
    ap.add_argument("-k", default=None, help="pytest -k expression to pick tests")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    env = {**os.environ, "HYPOTHESIS_PROFILE": "bench", "TRAILHOUND_FUZZ_EXAMPLES": str(args.examples)}
    failed = 0
    for path in sorted((REPO / "tests" / "fuzz").glob("test_*.py")):
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)]
        if args.k:
            cmd += ["-k", args.k]
        if args.seed is not None:
            cmd += [f"--hypothesis-seed={args.seed}"]
        started = time.perf_counter()
        p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        last = (p.stdout.strip().splitlines() or ["(no output)"])[-1]
        print(f"{path.name:<40} {time.perf_counter() - started:8.1f} s  {last}")
        if p.returncode not in (0, 5):
            failed += 1
            print(p.stdout[-4000:])
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

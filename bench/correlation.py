"""Where a hunt's correlation time goes: CPU and wall seconds of each batch kind (events, sequences, new_terms,
threshold, samples) and of the correlators inside them, over warm hunts of the Linux rule set (issue 14).

    python bench/correlation.py [--parquet bench/data/events_1m.parquet] [--repeat 3]

Each figure is the least over the repeats (CPU: the process's, Polars' threads included). To compare a tree
before a change with the same command, put its source first on the path:
`PYTHONPATH=/path/to/old/src python bench/correlation.py`. Parts missing from that tree are not reported.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

#: (module, attribute, label): the parts timed; a nested call of one part counts once
PARTS = [
    ("trailhound.engine.hunt", "search_events_batch", "events batch"),
    ("trailhound.engine.hunt", "search_sequences_batch", "sequences batch"),
    ("trailhound.engine.hunt", "search_samples_batch", "samples batch"),
    ("trailhound.engine.hunt", "search_new_terms_batch", "new_terms batch"),
    ("trailhound.engine.hunt", "search_threshold_batch", "threshold batch"),
    ("trailhound.engine.hunt", "search_threshold", "threshold singles"),
    ("trailhound.engine.correlate.SequenceRun", "feed", "  SequenceRun.feed"),
    ("trailhound.engine.correlate.NewTermsRun", "feed", "  NewTermsRun.feed"),
    ("trailhound.engine.correlate.NewTermsRun", "replay", "  NewTermsRun.replay"),
    ("trailhound.engine.correlate.ThresholdRun", "feed", "  ThresholdRun.feed"),
    # inside the batches above, all kinds together: the filters' rows (evaluated on first use) and their ordering
    ("trailhound.engine.filter.shared.SharedFilters", "rows", "  (all) SharedFilters.rows"),
    ("trailhound.engine.search", "ordered_rows", "  (all) ordered_rows"),
]


def _owner(path: str):
    try:
        return importlib.import_module(path)
    except ImportError:
        module, _, cls = path.rpartition(".")
        return getattr(importlib.import_module(module), cls)


def instrument(cpu: Counter, wall: Counter) -> list[str]:
    depth: Counter = Counter()
    labels = []
    for path, name, label in PARTS:
        owner = _owner(path)
        f = getattr(owner, name, None)
        if f is None:
            continue
        labels.append(label)

        @functools.wraps(f)
        def timed(*a, f=f, label=label, **k):
            depth[label] += 1
            c, w = time.process_time(), time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                depth[label] -= 1
                if not depth[label]:
                    cpu[label] += time.process_time() - c
                    wall[label] += time.perf_counter() - w
        setattr(owner, name, timed)
    return labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parquet", default=os.path.join(HERE, "data", "events_1m.parquet"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from run import HUNT_RULES

    import trailhound
    from trailhound.engine.hunt import hunt  # noqa: F401 - imported before it is instrumented
    from trailhound.rules.check import check_rule
    from trailhound.rules.loader import load_rules

    cpu: Counter = Counter()
    wall: Counter = Counter()
    labels = instrument(cpu, wall)
    from trailhound.engine import hunt as hunt_module

    checks = [check_rule(r) for r in load_rules([HUNT_RULES]).rules]
    hunt_module.hunt(checks, [args.parquet])  # warm: caches, imports
    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.repeat):
        cpu.clear()
        wall.clear()
        c, w = time.process_time(), time.perf_counter()
        hunt_module.hunt(checks, [args.parquet])
        got = {"hunt": (time.process_time() - c, time.perf_counter() - w)}
        got.update({label: (cpu[label], wall[label]) for label in labels})
        best = {k: (min(v[0], best[k][0]), min(v[1], best[k][1])) if k in best else v for k, v in got.items()}
    print(f"trailhound from {os.path.dirname(trailhound.__file__)}; load average {os.getloadavg()[0]:.2f}")
    print(f"{'part':24s} {'CPU s':>7s} {'wall s':>7s}")
    for k, (c, w) in best.items():
        print(f"{k:24s} {c:7.3f} {w:7.3f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Whether two alert files (NDJSON) are the same, byte for byte, but for the time each alert was made.

    python bench/compare_alerts.py BEFORE.ndjson AFTER.ndjson

An alert's `@timestamp` is its creation time (and kibana.alert.start / last_detected / suppression.end equal it when
set then): those are left out, everything else (ids, documents, order) must be identical. Exit 0 when identical.
"""

from __future__ import annotations

import sys

import orjson

NOW_FIELDS = ("kibana.alert.start", "kibana.alert.last_detected", "kibana.alert.suppression.end")


def normalized(path: str) -> list[bytes]:
    out = []
    with open(path, "rb") as fh:
        for line in fh:
            alert = orjson.loads(line)
            now = alert.pop("@timestamp", None)
            for key in NOW_FIELDS:
                if key in alert and alert[key] == now:
                    alert[key] = "<now>"
            out.append(orjson.dumps(alert))
    return out


def main(argv: list[str]) -> int:
    before, after = normalized(argv[1]), normalized(argv[2])
    if before == after:
        print(f"identical: {len(before)} alerts")
        return 0
    print(f"DIFFERENT: {len(before)} vs {len(after)} alerts")
    for i, (x, y) in enumerate(zip(before, after)):
        if x != y:
            print(f"first difference at alert {i}:\n{x[:500]!r}\n{y[:500]!r}")
            break
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))

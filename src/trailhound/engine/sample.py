"""Samples: per composite join key, one event per filter, in any time order.

Keys are visited in Elasticsearch's composite-aggregation order (ascending per position,
null first, strings by byte order); each key yields up to `max_samples_per_key` samples.
Which events fill a sample is not specified by ES (its tests accept alternatives); here
samples are the combinations of each filter's matching events in input order (first
filter slowest), skipping combinations that would use one event twice.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable
from typing import Any

Key = tuple[Hashable, ...]


def key_order(key: Key) -> tuple:
    parts: list[tuple[int, float, str | bytes]] = []
    for v in key:
        if v is None:
            parts.append((0, 0, ""))
        elif isinstance(v, bool):
            parts.append((1, int(v), ""))
        elif isinstance(v, (int, float)):
            parts.append((1, v, ""))
        else:
            parts.append((2, 0, str(v).encode()))
    return tuple(parts)


def build_samples(per_stage: list[dict[Key, list[int]]], max_per_key: int) -> list[tuple[Key, list[Any]]]:
    """`per_stage[i][key]` lists the rows of filter i with that key, in input order."""
    common = set(per_stage[0])
    for d in per_stage[1:]:
        common &= set(d)
    out: list[tuple[Key, list[Any]]] = []
    for key in sorted(common, key=key_order):
        found = 0
        for combo in itertools.product(*(d[key] for d in per_stage)):
            if found == max_per_key:
                break
            if len(set(combo)) == len(combo):
                out.append((key, list(combo)))
                found += 1
    return out

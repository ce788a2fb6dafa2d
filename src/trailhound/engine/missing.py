"""Missing events (`![...]` stages), as ES's TumblingWindow.checkMissingEvents decides them.

Positive stages are matched first; each candidate is then checked against the events of
each missing stage with the same join key:
* a middle missing stage discards the candidate if such an event lies strictly between the
  timestamps of its positive neighbours;
* a leading stage looks for the latest such event before the first positive event, a
  trailing stage for the earliest after the last one; the candidate survives when the hits
  found are absent, or lie farther than maxspan from the other end of the sequence.
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

Key = tuple[Hashable, ...]


@dataclass(frozen=True)
class MissingIndex:
    """Timestamps (ns, sorted) of the events matching each missing stage, per join key."""

    by_stage: dict[int, dict[Key, list[int]]]

    def times(self, stage: int, key: Key) -> list[int]:
        return self.by_stage.get(stage, {}).get(key, [])


def keep_candidate(
    missing: Sequence[bool],
    positive_ts: Sequence[int],
    key: Key,
    index: MissingIndex,
    maxspan_ns: int,
) -> bool:
    """`missing[i]` marks stage i missing; `positive_ts` are the positive events' timestamps."""
    n = len(missing)
    ts_at: list[int | None] = []
    it = iter(positive_ts)
    for m in missing:
        ts_at.append(None if m else next(it))
    first_pos = next(i for i in range(n) if not missing[i])
    last_pos = max(i for i in range(n) if not missing[i])
    first_ts, last_ts = ts_at[first_pos], ts_at[last_pos]
    assert first_ts is not None and last_ts is not None

    leading_hit: int | None = None
    trailing_hit: int | None = None
    for i, m in enumerate(missing):
        if not m:
            continue
        times = index.times(i, key)
        if not times:
            continue
        if first_pos < i < last_pos:
            lo = max(t for t in ts_at[:i] if t is not None)
            hi = min(t for t in ts_at[i + 1:] if t is not None)
            j = bisect.bisect_right(times, lo)
            if j < len(times) and times[j] < hi:
                return False
        elif i < first_pos:
            j = bisect.bisect_left(times, first_ts)
            if j > 0:
                hit = times[j - 1]
                leading_hit = hit if leading_hit is None else max(leading_hit, hit)
        else:
            j = bisect.bisect_right(times, last_ts)
            if j < len(times):
                hit = times[j]
                trailing_hit = hit if trailing_hit is None else min(trailing_hit, hit)

    start_missing, end_missing = missing[0], missing[-1]
    if leading_hit is None and trailing_hit is None:
        return True
    if start_missing and leading_hit is None:
        return True
    if end_missing and trailing_hit is None:
        return True
    if leading_hit is not None and trailing_hit is not None:
        return trailing_hit - leading_hit > maxspan_ns
    if leading_hit is not None:
        return last_ts - leading_hit > maxspan_ns
    assert trailing_hit is not None
    return trailing_hit - first_ts > maxspan_ns

"""Where alerts go: one small interface (`Sink`) that every destination implements.

A sink's destination is checked before the work starts (`output_problem`), so that a bad one (a
missing folder, a directory, no permission, one of the inputs) is an error before a long hunt
rather than after it; the sink then takes alerts batch by batch and is closed once. NDJSON files
and standard output live here now; syslog, webhook and Elasticsearch `_bulk` sinks will implement
the same interface.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from .ndjson import NdjsonSink, SinkError, is_stdout, open_output, output_problem

__all__ = ["NdjsonSink", "Sink", "SinkError", "is_stdout", "open_output", "output_problem"]


class Sink(Protocol):
    def write(self, alerts: Iterable[dict]) -> None:
        """Deliver these alerts (one rule's batch, in order)."""

    def close(self) -> None:
        """Flush and release the destination; called once, after the last write."""

"""Where alerts go: one small interface (`Sink`) that every destination implements.

A sink is opened before the work starts, so that a bad destination (a missing folder, a directory,
no permission) is an error before a long hunt rather than after it; it then takes alerts batch by
batch and is closed once. NDJSON files and standard output live here now; syslog, webhook and
Elasticsearch `_bulk` sinks will implement the same interface.
"""

from __future__ import annotations

from typing import Iterable, Protocol

from .ndjson import NdjsonSink, SinkError, check_output_path, open_output

__all__ = ["NdjsonSink", "Sink", "SinkError", "check_output_path", "open_output"]


class Sink(Protocol):
    def write(self, alerts: Iterable[dict]) -> None:
        """Deliver these alerts (one rule's batch, in order)."""

    def close(self) -> None:
        """Flush and release the destination; called once, after the last write."""

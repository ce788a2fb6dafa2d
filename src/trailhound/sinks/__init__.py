"""Where alerts go: one small interface (`Sink`) that every destination implements.

A sink's destination is checked before the work starts (`output_problem`), so that a bad one (a
missing folder, a directory, no permission, one of the inputs) is an error before a long hunt
rather than after it; the sink then takes alerts batch by batch and is closed once.

Destinations: NDJSON files and standard output (`ndjson`), a size-rotated NDJSON file
(`rotating`), RFC 5424 syslog (`syslog`), an HTTP webhook with an on-disk spool (`webhook`) and
Elasticsearch's `_bulk` API (`bulk`), named on the command line by a spec (`spec.parse_sink`).
Sinks that can fail to deliver (all but the plain NDJSON file, whose errors raise) count what
they delivered and what they could not in a `delivery.Delivery` (`delivery_of`), which the
command reports; they never raise on a failed delivery.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from .delivery import Delivery
from .ndjson import NdjsonSink, SinkError, is_stdout, open_output, output_problem
from .spec import SinkSpec, SinkSpecError, parse_sink

__all__ = ["Delivery", "NdjsonSink", "Sink", "SinkError", "SinkSpec", "SinkSpecError", "delivery_of", "is_stdout",
           "open_output", "output_problem", "parse_sink"]


class Sink(Protocol):
    def write(self, alerts: Iterable[dict]) -> None:
        """Deliver these alerts (one rule's batch, in order)."""

    def close(self) -> None:
        """Flush and release the destination; called once, after the last write."""


def delivery_of(sink: Sink) -> Delivery | None:
    """The sink's delivery figures, or None for a sink that keeps none (it raises on failure)."""
    d = getattr(sink, "delivery", None)
    return d if isinstance(d, Delivery) else None

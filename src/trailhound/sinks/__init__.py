"""Where alerts go: one small interface (`Sink`) that every destination implements.

A sink's destination is checked before the work starts (`output_problem`), so that a bad one (a
missing folder, a directory, no permission, one of the inputs) is an error before a long hunt
rather than after it; the sink then takes alerts batch by batch and is closed once.

Destinations: NDJSON files and standard output (`ndjson`), a size-rotated NDJSON file
(`rotating`), RFC 5424 syslog (`syslog`), an HTTP webhook with an on-disk spool (`webhook`) and
Elasticsearch's `_bulk` API (`bulk`), named on the command line by a spec (`spec.parse_sink`).
Every sink here counts what it delivered and what it could not in a `delivery.Delivery` (its
`delivery` attribute, read with `delivery_of`), which the command reports (exit 2 when an alert
was not delivered); none raises on a failed delivery, so a collector that is down never stops a
hunt or a watch. (A closed standard output, `| head`, still ends the command, as before.)
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
    """The sink's delivery figures, or None for a sink from elsewhere that keeps none."""
    d = getattr(sink, "delivery", None)
    return d if isinstance(d, Delivery) else None

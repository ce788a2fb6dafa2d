"""The Python API: run an EQL (or KQL) query over event files.

    from trailhound.api import search
    result = search('process where process.name == "ssh"', ["events.ndjson"])
    for hit in result.hits: print(result.documents(hit))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from .engine.search import Hit, SearchOptions, needed_fields
from .engine.search import search as search_frame
from .lang import ir
from .lang.kql import parse_kql_query
from .lang.parser import parse
from .sources import EventTable, ReadOptions, load_events


@dataclass
class QueryResult:
    kind: str  # events | sequences | samples
    hits: list[Hit]
    table: EventTable
    warnings: list[str] = field(default_factory=list)

    def documents(self, hit: Hit) -> list[dict | None]:
        """The hit's event documents, as read; None where a missing event stands."""
        present = [r for r in hit.rows if r is not None]
        docs = dict(zip(present, self.table.documents(present)))
        return [None if r is None else docs[r] for r in hit.rows]


def search(
    query: str | ir.Query,
    paths: Sequence[str | os.PathLike],
    *,
    size: int | None = None,
    tail: bool = False,
    tiebreaker: str | None = None,
    timestamp_field: str = "@timestamp",
    event_category_field: str = "event.category",
    max_samples_per_key: int = 1,
    language: str = "eql",
    input_format: str | None = None,
    read_options: ReadOptions | None = None,
) -> QueryResult:
    """Parse `query` (EQL, or KQL with language="kuery"), load only the fields it needs, run it.

    Input files are ECS JSON or any format `trailhound normalize` reads (detected per file, or
    `input_format` for all)."""
    if isinstance(query, str):
        q = parse_kql_query(query) if language == "kuery" else parse(query)
    else:
        q = query
    options = SearchOptions(
        timestamp_field=timestamp_field,
        tiebreaker_field=tiebreaker,
        event_category_field=event_category_field,
        size=size,
        result_position="tail" if tail else "head",
        max_samples_per_key=max_samples_per_key,
    )
    table = load_events(paths, needed_fields(q, options), format=input_format, options=read_options)
    result = search_frame(q, table.frame, options)
    return QueryResult(result.kind, result.hits, table, result.warnings)

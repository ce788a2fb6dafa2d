"""Run a query over in-memory documents and return their `id`s, for the unit tests."""

from trailhound.engine.search import SearchOptions, search
from trailhound.lang.parser import parse
from trailhound.sources import events_from_documents


def run(query: str, docs: list[dict], **options):
    table = events_from_documents(docs)
    result = search(parse(query), table.frame, SearchOptions(**options))
    ids = {row: doc.get("id") for row, doc in enumerate(docs)}
    if result.kind == "events":
        return [ids[h.rows[0]] for h in result.hits]
    return [([None if r is None else ids[r] for r in h.rows], list(h.join_keys or ())) for h in result.hits]


def ev(i: int, ts: int, category: str = "process", **fields) -> dict:
    """A document with id i, @timestamp i ms (epoch), and event.category."""
    return {"id": i, "@timestamp": ts, "event": {"category": category}, **fields}

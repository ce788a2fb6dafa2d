"""Event sources: loaders that turn event files into frames for the engine."""

from trailhound.sources.ecs_json import (
    MAX_SKIPPED_KEPT,
    EventTable,
    InputStats,
    LoadReport,
    Skipped,
    events_from_documents,
    load_events,
)
from trailhound.sources.formats import ReadOptions
from trailhound.sources.inputs import SourceError

__all__ = [
    "MAX_SKIPPED_KEPT",
    "EventTable",
    "InputStats",
    "LoadReport",
    "ReadOptions",
    "Skipped",
    "SourceError",
    "events_from_documents",
    "load_events",
]

"""Enrichment between the sources and the engine: fields the raw telemetry lacks, rebuilt from context."""

from trailhound.enrich.process_tree import ProcessTree

__all__ = ["ProcessTree"]

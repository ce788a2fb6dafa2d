"""Trailhound: Elastic Security detections (EQL, KQL, Sigma) run anywhere, with Elasticsearch's semantics."""

__version__ = "0.1.0"

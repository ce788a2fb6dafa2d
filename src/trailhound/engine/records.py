"""Sigma rules over raw audit records (`service: auditd`): their own events, one per record
(sources/auditd/raw.py), searched as one batch, apart from the ECS events the other rules read.
A hunt without such a rule never reads them: the records are only read when a rule needs them."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..lang import ir
from ..rules.check import RuleCheck
from ..rules.exceptions import ExceptionList, excluding, items_for
from ..sources import ReadOptions

if TYPE_CHECKING:
    from .runs import RuleRun


def reads_records(check: RuleCheck) -> bool:
    """Whether the rule reads raw audit records (its logsource maps to them in lang/sigma/linux.yml)."""
    from ..rules.check import reads_audit_records

    return reads_audit_records(check.rule)


def hunt_records(checks: Sequence[RuleCheck], paths: Sequence[str | os.PathLike],
                 exceptions: Sequence[ExceptionList] = (), input_format: str | None = None,
                 read_options: ReadOptions | None = None) -> list[RuleRun]:
    """One RuleRun per check, its hits rows of its own table (`RuleRun.table`)."""
    from ..sources import events_from_documents
    from ..sources.auditd.raw import OWN_FIELDS, raw_documents
    from .runs import RuleRun
    from .search import SearchOptions, needed_fields, search_events_batch

    options = SearchOptions()
    runs = [RuleRun(c) for c in checks]
    queries: list[ir.EventQuery] = []
    fields: set[str] = set(OWN_FIELDS)
    live: list[RuleRun] = []
    for run in runs:
        query = run.check.query
        assert isinstance(query, ir.EventQuery)  # Sigma detections are event queries
        try:
            items = items_for(run.check.rule, exceptions)
        except Exception as e:  # noqa: BLE001 - a rule's bad exception list is that rule's error
            run.fail(e)
            continue
        restricted = excluding(query, items)
        assert isinstance(restricted, ir.EventQuery)
        query = restricted
        run.exceptions = items
        queries.append(query)
        live.append(run)
        fields.update(needed_fields(query, options))
    if not live:
        return runs
    t0 = time.perf_counter()
    table = events_from_documents(raw_documents(paths, input_format, read_options), sorted(fields),
                                  source="audit records")
    try:
        results = search_events_batch(queries, table.frame, options)
    except Exception:  # noqa: BLE001 - one rule that breaks the batch: each alone, so the others still run
        results = []
        for q in queries:
            try:
                results.extend(search_events_batch([q], table.frame, options))
            except Exception as e:  # noqa: BLE001
                results.append(e)  # type: ignore[arg-type]
    share = (time.perf_counter() - t0) / len(live)
    for run, got in zip(live, results):
        run.table = table
        run.seconds = share
        if isinstance(got, Exception):
            run.fail(got)
        else:
            run.record(got)
    return runs

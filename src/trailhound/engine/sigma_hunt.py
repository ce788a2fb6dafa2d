"""Sigma correlation rules in a hunt: after the other rules ran, each correlation reads the hits of the
rules it names (by `name` or `id`), their group-by and value fields from the hit documents, and runs
its SigmaCorrelationRun. Its hits join their events like a sequence (a shell alert with building blocks).
The named rules raise no alerts of their own unless the correlation says `generate: true`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..rules.check import RuleCheck
from ..rules.errors import RuleError, UnsupportedError
from ..sources import EventTable

if TYPE_CHECKING:
    from .hunt import RuleRun


def is_correlation(check: RuleCheck) -> bool:
    return check.rule.type == "sigma_correlation"


def run_correlations(checks: Sequence[RuleCheck], runs: Sequence[RuleRun], table: EventTable) -> list[RuleRun]:
    """One RuleRun per correlation check; the runs of the rules they name lose their hits unless some
    correlation naming them generates them."""
    import time

    import yaml

    from ..alerts.build import field_value
    from ..compile.semantics import parse_date_ns
    from ..lang.sigma.correlation import correlation_spec
    from .hunt import RuleRun
    from .sigma_correlation import BaseEvent, SigmaCorrelationRun

    by_ref: dict[str, RuleRun] = {}
    for run in runs:
        rule = run.check.rule
        if rule.language == "sigma":
            by_ref.setdefault(rule.rule_id, run)
            if name := (rule.extra.get("sigma") or {}).get("name"):
                by_ref.setdefault(str(name), run)
    correlation_refs = {c.rule.rule_id for c in checks} | {
        str(n) for c in checks if (n := (c.rule.extra.get("sigma") or {}).get("name"))}
    out: list[RuleRun] = []
    quiet: dict[int, tuple[RuleRun, str]] = {}  # runs whose own alerts a correlation takes
    loud: set[int] = set()
    for check in checks:
        corr = RuleRun(check)
        out.append(corr)
        t0 = time.perf_counter()
        try:
            spec = correlation_spec(yaml.safe_load(check.rule.query or ""))
            bases = []
            for ref in spec.references:
                base = by_ref.get(ref)
                if base is None and ref in correlation_refs:
                    raise UnsupportedError(f"it correlates the correlation {ref!r}: correlations of correlations "
                                           "are not supported yet")
                if base is None:
                    raise RuleError(check.rule.source, "correlation",
                                    f"names rule {ref!r}, which is not among the rules loaded (by name or id)")
                if base.status != "ok":
                    raise RuleError(check.rule.source, "correlation",
                                    f"rule {ref!r} did not run: {base.error or base.unsupported}")
                bases.append(base)
            tables = {id(b.table if b.table is not None else table) for b in bases}
            if len(tables) > 1:
                raise RuleError(check.rule.source, "correlation", "its rules read different events (raw audit "
                                "records and ECS events); a correlation joins rules over the same events")
            source = bases[0].table if bases[0].table is not None else table
            events: list[BaseEvent] = []
            ungrouped = 0
            rows = sorted({r for b in bases for h in b.hits for r in h.rows if r is not None})
            docs = dict(zip(rows, source.documents(rows)))
            for i, (ref, base) in enumerate(zip(spec.references, bases)):
                for h in base.hits:
                    row = h.rows[0]
                    if row is None:
                        continue
                    doc = docs[row]
                    ts = parse_date_ns(field_value(doc, base.timestamp_field), True)
                    if ts is None:
                        ungrouped += 1
                        continue
                    key = tuple(field_value(doc, spec.field_for(g, ref)) for g in spec.group_by)
                    if any(v is None for v in key):
                        ungrouped += 1
                        continue
                    key = tuple(str(v) if not isinstance(v, list) else str(v[0]) if v else "" for v in key)
                    value = field_value(doc, spec.field_for(spec.field, ref)) if spec.field else None
                    events.append(BaseEvent(ts // 1_000_000, row, i, key, value))
            events.sort(key=lambda e: (e.ts, e.row, e.rule))
            state = SigmaCorrelationRun(spec)
            corr.hits = state.feed(events) + state.finish()
            corr.kind, corr.table, corr.timestamp_field = "sequences", source, bases[0].timestamp_field
            if ungrouped:
                corr.warnings.append(f"{ungrouped} events of its rules had no timestamp or no group-by value "
                                     f"({', '.join(spec.group_by)}) and were left out")
            for base in bases:
                (loud.add(id(base)) if spec.generate else quiet.setdefault(id(base), (base, check.rule.name)))
        except Exception as e:  # noqa: BLE001 - one correlation that cannot run says why; the others go on
            corr.fail(e)
        corr.seconds = time.perf_counter() - t0
    for ident, (base, name) in quiet.items():
        if ident not in loud and base.hits:
            base.warnings.append(f"{len(base.hits)} hits feed the correlation {name!r}; no alerts of their own "
                                 "(generate: false)")
            base.hits = []
    return out

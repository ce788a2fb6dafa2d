"""Sigma correlation rules in a hunt: after the other rules ran, each correlation reads the hits of the
rules it names (by `name` or `id`), their group-by and value fields from the hit documents, and runs
its SigmaCorrelationRun. Its hits join their events like a sequence (a shell alert with building blocks).
The named rules raise no alerts of their own unless the correlation says `generate: true`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..rules.check import RuleCheck
from ..rules.errors import RuleError
from ..sources import EventTable

if TYPE_CHECKING:
    from ..lang.sigma.correlation import CorrelationSpec
    from .runs import RuleRun
    from .sigma_correlation import BaseEvent


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
    from .runs import RuleRun
    from .sigma_correlation import BaseEvent, SigmaCorrelationRun

    by_ref: dict[str, RuleRun] = {}
    for run in runs:
        rule = run.check.rule
        if rule.language == "sigma":
            by_ref.setdefault(rule.rule_id, run)
            if name := (rule.extra.get("sigma") or {}).get("name"):
                by_ref.setdefault(str(name), run)
    out = [RuleRun(check) for check in checks]
    specs: dict[int, CorrelationSpec] = {}  # id(correlation run) → its spec, once it ran
    quiet: dict[int, tuple[RuleRun, str]] = {}  # runs whose own alerts a correlation takes
    loud: set[int] = set()
    for corr in _in_dependency_order(out):
        check = corr.check
        t0 = time.perf_counter()
        try:
            if corr.error:  # a cycle, found while ordering
                continue
            spec = correlation_spec(yaml.safe_load(check.rule.query or ""))
            bases = []
            for ref in spec.references:
                base = by_ref.get(ref)
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

            def ms(doc: dict, field: str) -> int | None:
                ns = parse_date_ns(field_value(doc, field), True)
                return None if ns is None else ns // 1_000_000

            for i, (ref, base) in enumerate(zip(spec.references, bases)):
                inner = specs.get(id(base))
                if inner is not None:  # a correlation's alerts are this one's events
                    events += _alert_events(check, spec, ref, i, base, inner, docs, ms)
                    continue
                names = _field_names(base)
                for h in base.hits:
                    row = h.rows[0]
                    if row is None:
                        continue
                    doc = docs[row]
                    ts = ms(doc, base.timestamp_field)
                    if ts is None:
                        ungrouped += 1
                        continue
                    key = tuple(field_value(doc, _mapped(names, spec.field_for(g, ref))) for g in spec.group_by)
                    if any(v is None for v in key):
                        ungrouped += 1
                        continue
                    key = tuple(str(v) if not isinstance(v, list) else str(v[0]) if v else "" for v in key)
                    value = (field_value(doc, _mapped(names, spec.field_for(spec.field, ref))) if spec.field
                             else None)
                    events.append(BaseEvent(ts, row, i, key, value))
            events.sort(key=lambda e: (e.ts, e.row, e.rule))
            state = SigmaCorrelationRun(spec)
            corr.hits = state.feed(events) + state.finish()
            corr.kind, corr.table, corr.timestamp_field = "sequences", source, bases[0].timestamp_field
            specs[id(corr)] = spec
            if ungrouped:
                corr.warnings.append(f"{ungrouped} events of its rules had no timestamp or no group-by value "
                                     f"({', '.join(spec.group_by)}) and were left out")
            for base in bases:
                (loud.add(id(base)) if spec.generate else quiet.setdefault(id(base), (base, check.rule.name)))
        except Exception as e:  # noqa: BLE001 - one correlation that cannot run says why; the others go on
            corr.fail(e)
        finally:
            corr.seconds = time.perf_counter() - t0
            by_ref.setdefault(check.rule.rule_id, corr)
            if name := (check.rule.extra.get("sigma") or {}).get("name"):
                by_ref.setdefault(str(name), corr)
    for ident, (base, name) in quiet.items():
        if ident not in loud and base.hits:
            base.warnings.append(f"{len(base.hits)} hits feed the correlation {name!r}; no alerts of their own "
                                 "(generate: false)")
            base.hits = []
    return out


def _in_dependency_order(runs: list[RuleRun]) -> list[RuleRun]:
    """The correlation runs, each after the correlations it names (by name or id); the runs of a cycle
    fail with the cycle named (and come last)."""
    import yaml

    refs: dict[str, RuleRun] = {}
    names: dict[int, list[str]] = {}
    for run in runs:
        rule = run.check.rule
        refs.setdefault(rule.rule_id, run)
        if name := (rule.extra.get("sigma") or {}).get("name"):
            refs.setdefault(str(name), run)
        try:
            doc = yaml.safe_load(rule.query or "")
            named = (doc.get("correlation") or {}).get("rules") or []
            names[id(run)] = [str(n) for n in ([named] if isinstance(named, str) else named)]
        except (yaml.YAMLError, AttributeError):
            names[id(run)] = []  # correlation_spec says what is wrong
    ordered: list[RuleRun] = []
    state: dict[int, str] = {}  # id → "open" while its references are ordered, "done" after

    def visit(run: RuleRun, path: list[RuleRun]) -> None:
        if state.get(id(run)) == "done":
            return
        if state.get(id(run)) == "open":
            cycle = path[path.index(run):] + [run]
            for r in cycle[:-1]:
                if not r.error:
                    r.fail(RuleError(r.check.rule.source, "correlation", "correlations name each other in a cycle: "
                                     + " → ".join(repr(x.check.rule.name) for x in cycle)))
            return
        state[id(run)] = "open"
        for ref in names[id(run)]:
            if (inner := refs.get(ref)) is not None and inner is not run:
                visit(inner, [*path, run])
            elif inner is run:
                run.fail(RuleError(run.check.rule.source, "correlation", "a correlation cannot name itself"))
        state[id(run)] = "done"
        ordered.append(run)

    for run in runs:
        visit(run, [])
    return ordered


def _alert_events(check: RuleCheck, spec: CorrelationSpec, ref: str, i: int, inner: RuleRun,
                  inner_spec: CorrelationSpec, docs: dict, ms) -> list[BaseEvent]:
    """The alerts of the correlation `inner` as events of `spec` (README, "Sigma"): at the time of their
    last event, starting at their first, with their group-by values as their only fields."""
    from .sigma_correlation import BaseEvent

    carried = list(inner_spec.group_by)

    def field(name: str) -> int:
        mapped = spec.field_for(name, ref)
        if mapped not in carried:
            raise RuleError(check.rule.source, "correlation",
                            f"{name!r} of the correlation {ref!r}: its alerts carry only their group-by fields "
                            f"({', '.join(carried) or 'none'})")
        return carried.index(mapped)

    at = [field(g) for g in spec.group_by]
    value_at = field(spec.field) if spec.field else None
    out = []
    for h in inner.hits:
        rows = tuple(r for r in h.rows if r is not None)
        times = [t for r in rows if (t := ms(docs[r], inner.timestamp_field)) is not None]
        if not rows or not times:
            continue
        keys = tuple(h.join_keys or ())
        out.append(BaseEvent(max(times), max(rows), i, tuple(keys[j] for j in at),
                             keys[value_at] if value_at is not None else None, min(times), rows))
    return out


def _field_names(base: RuleRun) -> dict[str, str]:
    """Sigma field name → the field of its events, for the logsource of a correlated rule: a correlation's
    group-by, aliases and value field are named in its rules' taxonomy (as pySigma's field mappings treat
    them), so `pam_rhost` of an auth rule is the events' `source.ip`. A name the table lacks is used as it is."""
    from ..lang.sigma.mapping import linux

    logsource = (base.check.rule.extra.get("sigma") or {}).get("logsource") or {}
    entry = linux().select(logsource)
    return dict(entry.fields) if entry is not None else {}


def _mapped(names: dict[str, str], name: str) -> str:
    return names.get(name, name)

"""What `trailhound convert` does for one input (a rule, a Sigma file, a query), as values: each
output is a `Converted` (text, file name, caveats) or a `ConversionRefused` (the reason). No I/O."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..lang import ir
from . import ConversionRefused
from .eql import print_query
from .sigma import ID_NAMESPACE, Meta, SigmaExport, query_to_sigma, rule_to_sigma, slug

#: file extension per target, for `-o DIR`
EXTENSIONS = {"sigma": ".yml", "eql": ".eql", "toml": ".toml", "splunk": ".spl", "kusto": ".kql", "esql": ".esql",
              "lucene": ".lucene", "kusto-xdr": ".xdr.kql"}
_SEVERITY = {"informational": "low", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}


@dataclass
class Converted:
    stem: str  # the output file's name without extension
    title: str
    text: str
    warnings: list[str] = field(default_factory=list)


@dataclass
class Refused:
    stem: str
    title: str
    reason: str


Result = Converted | Refused


def from_rule(rule: Any, target: str, stem: str) -> Result:
    """A detection-rules Rule in `target`."""
    try:
        return Converted(stem, rule.name, *_rule(rule, target))
    except ConversionRefused as e:
        return Refused(stem, rule.name, e.reason)


def _rule(rule: Any, target: str) -> tuple[str, list[str]]:
    from ..rules.check import parse_rule_query

    if target == "sigma":
        export = rule_to_sigma(rule)
        return export.yaml(), export.warnings
    if target == "toml":
        from .toml import dumps, rule_table

        return dumps({"metadata": dict(rule.metadata), "rule": rule_table(rule)}), []
    if target == "eql":
        if rule.type not in ("eql", "query"):
            raise ConversionRefused(f"a {rule.type} rule is not one EQL query (it counts or compares over time)")
        if rule.language not in ("eql", "kuery", None):
            raise ConversionRefused(f"{rule.language} queries are not converted (eql and kuery are)")
        return print_query(parse_rule_query(rule)) + "\n", []
    siem = _siem(target)
    out = siem.convert(rule_to_sigma(rule, siem.flavor))
    return out.query + "\n", out.warnings


def _siem(target: str) -> Any:
    from .siem import TARGETS, available

    missing = available(target)
    if missing:
        raise ConversionRefused(f"the {target} backend is not installed: {missing}")
    return TARGETS[target]()


def query_meta(text: str, language: str) -> Meta:
    return Meta(str(uuid.uuid5(ID_NAMESPACE, f"{language}:{text}")), "Converted query",
                f"Converted from {language} by trailhound convert.")


def from_query(q: ir.Query, text: str, language: str, target: str) -> Result:
    """A parsed EQL or KQL query in `target` (a Sigma rule of its own, a minimal TOML rule...)."""
    meta = query_meta(text, language)
    try:
        if target == "eql":
            return Converted("query", meta.title, print_query(q) + "\n")
        if target == "toml":
            from .toml import dumps, new_rule

            kind = "eql" if language == "eql" else "query"
            return Converted("query", meta.title, dumps(new_rule(text, language, rule_type=kind)))
        if target == "sigma":
            export = query_to_sigma(q, meta)
            warnings = export.warnings
            return Converted("query", meta.title, export.yaml(), warnings)
        siem = _siem(target)
        out = siem.convert(query_to_sigma(q, meta, flavor=siem.flavor))
        return Converted("query", meta.title, out.query + "\n", out.warnings)
    except ConversionRefused as e:
        return Refused("query", meta.title, e.reason)


def from_sigma(text: str, stem: str, target: str, source: str | None = None,
               placeholders: Mapping[str, Sequence[str]] | None = None) -> list[Result]:
    """Each rule a Sigma file alerts on, in `target`; `source` (the file) names what has no title;
    `placeholders` gives `|expand` placeholders their values (to Sigma the rule is written as it is, placeholders
    and all: they are the portable form)."""
    import yaml

    from .sigma import check_sigma

    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        return [Refused(stem, source or stem, f"not YAML: {where}{getattr(e, 'problem', None) or e}")]
    if not docs or not all(isinstance(d, dict) for d in docs):
        return [Refused(stem, source or stem, "not a Sigma rule: each YAML document must be a mapping (title, logsource, ...)")]
    if target in ("sigma", "splunk", "kusto", "kusto-xdr"):
        title = str(docs[-1].get("title", source or stem))
        problems = check_sigma(text)
        if problems:
            return [Refused(stem, title, "pySigma refuses it: " + "; ".join(problems[:3]))]
        if target == "sigma":
            return [Converted(stem, title, text if text.endswith("\n") else text + "\n")]
        try:
            out = _siem(target).convert(SigmaExport(docs), placeholders)
        except ConversionRefused as e:
            return [Refused(stem, title, e.reason)]
        return [Converted(stem, title, out.query + "\n", out.warnings)]
    from .sigma_in import sigma_queries

    try:
        found = sigma_queries(text, placeholders)
    except ConversionRefused as e:
        return [Refused(stem, source or stem, e.reason)]
    results: list[Result] = []
    many = len(found) > 1
    for item in found:
        if isinstance(item, ConversionRefused):
            results.append(Refused(stem, source or stem, item.reason))
            continue
        name = f"{stem}_{slug(item.title)}" if many else stem
        try:
            if target == "toml":
                results.append(Converted(name, item.title, *_sigma_toml(item)))
                continue
            if item.query is None:
                raise ConversionRefused(item.no_eql or "no EQL form")
            eql = print_query(item.query)
            if target == "eql":
                results.append(Converted(name, item.title, eql + "\n", item.warnings))
            else:  # Elastic's languages: from our IR, with ECS names
                siem = _siem(target)
                meta = Meta(item.rule_id or str(uuid.uuid5(ID_NAMESPACE, eql)), item.title)
                out = siem.convert(query_to_sigma(item.query, meta, flavor=siem.flavor))
                results.append(Converted(name, item.title, out.query + "\n", item.warnings + out.warnings))
        except ConversionRefused as e:
            results.append(Refused(name, item.title, e.reason))
    return results


def _sigma_toml(item: Any) -> tuple[str, list[str]]:
    """A Sigma output rule as detection-rules TOML: a threshold rule (KQL) for a count correlation
    when its events have a KQL form, else an EQL rule."""
    from .kql import filter_kql
    from .toml import dumps, new_rule

    extra: dict[str, Any] = {}
    if item.references:
        extra["references"] = item.references
    if item.author:
        extra["author"] = [a.strip() for a in item.author.split(",")]
    if item.falsepositives:
        extra["false_positives"] = item.falsepositives
    if item.tags:
        extra["tags"] = ["Sigma"] + item.tags
    warnings = list(item.warnings)
    description = (item.description or item.title).strip()
    severity = _SEVERITY.get(item.level or "", "medium")
    doc = None
    if item.threshold is not None and item.base is not None:
        try:
            kql = filter_kql(item.base)
        except ConversionRefused as e:
            if item.query is None:
                raise ConversionRefused(f"as a threshold rule its events need a KQL query: {e.reason}") from None
            warnings.append(f"not a threshold rule (its events have no KQL form: {e.reason}); written as an EQL "
                            "sequence with runs")
        else:
            span = item.timespan or "5m"
            doc = new_rule(kql, "kuery", name=item.title, rule_type="threshold", description=description,
                           severity=severity, extra={**extra, "from": f"now-{span}", "interval": span,
                                                     "threshold": item.threshold})
            warnings.append(f"Kibana counts a threshold over each run's window (every {span}, looking back {span}): "
                            "a burst across two runs is not counted together")
    if doc is None:
        if item.query is None:
            raise ConversionRefused(item.no_eql or "no EQL form")
        doc = new_rule(print_query(item.query), "eql", name=item.title, description=description, severity=severity,
                       extra=extra)
    if item.rule_id:
        doc["rule"]["rule_id"] = item.rule_id
    if item.date:
        doc["metadata"].update({"creation_date": item.date, "updated_date": item.modified or item.date})
    return dumps(doc), warnings

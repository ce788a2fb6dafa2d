"""Rules as detection-rules TOML: `[metadata]`, `[rule]` with its keys sorted as Elastic's files
have them, the query as a literal block, `[[rule.threat]]` tables last. Written by hand: the
standard library reads TOML but does not write it, and the subset needed here is small."""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Any

from .sigma import ID_NAMESPACE

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
_ESC = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}


def key(k: str) -> str:
    return k if _BARE_KEY.match(k) else string(k)


def string(s: str) -> str:
    return '"' + "".join(_ESC.get(c, c if ord(c) >= 0x20 and c != "\x7f" else f"\\u{ord(c):04x}") for c in s) + '"'


def multiline(s: str) -> str:
    """A multi-line text: a literal block when nothing in it needs escaping, else a basic block."""
    if "'''" not in s and all(c == "\n" or c == "\t" or (ord(c) >= 0x20 and c != "\x7f") for c in s):
        return "'''\n" + s.strip("\n") + "\n'''"
    body = "".join(c if c == "\n" else _ESC.get(c, c if ord(c) >= 0x20 and c != "\x7f" else f"\\u{ord(c):04x}")
                   for c in s.strip("\n"))
    return '"""\n' + body + '\n"""'


def value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return multiline(v) if "\n" in v else string(v)
    if isinstance(v, list):
        items = [value(x) for x in v]
        one = "[" + ", ".join(items) + "]"
        if len(one) <= 100:
            return one
        return "[\n" + "".join(f"    {i},\n" for i in items) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, date):
        return v.isoformat()
    raise TypeError(f"no TOML form for {type(v).__name__}")


def _is_table_list(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _table(path: str, table: dict[str, Any], out: list[str], header: str | None) -> None:
    if header is not None:
        out.append(header)
    plain = {k: v for k, v in table.items() if not isinstance(v, dict) and not _is_table_list(v)}
    last = [k for k in ("query",) if k in plain]  # the query reads best after the other keys
    for k in sorted(k for k in plain if k not in last) + last:
        out.append(f"{key(k)} = {value(plain[k])}")
    for k, v in table.items():
        sub = f"{path}.{key(k)}" if path else key(k)
        if isinstance(v, dict):
            out.append("")
            _table(sub, v, out, f"[{sub}]")
        elif _is_table_list(v):
            for item in v:
                out.append("")
                _table(sub, item, out, f"[[{sub}]]")


def dumps(doc: dict[str, Any]) -> str:
    """A TOML document of tables (`metadata`, `rule`...)."""
    out: list[str] = []
    for name, table in doc.items():
        if out:
            out.append("")
        _table(key(name), table, out, f"[{key(name)}]")
    return "\n".join(out) + "\n"


def rule_table(rule: Any) -> dict[str, Any]:
    """A loaded Rule back to its `[rule]` table (keys it was given, in detection-rules' names)."""
    table: dict[str, Any] = dict(rule.extra)
    simple = {
        "rule_id": rule.rule_id, "name": rule.name, "type": rule.type, "severity": rule.severity,
        "risk_score": rule.risk_score, "description": rule.description, "language": rule.language,
        "query": rule.query, "index": list(rule.index), "from": rule.lookback, "interval": rule.interval,
        "timestamp_override": rule.timestamp_override, "event_category_override": rule.event_category_override,
        "tiebreaker_field": rule.tiebreaker_field, "timestamp_field": rule.timestamp_field,
        "building_block_type": rule.building_block_type, "new_terms": rule.new_terms, "threshold": rule.threshold,
        "alert_suppression": rule.alert_suppression, "note": rule.note, "setup": rule.setup,
        "references": list(rule.references), "false_positives": list(rule.false_positives),
        "author": list(rule.author), "license": rule.license, "tags": list(rule.tags), "threat": list(rule.threat),
        "exceptions_list": list(rule.exceptions_list), "severity_mapping": list(rule.severity_mapping),
        "risk_score_mapping": list(rule.risk_score_mapping), "rule_name_override": rule.rule_name_override,
    }
    table.update({k: v for k, v in simple.items() if v not in (None, [], {})})
    if rule.max_signals != 100:
        table["max_signals"] = rule.max_signals
    return table


def new_rule(query: str, language: str, *, name: str = "Converted query", rule_type: str = "eql",
             description: str = "Converted by trailhound convert.", severity: str = "medium",
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A minimal detection-rules document around a query; the rule_id derives from the query."""
    risk = {"low": 21, "medium": 47, "high": 73, "critical": 99}.get(severity, 47)
    table: dict[str, Any] = {
        "rule_id": str(uuid.uuid5(ID_NAMESPACE, f"{language}:{query}")), "name": name, "type": rule_type,
        "language": language, "severity": severity, "risk_score": risk, "description": description,
        "from": "now-9m", "index": ["logs-*", "auditbeat-*", "logs-endpoint.events.*", "trailhound-*"],
    }
    table.update(extra or {})
    table["query"] = "\n" + query.strip("\n") + "\n"
    return {"metadata": {"maturity": "development"}, "rule": table}

"""What a report shows, as plain JSON-ready data built from alert documents.

The page's script reads this data; nothing in it is markup. Alert documents are stored compactly
so that 100,000 alerts stay a file a browser opens in seconds:

* the rule's part of every alert (`kibana.alert.rule.*`) is kept once per rule;
* `kibana.alert.original_event.*` (a copy of `event.*`), `kibana.alert.ancestors` (ids of the
  source events) and the alert's own creation time are left out;
* every distinct value is stored once, in `values`; a document is its shape (the list of its
  field names, shared by alerts of one rule) followed by one value reference per field: an index
  into `values`, or a list of indexes for an array of plain values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..alerts.build import flatten

SEVERITIES = ["low", "medium", "high", "critical"]
RULE_PREFIX = "kibana.alert.rule."
_DROPPED_PREFIXES = (RULE_PREFIX, "kibana.alert.original_event.")
# the alert's creation time (one value for the run, kept in `meta`); the source events' ids, hashes
# no one reads (a tenth of the size of 100,000 alerts)
_DROPPED = {"@timestamp", "kibana.alert.ancestors"}


def flat_alert(doc: Mapping) -> dict[str, Any]:
    """An alert document with every field as a dotted key (nested, dotted or mixed input)."""
    return flatten(dict(doc))


def _ms(text: Any) -> int | None:
    """Epoch milliseconds of an ISO-8601 time, None when it is not one."""
    if isinstance(text, list):
        text = text[0] if text else None
    if isinstance(text, int | float) and not isinstance(text, bool):
        return int(text)
    if not isinstance(text, str):
        return None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        from datetime import UTC

        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in (value if isinstance(value, list) else [value]) if v is not None]


def rule_key(flat: Mapping) -> tuple[str, str]:
    return str(flat.get(RULE_PREFIX + "rule_id") or ""), str(flat.get(RULE_PREFIX + "name") or "")


def techniques(threat: Any) -> list[tuple[str, str, str, str]]:
    """(tactic id, tactic name, technique id, technique name) of a rule's `threat`, sub-techniques
    as techniques of their own (T1021.004), each pair once."""
    out: list[tuple[str, str, str, str]] = []
    for entry in threat if isinstance(threat, list) else []:
        if not isinstance(entry, dict):
            continue
        tactic = entry.get("tactic")
        tactic = tactic if isinstance(tactic, dict) else {}
        tid, tname = str(tactic.get("id") or ""), str(tactic.get("name") or "")
        techs = entry.get("technique")
        techs = techs if isinstance(techs, list) else []
        if not techs and tid:  # a tactic alone
            out.append((tid, tname, "", ""))
        for t in techs:
            if not isinstance(t, dict):
                continue
            out.append((tid, tname, str(t.get("id") or ""), str(t.get("name") or "")))
            for s in t.get("subtechnique") or []:
                if isinstance(s, dict):
                    out.append((tid, tname, str(s.get("id") or ""), str(s.get("name") or "")))
    return list(dict.fromkeys(out))


def join_keys(language: str | None, query: str | None) -> dict | None:
    """The join key fields of each stage of an EQL sequence (and its maxspan), None for other queries."""
    if language != "eql" or not query:
        return None
    from ..lang import ir
    from ..lang.errors import QueryError
    from ..lang.parser import parse

    try:
        q = parse(query)
    except (QueryError, RecursionError, ValueError):
        return None
    if not isinstance(q, ir.SequenceQuery | ir.SampleQuery):
        return None
    stages = q.expanded() if isinstance(q, ir.SequenceQuery) else q.stages
    return {"stages": [[k.path for k in s.keys] for s in stages], "missing": [s.missing for s in stages],
            "maxspan_ms": getattr(q, "maxspan_ms", None), "kind": "sequence" if isinstance(q, ir.SequenceQuery)
            else "sample"}


def attribution(authors: Sequence[str], license: str | None) -> str | None:
    """The credit a rule's license asks for when it is shared (Sigma's DRL requires naming the
    authors); None when the rule names no author."""
    if not authors:
        return None
    text = f"Rule by {', '.join(authors)}"
    if license:
        text += f", licensed under {license}"
        if "DRL" in license.upper() or "detection rule license" in license.lower():
            text += " (the Detection Rule License requires this credit wherever the rule or its results are shared)"
    return text + "."


@dataclass
class ReportData:
    """The report's data: `to_json()` is what the page reads."""

    meta: dict = field(default_factory=dict)
    summary: dict | None = None
    rules: list[dict] = field(default_factory=list)
    notes: dict[int, str] = field(default_factory=dict)  # rule index → sanitized HTML of its guide
    values: list = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    shapes: list[list[int]] = field(default_factory=list)
    docs: list[list] = field(default_factory=list)
    columns: dict[str, list] = field(default_factory=dict)
    processes: list[dict] = field(default_factory=list)
    tuning: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.docs)

    def to_json(self) -> dict:
        return {"meta": self.meta, "summary": self.summary, "rules": self.rules, "values": self.values,
                "keys": self.keys, "shapes": self.shapes, "docs": self.docs, "alerts": self.columns,
                "processes": self.processes, "tuning": self.tuning, "skipped": self.skipped,
                "severities": SEVERITIES}

    # ---- counts, for the Markdown summary, the Navigator layer and tests --------------------

    def by(self, column: str) -> Counter:
        """Alerts per value of a column: 'severity', 'rule' (names), 'host', 'user'."""
        col = self.columns
        if column == "severity":
            return Counter(SEVERITIES[i] for i in col["sv"])
        if column == "rule":
            return Counter(self.rules[i]["name"] for i in col["ru"])
        ref = {"host": "ho", "user": "us"}[column]
        return Counter(str(self.values[i]) for i in col[ref] if i >= 0)

    def by_technique(self) -> Counter:
        """Alerts per (tactic id, tactic name, technique id, technique name)."""
        per_rule = Counter(self.columns["ru"])
        out: Counter = Counter()
        for i, n in per_rule.items():
            for t in self.rules[i]["attack"]:
                if t[2]:
                    out[tuple(t)] += n
        return out


class _Values:
    """Each distinct value once: strings keyed by themselves, other plain values by (type, value),
    lists and objects by their JSON."""

    def __init__(self) -> None:
        self.values: list = []
        self._index: dict[Any, int] = {}

    def ref(self, value: Any) -> int:
        key: Any = value if isinstance(value, str) else \
            (type(value), value) if value is None or isinstance(value, int | float | bool) else _json_key(value)
        i = self._index.get(key)
        if i is None:
            i = self._index[key] = len(self.values)
            self.values.append(value)
        return i

    def encode(self, value: Any) -> int | list[int]:
        if isinstance(value, list) and not any(isinstance(v, dict | list) for v in value):
            return [self.ref(v) for v in value]
        return self.ref(value)


def _json_key(value: Any) -> tuple[str, bytes]:
    import orjson

    return "json", orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS)


def _rule_file(path: str | None) -> str | None:
    """Where a rule came from; the bundled pack's rules by their name in the pack, not by the
    install path."""
    if not path:
        return None
    from pathlib import Path

    from ..pack import DIR as PACK

    p = Path(path)
    try:
        return "trailhound pack: " + p.resolve().relative_to(Path(PACK).resolve()).as_posix()
    except ValueError:
        return path


def _rule_entry(flat: Mapping, rule: Any | None) -> dict:
    """A rule as the report shows it: from the alert's `kibana.alert.rule.*`, completed by the
    loaded rule (author, license, file) when there is one."""
    g = flat.get
    params = g(RULE_PREFIX + "parameters")
    params = params if isinstance(params, dict) else {}
    language = g(RULE_PREFIX + "parameters.language") or params.get("language") or getattr(rule, "language", None)
    query = g(RULE_PREFIX + "parameters.query") or params.get("query") or getattr(rule, "query", None)
    threat = g(RULE_PREFIX + "threat")
    if threat is None and rule is not None:
        threat = list(rule.threat)
    authors = _strings(g(RULE_PREFIX + "author")) or list(getattr(rule, "author", ()) or ())
    license = g(RULE_PREFIX + "license") or getattr(rule, "license", None)
    note = g(RULE_PREFIX + "note") or getattr(rule, "note", None)
    return {
        "rule_id": str(g(RULE_PREFIX + "rule_id") or ""),
        "name": str(g(RULE_PREFIX + "name") or ""),
        "severity": str(g(RULE_PREFIX + "severity") or getattr(rule, "severity", "") or ""),
        "risk_score": g(RULE_PREFIX + "risk_score", getattr(rule, "risk_score", None)),
        "type": str(g(RULE_PREFIX + "type") or getattr(rule, "type", "") or ""),
        "language": str(language or ""),
        "query": str(query or ""),
        "description": str(g(RULE_PREFIX + "description") or getattr(rule, "description", "") or ""),
        "tags": _strings(g(RULE_PREFIX + "tags")),
        "references": _strings(g(RULE_PREFIX + "references")) or list(getattr(rule, "references", ()) or ()),
        "false_positives": _strings(g(RULE_PREFIX + "false_positives"))
        or list(getattr(rule, "false_positives", ()) or ()),
        "author": authors,
        "license": str(license) if license else None,
        "attribution": attribution(authors, str(license) if license else None),
        "file": _rule_file(getattr(rule, "source", None)),
        "attack": [list(t) for t in techniques(threat)],
        "sequence": join_keys(str(language or ""), str(query or "")),
        "note": str(note) if note else None,
        "has_note": bool(note),
    }


def build_report(alerts: Iterable[Mapping], *, summary: dict | None = None, rules: Iterable[Any] = (),
                 processes: Any = None, skipped: Sequence[dict] = (), meta: dict | None = None) -> ReportData:
    """The report of `alerts` (Kibana alert documents, in the order of the alerts file).

    `summary` is `HuntReport.to_dict()` (what `hunt --summary` writes), `rules` the loaded rules
    (`rules.model.Rule`: they add author, license and file), `processes` a
    `report.processes.ProcessIndex` of the event files, `skipped` the bad input lines
    ({file, line, reason})."""
    from .guide import render_guide
    from .tuning import NoiseTally

    known = {r.rule_id: r for r in rules}
    data = ReportData(summary=summary, skipped=list(skipped), meta=dict(meta or {}))
    values = _Values()
    key_index: dict[str, int] = {}
    shape_index: dict[tuple[str, ...], int] = {}
    rule_index: dict[tuple[str, str], int] = {}
    col: dict[str, list] = {k: [] for k in ("tm", "sv", "ru", "ho", "us", "re", "gp", "gi", "pc")}
    groups: dict[str, int] = {}  # group id → the shell's alert index
    blocks: list[tuple[int, str]] = []
    proc_index: dict[int, int] = {}
    created: str | None = None
    tally = NoiseTally()
    for n, doc in enumerate(alerts):
        flat = flat_alert(doc)
        created = created or (str(flat["@timestamp"]) if flat.get("@timestamp") else None)
        key = rule_key(flat)
        ri = rule_index.get(key)
        if ri is None:
            ri = rule_index[key] = len(data.rules)
            data.rules.append(_rule_entry(flat, known.get(key[0])))
        kept = {k: v for k, v in flat.items() if k not in _DROPPED and not k.startswith(_DROPPED_PREFIXES)}
        shape = tuple(kept)
        si = shape_index.get(shape)
        if si is None:
            si = shape_index[shape] = len(data.shapes)
            for k in shape:
                if k not in key_index:
                    key_index[k] = len(data.keys)
                    data.keys.append(k)
            data.shapes.append([key_index[k] for k in shape])
        data.docs.append([si, *(values.encode(v) for v in kept.values())])
        severity = str(flat.get("kibana.alert.severity") or data.rules[ri]["severity"] or "low").lower()
        if severity not in SEVERITIES:  # not one of Kibana's four: read as low
            severity = "low"
        col["tm"].append(_ms(flat.get("kibana.alert.original_time")))
        col["sv"].append(SEVERITIES.index(severity))
        col["ru"].append(ri)
        host, user = _first(flat.get("host.name")), _first(flat.get("user.name"))
        col["ho"].append(values.ref(str(host)) if host not in (None, "") else -1)
        col["us"].append(values.ref(str(user)) if user not in (None, "") else -1)
        col["re"].append(values.ref(str(flat.get("kibana.alert.reason") or "")))
        group = flat.get("kibana.alert.group.id")
        index = flat.get("kibana.alert.group.index")
        if group is not None and index is None:  # a sequence's shell
            groups[str(group)] = n
            col["gp"].append(-2)
            col["gi"].append(-1)
        elif group is not None:
            blocks.append((n, str(group)))
            col["gp"].append(-1)  # its shell, filled below (shells come after their blocks)
            col["gi"].append(index if isinstance(index, int) else -1)
        else:
            col["gp"].append(-1)
            col["gi"].append(-1)
        ctx = None
        if processes is not None:
            ctx = processes.context(flat)
        if ctx is not None:
            cid = id(ctx)
            if cid not in proc_index:
                proc_index[cid] = len(data.processes)
                data.processes.append(ctx)
            col["pc"].append(proc_index[cid])
        else:
            col["pc"].append(-1)
        if group is None or index is None:  # building blocks are counted through their shell
            tally.add(ri, flat)
    for n, group in blocks:
        col["gp"][n] = groups.get(group, -1)
    data.values = values.values
    data.keys = data.keys
    data.columns = col
    for i, r in enumerate(data.rules):
        if r["note"]:
            data.notes[i] = render_guide(r["note"])
    data.meta.setdefault("created", created)
    data.meta["alerts"] = len(data.docs)
    data.tuning = tally.ranked(data.rules)
    return data

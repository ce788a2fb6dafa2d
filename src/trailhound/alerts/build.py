"""Alerts in Kibana's security alert schema, built from a rule and its matched documents.

* One event → one alert: the source document's ECS fields, `event.kind: signal`, the source
  `event.*` as `kibana.alert.original_event.*`, `@timestamp` as `kibana.alert.original_time`,
  and the rule under `kibana.alert.rule.*`.
* A sequence of N present events → N building-block alerts plus one shell alert whose fields
  are those all building blocks agree on; they are linked by `kibana.alert.group.id` (the
  shell's uuid) and `kibana.alert.group.index`. Missing-event steps produce nothing.
* Alert ids are deterministic (rule id + source event ids), so a re-run does not duplicate.
* `severity_mapping`, `risk_score_mapping` and `rule_name_override` read the source document.
* `alerts_for_hits` replays a run's hits on the rule's schedule (one execution per `interval`
  of event time): alert suppression, then at most `max_signals` hits per execution.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from ..compile.dates import parse_time_ns
from ..rules.model import SEVERITIES, Rule
from .suppression import SuppressionState

ECS_VERSION = "8.11.0"
_NAMESPACE = uuid.UUID("8f2b9c1e-5d3a-4e6f-9a7b-2c1d0e3f4a5b")  # Trailhound's uuid5 namespace
_NAMESPACE_BYTES = _NAMESPACE.bytes


def _uuid5(name: str) -> str:
    """`str(uuid.uuid5(_NAMESPACE, name))`, without building the UUID object (two per alert add up
    over 100k alerts): the SHA-1 of namespace + name, version 5 and RFC 4122 variant bits set."""
    b = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def event_id(doc: dict) -> str:
    """A stable id for a source event: its `_id` or `event.id`, else a hash of its content."""
    if isinstance(doc.get("_id"), str):
        return doc["_id"]
    ev = doc.get("event")
    if isinstance(ev, dict) and isinstance(ev.get("id"), str):
        return ev["id"]
    if isinstance(doc.get("event.id"), str):
        return doc["event.id"]
    return hashlib.sha1(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()


def flatten(doc: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in doc.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


class Fields(Protocol):
    """Field lookup by dotted name: a flattened document (dict) or a `_View` of a nested one."""

    def get(self, key: str, /) -> Any: ...


def _get(flat: Fields, key: str) -> Any:
    v = flat.get(key)
    return v[0] if isinstance(v, list) and v else v


def reason(rule: Rule, flat: Fields, severity: str | None = None) -> str:
    """Kibana's reason text; parts whose fields are missing are left out."""
    return _reason(rule, flat.get, severity)


def _reason(rule: Rule, lookup: Callable[[str], Any], severity: str | None) -> str:
    """`reason` with `lookup(field)` giving a field's value (a list: its first element)."""

    def first(key: str) -> Any:
        v = lookup(key)
        return v[0] if isinstance(v, list) and v else v

    category = first("event.category")
    parts = [f"{category} event" if category else "event"]
    for label, key in (("with process", "process.name"), ("parent process", "process.parent.name"),
                       ("file", "file.name")):
        if (value := first(key)) is not None:
            parts.append(f"{label} {value}")
    for label, side in (("source", "source"), ("destination", "destination")):
        addr = first(f"{side}.address") or first(f"{side}.ip")
        if addr is not None:
            port = first(f"{side}.port")
            parts.append(f"{label} {addr}" + (f":{port}" if port is not None else ""))
    text = ", ".join(parts)
    if (user := first("user.name")) is not None:
        text += f", by {user}"
    if (host := first("host.name")) is not None:
        text += f" on {host}"
    return f"{text} created {severity or rule.severity} alert {rule.name}."


def _doc_reason(rule: Rule, doc: dict, severity: str | None) -> str:
    """`_reason` of a document, its lookups inlined (it runs for every alert)."""
    fv = field_value
    values = []
    for key in _REASON_KEYS:
        v = fv(doc, key)
        values.append(v[0] if isinstance(v, list) and v else v)
    category, process, parent, file, s_addr, s_ip, s_port, d_addr, d_ip, d_port, user, host = values
    parts = [f"{category} event" if category else "event"]
    if process is not None:
        parts.append(f"with process {process}")
    if parent is not None:
        parts.append(f"parent process {parent}")
    if file is not None:
        parts.append(f"file {file}")
    for label, addr, port in (("source", s_addr or s_ip, s_port), ("destination", d_addr or d_ip, d_port)):
        if addr is not None:
            parts.append(f"{label} {addr}" + (f":{port}" if port is not None else ""))
    text = ", ".join(parts)
    if user is not None:
        text += f", by {user}"
    if host is not None:
        text += f" on {host}"
    return f"{text} created {severity or rule.severity} alert {rule.name}."


_REASON_KEYS = ("event.category", "process.name", "process.parent.name", "file.name", "source.address", "source.ip",
                "source.port", "destination.address", "destination.ip", "destination.port", "user.name", "host.name")


_RULE_FIELDS: dict[int, tuple[Rule, dict[str, Any]]] = {}


def _rule_fields(rule: Rule) -> dict[str, Any]:
    """The rule's part of its alerts, made once per rule (the alerts share its values)."""
    cached = _RULE_FIELDS.get(id(rule))
    if cached is None or cached[0] is not rule:
        if len(_RULE_FIELDS) > 4096:
            _RULE_FIELDS.clear()
        cached = _RULE_FIELDS[id(rule)] = (rule, _make_rule_fields(rule))
    return cached[1]


def _make_rule_fields(rule: Rule) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "kibana.alert.rule.name": rule.name,
        "kibana.alert.rule.rule_id": rule.rule_id,
        "kibana.alert.rule.type": rule.type,
        "kibana.alert.rule.description": rule.description,
        "kibana.alert.rule.severity": rule.severity,
        "kibana.alert.rule.risk_score": rule.risk_score,
        "kibana.alert.rule.tags": list(rule.tags),
        "kibana.alert.rule.threat": list(rule.threat),
        "kibana.alert.rule.references": list(rule.references),
        "kibana.alert.rule.false_positives": list(rule.false_positives),
        "kibana.alert.rule.max_signals": rule.max_signals,
        "kibana.alert.rule.parameters": {"language": rule.language, "query": rule.query, "index": list(rule.index)},
    }
    params = fields["kibana.alert.rule.parameters"]
    for key in ("severity_mapping", "risk_score_mapping", "exceptions_list"):
        if getattr(rule, key):
            params[key] = list(getattr(rule, key))
    if rule.alert_suppression:
        params["alert_suppression"] = rule.alert_suppression
    if rule.exceptions_list:
        fields["kibana.alert.rule.exceptions_list"] = list(rule.exceptions_list)
    if rule.language == "sigma":
        # the Detection Rule License of SigmaHQ's rules obliges us to keep their author in every alert
        fields["kibana.alert.rule.author"] = list(rule.author)
        if rule.license:
            fields["kibana.alert.rule.license"] = rule.license
        sigma = rule.extra.get("sigma") or {}
        params["sigma"] = {k: v for k, v in sigma.items() if v is not None}
    for key, value in (("note", rule.note), ("from", rule.lookback), ("interval", rule.interval),
                       ("timestamp_override", rule.timestamp_override),
                       ("building_block_type", rule.building_block_type)):
        if value is not None:
            fields[f"kibana.alert.rule.{key}"] = value
    return fields


def _values(flat: Fields, key: str) -> list:
    v = flat.get(key)
    return v if isinstance(v, list) else [] if v is None else [v]


def _text(v: Any) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


def mapped_severity(rule: Rule, flat: Fields) -> str:
    """Kibana tries the mappings from lowest to highest severity; the last that matches wins."""
    severity = rule.severity
    for m in sorted(rule.severity_mapping, key=lambda m: SEVERITIES.index(m["severity"])):
        if any(_text(v) == _text(m["value"]) for v in _values(flat, m["field"])):
            severity = m["severity"]
    return severity


def mapped_risk_score(rule: Rule, flat: Fields) -> float:
    """The first mapped field holding a number from 0 to 100, else the rule's risk_score."""
    for m in rule.risk_score_mapping:
        for v in _values(flat, m["field"])[:1]:
            try:
                score = float(v)
            except (TypeError, ValueError):
                continue
            if not isinstance(v, bool) and 0 <= score <= 100:
                return score
    return float(rule.risk_score)


class _View:
    """Field lookups on a document with nested and/or dotted keys, without flattening all of it
    (the mappings and the reason read a handful of fields)."""

    def __init__(self, doc: dict) -> None:
        self.doc = doc

    def get(self, key: str, default: Any = None) -> Any:
        value = field_value(self.doc, key)
        return default if value is None else value


def _event_fields(doc: dict) -> dict[str, Any]:
    """The document's `event.*` fields, flattened, without the `event.` prefix."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key == "event" and isinstance(value, dict):
            out.update(flatten(value) if any(isinstance(v, dict) for v in value.values()) else value)
        elif key.startswith("event."):
            out.update(flatten(value, key[6:] + ".") if isinstance(value, dict) else {key[6:]: value})
    return out


def _alert_head(rule: Rule, doc: dict, alert_uuid: str, ancestors: list[dict], now: str) -> dict[str, Any]:
    """An alert without the rule's part (`_rule_fields`) and what follows it: the source's fields but its
    @timestamp, the alert's, its original event's. Key by key in this order (a key the document already has
    keeps its place)."""
    flat = _View(doc)
    severity = mapped_severity(rule, flat) if rule.severity_mapping else rule.severity
    out = dict(doc)
    out.pop("@timestamp", None)
    out["@timestamp"] = now
    out["event.kind"] = "signal"
    out["ecs.version"] = ECS_VERSION
    out["kibana.alert.uuid"] = alert_uuid
    out["kibana.alert.status"] = "active"
    out["kibana.alert.workflow_status"] = "open"
    out["kibana.alert.depth"] = 1
    out["kibana.alert.ancestors"] = ancestors
    out["kibana.alert.severity"] = severity
    out["kibana.alert.risk_score"] = mapped_risk_score(rule, flat) if rule.risk_score_mapping else float(rule.risk_score)
    out["kibana.alert.reason"] = _doc_reason(rule, doc, severity)
    out["kibana.alert.original_time"] = field_value(doc, "@timestamp")
    for k, v in _event_fields(doc).items():
        out["kibana.alert.original_event." + k] = v
    if isinstance(out.get("event"), dict):
        out["event"] = {**out["event"], "kind": "signal"}
        del out["event.kind"]
    return out


def _alert(rule: Rule, doc: dict, alert_uuid: str, ancestors: list[dict], now: str) -> dict[str, Any]:
    """The alert of `doc`: `_alert_head`, then the rule's fields, then its building-block type."""
    out = _alert_head(rule, doc, alert_uuid, ancestors, now)
    out.update(_rule_fields(rule))
    if rule.rule_name_override:
        name = _get(_View(doc), rule.rule_name_override)
        if isinstance(name, str) and name:
            out["kibana.alert.rule.name"] = name
    if rule.building_block_type:
        out["kibana.alert.building_block_type"] = rule.building_block_type
    return out


_RULE_JSON: dict[int, tuple[Rule, _RuleJson]] = {}


@dataclass(frozen=True)
class _RuleJson:
    """A rule's part of its alerts, serialized once: the keys it adds after an alert's head, and their JSON."""

    keys: frozenset[str]  # the rule's keys and the building-block type's
    inner: bytes  # `"kibana.alert.rule.name":...,...`: the members of the rule's object, without braces
    tail: bytes  # `,"kibana.alert.building_block_type":...` or nothing


def _rule_json(rule: Rule) -> _RuleJson:
    cached = _RULE_JSON.get(id(rule))
    if cached is None or cached[0] is not rule:
        if len(_RULE_JSON) > 4096:
            _RULE_JSON.clear()
        fields = _rule_fields(rule)
        keys = set(fields)
        tail = b""
        if rule.building_block_type:
            keys.add("kibana.alert.building_block_type")
            tail = b"," + orjson.dumps({"kibana.alert.building_block_type": rule.building_block_type},
                                       default=str)[1:-1]
        cached = _RULE_JSON[id(rule)] = (rule, _RuleJson(frozenset(keys), orjson.dumps(fields, default=str)[1:-1],
                                                         tail))
    return cached[1]


def alert_json(alert: dict) -> bytes:
    """An alert as one NDJSON line, as every NDJSON sink writes it."""
    return orjson.dumps(alert, default=str) + b"\n"


def _event_alert_line(rule: Rule, head: dict, extra: dict | None) -> bytes | None:
    """`alert_json` of the alert `_alert` would make of `head` (plus `extra`'s keys after it, as
    `alerts_for_event` adds them), with the rule's part spliced in as bytes serialized once per rule:
    orjson writes an object as its members in order, so the bytes are the same. None where the splice
    would not be (a key of the document's own that the rule's part would overwrite in place, a rule name
    read from the document): the caller serializes the whole alert."""
    rj = _rule_json(rule)
    if rule.rule_name_override or not rj.keys.isdisjoint(head):
        return None
    line = orjson.dumps(head, default=str)
    if len(line) == 2:  # an empty object: never, a head has the alert's keys
        return None
    if extra:
        if not rj.keys.isdisjoint(extra) or not head.keys().isdisjoint(extra):
            return None
        return b"".join((line[:-1], b",", rj.inner, rj.tail, b",", orjson.dumps(extra, default=str)[1:], b"\n"))
    return b"".join((line[:-1], b",", rj.inner, rj.tail, b"}\n"))


def _ancestor(doc: dict, eid: str | None = None) -> dict:
    return {"id": event_id(doc) if eid is None else eid, "type": "event", "depth": 0, "index": doc.get("_index", "")}


def alerts_for_event(rule: Rule, doc: dict, now: str | None = None, new_terms: list | None = None) -> list[dict]:
    now = now or utc_now()
    eid = event_id(doc)
    alert = _alert(rule, doc, _uuid5(f"{rule.rule_id}|{eid}"), [_ancestor(doc, eid)], now)
    if new_terms is not None:
        alert["kibana.alert.new_terms"] = new_terms
    return [alert]


def alerts_for_sequence(rule: Rule, docs: Iterable[dict | None], now: str | None = None) -> list[dict]:
    """N building-block alerts and the shell alert (last), for the present events of a sequence."""
    now = now or utc_now()
    present = [d for d in docs if d is not None]
    ids = [event_id(d) for d in present]
    shell_uuid = _uuid5(f"{rule.rule_id}|sequence|{'|'.join(ids)}")
    blocks = []
    for i, doc in enumerate(present):
        bb_uuid = _uuid5(f"{shell_uuid}|{i}")
        a = _alert(rule, doc, bb_uuid, [_ancestor(doc, ids[i])], now)
        a["kibana.alert.building_block_type"] = "default"
        a["kibana.alert.group.id"] = shell_uuid
        a["kibana.alert.group.index"] = i
        blocks.append(a)
    shared = _intersection([flatten(d) for d in present])
    shell_source = unflatten(shared)
    shell = _alert(rule, shell_source, shell_uuid, [_ancestor(d, e) for d, e in zip(present, ids)], now)
    shell["kibana.alert.group.id"] = shell_uuid
    return blocks + [shell]


def alerts_for_threshold(rule: Rule, group: tuple, count: int, first_time: str | None, docs: list[dict],
                         now: str | None = None) -> list[dict]:
    """One alert for a group that reached the threshold: its terms, the count and the events' span."""
    now = now or utc_now()
    spec = rule.threshold_spec()
    terms = [{"field": f, "value": v} for f, v in zip(spec.fields, group)]
    source = unflatten({f: v for f, v in zip(spec.fields, group)})
    source["@timestamp"] = first_time
    ids = [event_id(d) for d in docs]
    uid = _uuid5(f"{rule.rule_id}|threshold|{'|'.join(ids)}")
    alert = _alert(rule, source, uid, [_ancestor(d, e) for d, e in zip(docs, ids)], now)
    result = {"terms": terms, "count": count, "from": first_time}
    if spec.cardinality:
        result["cardinality"] = [{"field": f, "value": n} for f, n in spec.cardinality]
    alert["kibana.alert.threshold_result"] = result
    return [alert]


@dataclass
class AlertBatch:
    alerts: list[dict] = field(default_factory=list)  # the alert documents (form "dicts")
    suppressed: int = 0  # hits folded into an earlier alert
    over_max_signals: int = 0  # hits past max_signals in their execution
    lines: list[bytes] = field(default_factory=list)  # the alerts as NDJSON lines (form "lines")
    #: per alert, what a report counts of it (`report_fact`: hosts, users, original time; forms "lines" and
    #: "facts"), not the whole alert
    facts: list[dict] = field(default_factory=list)


#: what `alerts_for_hits` returns: alert documents; NDJSON lines (and facts); only facts (no sink to write to)
FORMS = ("dicts", "lines", "facts")


def alerts_for_hits(rule: Rule, kind: str, hits: Sequence, docs: dict[int, dict], timestamp_field: str = "@timestamp",
                    now: str | None = None, max_signals: int | None = None, form: str = "dicts", *,
                    suppression: SuppressionState | None = None,
                    per_execution: dict[int, int] | None = None) -> AlertBatch:
    """The alerts of one rule's hits (engine `Hit`s, in event order; `docs` maps rows to source
    documents), replayed on the rule's schedule: executions every `interval` of event time, alert
    suppression, then at most `max_signals` (the rule's unless given; 0: no limit) per execution.
    A stream of hits (watch) passes the state carried from its earlier calls: the rule's `suppression`
    windows and the alerts counted `per_execution`, both updated here.

    `form` (see `FORMS`): "dicts" fills `alerts`; "lines" fills `lines` with `alert_json` of each alert
    (the same bytes, made without building the whole document where it can) and `facts`; "facts" only `facts`."""
    if form not in FORMS:
        raise ValueError(f"form {form!r}: one of {', '.join(FORMS)}")
    now = now or utc_now()
    limit = rule.max_signals if max_signals is None else max_signals
    spec = rule.suppression_spec()
    state = suppression if suppression is not None else SuppressionState(spec) if spec else None
    interval = rule.interval_ns()
    out = AlertBatch()
    per_execution = {} if per_execution is None else per_execution
    # an event alert made as its head (the rule's part spliced in as bytes), where nothing needs the whole alert
    heads = form != "dicts" and state is None and kind == "events" and not rule.rule_name_override
    for hit in hits:
        present = [docs[r] for r in hit.rows if r is not None]
        time_ns, when = (_time(present[0], timestamp_field) if len(present) == 1  # an event: one document
                         else max((_time(d, timestamp_field) for d in present), default=(0, None)))
        execution = time_ns // interval
        if state is None and limit and per_execution.get(execution, 0) >= limit:
            out.over_max_signals += 1  # decided before building: nothing to suppress into
            continue
        if heads:
            doc = present[0]
            eid = event_id(doc)
            head = _alert_head(rule, doc, _uuid5(f"{rule.rule_id}|{eid}"), [_ancestor(doc, eid)], now)
            extra = {"kibana.alert.new_terms": list(hit.join_keys or ())} if rule.type == "new_terms" else None
            per_execution[execution] = per_execution.get(execution, 0) + 1
            out.facts.append(report_fact(head))  # not the head: it is as large as the document
            if form == "lines":
                line = _event_alert_line(rule, head, extra)
                if line is None:
                    alert = _alert(rule, doc, head["kibana.alert.uuid"], head["kibana.alert.ancestors"], now)
                    if extra:
                        alert.update(extra)
                    line = alert_json(alert)
                out.lines.append(line)
            continue
        if kind == "threshold":
            first = present[0].get("@timestamp") if present else None
            alerts = alerts_for_threshold(rule, tuple(hit.join_keys or ()), len(hit.rows), first, present, now)
        elif kind == "events":
            terms = list(hit.join_keys or ()) if rule.type == "new_terms" else None
            alerts = alerts_for_event(rule, present[0], now, terms)
        else:
            alerts = alerts_for_sequence(rule, [None if r is None else docs[r] for r in hit.rows], now)
            if rule.type == "sigma_correlation":
                alerts[-1]["kibana.alert.sigma.correlation"] = _correlation_fields(rule, hit, len(alerts) - 1)
        primary = alerts[-1]  # the event alert, or a sequence's shell
        if state is not None:
            assert spec is not None  # state exists only with a spec
            flat = flatten(primary)
            values = tuple(_group_value(flat, f) for f in spec.group_by)
            if state.fold(values, time_ns, when, execution):
                out.suppressed += 1
                continue
        if limit and per_execution.get(execution, 0) >= limit:
            out.over_max_signals += 1
            continue
        if state is not None:
            state.start(primary, values, time_ns, when, execution)
        per_execution[execution] = per_execution.get(execution, 0) + 1
        out.alerts.extend(alerts)
    if form != "dicts" and out.alerts:  # serialized at the end: a later fold updates an earlier alert
        if form == "lines":
            out.lines = [alert_json(a) for a in out.alerts]
        out.facts, out.alerts = [report_fact(a) for a in out.alerts], []
    return out


#: the fields of an alert that a hunt's report counts (`pipeline.report.RuleOutcome.add_alert`)
REPORT_FIELDS = ("host.name", "user.name")


def report_fact(alert: dict) -> dict[str, Any]:
    """What the report reads of an alert, as a small document that reads the same: its hosts, users and
    original time (`RuleOutcome.add_alert` gives the same answer on it as on the whole alert)."""
    fact = {key: field_value(alert, key) for key in REPORT_FIELDS}
    fact["kibana.alert.original_time"] = alert.get("kibana.alert.original_time")
    return fact


def _correlation_fields(rule: Rule, hit: Any, events: int) -> dict[str, Any]:
    """What a Sigma correlation's shell alert says of itself: its type, timespan, the group it counted
    (group-by name → value, as compared) and how many events it joins."""
    spec = (rule.extra.get("sigma") or {}).get("correlation") or {}
    names = spec.get("group_by") or []
    return {"type": spec.get("type"), "timespan": spec.get("timespan"),
            "group_by": dict(zip(names, hit.join_keys or ())), "events": events}


def _group_value(flat: dict, key: str) -> Any:
    v = flat.get(key)
    return None if v is None or v == [] else v


def field_value(doc: dict, path: str):
    """A dotted field of a document whose keys may be nested, dotted, or a mix of both.

    The key `path` itself first; else, for each dot from the left, the part before it as a key
    whose value is an object, searched for the rest (None found there goes on to the next dot)."""
    if path in doc:
        return doc[path]
    splits = _SPLITS.get(path)
    if splits is None:
        splits = _splits(path)
    for head, rest, deep in splits:
        node = doc.get(head)
        if isinstance(node, dict):
            # a last part is its key alone (the common case, without a call)
            found = field_value(node, rest) if deep else node.get(rest)
            if found is not None:
                return found
    return None


_SPLITS: dict[str, tuple[tuple[str, str, bool], ...]] = {}


def _splits(path: str) -> tuple[tuple[str, str, bool], ...]:
    """Where `field_value` looks for `path` after the key itself: (key, rest, whether the rest has a dot) for
    each dot from the left; made once per path (the same few fields are read from every alert)."""
    out = []
    head, _, rest = path.partition(".")
    while rest:
        out.append((head, rest, "." in rest))
        nxt, _, rest = rest.partition(".")
        head = f"{head}.{nxt}"
    if len(_SPLITS) > 65_536:  # paths from documents' own keys: bounded
        _SPLITS.clear()
    _SPLITS[path] = splits = tuple(out)
    return splits


def _time(doc: dict, timestamp_field: str) -> tuple[int, str | None]:
    value = field_value(doc, timestamp_field)
    if value is None:
        value = field_value(doc, "@timestamp")
    value = value[0] if isinstance(value, list) and value else value
    return parse_time_ns(value) or 0, None if value is None else str(value)


def _intersection(flats: list[dict]) -> dict:
    """Keys on which all documents agree; arrays are intersected (order of the first kept)."""
    if not flats:
        return {}
    out = {}
    for key, value in flats[0].items():
        others = [f.get(key) for f in flats[1:]]
        if isinstance(value, list):
            common = [v for v in value if all(isinstance(o, list) and v in o for o in others)]
            if common:
                out[key] = common
        elif all(o == value for o in others):
            out[key] = value
    return out


def unflatten(flat: dict) -> dict:
    """Dotted keys as a nested document (`{"a.b": 1}` → `{"a": {"b": 1}}`); a key under a value that is not an
    object is dropped."""
    out: dict = {}
    for key, value in flat.items():
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                break
            node = nxt
        else:
            node[parts[-1]] = value
    return out


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

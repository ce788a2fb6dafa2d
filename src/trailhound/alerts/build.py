"""Alerts in Kibana's security alert schema, built from a rule and its matched documents.

* One event → one alert: the source document's ECS fields, `event.kind: signal`, the source
  `event.*` as `kibana.alert.original_event.*`, `@timestamp` as `kibana.alert.original_time`,
  and the rule under `kibana.alert.rule.*`.
* A sequence of N present events → N building-block alerts plus one shell alert whose fields
  are those all building blocks agree on; they are linked by `kibana.alert.group.id` (the
  shell's uuid) and `kibana.alert.group.index`. Missing-event steps produce nothing.
* Alert ids are deterministic (rule id + source event ids), so a re-run does not duplicate.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timezone
from typing import Any, Iterable

import orjson

from ..rules.model import Rule

ECS_VERSION = "8.11.0"
_NAMESPACE = uuid.UUID("8f2b9c1e-5d3a-4e6f-9a7b-2c1d0e3f4a5b")  # Trailhound's uuid5 namespace


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


def _get(flat: dict, key: str) -> Any:
    v = flat.get(key)
    return v[0] if isinstance(v, list) and v else v


def reason(rule: Rule, flat: dict) -> str:
    """Kibana's reason text; parts whose fields are missing are left out."""
    parts = []
    category = _get(flat, "event.category")
    parts.append(f"{category} event" if category else "event")
    for label, key in (("with process", "process.name"), ("parent process", "process.parent.name"),
                       ("file", "file.name")):
        if _get(flat, key) is not None:
            parts.append(f"{label} {_get(flat, key)}")
    for label, side in (("source", "source"), ("destination", "destination")):
        addr = _get(flat, f"{side}.address") or _get(flat, f"{side}.ip")
        if addr is not None:
            port = _get(flat, f"{side}.port")
            parts.append(f"{label} {addr}" + (f":{port}" if port is not None else ""))
    text = ", ".join(parts)
    if _get(flat, "user.name") is not None:
        text += f", by {_get(flat, 'user.name')}"
    if _get(flat, "host.name") is not None:
        text += f" on {_get(flat, 'host.name')}"
    return f"{text} created {rule.severity} alert {rule.name}."


def _rule_fields(rule: Rule) -> dict[str, Any]:
    fields = {
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
    for key, value in (("note", rule.note), ("from", rule.lookback), ("interval", rule.interval),
                       ("timestamp_override", rule.timestamp_override),
                       ("building_block_type", rule.building_block_type)):
        if value is not None:
            fields[f"kibana.alert.rule.{key}"] = value
    return fields


def _alert(rule: Rule, doc: dict, alert_uuid: str, ancestors: list[dict], now: str) -> dict[str, Any]:
    flat = flatten(doc)
    out = {k: v for k, v in doc.items() if k != "@timestamp"}
    out.update({
        "@timestamp": now,
        "event.kind": "signal",
        "ecs.version": ECS_VERSION,
        "kibana.alert.uuid": alert_uuid,
        "kibana.alert.status": "active",
        "kibana.alert.workflow_status": "open",
        "kibana.alert.depth": 1,
        "kibana.alert.ancestors": ancestors,
        "kibana.alert.severity": rule.severity,
        "kibana.alert.risk_score": float(rule.risk_score),
        "kibana.alert.reason": reason(rule, flat),
        "kibana.alert.original_time": flat.get("@timestamp"),
        **{f"kibana.alert.original_event.{k[len('event.'):]}": v for k, v in flat.items() if k.startswith("event.")},
        **_rule_fields(rule),
    })
    if rule.building_block_type:
        out["kibana.alert.building_block_type"] = rule.building_block_type
    if isinstance(out.get("event"), dict):
        out["event"] = {**out["event"], "kind": "signal"}
        del out["event.kind"]
    return out


def _ancestor(doc: dict) -> dict:
    return {"id": event_id(doc), "type": "event", "depth": 0, "index": doc.get("_index", "")}


def alerts_for_event(rule: Rule, doc: dict, now: str | None = None, new_terms: list | None = None) -> list[dict]:
    now = now or utc_now()
    uid = str(uuid.uuid5(_NAMESPACE, f"{rule.rule_id}|{event_id(doc)}"))
    alert = _alert(rule, doc, uid, [_ancestor(doc)], now)
    if new_terms is not None:
        alert["kibana.alert.new_terms"] = new_terms
    return [alert]


def alerts_for_sequence(rule: Rule, docs: Iterable[dict | None], now: str | None = None) -> list[dict]:
    """N building-block alerts and the shell alert (last), for the present events of a sequence."""
    now = now or utc_now()
    present = [d for d in docs if d is not None]
    ids = [event_id(d) for d in present]
    shell_uuid = str(uuid.uuid5(_NAMESPACE, f"{rule.rule_id}|sequence|{'|'.join(ids)}"))
    blocks = []
    for i, doc in enumerate(present):
        bb_uuid = str(uuid.uuid5(_NAMESPACE, f"{shell_uuid}|{i}"))
        a = _alert(rule, doc, bb_uuid, [_ancestor(doc)], now)
        a["kibana.alert.building_block_type"] = "default"
        a["kibana.alert.group.id"] = shell_uuid
        a["kibana.alert.group.index"] = i
        blocks.append(a)
    shared = _intersection([flatten(d) for d in present])
    shell_source = _unflatten(shared)
    shell = _alert(rule, shell_source, shell_uuid, [_ancestor(d) for d in present], now)
    shell["kibana.alert.group.id"] = shell_uuid
    return blocks + [shell]


def alerts_for_threshold(rule: Rule, group: tuple, count: int, first_time: str | None, docs: list[dict],
                         now: str | None = None) -> list[dict]:
    """One alert for a group that reached the threshold: its terms, the count and the events' span."""
    now = now or utc_now()
    spec = rule.threshold_spec()
    terms = [{"field": f, "value": v} for f, v in zip(spec.fields, group)]
    source = _unflatten({f: v for f, v in zip(spec.fields, group)})
    source["@timestamp"] = first_time
    ids = [event_id(d) for d in docs]
    uid = str(uuid.uuid5(_NAMESPACE, f"{rule.rule_id}|threshold|{'|'.join(ids)}"))
    alert = _alert(rule, source, uid, [_ancestor(d) for d in docs], now)
    result = {"terms": terms, "count": count, "from": first_time}
    if spec.cardinality:
        result["cardinality"] = [{"field": f, "value": n} for f, n in spec.cardinality]
    alert["kibana.alert.threshold_result"] = result
    return [alert]


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


def _unflatten(flat: dict) -> dict:
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
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

"""Rule exceptions in Elastic's shape: lists of items; an item is an AND of entries; an event
that any item of a rule's lists matches raises no alert.

Where they come from:
* detection-rules exception TOML (`[metadata]` with `rule_ids` / `rule_names`, then
  `[[exceptions]]` with a `container` and `items`), found among the rule files or given apart;
* Kibana's exception-list export NDJSON (container lines, then item lines).
A rule takes the lists whose metadata names it (by `rule_id` or name) and the lists its own
`exceptions_list` names by `list_id`.

Entries mean what the filter Kibana builds from them means: `match` is an exact term,
`match_any` any of several, `exists` the field is present, `wildcard` Lucene's wildcard query
(`*`, `?`, backslash escapes; case-sensitive), `list` membership in a value list, `nested` its
sub-entries under the parent field. `excluded` is `must_not`, true when the field is missing.
Kibana runs the exception filter with the rule's query, so an excepted event takes no part in
any stage of a sequence either (see `ir.restrict`).
"""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from ..lang import ir
from ..lang.wildcards import wildcard_query
from .errors import RuleError
from .model import Rule

ENTRY_TYPES = ("match", "match_any", "exists", "wildcard", "list", "nested")


@dataclass(frozen=True)
class ExceptionItem:
    list_id: str
    item_id: str
    name: str
    condition: ir.Expr  # true for the events this item excepts
    expire_time: str | None = None

    @property
    def label(self) -> str:
        return f"{self.list_id}/{self.name or self.item_id}"


@dataclass(frozen=True)
class ExceptionList:
    list_id: str
    name: str
    items: tuple[ExceptionItem, ...]
    rule_ids: tuple[str, ...] = ()
    rule_names: tuple[str, ...] = ()
    source: str | None = None

    def applies_to(self, rule: Rule) -> bool:
        return (rule.rule_id in self.rule_ids or rule.name in self.rule_names
                or any(e.get("list_id") == self.list_id for e in rule.exceptions_list))


def items_for(rule: Rule, lists: Iterable[ExceptionList], now: datetime | None = None) -> list[ExceptionItem]:
    """The live items of every list attached to `rule` (expired items no longer apply, as in Kibana)."""
    now = now or datetime.now(UTC)
    return [i for lst in lists if lst.applies_to(rule) for i in lst.items if not _expired(i, now)]


def excluding(query: ir.Query, items: list[ExceptionItem]) -> ir.Query:
    """The query with these exception items folded in: an event any item matches takes no part in it
    (Kibana runs the exception filter with the rule's query)."""
    if not items:
        return query
    conditions = [it.condition for it in items]
    return ir.restrict(query, ir.Not(conditions[0] if len(conditions) == 1 else ir.Or(tuple(conditions))))


def unattached(rules: Iterable[Rule], lists: Iterable[ExceptionList]) -> list[ExceptionList]:
    rules = list(rules)
    return [lst for lst in lists if not any(lst.applies_to(r) for r in rules)]


def _expired(item: ExceptionItem, now: datetime) -> bool:
    if not item.expire_time:
        return False
    when = _expiry(item.expire_time)
    return when is not None and when <= now


# ---- reading ---------------------------------------------------------------------


def is_exceptions_document(doc: dict) -> bool:
    """A TOML document that holds exception lists rather than a rule."""
    return "exceptions" in doc and "rule" not in doc


def lists_from_toml(doc: dict, source: str, value_list_dirs: Iterable[Path] = ()) -> list[ExceptionList]:
    meta = doc.get("metadata") or {}
    if not isinstance(meta, dict):
        raise RuleError(source, None, "[metadata] must be a table")
    for key in ("rule_ids", "rule_names"):
        names = meta.get(key, [])
        if not (isinstance(names, list) and all(isinstance(x, str) for x in names)):
            raise RuleError(source, None, f"metadata.{key}: needs a list of strings (got {type(names).__name__})")
    dirs = [Path(source).parent, *value_list_dirs]
    out = []
    for i, block in enumerate(doc.get("exceptions") or []):
        where = f"exceptions[{i}]"
        if not isinstance(block, dict) or not isinstance(block.get("container"), dict):
            raise RuleError(source, None, f"{where}: needs a [exceptions.container] table")
        container = block["container"]
        list_id = _need_str(container, "list_id", source, f"{where}.container")
        items = tuple(_item(it, list_id, source, f"{where}.items[{j}]", dirs)
                      for j, it in enumerate(block.get("items") or []))
        out.append(ExceptionList(list_id, str(container.get("name", list_id)), items,
                                 tuple(map(str, meta.get("rule_ids", ()))), tuple(map(str, meta.get("rule_names", ()))),
                                 source))
    return out


def lists_from_ndjson(text: str, source: str, value_list_dirs: Iterable[Path] = ()) -> list[ExceptionList]:
    """Kibana's export: containers and items (linked by `list_id`); the export summary is ignored."""
    dirs = [Path(source).parent, *value_list_dirs]
    containers: dict[str, dict] = {}
    items: dict[str, list[ExceptionItem]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise RuleError(f"{source}:{n}", None, f"invalid JSON: {e.msg}") from None
        if not isinstance(obj, dict) or "exported_exception_list_count" in obj:
            continue
        list_id = _need_str(obj, "list_id", f"{source}:{n}", "line")
        if "entries" in obj:
            items.setdefault(list_id, []).append(_item(obj, list_id, f"{source}:{n}", "item", dirs))
        else:
            containers[list_id] = obj
    for list_id in items.keys() - containers.keys():
        containers[list_id] = {"name": list_id}  # items exported without their container
    return [ExceptionList(lid, str(c.get("name", lid)), tuple(items.get(lid, ())), source=source)
            for lid, c in containers.items()]


def load_exception_file(path: str | os.PathLike, value_list_dirs: Iterable[Path] = ()) -> list[ExceptionList]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RuleError(str(path), None, f"cannot read: {e}") from None
    if path.suffix == ".toml":
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise RuleError(str(path), None, f"invalid TOML: {e}") from None
        if not is_exceptions_document(doc):
            raise RuleError(str(path), None, "not an exceptions file (no [[exceptions]])")
        return lists_from_toml(doc, str(path), value_list_dirs)
    return lists_from_ndjson(text, str(path), value_list_dirs)


def _need_str(obj: dict, key: str, source: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise RuleError(source, None, f"{where}: needs a {key} string")
    return value


def _item(obj: dict, list_id: str, source: str, where: str, dirs: list[Path]) -> ExceptionItem:
    if not isinstance(obj, dict):
        raise RuleError(source, None, f"{where}: must be a table")
    entries = obj.get("entries")
    if not isinstance(entries, list) or not entries:
        raise RuleError(source, None, f"{where}: needs a non-empty entries list")
    name = str(obj.get("name", ""))
    label = f"{where} ({name})" if name else where
    terms = tuple(_entry(e, source, f"{label}.entries[{k}]", dirs, "") for k, e in enumerate(entries))
    expire = obj.get("expire_time")
    if expire is not None:
        if isinstance(expire, datetime):  # a TOML datetime
            expire = expire.isoformat()
        elif isinstance(expire, date):  # a TOML date: its first moment, as a quoted date reads
            expire = expire.isoformat()
        if not isinstance(expire, str) or _expiry(expire) is None:
            raise RuleError(source, None, f"{where}: expire_time must be an ISO-8601 date and time "
                                          "(like 2026-12-31T00:00:00Z)")
    return ExceptionItem(list_id, str(obj.get("item_id", "")), name,
                         terms[0] if len(terms) == 1 else ir.And(terms), expire)


def _expiry(text: str) -> datetime | None:
    """An item's expire_time as an aware datetime (UTC when it names no zone), None when it is none."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _entry(e: dict, source: str, where: str, dirs: list[Path], parent: str) -> ir.Expr:
    def fail(message: str) -> RuleError:
        return RuleError(source, None, f"{where}: {message}")

    if not isinstance(e, dict) or not isinstance(e.get("field"), str):
        raise fail("needs a field")
    kind = e.get("type")
    if kind not in ENTRY_TYPES:
        raise fail(f"type {kind!r} is not one of {', '.join(ENTRY_TYPES)}")
    path = f"{parent}.{e['field']}" if parent else e["field"]
    field = ir.Field(path)
    if kind == "nested":
        subs = e.get("entries")
        if parent or not isinstance(subs, list) or not subs:
            raise fail("a nested entry needs sub-entries and cannot itself be nested")
        # Without nested mappings, sub-entries are tested on the flattened paths, each on any element
        terms = tuple(_entry(s, source, f"{where}.entries[{k}]", dirs, path) for k, s in enumerate(subs))
        return terms[0] if len(terms) == 1 else ir.And(terms)
    operator = e.get("operator", "included")
    if operator not in ("included", "excluded"):
        raise fail(f"operator {operator!r} is not included or excluded")
    value = e.get("value")
    if kind in ("match", "wildcard"):
        if not isinstance(value, str):
            raise fail(f"a {kind} entry needs a string value")
        cond = ir.Compare("==", field, ir.Literal(value)) if kind == "match" else wildcard_query(field, _wild(value))
    elif kind == "match_any":
        if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            raise fail("a match_any entry needs a list of strings")
        cond = ir.InSet(field, tuple(ir.Literal(v) for v in value))
    elif kind == "exists":
        cond = ir.Not(ir.IsNull(field))
    else:
        spec = e.get("list") or e.get("list_vals")
        if not (isinstance(spec, dict) and isinstance(spec.get("id"), str)):
            raise fail("a list entry needs list = {id, type}")
        cond = _value_list(field, spec["id"], str(spec.get("type", "keyword")), dirs, fail)
    return ir.Not(cond) if operator == "excluded" else cond


def _wild(value: str) -> list[tuple[str, str]]:
    """Lucene wildcard text → (text, wild) pieces; a backslash makes the next character literal."""
    pieces, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            pieces.append((value[i + 1], ""))
            i += 2
            continue
        pieces.append((ch, ch if ch in "*?" else ""))
        i += 1
    return pieces


#: the largest value list read (Kibana's own import limit is 9 MB; lists of a few million values are rare)
MAX_VALUE_LIST_BYTES = 64 << 20


def _list_file(list_id: str, dirs: list[Path], fail) -> Path:
    """The file of a value list: `list_id` is a name, never a path. It is looked up only as a
    regular file directly inside one of `dirs`, and a link out of its directory is refused, so an
    exception list from a shared repository cannot make a hunt read /proc/self/environ or ~/.ssh."""
    if (not list_id or list_id in (".", "..") or any(c in list_id for c in "/\\\0")
            or any(ord(c) < 32 or ord(c) == 127 for c in list_id) or len(list_id) > 255):
        raise fail(f"value list id {list_id!r} is not a plain file name (list ids name a file inside the "
                   "exceptions file's folder or a --value-lists folder)")
    for d in dirs:
        path = d / list_id
        if not path.is_file():
            continue
        try:
            inside = path.resolve(strict=True).parent == d.resolve(strict=True)
        except (OSError, RuntimeError):
            inside = False
        if not inside:
            raise fail(f"value list {list_id!r} in {d} links outside its folder; refused")
        return path
    raise fail(f"value list {list_id!r} not found in {', '.join(str(d) for d in dirs)}")


def _list_values(path: Path, list_id: str, fail) -> list[tuple[int, str]]:
    """(line number, value) of each non-blank line. Errors name the list and line, never its text."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_VALUE_LIST_BYTES + 1)
    except OSError as e:
        raise fail(f"value list {list_id!r} cannot be read: {e.strerror}") from None
    if len(data) > MAX_VALUE_LIST_BYTES:
        raise fail(f"value list {list_id!r} is over {MAX_VALUE_LIST_BYTES >> 20} MiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise fail(f"value list {list_id!r} line {line}: not UTF-8 text") from None
    return [(n, v.strip()) for n, v in enumerate(text.splitlines(), 1) if v.strip()]


def _value_list(field: ir.Field, list_id: str, kind: str, dirs: list[Path], fail) -> ir.Expr:
    """A value list is a text file of one value per line, named by the list id (as Kibana names
    an imported list after its file), beside the exceptions file or in a --value-lists folder."""
    numbered = _list_values(_list_file(list_id, dirs, fail), list_id, fail)
    if kind in ("ip_range", "ip"):
        nets = []
        what = "IP address, network or range" if kind == "ip_range" else "IP address or network"
        for n, v in numbered:
            try:
                if "-" in v and kind == "ip_range":
                    lo, hi = (ipaddress.ip_address(x.strip()) for x in v.split("-", 1))
                else:
                    nets.append(str(ipaddress.ip_network(v, strict=False)))
                    continue
            except ValueError:
                raise fail(f"value list {list_id!r} line {n}: not an {what}") from None
            if lo.version != hi.version:
                raise fail(f"value list {list_id!r} line {n}: a range from an IPv{lo.version} to an "
                           f"IPv{hi.version} address")
            if int(lo) > int(hi):  # as ints: mypy cannot see that the versions (checked above) agree
                raise fail(f"value list {list_id!r} line {n}: a range whose first address is above its last")
            nets.extend(str(net) for net in ipaddress.summarize_address_range(lo, hi))
        return ir.Call("cidrMatch", (field, *map(ir.Literal, nets))) if nets else ir.Literal(False)
    values = [v for _, v in numbered]
    return ir.InSet(field, tuple(map(ir.Literal, values))) if values else ir.Literal(False)

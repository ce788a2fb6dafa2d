"""Semantic decisions shared by every backend (Polars, SQL): one place for each rule."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from ..lang import ir
from . import functions as F
from .schema import FieldInfo

#: `not (x op c)` on a pushed-down range is the opposite range
FLIP = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}
#: `c op x` written as `x op' c`
SWAP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def is_pushable(e: ir.Expr) -> bool:
    """A field-vs-constants predicate, which ES runs as a two-valued Lucene query."""
    if isinstance(e, ir.Compare):
        sides = (e.left, e.right)
        return any(isinstance(s, ir.Field) for s in sides) and any(isinstance(s, ir.Literal) for s in sides)
    if isinstance(e, (ir.InSet, ir.Match)):
        return isinstance(e.value, ir.Field) and all(isinstance(o, ir.Literal) for o in getattr(e, "options", ()))
    if isinstance(e, ir.IsNull):
        return True
    return False



def parse_date_ns(v: object, nanos: bool) -> int | None:
    """A date literal (ISO string or epoch millis) as epoch nanoseconds, at the field's precision."""
    if v is None:
        return None
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return int(v) * 1_000_000
    s = str(v).strip()
    if re.fullmatch(r"-?\d+", s):
        return int(s) * 1_000_000
    m = re.fullmatch(r"(.*?)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?", s)
    if not m:
        return None
    base, frac, tz = m.group(1), m.group(2) or "", m.group(3) or "Z"
    try:
        dt = datetime.fromisoformat(base + ("+00:00" if tz == "Z" else tz))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    ns = int(dt.timestamp()) * 1_000_000_000 + int((frac + "000000000")[:9])
    if not nanos:
        ns -= ns % 1_000_000
    return ns


def version_key(v: object) -> str | None:
    """A string whose byte order is ES's `version` field order (invalid versions last)."""
    if v is None:
        return None
    s = str(v)
    m = re.fullmatch(r"(\d+(?:\.\d+)*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?", s)
    if not m:
        return "1" + s
    nums = ".".join(f"{int(p):012d}" for p in m.group(1).split("."))
    pre = m.group(2)
    return "0" + nums + ("!" + pre if pre else "~")


def coerce_const(v: object, kind: str, info: FieldInfo | None = None) -> object:
    """A constant converted to a field's kind, as ES converts query values; ... if impossible."""
    if v is None:
        return None
    if kind == "string" or kind == "ip":
        return F.to_string(v)
    if kind in ("int", "float"):
        if isinstance(v, bool):
            return ...
        if isinstance(v, (int, float)):
            return v
        n = F.number(v)
        return ... if n is None else n
    if kind == "bool":
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v in ("true", "false"):
            return v == "true"
        return ...
    if kind == "date":
        ns = parse_date_ns(v, nanos=bool(info and info.es_type == "date_nanos"))
        return ... if ns is None else ns
    if kind == "version":
        return version_key(v)
    return v

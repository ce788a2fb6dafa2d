"""Scalar reference implementations of the EQL functions, with Elasticsearch's semantics.

Null in, null out (unless noted). These are the oracle for the vectorized versions,
the constant folder, and the per-value fallback for functions Polars has no kernel for.
Semantics follow ES's function tables (shared/conformance/es-eql/unit), not its docs.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from ..lang import ir
from ..lang.errors import EqlSemanticError
from ..lang.limits import INT64_MAX, INT64_MIN

Value = Any


def _lower(s: str, ci: bool) -> str:
    return s.lower() if ci else s


def to_string(v: Value) -> str | None:
    """ES `string()`: Java's rendering of a value."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e7:
            return f"{v:.1f}"
        return repr(v)
    return str(v)


def between(s, left, right, greedy=False, ci=False):
    if s is None or left is None or right is None:
        return None
    greedy = bool(greedy) if greedy is not None else False
    cs, cl, cr = _lower(s, ci), _lower(left, ci), _lower(right, ci)
    li = cs.find(cl)
    if li < 0:
        return None
    li += len(cl)
    ri = cs.rfind(cr) if greedy else cs.find(cr, li)
    if ri < 0 or ri < li:
        return None
    return s[li:ri]


def concat(*args):
    if any(a is None for a in args):
        return None
    return "".join(cast(str, to_string(a)) for a in args)  # no argument is None here


def ends_with(s, suffix, ci=False):
    if s is None or suffix is None:
        return None
    return _lower(s, ci).endswith(_lower(suffix, ci))


def starts_with(s, prefix, ci=False):
    if s is None or prefix is None:
        return None
    return _lower(s, ci).startswith(_lower(prefix, ci))


def string_contains(s, sub, ci=False):
    if s is None or sub is None:
        return None
    if sub == "":
        return False  # ES: an empty substring is not "contained"
    return _lower(sub, ci) in _lower(s, ci)


def index_of(s, sub, start=None, ci=False):
    if s is None or sub is None:
        return None
    start = 0 if start is None else max(0, int(start))
    i = _lower(s, ci).find(_lower(sub, ci), start)
    return None if i < 0 else i


def length(s):
    return None if s is None else len(s)


def substring(s, start, end=None):
    if s is None:
        return None
    n = len(s)
    start = 0 if start is None else int(start)
    end = n if end is None else int(end)
    if start < 0:
        start = max(0, start + n)
    if end < 0:
        end = max(0, end + n)
    return s[start:min(end, n)] if start < end else ""


_NUM_RE = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")


def number(s, base=None):
    """ES `number()`: integers stay integers, decimals become doubles; `0x` means base 16."""
    if s is None:
        return None
    if isinstance(s, (int, float)) and not isinstance(s, bool):
        return s
    text = str(s).strip()
    try:
        b = 10 if base is None else int(base)
    except (TypeError, ValueError, OverflowError):
        return None
    if b == 10 and text.lower().lstrip("+-").startswith("0x"):
        b = 16
    if b != 10:
        sign = -1 if text.startswith("-") else 1
        body = text.lstrip("+-")
        if b == 16 and body.lower().startswith("0x"):
            body = body[2:]
        try:
            n = sign * int(body, b) if 2 <= b <= 36 and len(body) <= 64 else None
        except ValueError:
            return None
        return n if n is not None and INT64_MIN <= n <= INT64_MAX else None
    if not _NUM_RE.match(text):
        return None
    if re.fullmatch(r"\s*[+-]?\d+\s*", text) and len(text.strip().lstrip("+-").lstrip("0")) <= 19:
        n = int(text)
        if INT64_MIN <= n <= INT64_MAX:
            return n
    # Java: Long.parseLong failed, Double.parseDouble takes over
    v = float(text)
    return v if math.isfinite(v) else None


@lru_cache(maxsize=4096)
def _network(cidr: str):
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        shown = cidr if len(cidr) <= 60 else cidr[:60] + "..."
        raise EqlSemanticError(f"cidrMatch: {shown!r} is not a network address",
                               hint='write an address or a CIDR, e.g. "10.0.0.0/8" or "fe80::/10"') from None


def network(cidr: str):
    """A CIDR as an ip_network; EqlSemanticError when it is not one."""
    return _network(cidr)


def cidr_match(ip, *cidrs):
    nets = [_network(str(c)) for c in cidrs if c is not None]  # a bad network is an error, even for null
    if ip is None:
        return None
    try:
        addr = ipaddress.ip_address(str(ip))
    except ValueError:
        return False
    return any(addr.version == net.version and addr in net for net in nets)


# -- arithmetic (Java semantics: integer division truncates, % takes the dividend's sign)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def add(a, b):
    return None if a is None or b is None else a + b


def subtract(a, b):
    return None if a is None or b is None else a - b


def multiply(a, b):
    return None if a is None or b is None else a * b


def divide(a, b):
    if a is None or b is None or b == 0:
        return None
    if _is_int(a) and _is_int(b):
        q = abs(a) // abs(b)
        return q if (a >= 0) == (b >= 0) else -q
    return a / b


def modulo(a, b):
    if a is None or b is None or b == 0:
        return None
    if _is_int(a) and _is_int(b):
        return a - b * divide(a, b)
    return math.fmod(a, b)


# -- Sigma's time parts (`|hour` ...): internal, emitted by the Sigma translator only (not EQL)

TIME_PART = ir.TIME_PART
#: the parts, as Sigma names them
TIME_PARTS = ("minute", "hour", "day", "week", "month", "year")


def part_of_ns(ns: int | None, part: str) -> int | None:
    """One part of an instant (epoch nanoseconds) read in UTC, as Elasticsearch reads a date: `day`
    is the day of the month, `week` the ISO 8601 week of the week-based year (1-53, Java's
    IsoFields.WEEK_OF_WEEK_BASED_YEAR), so 2021-01-03 is in week 53 (of 2020)."""
    if ns is None:
        return None
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)
    if part == "week":
        return dt.isocalendar()[1]
    return {"minute": dt.minute, "hour": dt.hour, "day": dt.day, "month": dt.month, "year": dt.year}[part]


def time_part(v, part):
    """A date's part in UTC (see `part_of_ns`): a string is read as Elasticsearch parses a date (an
    offset converted to UTC, no zone read as UTC, epoch milliseconds); anything else is not a date."""
    from .dates import parse_date_ns

    if part not in TIME_PARTS:
        raise EqlSemanticError(f"no time part {part!r} (one of {', '.join(TIME_PARTS)})")
    if not isinstance(v, str):
        return None
    return part_of_ns(parse_date_ns(v, nanos=True), part)


SCALAR: dict[str, Callable[..., Value]] = {
    TIME_PART: time_part,
    "add": add,
    "between": between,
    "cidrMatch": cidr_match,
    "concat": concat,
    "divide": divide,
    "endsWith": ends_with,
    "indexOf": index_of,
    "length": length,
    "modulo": modulo,
    "multiply": multiply,
    "number": number,
    "startsWith": starts_with,
    "string": to_string,
    "stringContains": string_contains,
    "substring": substring,
    "subtract": subtract,
}

#: functions whose Python form takes a trailing `ci` flag (their `~` variant)
CASE_AWARE = {"between", "endsWith", "indexOf", "startsWith", "stringContains"}



#: the arithmetic operators' scalar reference (EQL `a + b` is `add(a, b)`), for constant folding
ARITH_OPS: dict[str, Callable[..., Any]] = {"+": add, "-": subtract, "*": multiply, "/": divide, "%": modulo}


def call(name: str, args: list[Value], case_insensitive: bool = False) -> Value:
    fn = SCALAR[name]
    if name in CASE_AWARE:
        if name == "between":
            padded = list(args) + [False] * (4 - len(args))
            return fn(*padded, ci=case_insensitive)
        if name == "indexOf":
            padded = list(args) + [None] * (3 - len(args))
            return fn(*padded, ci=case_insensitive)
        return fn(*args, ci=case_insensitive)
    return fn(*args)

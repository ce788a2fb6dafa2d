"""Correlator state as plain JSON values, and back.

The incremental correlators (sequence, sample, new_terms, threshold, suppression) keep their state
in dicts keyed by tuples of field values. A checkpoint is JSON, never a pickle: it holds data only,
so loading one cannot run code. Values are JSON's own (None, bool, int, float, str); the few other
types a join key can hold (dates read by Polars) are written as a tagged object and read back as the
same Python value, so that a restored key equals the one it was saved from.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

#: a checkpoint's format version; `check` refuses any other
VERSION = 1

_TAGGED: dict[str, Callable[[Any], Any]] = {"datetime": datetime.fromisoformat, "date": date.fromisoformat,
                                             "time": time.fromisoformat, "decimal": Decimal,
                                             "timedelta": lambda us: timedelta(microseconds=us)}


def value_out(v: Any) -> Any:
    """A key value (or a tuple of them, nested) as JSON."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, tuple):
        return [value_out(x) for x in v]
    if isinstance(v, datetime):
        return {"$": "datetime", "v": v.isoformat()}
    if isinstance(v, date):
        return {"$": "date", "v": v.isoformat()}
    if isinstance(v, time):
        return {"$": "time", "v": v.isoformat()}
    if isinstance(v, Decimal):
        return {"$": "decimal", "v": str(v)}
    if isinstance(v, timedelta):
        return {"$": "timedelta", "v": v // timedelta(microseconds=1)}
    raise TypeError(f"a correlator state value of type {type(v).__name__} cannot be checkpointed: {v!r}")


def value_in(v: Any) -> Hashable:
    """The inverse of value_out: lists come back as tuples (keys are tuples), tagged values as theirs."""
    if isinstance(v, list):
        return tuple(value_in(x) for x in v)
    if isinstance(v, dict):
        try:
            return _TAGGED[v["$"]](v["v"])
        except (KeyError, TypeError, ValueError, ArithmeticError) as e:
            raise ValueError(f"bad tagged value in checkpoint: {v!r}") from e
    return v


def key_in(v: Any) -> tuple:
    out = value_in(v)
    if not isinstance(out, tuple):
        raise ValueError(f"bad key in checkpoint: {v!r}")
    return out


def header(kind: str, **identity: Any) -> dict[str, Any]:
    """What a checkpoint says of itself: format version, correlator kind, and the query's shape."""
    return {"version": VERSION, "kind": kind, **identity}


def check(data: Any, kind: str, **identity: Any) -> None:
    """Refuse a checkpoint of another version, kind or query shape, with the reason."""
    if not isinstance(data, dict):
        raise ValueError(f"{kind} checkpoint: expected a JSON object, found {type(data).__name__}")
    if data.get("version") != VERSION:
        raise ValueError(f"{kind} checkpoint: version {data.get('version')!r}, this Trailhound reads {VERSION}")
    if data.get("kind") != kind:
        raise ValueError(f"{kind} checkpoint: it holds the state of a {data.get('kind')!r} correlator")
    for name, want in identity.items():
        if data.get(name) != want:
            raise ValueError(f"{kind} checkpoint: {name} is {data.get(name)!r}, the query has {want!r}")

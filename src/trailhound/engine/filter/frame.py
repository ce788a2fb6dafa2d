"""A loaded event frame as the filters read it, and the options that decide how.

* field aliases resolved (ES mapping `alias` fields, e.g. event.category → event_type);
* date fields (the timestamp field and any field typed date/date_nanos) as Int64 epoch ns,
  truncated to ms for `date` as Elasticsearch stores them;
* `__ts` (the ordering timestamp) and `__tb` (the tiebreaker) columns.
The event order is (`__ts`, `__tb` with nulls last, `__row`), as ES orders hits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from ...compile.schema import DATE_TYPES
from ...compile.semantics import parse_date_ns

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

#: a date given as epoch milliseconds in a string ("11", "1516116808349")
EPOCH_RE = r"^\s*-?\d+(\.\d+)?\s*$"
#: the layout `_parse_iso` takes: date, time, optional fraction, Z or a numeric offset
ISO_RE = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$"


@dataclass(frozen=True)
class FrameOptions:
    timestamp_field: str = "@timestamp"
    tiebreaker_field: str | None = None
    event_category_field: str = "event.category"
    #: field → Elasticsearch type where the data alone cannot tell (date, date_nanos, ip, version)
    es_types: Mapping[str, str] = field(default_factory=dict)
    #: alias field → the field it reads (ES mapping aliases)
    aliases: Mapping[str, str] = field(default_factory=dict)

    def types(self) -> dict[str, str]:
        t = dict(self.es_types)
        t.setdefault(self.timestamp_field, "date")
        return t

    def key(self) -> tuple:
        """Every frame option, by value: what per-frame work (filters, and the event order that the
        timestamp and tiebreaker decide) depends on. A SearchOptions' search-only options (size, ...)
        are left out, so that searches differing only in them share that work."""
        parts = []
        for f in dataclasses.fields(FrameOptions):
            value = getattr(self, f.name)
            parts.append(tuple(sorted(value.items())) if isinstance(value, Mapping) else value)
        return tuple(parts)


def date_to_ns(expr: pl.Expr, dtype: PolarsDataType, nanos: bool) -> pl.Expr:
    """Epoch-ms numbers, numeric strings and ISO-8601 strings → Int64 epoch nanoseconds."""
    if isinstance(dtype, pl.List):
        return expr.list.eval(date_to_ns(pl.element(), dtype.inner, nanos))
    if dtype.is_float():
        return (expr * 1_000_000).cast(pl.Int64)
    if dtype.is_numeric():
        return expr.cast(pl.Int64) * 1_000_000
    if isinstance(dtype, pl.Datetime):
        ns = expr.dt.cast_time_unit("ns").cast(pl.Int64)
        return ns if nanos else ns - ns % 1_000_000
    if dtype == pl.String:
        # elementwise: lets Polars filter rows before parsing their timestamps
        return expr.map_batches(lambda s: _parse_dates(s, nanos), return_dtype=pl.Int64, is_elementwise=True)
    return pl.lit(None, dtype=pl.Int64)


def _parse_dates(s: pl.Series, nanos: bool) -> pl.Series:
    out = _parse_iso(s)
    if out is None:
        # one vectorized parse for the usual layouts; slow path per odd value
        parsed = s.str.to_datetime(format=None, strict=False, time_unit="ns", time_zone="UTC", ambiguous="null")
        out = parsed.dt.epoch("ns")
        needs_slow = (out.is_null() & s.is_not_null()) | s.str.contains(EPOCH_RE).fill_null(False)
        if needs_slow.any():
            idx = needs_slow.arg_true()
            slow = [parse_date_ns(v, nanos) for v in s.gather(idx).to_list()]
            out = out.scatter(idx, pl.Series(slow, dtype=pl.Int64))
    if not nanos:
        out = out - out % 1_000_000
    return out


def _parse_iso(s: pl.Series) -> pl.Series | None:
    """Epoch ns when every value is a full ISO-8601 date-time with a zone, as telemetry writes
    them: Arrow's parser is about 10x faster than Polars' here, and stricter (it refuses the
    whole column on any out-of-range part, and then the general path decides)."""
    if s.null_count() == s.len() or not s.str.contains(ISO_RE).fill_null(True).all():
        return None
    try:
        parsed = pc.cast(s.to_arrow(), pa.timestamp("ns", "UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return pl.Series(s.name, parsed).dt.epoch("ns")


def prepare(frame: pl.DataFrame, options: FrameOptions, needed: set[str],
            derived: Sequence[pl.Expr] = ()) -> tuple[pl.LazyFrame, dict[str, str]]:
    """The frame with aliases, converted dates, `__ts` and `__tb`; and the ES types in force.

    `derived` columns (e.g. lower-cased companions) are added before the date conversions, so
    that filters reading them can still be pushed below the (costly) timestamp parsing."""
    types = options.types()
    lf = frame.lazy()
    schema = frame.schema
    exprs: list[pl.Expr] = []
    resolved: dict[str, pl.DataType] = dict(schema)
    for alias, target in options.aliases.items():
        if alias not in schema and target in schema:
            exprs.append(pl.col(target).alias(alias))
            resolved[alias] = schema[target]
            if target in types and alias not in types:
                types[alias] = types[target]
    if exprs:
        lf = lf.with_columns(exprs)
    if derived:
        lf = lf.with_columns(derived)
    conv = []
    for name, es_type in types.items():
        if es_type in DATE_TYPES and name in resolved and (name in needed or name == options.timestamp_field):
            conv.append(date_to_ns(pl.col(name), resolved[name], es_type == "date_nanos").alias(name))
    if conv:
        lf = lf.with_columns(conv)
    ts = options.timestamp_field
    extra = [pl.col(ts).alias("__ts") if ts in resolved else pl.lit(None, dtype=pl.Int64).alias("__ts")]
    tb = options.tiebreaker_field
    if tb and tb in resolved:
        extra.append(pl.col(tb).alias("__tb"))
    else:
        extra.append(pl.lit(None, dtype=pl.Int64).alias("__tb"))
    return lf.with_columns(extra), types


ORDER = ["__ts", "__tb", "__row"]

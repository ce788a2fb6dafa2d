"""A loaded event frame as the filters read it, and the options that decide how.

* field aliases resolved (ES mapping `alias` fields, e.g. event.category → event_type);
* date fields (the timestamp field and any field typed date/date_nanos) as Int64 epoch ns,
  truncated to ms for `date` as Elasticsearch stores them (parsed by compile/dates.py);
* `__ts` (the ordering timestamp) and `__tb` (the tiebreaker) columns.
The event order is (`__ts`, `__tb` with nulls last, `__row`), as ES orders hits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from ...compile.dates import date_to_ns
from ...compile.schema import DATE_TYPES


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
        # the tiebreaker too: a date tiebreaker orders by its instant, as Elasticsearch sorts a date field (its
        # text orders differently across offsets and precisions), whether or not a filter reads it
        if es_type in DATE_TYPES and name in resolved and (
                name in needed or name in (options.timestamp_field, options.tiebreaker_field)):
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


def columns(frame: pl.DataFrame, names: Sequence[str]) -> pl.DataFrame:
    """These columns of `frame`, as they are. `DataFrame.select` by name runs a query that copies every chunk of
    the columns into one (a Parquet store's frame has dozens of chunks per column): 0.1-0.2 s per call over a
    million events, where picking the columns costs nothing."""
    return pl.DataFrame([frame.get_column(n) for n in names])

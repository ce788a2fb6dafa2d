"""Dates as Elasticsearch reads them, to Int64 epoch nanoseconds: the one home of timestamp parsing.

* `parse_date_ns`: one value (a date literal in a query, a constant coerced to a date field): an
  ISO-8601 string or epoch milliseconds (number or numeric string), at the field's precision
  (`date` keeps milliseconds, `date_nanos` nanoseconds); None where it is not a date in range.
* `parse_time_ns`: one event's timestamp at full precision, with a fast path for the ISO form
  telemetry writes (datetime.fromisoformat, to the microsecond); anything else goes to
  `parse_date_ns`.
* `parse_dates_ns` / `date_to_ns`: a whole column (a Polars Series / expression), vectorized: Arrow's
  parser when every value is a full ISO date-time with a zone, else Polars' general parser, and
  `parse_date_ns` for the values neither reads (epoch strings, odd layouts), so that a column and
  a constant compared with it are read alike.

Polars and Arrow are imported by the vectorized functions only: the scalar ones serve alerts and
query compilation without them.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ..lang.limits import INT64_MAX, INT64_MIN

if TYPE_CHECKING:
    import polars as pl
    from polars._typing import PolarsDataType

#: a date given as epoch milliseconds in a string ("11", "1516116808349")
EPOCH_RE = r"^\s*-?\d+(\.\d+)?\s*$"
#: the year of a date written year first ("2026-01-01...", "+10000-01-01...")
YEAR_RE = r"^\s*([+-]?\d{4,})-"
#: the layout `_parse_iso` takes: date, time, optional fraction, Z or a numeric offset
ISO_RE = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


# ---- one value ------------------------------------------------------------------------------


def parse_date_ns(v: object, nanos: bool) -> int | None:
    """A date literal (ISO string or epoch millis) as epoch nanoseconds, at the field's precision."""
    if v is None:
        return None
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return _in_range(int(v) * 1_000_000) if math.isfinite(v) else None
    s = str(v).strip()
    if re.fullmatch(r"-?\d{1,19}", s):
        return _in_range(int(s) * 1_000_000)
    if re.fullmatch(r"-?\d+", s):
        return None
    m = re.fullmatch(r"(.*?)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?", s)
    if not m:
        return None
    base, frac, tz = m.group(1), m.group(2) or "", m.group(3) or "Z"
    try:
        dt = datetime.fromisoformat(base + ("+00:00" if tz == "Z" else tz))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    ns = int(dt.timestamp()) * 1_000_000_000 + int((frac + "000000000")[:9])
    if not nanos:
        ns -= ns % 1_000_000
    return _in_range(ns)


def _in_range(ns: int) -> int | None:
    """Epoch nanoseconds as the engine stores them (a long), None beyond."""
    return ns if INT64_MIN <= ns <= INT64_MAX else None


def parse_time_ns(value: object) -> int | None:
    """An event's timestamp as epoch nanoseconds, at full precision (None: not a date). The common
    ISO form, to the microsecond, is read by datetime.fromisoformat (several times faster than the
    general parser, which alert building runs per hit); anything else by `parse_date_ns`."""
    if isinstance(value, str) and _at_most_micro(value):
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            dt = None
        if dt is not None:
            dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
            return (dt - _EPOCH) // _MICROSECOND * 1000
    return parse_date_ns(value, nanos=True)


def _at_most_micro(text: str) -> bool:
    """No more than six fraction digits: datetime would silently drop nanoseconds."""
    dot = text.find(".")
    return dot < 0 or not text[dot + 7:dot + 8].isdigit()


# ---- a column -------------------------------------------------------------------------------


def date_to_ns(expr: pl.Expr, dtype: PolarsDataType, nanos: bool) -> pl.Expr:
    """Epoch-ms numbers, numeric strings and ISO-8601 strings → Int64 epoch nanoseconds."""
    import polars as pl

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
        return expr.map_batches(lambda s: parse_dates_ns(s, nanos), return_dtype=pl.Int64, is_elementwise=True)
    return pl.lit(None, dtype=pl.Int64)


def parse_dates_ns(s: pl.Series, nanos: bool) -> pl.Series:
    """A string column of dates as Int64 epoch nanoseconds (null where a value is not a date)."""
    import polars as pl

    out = _parse_iso(s)
    if out is None:
        # one vectorized parse for the usual layouts; slow path per odd value
        parsed = s.str.to_datetime(format=None, strict=False, time_unit="ns", time_zone="UTC", ambiguous="null")
        out = parsed.dt.epoch("ns")
        # Polars wraps a date beyond the 64-bit nanosecond range (years 1677 to 2262) around to a
        # wrong one; those go to the scalar parser, which says None beyond and is exact at the edges
        year = s.str.extract(YEAR_RE, 1).cast(pl.Int64, strict=False)
        beyond = ((year < 1678) | (year > 2261)).fill_null(False)
        needs_slow = (out.is_null() & s.is_not_null()) | s.str.contains(EPOCH_RE).fill_null(False) | beyond
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
    import polars as pl
    import pyarrow as pa
    import pyarrow.compute as pc

    if s.null_count() == s.len() or not s.str.contains(ISO_RE).fill_null(True).all():
        return None
    try:
        parsed = pc.cast(s.to_arrow(), pa.timestamp("ns", "UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return pl.Series(s.name, parsed).dt.epoch("ns")

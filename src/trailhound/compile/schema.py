"""What the compilers know about the data: each field's column, storage type and ES type."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

#: Elasticsearch field types that change comparison semantics (others behave as inferred).
DATE_TYPES = ("date", "date_nanos")
ES_TYPES = ("keyword", "wildcard", "text", "long", "integer", "short", "byte", "double", "float",
            "half_float", "scaled_float", "unsigned_long", "boolean", "date", "date_nanos", "ip", "version")


@dataclass(frozen=True)
class FieldInfo:
    """One field as the engine stores it.

    `dtype` is the Polars dtype of its column (a List for multi-valued fields), or None when
    no event carries the field. Date fields are stored as Int64 nanoseconds since the epoch.
    """

    name: str
    dtype: PolarsDataType | None
    es_type: str | None = None

    @property
    def multi(self) -> bool:
        return isinstance(self.dtype, pl.List)

    @property
    def inner(self) -> PolarsDataType | None:
        return self.dtype.inner if isinstance(self.dtype, pl.List) else self.dtype

    @property
    def kind(self) -> str:
        """Value kind for comparisons: string, int, float, bool, date, ip, version or null."""
        if self.dtype is None:
            return "null"
        if self.es_type in DATE_TYPES:
            return "date"
        if self.es_type in ("ip", "version"):
            return self.es_type
        inner = self.inner
        if inner is None or inner == pl.Null:
            return "null"
        if inner.is_integer():
            return "int"
        if inner.is_float():
            return "float"
        if inner == pl.Boolean:
            return "bool"
        return "string"


class Schema:
    """Field name → FieldInfo. Fields not in the mapping are absent (read as null)."""

    def __init__(self, fields: Mapping[str, FieldInfo]) -> None:
        self._fields = dict(fields)

    def get(self, name: str) -> FieldInfo:
        return self._fields.get(name) or FieldInfo(name, None)

    def __contains__(self, name: str) -> bool:
        return name in self._fields

    @classmethod
    def of_frame(cls, frame: pl.DataFrame | pl.LazyFrame, es_types: Mapping[str, str] | None = None) -> Schema:
        es_types = es_types or {}
        schema = frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema
        return cls({n: FieldInfo(n, dt, es_types.get(n)) for n, dt in schema.items() if not n.startswith("__")})

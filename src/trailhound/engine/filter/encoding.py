"""Fields dictionary-encoded: each field's distinct values, and per row the index of its value.

Telemetry repeats itself (a million events carry a few dozen process names), so a predicate on one
field is evaluated once per distinct value, and the rows it selects come from an inverted index.
"""

from __future__ import annotations

import numpy as np
import polars as pl

#: above this many true distinct values, a mask over all rows beats gathering index slices
_SLICE_LIMIT = 256
#: a field's first few row lookups scan its codes (one gather and scan, ~2 ms a million rows); past them, its inverted
#: index is built (a sort, 9-15 ms a million rows). Most fields of a hunt are looked up once to three times (13 fields
#: of the Linux rule set over 1M events: 11 of them at most 3 times), so most never pay for the sort
_SCANS_BEFORE_INDEX = 4


class FieldValues:
    """One field dictionary-encoded: its distinct values (null included) and each row's code."""

    def __init__(self, values: pl.DataFrame, codes: np.ndarray) -> None:
        self.values = values  # one column, named after the field, values as the compiler reads them
        self.codes = codes  # uint32, one per row
        self.counts = np.bincount(codes, minlength=values.height)
        self._order: np.ndarray | None = None
        self._starts: np.ndarray | None = None
        self._items: Items | None = None
        self._scans = 0  # row lookups answered by a scan of the codes so far

    def items(self) -> Items:
        """What exact-match and element-wise atoms read, made once per field (hunt's event,
        sequence and new_terms batches each bring new atoms for the same fields)."""
        if self._items is None:
            (column,) = self.values.get_columns()
            if isinstance(column.dtype, pl.List):
                pairs = self.values.with_row_index("__v").explode(column.name).drop_nulls(column.name)
                items, codes = encode(pairs[column.name])
                self._items = Items(items, codes, pairs["__v"].to_numpy(), True)
            else:
                self._items = Items(column, np.arange(column.len(), dtype=np.uint32),
                                     np.arange(column.len()), False)
        return self._items

    def rows_with(self, true_codes: np.ndarray) -> np.ndarray:
        """Row positions (sorted) whose value is one of `true_codes`."""
        if len(true_codes) == 0:
            return np.empty(0, dtype=np.int64)
        scan = self._order is None and self._scans < _SCANS_BEFORE_INDEX
        if len(true_codes) > _SLICE_LIMIT or scan:
            self._scans += scan
            mask = np.zeros(len(self.counts), dtype=bool)
            mask[true_codes] = True
            return np.flatnonzero(mask[self.codes])
        if self._order is None or self._starts is None:
            self._order, self._starts = grouped(self.codes, len(self.counts))
        starts = self._starts
        parts = [self._order[starts[c]:starts[c + 1]] for c in true_codes]
        out = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return np.sort(out) if len(parts) > 1 else out


class Items:
    """A field's distinct values or, for arrays, distinct elements; each element's code per
    (array value, element) pair, and the array value of each pair."""

    def __init__(self, items: pl.Series, codes: np.ndarray, owners: np.ndarray, elements: bool) -> None:
        self.items, self.codes, self.owners, self.elements = items, codes, owners, elements
        self._lowered: pl.Series | None = None
        self._texts: dict[bool, list] = {}
        self._by_item: tuple[np.ndarray, np.ndarray] | None = None

    def lowered(self) -> pl.Series:
        if self._lowered is None:
            self._lowered = self.items.str.to_lowercase()
        return self._lowered

    def texts(self, lowered: bool) -> list:
        if lowered not in self._texts:
            self._texts[lowered] = (self.lowered() if lowered else self.items).to_list()
        return self._texts[lowered]

    def by_item(self) -> tuple[np.ndarray, np.ndarray]:
        """The owners grouped by item: item k owns owners[starts[k]:starts[k + 1]]."""
        if self._by_item is None:
            if self.elements:
                order, starts = grouped(self.codes, self.items.len())
                self._by_item = (self.owners[order], starts)
            else:  # one owner per item, itself
                self._by_item = (self.owners, np.arange(len(self.owners) + 1))
        return self._by_item


def grouped(codes: np.ndarray, n_values: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions grouped by code (stable) and where each code's group starts (n_values + 1 ends)."""
    return stable_argsort(codes, n_values), np.concatenate(([0], np.cumsum(np.bincount(codes, minlength=n_values))))


def stable_argsort(codes: np.ndarray, n_values: int) -> np.ndarray:
    """np.argsort(codes, kind="stable"), by 16-bit radix passes (NumPy radix-sorts 16-bit
    integers, about 10x faster than its timsort of 32-bit ones)."""
    if n_values <= 1 << 16:
        return np.argsort(codes.astype(np.uint16), kind="stable")
    low = np.argsort((codes & 0xFFFF).astype(np.uint16), kind="stable")
    return low[np.argsort((codes[low] >> 16).astype(np.uint16), kind="stable")]


def encode(series: pl.Series) -> tuple[pl.Series, np.ndarray]:
    """The distinct values of a column (null last when present) and each row's index into them.

    Strings and integers by Arrow's hash dictionary-encoding: one pass over the column (Polars' `unique` then an
    Enum cast hashed every string twice; its `group_by` of integers gathered a row list per value), about 1.5-3x
    less CPU a field. Which distinct value gets which code is of no consequence to the callers."""
    if series.dtype == pl.String or series.dtype.is_integer():
        import pyarrow.compute as pc

        # string views go to Arrow without a copy, and Arrow hashes them faster than large strings
        encoded = pc.dictionary_encode(series.to_arrow(compat_level=pl.CompatLevel.newest()))
        distinct = len(encoded.dictionary)
        values = pl.Series(series.name, encoded.dictionary).cast(series.dtype)
        indices = encoded.indices
        if indices.null_count:
            values = pl.concat([values, pl.Series([None], dtype=series.dtype)])
        return values, _codes(indices, distinct)
    if isinstance(series.dtype, pl.List) and (series.dtype.inner == pl.String or series.dtype.inner.is_integer()):
        return _encode_lists(series)
    return _encode_grouped(series)


def _codes(indices, fill: int) -> np.ndarray:
    """An Arrow integer array (or chunked array) as uint32 codes, nulls as `fill`, read from its buffers: pyarrow's
    `to_numpy` and `fill_null` import pandas where it is installed (0.2 s on a hunt that needs nothing of it), and
    Polars' fill and cast cost ~2 ms a million rows (about 10x this), on every field a hunt encodes."""
    chunks = indices.chunks if hasattr(indices, "chunks") else [indices]
    parts = []
    for chunk in chunks:
        validity, data = chunk.buffers()[:2]
        width = chunk.type.bit_width // 8
        raw = np.frombuffer(data, dtype=np.dtype(f"int{chunk.type.bit_width}"), count=len(chunk),
                            offset=chunk.offset * width)
        if chunk.null_count:
            valid = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), count=chunk.offset + len(chunk),
                                  bitorder="little")[chunk.offset:].view(bool)
            parts.append(np.where(valid, raw, fill).astype(np.uint32))
        else:
            parts.append(raw.astype(np.uint32))
    if not parts:
        return np.empty(0, dtype=np.uint32)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _encode_grouped(series: pl.Series) -> tuple[pl.Series, np.ndarray]:
    """`encode` by a group_by (floats, booleans, lists of other types)."""
    groups = (pl.DataFrame({"v": series}).with_row_index("__i")
              .group_by("v").agg(pl.col("__i")))
    codes = np.empty(series.len(), dtype=np.uint32)
    idx = groups["__i"].explode().to_numpy()
    codes[idx] = np.repeat(np.arange(groups.height, dtype=np.uint32), groups["__i"].list.len().to_numpy())
    return groups["v"], codes


def _encode_lists(series: pl.Series) -> tuple[pl.Series, np.ndarray]:
    """`encode` of a list column whose elements Arrow encodes exactly (strings, integers): each element's code,
    then each array as the bytes of its elements' codes (4 bytes each, so equal bytes are equal arrays), encoded
    in turn; an array's value is one of the rows that hold it. A null array is its own value, not the empty one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arrays = series.to_arrow(compat_level=pl.CompatLevel.newest())
    if arrays.offset or not pa.types.is_large_list(arrays.type):  # not the layout read below: the general way
        return _encode_grouped(series)
    elements = pc.dictionary_encode(arrays.values)
    element_codes = _codes(elements.indices, len(elements.dictionary))
    offsets = np.frombuffer(arrays.buffers()[1], dtype=np.int64, count=len(arrays) + 1) * 4
    keys = pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(arrays),
                                            [arrays.buffers()[0], pa.py_buffer(offsets), pa.py_buffer(element_codes)],
                                            null_count=arrays.null_count)
    encoded = pc.dictionary_encode(keys)
    distinct = len(encoded.dictionary)
    indices = encoded.indices
    out = _codes(indices, distinct)
    if indices.null_count:
        distinct += 1
    holder = np.empty(distinct, dtype=np.int64)
    holder[out] = np.arange(len(out))
    return series.gather(holder), out

"""Fields dictionary-encoded: each field's distinct values, and per row the index of its value.

Telemetry repeats itself (a million events carry a few dozen process names), so a predicate on one
field is evaluated once per distinct value, and the rows it selects come from an inverted index.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ...sources.dictionary import encode

__all__ = ["FieldValues", "Items", "encode", "grouped", "stable_argsort"]

#: above this many true distinct values, a mask over all rows beats gathering index slices
_SLICE_LIMIT = 256
#: a field's first few row lookups scan its codes (one gather and scan, ~2 ms a million rows); past them, its inverted
#: index is built (a sort, 9-15 ms a million rows). Most fields of a hunt are looked up once to three times (13 fields
#: of the Linux rule set over 1M events: 11 of them at most 3 times), so most never pay for the sort
_SCANS_BEFORE_INDEX = 4


class FieldValues:
    """One field dictionary-encoded: its distinct values (null included) and each row's code."""

    def __init__(self, values: pl.DataFrame, codes: np.ndarray, counts: np.ndarray | None = None) -> None:
        self.values = values  # one column, named after the field, values as the compiler reads them
        self.codes = codes  # uint32, one per row
        #: each value's number of rows (given when the columnar store kept them)
        self.counts = np.bincount(codes, minlength=values.height) if counts is None else counts
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
            return np.flatnonzero(np.take(mask, self.codes))  # take: no 64-bit copy of the codes
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

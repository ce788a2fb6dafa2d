"""Columns dictionary-encoded: a column's distinct values, and per row the index (code) of its value.

The engine evaluates a predicate once per distinct value (engine/filter/encoding.py); the columnar store keeps each
field's codes beside its values (sources/parquet.py), so that a hunt over the store reads small integer columns and
the few distinct values instead of hashing every row of every field again. No I/O."""

from __future__ import annotations

import threading

import numpy as np
import polars as pl

#: one part's encoding: its distinct values, each row's code, and (when the store keeps them) each value's rows
EncodedPart = tuple[pl.Series, "pl.Series | np.ndarray", "np.ndarray | None"]


class Encoding:
    """A column's encoding, kept as its parts' (one per file of a store) until first asked for (`merged`): merging
    costs a few ms a field, which a hunt pays only for the fields its filters encode, on their worker threads."""

    def __init__(self, parts: list[EncodedPart]) -> None:
        self.dtype = parts[0][0].dtype
        self.rows = sum(len(codes) for _, codes, _ in parts)
        self._parts: list[EncodedPart] | None = parts
        self._merged: tuple[pl.Series, np.ndarray, np.ndarray | None] | None = None
        self._lock = threading.Lock()

    def merged(self) -> tuple[pl.Series, np.ndarray, np.ndarray | None]:
        """The distinct values of the whole column, each row's code among them, and each value's number of rows
        (None when a part did not keep its counts)."""
        with self._lock:
            if self._merged is None:
                assert self._parts is not None
                self._merged, self._parts = merge(self._parts), None
            return self._merged

    def column(self, name: str, positions: np.ndarray | None = None) -> pl.Series:
        """The column's values at these row positions (every row when None)."""
        return decode(self.merged(), positions).alias(name)


def decode(encoded: EncodedPart, positions: np.ndarray | None = None) -> pl.Series:
    """An encoded column's values at these row positions (every row when None): its distinct values gathered by the
    codes of those rows."""
    values, codes, _ = encoded
    return values.gather(codes if positions is None else codes[positions])


def merge(parts: list[EncodedPart]) -> tuple[pl.Series, np.ndarray, np.ndarray | None]:
    """One column's encoding from the encodings of its parts, the parts one after the other (files of a store): the
    distinct values of all the parts (each part's values hashed once: a few thousand, not a million), each row's
    code among them (uint32), and each value's rows when every part counted its own. The parts' values must be of
    one type.

    The codes are mapped by Polars' gather (32-bit indices, into memory its allocator reuses): NumPy's take made a
    64-bit copy of each part's codes first, and the fresh pages of those copies cost more than the mapping."""
    if len(parts) == 1:
        values, codes, counts = parts[0]
        return values, _numpy_codes(codes), counts
    first = parts[0][0]
    counted = [counts for _, _, counts in parts if counts is not None]
    every_counted = len(counted) == len(parts)
    if _exact(first.dtype) and all(values.len() == first.len() and values.equals(first) for values, _, _ in parts):
        # the same values in the same order in every part (the store sorts them): its codes are the column's
        joined = pl.concat([c if isinstance(c, pl.Series) else pl.Series(c) for _, c, _ in parts], rechunk=True)
        sums = np.vstack(counted).sum(axis=0, dtype=np.int64) if every_counted else None
        return first, _numpy_codes(joined), sums
    distinct, of_value = encode(pl.concat([values for values, _, _ in parts]))
    mapped = []
    totals = np.zeros(distinct.len(), dtype=np.int64) if every_counted else None
    start = 0
    for values, codes, counts in parts:
        mine = of_value[start:start + values.len()]
        mapped.append(pl.Series(mine).gather(codes if isinstance(codes, pl.Series) else pl.Series(codes)))
        if totals is not None and counts is not None:
            np.add.at(totals, mine, counts)
        start += values.len()
    return distinct, _numpy_codes(pl.concat(mapped, rechunk=True)), totals


def _exact(dtype: pl.DataType) -> bool:
    """Whether values of this type are equal only when they are the same (not floats: 0.0 == -0.0)."""
    inner = dtype.inner if isinstance(dtype, pl.List) else dtype
    return inner == pl.String or (inner is not None and inner.is_integer())


def _numpy_codes(codes: pl.Series | np.ndarray) -> np.ndarray:
    return codes.to_numpy().astype(np.uint32, copy=False) if isinstance(codes, pl.Series) else codes


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

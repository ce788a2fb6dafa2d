"""What loading events gives, whatever their format: the event table (one frame, and the way back
from a row to its document and its file and line) and the load report (inputs, bad lines, notes)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from trailhound.sources.dictionary import Encoding
from trailhound.sources.ecs_readers import Origin

MAX_SKIPPED_KEPT = 1000
"""Bad lines kept in full in `LoadReport.skipped`; `LoadReport.skipped_count` counts them all."""


@dataclass(frozen=True)
class Skipped:
    """One input line (or array element) that could not be used."""

    file: str
    line: int  # 1-based line number; 1-based element number in a JSON-array file
    reason: str


@dataclass
class InputStats:
    """What one input gave: its lines (array elements for a JSON array), events and bad lines."""

    file: str
    format: str  # "ecs", "auditd", "syslog", ...
    lines: int
    events: int
    skipped: int


@dataclass
class LoadReport:
    files: list[str]
    events: int
    skipped: list[Skipped]  # the first MAX_SKIPPED_KEPT bad lines
    skipped_count: int  # all bad lines
    notes: list[str] = field(default_factory=list)  # how files were read, where it is a guess
    inputs: list[InputStats] = field(default_factory=list)  # one per file, in `files` order


class EventTable:
    """Loaded events; `frame` has one row per event, in input order.

    Columns: one per field in `present`, named by dotted path, then ``__row`` (Int64, global
    input order) and ``__file`` (Int32, index into ``report.files``).
    """

    def __init__(self, frame: pl.DataFrame, present: frozenset[str], report: LoadReport,
                 origins: list[Origin], encodings: dict[str, Encoding] | None = None,
                 order: list[str] | None = None) -> None:
        #: the columns the columnar store kept encoded (sources/dictionary.py): per column, its distinct values and
        #: each row's code among them. Those missing from `lean_frame` are made when `frame` is first read: the lean
        #: frame is for the shared filters, given with its encodings (SharedFilters(lean_frame, ..., encodings))
        self.encodings = encodings or {}
        self.lean_frame = frame
        self._order = order
        self._frame = frame if all(n in frame.columns for n in self.encodings) else None
        self.present = present
        self.report = report
        self._origins = origins
        self._starts = [o.start for o in origins]

    @property
    def frame(self) -> pl.DataFrame:
        """Every column, in order: the fields, ``__row``, ``__file``."""
        if self._frame is None:
            made = [encoding.column(name) for name, encoding in self.encodings.items()
                    if name not in self.lean_frame.columns]
            self._frame = self.lean_frame.with_columns(made).select(self._order or self.lean_frame.columns)
        return self._frame

    @property
    def height(self) -> int:
        return self.lean_frame.height

    def documents(self, rows: Sequence[int]) -> list[dict]:
        """The original documents (parsed JSON, unchanged) for these ``__row`` values, in order.

        Re-reads just those lines; the first call on a file read by DuckDB scans the file once
        for line offsets.
        """
        return self._per_origin(rows, lambda origin, local: origin.documents(local))

    def document_texts(self, rows: Sequence[int]) -> list[bytes]:
        """The same documents as JSON text, the input's own where it keeps one (`Origin.texts`): what a Spark task
        ships of its candidates, so that they are neither parsed nor serialized again there."""
        return self._per_origin(rows, lambda origin, local: origin.texts(local))

    def locations(self, rows: Sequence[int]) -> list[tuple[str, int]]:
        """(file, line) of each of these ``__row`` values; line as in `Skipped.line`."""
        return self._per_origin(
            rows, lambda origin, local: [(origin.name, n) for n in origin.lines(local)])

    def _per_origin(self, rows: Sequence[int], fetch) -> list:
        rows = [int(r) for r in rows]
        groups: dict[int, list[int]] = {}
        for r in rows:
            if not 0 <= r < self.height:
                raise IndexError(f"row {r} out of range (the table has {self.height} rows)")
            # The last input starting at or before r: inputs without rows share a start.
            groups.setdefault(bisect.bisect_right(self._starts, r) - 1, []).append(r)
        found: dict[int, object] = {}
        for i, group in groups.items():
            origin = self._origins[i]
            wanted = sorted(set(group))
            found.update(zip(wanted, fetch(origin, [r - origin.start for r in wanted])))
        return [found[r] for r in rows]

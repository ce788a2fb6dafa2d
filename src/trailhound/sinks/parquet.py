"""Alerts as Parquet files in a directory (`hunt --out DIR --out-format parquet`, either engine).

Each row is one alert: `document`, the alert exactly as the NDJSON sink writes its line (compact JSON,
without the newline), so the documents and ids are the same whichever format is chosen; and a few of its
fields as typed columns for the queries a team runs over alerts (which rule, how severe, when), read from
the document. Files are ``DIR/alerts-NNNNN.parquet``, `ROWS_PER_FILE` alerts each, in the order the alerts
were written (the NDJSON file's order); each file is written to a temporary name and renamed, so a reader
never sees half a file. The schema version is in each file's metadata (`trailhound.alerts`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import orjson

from .delivery import Delivery
from .ndjson import SinkError

SCHEMA_VERSION = "1"
ROWS_PER_FILE = 100_000
DOCUMENT = "document"
#: the typed columns beside the document: (column, the alert field it copies)
COLUMNS = (("kibana.alert.uuid", "kibana.alert.uuid"), ("kibana.alert.rule.rule_id", "kibana.alert.rule.rule_id"),
           ("kibana.alert.rule.name", "kibana.alert.rule.name"), ("kibana.alert.severity", "kibana.alert.severity"),
           ("kibana.alert.original_time", "kibana.alert.original_time"), ("host.name", "host.name"))


def directory_problem(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()) -> str | None:
    """Why `path` cannot take Parquet alert files, or None: a file, an input, a missing parent, one that
    already holds alert files (a second hunt would mix its alerts with the first's), not writable."""
    p = Path(path)
    if os.fspath(path) == "-":
        return "Parquet alerts go to a directory, not standard output"
    for i in inputs:
        try:
            if os.fspath(i) != "-" and p.exists() and os.path.samefile(p, i):
                return "it is one of the inputs"
        except OSError:
            pass
    if p.exists() and not p.is_dir():
        return "is a file; Parquet alerts go to a directory"
    if p.is_dir():
        if any(p.glob("alerts-*.parquet")):
            return "already holds Parquet alert files; give an empty or new directory"
        if not os.access(p, os.W_OK | os.X_OK):
            return "the directory is not writable"
        return None
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        return f"its directory {parent} does not exist"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"the directory {parent} is not writable"
    return None


def _field(alert: dict, dotted: str):
    """A field of an alert document, given flat (`kibana.alert.uuid`) or nested (`host: {name}`)."""
    if dotted in alert:
        return alert[dotted]
    node: object = alert
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


class ParquetSink:
    """The `Sink` writing alert files into `directory` (created if missing). A write error (a full disk)
    does not stop the hunt: the alerts of the file not written are counted as failed with the reason."""

    def __init__(self, directory: str | os.PathLike, rows_per_file: int = ROWS_PER_FILE) -> None:
        self.directory = Path(directory)
        self.rows_per_file = rows_per_file
        self.files: list[str] = []
        self.delivery = Delivery()
        self._docs: list[bytes] = []
        self._rows: list[list] = [[] for _ in COLUMNS]
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SinkError(f"cannot create {self.directory}: {e.strerror or e}") from None

    def write(self, alerts: Iterable[dict]) -> None:
        for alert in alerts:
            self._docs.append(orjson.dumps(alert, default=str))
            for values, (_, name) in zip(self._rows, COLUMNS):
                v = _field(alert, name)
                values.append(v if isinstance(v, str) or v is None else str(v))
            if len(self._docs) >= self.rows_per_file:
                self._flush()

    def _flush(self) -> None:
        if not self._docs:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        docs, rows = self._docs, self._rows
        self._docs, self._rows = [], [[] for _ in COLUMNS]
        columns = {name: pa.array(values, pa.string()) for (name, _), values in zip(COLUMNS, rows)}
        columns[DOCUMENT] = pa.array([d.decode() for d in docs], pa.large_string())
        table = pa.table(columns).replace_schema_metadata({"trailhound.alerts": SCHEMA_VERSION})
        path = self.directory / f"alerts-{len(self.files):05d}.parquet"
        tmp = path.with_name(path.name + ".part")
        try:
            pq.write_table(table, tmp, compression="zstd")
            os.replace(tmp, path)
        except OSError as e:
            self.delivery.failed += len(docs)
            self.delivery.problem(f"cannot write {path}: {e.strerror or e}")
            tmp.unlink(missing_ok=True)
            return
        self.files.append(str(path))
        self.delivery.delivered += len(docs)

    def close(self) -> None:
        self._flush()


def read_alerts(directory: str | os.PathLike) -> list[dict]:
    """The alerts of a directory written by `ParquetSink`, in their order (for tests and tools)."""
    import pyarrow.parquet as pq

    out: list[dict] = []
    for path in sorted(Path(directory).glob("alerts-*.parquet")):
        out.extend(orjson.loads(d) for d in pq.read_table(path, columns=[DOCUMENT])[DOCUMENT].to_pylist())
    return out

"""`trailhound hunt --engine spark`: the hunt pipeline with its two heavy steps run as Spark stages
(`spark/tasks.py` says what each task runs), returning the same `HuntReport` as `pipeline.run_hunt`.

* Stage 1, `mapInPandas` over the list of inputs, one task per file: load, filter, candidates.
* Stage 2, `groupBy("rule").applyInPandas`: each rule's candidates from every file, correlated and
  turned into alerts by the local engine's code.
* The driver joins the per-file reports into the `LoadReport`, and writes the alerts to the sinks in
  the report's order, as `run_hunt` does: the alert files are byte-identical to the local engine's.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import orjson

from ..pipeline.report import HuntReport, RuleOutcome
from .tasks import (
    FileScan,
    RuleResult,
    RuleSpec,
    Split,
    build_alerts,
    correlate_rule,
    join_types,
    merge_parts,
    route_payload,
    rule_specs,
    scan_files,
    split_of,
    split_payload,
    threshold_bounds,
)

if TYPE_CHECKING:
    from ..pipeline.hunt import Plan
    from ..sinks import Sink

STAGE1_SCHEMA = "kind string, rule int, file int, row long, payload binary"
STAGE2_SCHEMA = "rule int, kind string, seq int, payload binary"
_CHUNK = 10_000  # candidate rows per pandas frame a task yields
#: a rule is split into parts (`tasks.split_of`) when its candidates take this many bytes of Arrow IPC or more
#: (some 10,000 rows): below it, correlating its parts costs more than correlating it whole
SPLIT_BYTES = 1 << 20


#: the modules of Spark Connect's client (pyspark[connect]: grpcio, grpcio-status, googleapis-common-protos,
#: protobuf, zstandard), beside pyspark, pandas and pyarrow
CONNECT_MODULES = ("grpc", "grpc_status", "google.rpc", "google.protobuf", "zstandard")


def connect_missing() -> list[str]:
    """The Connect client modules that are not installed."""
    import importlib.util

    out = []
    for name in CONNECT_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # the parent package (google) is missing
            found = False
        if not found:
            out.append(name)
    return out


class SparkUnavailable(RuntimeError):
    """pyspark or Java is missing, or the session cannot start: the message says which and what to do."""


def session(master: str | None = None):
    """A SparkSession: `sc://...` connects to a Spark Connect server; anything else is a master URL
    (default local[*]). The Spark UI is off and shuffles are small: a hunt's stage 2 has one group per rule."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailable("--engine spark needs pyspark: pip install 'trailhound[spark]'") from None
    if master and master.startswith("sc://"):
        if missing := connect_missing():  # checked here: pyspark's own check may end the process
            raise SparkUnavailable(f"Spark Connect (sc://) needs its client packages ({', '.join(missing)} missing): "
                                   "pip install 'pyspark[connect]'")
        if (why := _unreachable(master)) is not None:  # else the client retries for minutes before it says so
            raise SparkUnavailable(f"cannot connect to {master} ({why}); start the Spark Connect server "
                                   "(sbin/start-connect-server.sh) or check the address")
        try:
            spark = SparkSession.builder.remote(master).getOrCreate()
            spark.version  # noqa: B018 - a Connect session is lazy: ask the server once, so a missing one is said here
            return spark
        except Exception as e:  # noqa: BLE001 - the Connect client's packages missing, no server: one line
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise SparkUnavailable(f"cannot connect to {master} ({first}); Spark Connect needs "
                                   "pip install 'pyspark[connect]' and a running server") from None
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # the workers run this interpreter's trailhound
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    try:
        builder = SparkSession.builder
        for key, value in local_memory(master).items():
            builder = builder.config(key, value)
        builder = (builder.master(master or "local[*]").appName("trailhound")
                   .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4")
                   .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                   .config("spark.ui.showConsoleProgress", "false"))  # the CLI's own lines say what happened
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
        return spark
    except Exception as e:  # noqa: BLE001 - no Java, a bad master URL: said in one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SparkUnavailable(f"cannot start Spark ({first}); --engine spark needs Java 17 or later") from None


def local_memory(master: str | None) -> dict[str, str]:
    """The driver's memory for a local master (where the driver's JVM is the executor too) when nobody set it:
    half the machine's memory, 1 to 32 GB. Spark's own default, 1 GB, runs out of heap on a hunt of about a million
    events (stage 1's candidates and documents pass through it). Nothing when the user set it (SPARK_DRIVER_MEMORY,
    PYSPARK_SUBMIT_ARGS' --driver-memory, spark-defaults.conf) or the master is a cluster's."""
    if master is not None and not master.startswith("local"):
        return {}
    if os.environ.get("SPARK_DRIVER_MEMORY") or "driver-memory" in os.environ.get("PYSPARK_SUBMIT_ARGS", ""):
        return {}
    conf_dir = os.environ.get("SPARK_CONF_DIR") or os.path.join(os.environ.get("SPARK_HOME", ""), "conf")
    try:
        with open(os.path.join(conf_dir, "spark-defaults.conf"), encoding="utf-8") as f:
            if any(line.split()[:1] == ["spark.driver.memory"] for line in f):
                return {}
    except OSError:
        pass
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return {}
    gb = max(1, min(32, total // 2 // 2**30))
    return {"spark.driver.memory": f"{gb}g", "spark.driver.maxResultSize": f"{gb}g"}


def out_of_memory(e: BaseException) -> str | None:
    """The one-line reason when a Spark job failed because a JVM ran out of heap, else None."""
    text = str(e)
    if "OutOfMemoryError" not in text and "SparkContext was shut down" not in text:
        return None
    return ("Spark ran out of memory (java.lang.OutOfMemoryError); give it more: --driver-memory / "
            "SPARK_DRIVER_MEMORY in local mode, spark.executor.memory on a cluster")


def _unreachable(url: str, timeout: float = 10.0) -> str | None:
    """Why the Spark Connect server of `url` (sc://host[:port][/;params]) takes no connection, or None."""
    import socket
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.split("/;", 1)[0])
        host, port = parts.hostname or "localhost", parts.port or 15002
    except ValueError as e:
        return f"not a Spark Connect URL: {e}"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as e:
        return f"{host}:{port}: {e.strerror or e}"


#: an input given as a URI (file:, hdfs://, s3a://, abfs://, gs://, viewfs://...): read through Spark's filesystems
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")


def is_uri(path: str | os.PathLike) -> bool:
    """Whether an input names a file of one of Spark's (Hadoop's) filesystems rather than a local path
    (a local path that happens to look like one, and exists, stays a path)."""
    text = os.fspath(path)
    return isinstance(text, str) and bool(_URI.match(text)) and not os.path.exists(text)


def _inputs(paths: Sequence[str | os.PathLike]) -> list[str]:
    """The inputs in order: local paths checked here and made absolute (directories of Parquet files
    expanded, as locally); URIs as given, listed through Spark by stage 1 (`_listing`)."""
    from ..sources import SourceError
    from ..sources.parquet import expand

    out = []
    for given in paths:
        if is_uri(given):
            out.append(os.fspath(given))
            continue
        for p in expand([given]):
            path = os.fspath(p)
            if path in ("-", "/dev/stdin") or (os.path.exists(path) and not os.path.isfile(path)):
                raise SourceError(path, "Spark tasks read files: give a file, not a stream")
            if not os.path.exists(path):
                raise SourceError(path, "no such file")
            out.append(os.path.abspath(path))
    return out


def run_hunt_spark(planned: Plan, paths: Sequence[str | os.PathLike], *, spark=None, master: str | None = None,
                   input_format: str | None = None, read_options=None, max_signals: int | None = None,
                   sinks: Sequence[Sink] = (), now: str | None = None, keep_alerts: bool = False,
                   key_parts: int | None = None, slots: int | None = None, split_bytes: int = SPLIT_BYTES,
                   **_: Any) -> HuntReport:
    """`pipeline.run_hunt` on Spark (`spark` a session, else one from `master`). `key_parts`: how many parts
    a rule is split into (`tasks.split_of`; default twice the session's parallelism; 1: never split);
    `slots`: how many stage-2 groups share the rules and parts (default four per key part); `split_bytes`: a
    rule is split only when its candidates take at least this many bytes (0: every rule that can be).
    Raises `sources.SourceError` when an input cannot be read at all, as the local engine does."""
    from ..alerts.build import utc_now
    from ..pipeline.hunt import deliver, rule_outcome
    from ..rules.exceptions import unattached
    from ..sources import InputStats, LoadReport, Skipped, SourceError

    started = time.perf_counter()
    rules = planned.rules
    report = HuntReport(load_errors=list(rules.errors), unattached_lists=unattached(rules.rules, rules.exceptions))
    files = _inputs(paths)
    specs = rule_specs(planned.checks, rules.exceptions)
    spark = spark or session(master)
    now = now or utc_now()

    scans, stage1 = _stage1(spark, files, specs, input_format, read_options)
    for scan in scans:
        if scan.error:
            stage1.unpersist()
            raise SourceError(scan.name, scan.error.split(": ", 1)[-1])
    offsets, start = {}, 0
    for scan in scans:
        offsets[scan.file_no] = start
        start += scan.events
    skipped = [Skipped(*s) for scan in scans for s in scan.skipped][:1000]
    report.load = LoadReport([s.name for s in scans], start, skipped, sum(s.skipped_count for s in scans),
                             [n for s in scans for n in s.notes],
                             [InputStats(s.name, s.format, s.lines, s.events, s.skipped_count) for s in scans])
    report.timings["load"] = time.perf_counter() - started
    report.timings.update(_task_seconds(scans))
    types = join_types(scans)
    results = _stage2(spark, stage1, scans, specs, offsets, types, now, max_signals,
                      key_parts if key_parts is not None else _key_parts(spark), slots, split_bytes)
    stage1.unpersist()
    report.timings["evaluate"] = time.perf_counter() - started - report.timings["load"]
    report.timings["stage2.correlate"] = sum(r.seconds for r in results.values())

    t0 = time.perf_counter()
    by_index = {s.index: s for s in specs}
    runs = []
    for spec in specs:
        result = results.get(spec.index) or RuleResult(spec.index, error=spec.error, unsupported=spec.unsupported)
        if spec.error or spec.unsupported:
            result.error, result.unsupported = spec.error, spec.unsupported
        runs.append(result)
    for run in sorted(runs, key=lambda r: (-r.hits, by_index[r.index].check.rule.name)):
        rule = by_index[run.index].check.rule
        status = "unsupported" if run.unsupported else "failed" if run.error else "ran"
        excepted: dict[str, int] = {}
        for scan in scans:
            for label, n in scan.excepted.get(str(run.index), {}).items():
                excepted[label] = excepted.get(label, 0) + n
        outcome = rule_outcome(report, rule, status, run.error or run.unsupported or "", kind=run.kind,
                               hits=run.hits, excepted=dict(sorted(excepted.items())) if status == "ran" else {},
                               seconds=run.seconds, warnings=run.warnings, error=run.error)
        if run.hits:
            deliver(outcome, rule, run.alerts, suppressed=run.suppressed, over_max_signals=run.over_max_signals,
                    max_signals=max_signals, sinks=sinks, keep_alerts=keep_alerts)
        report.rules.append(outcome)
    for c in planned.checks:
        if c.status != "ok":
            report.rules.append(RuleOutcome.of(c.rule, c.status, c.reason or ""))
    report.timings["alerts"] = time.perf_counter() - t0
    report.timings["total"] = time.perf_counter() - started
    return report


def _key_parts(spark) -> int:
    """Twice the session's default parallelism (at most 64); 8 over Spark Connect, which does not say it."""
    try:
        return max(2, min(64, 2 * int(spark.sparkContext.defaultParallelism)))
    except Exception:  # noqa: BLE001 - a Connect session has no SparkContext
        return 8


def _task_seconds(scans: list[FileScan]) -> dict[str, float]:
    """Where stage 1's time went, summed over its tasks (`stage1.load`, `.filter`, `.encode`: the work in the
    tasks), and `stage1.first_task`: from the stage's start to the first task's work (scheduling, starting
    the Python workers, the first job's warm-up)."""
    out = {f"stage1.{k}": sum(s.seconds.get(k, 0.0) for s in scans) for k in ("load", "filter", "encode")}
    began = [s.seconds["began"] for s in scans if "began" in s.seconds]
    if began:
        out["stage1.first_task"] = min(began)
    return out


def _scan_rows(files, specs, input_format, read_options, began: float):
    """The stage-1 rows of inputs loaded together (`tasks.scan_files`): their reports, the documents of
    their candidates, and per rule its candidates, as pandas frames of `STAGE1_SCHEMA`."""
    import pandas as pd

    results, candidates, docs = scan_files(files, specs, input_format, read_options)
    results[0].seconds["began"] = began
    results[0].seconds["yield"] = time.time()
    yield pd.DataFrame({"kind": "file", "rule": -1, "file": [r.file_no for r in results], "row": -1,
                        "payload": [orjson.dumps(asdict(r)) for r in results]})
    for k in range(0, len(docs), _CHUNK):
        part = docs[k:k + _CHUNK]
        yield pd.DataFrame({"kind": "doc", "rule": -1, "file": [d[0] for d in part],
                            "row": [d[1] for d in part], "payload": [d[2] for d in part]})
    first = files[0][0]
    for k in range(0, len(candidates), _CHUNK):
        chunk = candidates[k:k + _CHUNK]
        yield pd.DataFrame({"kind": "cand", "rule": [c[0] for c in chunk], "file": first, "row": -1,
                            "payload": [c[1] for c in chunk]})


def _file_scans(rows, t0: float) -> list[FileScan]:
    scans = []
    for row in rows:
        data = orjson.loads(row.payload)
        data["skipped"] = [tuple(s) for s in data["skipped"]]
        data["types"] = {k: tuple(v) for k, v in data["types"].items()}
        scans.append(FileScan(**data))
    scans.sort(key=lambda s: s.file_no)
    for s in scans:  # the task's clock times, as seconds since the stage began
        for k in ("began", "yield"):
            if k in s.seconds:
                s.seconds[k] -= t0
    return scans


def _stage1(spark, files: list[str], specs: list[RuleSpec], input_format, read_options):
    """One task per input: (the per-file scans, the cached candidate rows). Inputs given as URIs are
    read through Spark's filesystems (`_stage1_spark_fs`); local paths are opened by the tasks."""
    if any(is_uri(f) for f in files):
        return _stage1_spark_fs(spark, files, specs, input_format, read_options)

    def scan(frames):
        began = time.time()
        for pdf in frames:
            for unit in pdf["files"]:
                yield from _scan_rows([(int(n), p) for n, p in orjson.loads(unit)], specs, input_format,
                                      read_options, began)

    units = _units(files, input_format)
    t0 = time.time()
    listing = spark.createDataFrame([(i, orjson.dumps(u).decode()) for i, u in enumerate(units)], "unit int, files string")
    stage1 = listing.repartition(len(units)).mapInPandas(scan, STAGE1_SCHEMA).cache()
    return _file_scans(stage1.filter("kind = 'file'").select("payload").collect(), t0), stage1


#: binaryFile's own bound on one file (`spark.sql.sources.binaryFile.maxLength`, an int: 2 GiB - 1 at most)
BINARY_FILE_MAX = (1 << 31) - 1
_GLOB = re.compile(r"[*?\[{]")
_CONDITION = re.compile(r"\[[A-Z][A-Z_.]+\] ")  # Spark's error condition, "[FAILED_READ_FILE.NO_HINT] "
_SQLSTATE = re.compile(r"\s*SQLSTATE: \w+\s*$")


def _listing(spark, files: list[str]) -> list[tuple[str, str]]:
    """(name, path as Spark lists it) of every file the inputs give, in input order, a directory's or a
    glob's files in path order (recursively; Spark skips names starting with `_` or `.`). Listed by Spark
    (`binaryFile` without its content: no file is read here), so every filesystem of the session's Hadoop
    configuration works. A file over binaryFile's limit is refused with the reason before any is read."""
    from ..sources import SourceError

    limit = BINARY_FILE_MAX
    try:
        limit = min(limit, int(spark.conf.get("spark.sql.sources.binaryFile.maxLength")))
    except Exception:  # noqa: BLE001 - a server that does not say: Spark's default
        pass
    uris = [_as_uri(given) for given in files]
    listed = _list_together(spark, uris)
    out: list[tuple[str, str]] = []
    for given, uri in zip(files, uris):
        rows = listed.get(uri)
        if rows is None:  # a glob, or a failed listing: this input alone, for its own error
            try:
                rows = (spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(uri)
                        .select("path", "length").collect())
            except Exception as e:  # noqa: BLE001 - Spark's exceptions (captured, Py4J, Connect): said in one line
                raise SourceError(given, spark_reason(e, uri)) from None
            rows = sorted((r.path, r.length) for r in rows)
        if not rows:
            raise SourceError(given, "no file there (an empty directory, or only hidden files)")
        exact = len(rows) == 1 and not _GLOB.search(uri) and rows[0][0].endswith(_uri_path(uri))
        for path, length in rows:
            name = given if exact else path
            if length is not None and length > limit:
                raise SourceError(name, f"{length} bytes, over the {limit} bytes Spark reads as one file "
                                        "(binaryFile, spark.sql.sources.binaryFile.maxLength, at most 2 GiB); "
                                        "split or compress it")
            out.append((name, path))
    return out


def _list_together(spark, uris: list[str]) -> dict[str, list[tuple[str, int]]]:
    """The files of the inputs that are files or directories (not globs), listed by one Spark job: per
    input, its (path, length) in path order. Empty when the listing fails (`_listing` then lists each
    input alone, to say which one failed and why)."""
    from urllib.parse import urlsplit

    plain = list(dict.fromkeys(u for u in uris if not _GLOB.search(u)))
    if not plain:
        return {}
    try:
        rows = (spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(plain)
                .select("path", "length").collect())
    except Exception:  # noqa: BLE001 - one of them is missing or unreadable: each is listed alone
        return {}
    found = sorted((r.path, r.length) for r in rows)
    out: dict[str, list[tuple[str, int]]] = {}
    for uri in plain:
        want, base = urlsplit(uri), _uri_path(uri)
        mine = []
        for path, length in found:
            got = urlsplit(path)
            if got.scheme != want.scheme or (want.netloc and got.netloc != want.netloc):
                continue
            if got.path == base or got.path.startswith(base.rstrip("/") + "/"):
                mine.append((path, length))
        out[uri] = mine
    if sum(len(v) for v in out.values()) < len(found):
        return {}  # a file not placed (a path written differently): listed input by input instead
    return out


def _as_uri(given: str) -> str:
    """An input as Spark reads it: a URI as given, a local path as `file:` (relative paths stay relative)."""
    return given if is_uri(given) else "file:" + given


def _uri_path(uri: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(uri).path.rstrip("/") or "/"


def spark_reason(e: BaseException, uri: str = "") -> str:
    """Why Spark could not list or read an input, in one line and the local engine's words where they
    exist ("no such file"), from whichever of Spark's exceptions (captured, Py4J, Connect) it raised."""
    text = str(e)
    condition = ""
    for attr in ("getCondition", "getErrorClass"):
        try:
            condition = getattr(e, attr)() or ""
        except Exception:  # noqa: BLE001 - not a PySparkException, or an older pyspark
            continue
        if condition:
            break
    if condition == "PATH_NOT_FOUND" or "FileNotFoundException" in text or "Path does not exist" in text:
        return "no such file" if not _GLOB.search(uri) else "no file matches"
    lines = [_CONDITION.sub("", _SQLSTATE.sub("", ln)).strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines:
        if "No FileSystem for scheme" in ln:
            scheme = uri.split(":", 1)[0]
            return f"Spark has no filesystem for {scheme}: URIs (set spark.hadoop.fs.{scheme}.impl, or add its jar)"
        if "ClassNotFoundException" in ln:
            cls = ln.rsplit("Class ", 1)[-1].split(" not found", 1)[0].strip()
            return f"Spark cannot open it: the filesystem class {cls} is not on its classpath (add its jar, " \
                   "e.g. hadoop-aws for s3a:)"
        if "AccessDenied" in ln or "Permission denied" in ln or "AccessControlException" in ln:
            return "permission denied (" + _java_message(ln) + ")"
    for ln in lines:
        if "Exception" in ln and ":" in ln and not ln.startswith(("An error occurred", "at ")):
            return "cannot read: " + _java_message(ln)
    return "cannot read: " + (lines[0] if lines else type(e).__name__)


def _java_message(line: str) -> str:
    """`pkg.SomeException: message` → the message (with the exception's short name when there is none)."""
    line = line.lstrip(": ")
    head, _, rest = line.partition(": ")
    if "Exception" in head or "Error" in head:
        return rest.strip() or head.rsplit(".", 1)[-1]
    return line


def _stage1_spark_fs(spark, files: list[str], specs: list[RuleSpec], input_format, read_options):
    """Stage 1 over inputs read through Spark's filesystems: `binaryFile` gives each file's bytes to a task
    (no shared mount needed), which loads it with the local loader (`Source.from_bytes`, named by its
    URI). ECS JSON and Parquet files are scanned where they were read; raw logs (auditd, syslog...) come
    back as bytes and are then scanned together by one task, in input order, as `_units` does locally."""
    import pandas as pd

    from ..sources import SourceError

    listing = _listing(spark, files)
    names = {n: name for n, (name, _) in enumerate(listing)}
    t0 = time.time()

    def error_rows(n: int, e: SourceError):
        scan = FileScan(n, names[n], error=str(e))
        return pd.DataFrame({"kind": "file", "rule": -1, "file": [n], "row": -1, "payload": [orjson.dumps(asdict(scan))]})

    def scan_one(n: int, mtime, content: bytes, began: float):
        """One file's rows: its scan, or (a raw log, loaded later with the others) its bytes."""
        from ..sources import parquet
        from ..sources.inputs import Source
        from ..sources.normalize import format_of

        try:
            src = Source.from_bytes(content, names[n], None if pd.isna(mtime) else float(mtime))
            fmt = format_of(src, input_format)
        except SourceError as e:
            yield error_rows(n, e)
            return
        if fmt is not None and fmt is not parquet.FORMAT:  # its bytes, with its modification time (ms) as `row`
            yield pd.DataFrame({"kind": "raw", "rule": -1, "file": [n],
                                "row": [-1 if src.mtime is None else int(src.mtime * 1000)], "payload": [content]})
            return
        yield from _scan_rows([(n, src)], specs, input_format, read_options, began)

    def scan_each(frames):
        began = time.time()
        for pdf in frames:
            for path, mtime, content in zip(pdf["path"], pdf["mtime"], pdf["content"]):
                for n in numbers.get(path, ()):  # a file listed twice is read twice, as locally; one added since: not
                    yield from scan_one(n, mtime, bytes(content), began)

    def scan_raw(frames):
        from ..sources.inputs import Source

        began = time.time()
        pdf = pd.concat(list(frames), ignore_index=True).sort_values("file")
        if not len(pdf):
            return
        sources = []
        for n, ms, content in zip(pdf["file"], pdf["row"], pdf["payload"]):
            try:
                sources.append((int(n), Source.from_bytes(bytes(content), names[int(n)], None if ms < 0 else ms / 1000)))
            except SourceError as e:
                yield error_rows(int(n), e)
                return
        yield from _scan_rows(sources, specs, input_format, read_options, began)

    numbers: dict[str, list[int]] = {}
    for n, (_, path) in enumerate(listing):
        numbers.setdefault(path, []).append(n)
    uris = list(dict.fromkeys(_as_uri(f) for f in files))
    first = None
    try:
        # a file removed or unreadable after the listing is skipped by Spark's reader, not a failed job with a
        # stack trace: the driver finds it missing below and names it
        content = (spark.read.format("binaryFile").option("recursiveFileLookup", "true")
                   .option("ignoreMissingFiles", "true").option("ignoreCorruptFiles", "true").load(uris)
                   .selectExpr("path", "cast(modificationTime as double) as mtime", "content"))
        first = content.mapInPandas(scan_each, STAGE1_SCHEMA).cache()
        rows = first.filter("kind in ('file', 'raw')").selectExpr(
            "kind", "file", "if(kind = 'file', payload, null) as payload").collect()  # no raw bytes to the driver
        reports = [r for r in rows if r.kind == "file"]
        stage1 = first
        if any(r.kind == "raw" for r in rows):
            together = first.filter("kind = 'raw'").repartition(1).mapInPandas(scan_raw, STAGE1_SCHEMA)
            stage1 = first.filter("kind <> 'raw'").unionByName(together).cache()
            reports = stage1.filter("kind = 'file'").select("payload").collect()  # the raw logs' reports too
            first.unpersist()
        scans = _file_scans(reports, t0)
    except Exception as e:  # noqa: BLE001 - a file that cannot be read (gone, no permission): which and why
        if first is not None:
            first.unpersist()
        if isinstance(e, SourceError):
            raise
        text = str(e)
        name = next((name for name, path in listing if path in text), ", ".join(files))
        raise SourceError(name, spark_reason(e)) from None
    read = {s.file_no for s in scans}
    for n, (name, _) in enumerate(listing):
        if n not in read:
            stage1.unpersist()
            raise SourceError(name, "listed, but Spark could not read it (removed since, no permission, or an I/O "
                                    "error: the executor's log says which)")
    return scans, stage1


def _size_agg():
    """The bytes of a rule's candidate payloads, summed (`size`)."""
    from pyspark.sql import functions as F

    return F.sum(F.length("payload")).alias("size")


def _threshold_bounds(stage1, by_index: dict[int, RuleSpec], split: dict[int, Split],
                      types: dict[str, tuple[str, bool]]) -> dict[int, tuple[int, int]]:
    """Per threshold rule split by group: the first and last time of the events it counts, over all the data
    (`tasks.threshold_bounds` per payload, then joined): every part runs one run's schedule."""
    import pandas as pd

    wanted = sorted(i for i, how in split.items() if how.kind == "threshold")
    if not wanted:
        return {}

    def bound(frames):
        for pdf in frames:
            rules, los, his = [], [], []
            for rule, payload in zip(pdf["rule"], pdf["payload"]):
                got = threshold_bounds(by_index[int(rule)], split[int(rule)], bytes(payload), types)
                if got is not None:
                    rules.append(int(rule))
                    los.append(got[0])
                    his.append(got[1])
            yield pd.DataFrame({"rule": pd.Series(rules, dtype="int32"), "lo": pd.Series(los, dtype="int64"),
                                "hi": pd.Series(his, dtype="int64")})

    cands = stage1.filter(f"kind = 'cand' and rule in ({', '.join(map(str, wanted))})").select("rule", "payload")
    out: dict[int, tuple[int, int]] = {}
    for row in cands.mapInPandas(bound, "rule int, lo long, hi long").groupBy("rule").agg(
            {"lo": "min", "hi": "max"}).collect():
        out[row["rule"]] = (row["min(lo)"], row["max(hi)"])
    return out


def _units(files: list[str], input_format: str | None) -> list[list[tuple[int, str]]]:
    """The tasks of stage 1: each ECS JSON or Parquet file alone; the raw logs (auditd, syslog...) together,
    in input order, so that the process tree continues across them (rotated logs) as in a local hunt."""
    from ..sources import parquet
    from ..sources.inputs import Source
    from ..sources.normalize import format_of

    units: list[list[tuple[int, str]]] = []
    raw: list[tuple[int, str]] = []
    for n, path in enumerate(files):
        fmt = format_of(Source.open(path), input_format)
        if fmt is None or fmt is parquet.FORMAT:
            units.append([(n, path)])
        else:
            if not raw:
                units.append(raw)
            raw.append((n, path))
    return units


def _stage2(spark, stage1, scans: list[FileScan], specs: list[RuleSpec], offsets: dict[int, int],
            types: dict[str, tuple[str, bool]], now: str, max_signals: int | None,
            key_parts: int, slots: int | None = None, split_bytes: int = 0) -> dict[int, RuleResult]:
    """Each runnable rule, or each part of a rule split into parts (`tasks.split_of`), correlated in one of
    `slots` groups (`groupBy(slot).applyInPandas`; default 4 per key part): each rule's RuleResult, its parts
    merged, alerts included."""
    import pandas as pd

    present = frozenset(types)
    categories: dict[str, set[str]] = {}
    for scan in scans:
        for name, values in scan.categories.items():
            categories.setdefault(name, set()).update(values)
    by_index = {s.index: s for s in specs if not (s.error or s.unsupported)}

    # rules split into parts (`tasks.split_of`): sequences and samples by the hash of their scalar join key,
    # new_terms by each term combination, threshold by each group; each part correlated apart
    split = {i: got for i, spec in by_index.items() if key_parts > 1 and isinstance(got := split_of(spec, types), Split)}
    if split and split_bytes > 0:  # a small rule correlates whole: its parts would cost more than they save
        sizes = {row["rule"]: row["size"] for row in stage1.filter(
            f"kind = 'cand' and rule in ({', '.join(map(str, sorted(split)))})").groupBy("rule").agg(
            _size_agg()).collect()}
        split = {i: how for i, how in split.items() if sizes.get(i, 0) >= split_bytes}
    bounds = _threshold_bounds(stage1, by_index, split, types)
    # the (rule, part) units go to a few groups (slots): one Spark group costs ~25 ms of its own, one rule's
    # correlation often less, so hundreds of groups cost more than their work
    slots = max(1, slots if slots is not None else 4 * key_parts)

    def slot_of(rule: int, part: int) -> int:
        return (rule * 7919 + part) % slots

    def divide(frames):
        for pdf in frames:
            rules, parts, payloads = [], [], []
            for rule, payload in zip(pdf["rule"], pdf["payload"]):
                rule = int(rule)
                how = split.get(rule)
                pieces = [(0, bytes(payload))] if how is None \
                    else split_payload(bytes(payload), types, list(how.keys), key_parts) if how.by == "key" \
                    else route_payload(by_index[rule], how, bytes(payload), types, key_parts)
                for part, piece in pieces:
                    rules.append(rule)
                    parts.append(part)
                    payloads.append(piece)
            yield pd.DataFrame({"slot": pd.Series([slot_of(r, p) for r, p in zip(rules, parts)], dtype="int32"),
                                "rule": pd.Series(rules, dtype="int32"), "part": pd.Series(parts, dtype="int32"),
                                "payload": payloads})

    def correlate(pdf):
        out_rules, out_parts, out_payloads = [], [], []
        units: dict[tuple[int, int], list[bytes]] = {}
        for rule, part, payload in zip(pdf["rule"], pdf["part"], pdf["payload"]):
            got = units.setdefault((int(rule), int(part)), [])
            if len(payload):
                got.append(bytes(payload))
        for (index, part), parts in sorted(units.items()):
            result = correlate_rule(by_index[index], parts, offsets, types, present, now, max_signals, categories,
                                    ordered=index in split, split=split.get(index), part=part, key_parts=key_parts,
                                    bounds=bounds.get(index))
            out_rules.append(index)
            out_parts.append(part)
            out_payloads.append(orjson.dumps(asdict(result)))
        return pd.DataFrame({"rule": pd.Series(out_rules, dtype="int32"), "kind": "result",
                             "seq": pd.Series(out_parts, dtype="int32"), "payload": out_payloads})

    if not by_index:
        return {}
    spark.conf.set("spark.sql.shuffle.partitions", str(max(1, min(slots, 8))))
    schema = "slot int, rule int, part int, payload binary"
    seeds = spark.createDataFrame([(slot_of(i, 0), i, 0, b"") for i in by_index], schema)
    cands = stage1.filter("kind = 'cand'").select("rule", "payload").mapInPandas(divide, schema)
    grouped = cands.unionByName(seeds).groupBy("slot").applyInPandas(correlate, STAGE2_SCHEMA)
    pieces: dict[int, list[tuple[int, RuleResult]]] = {}
    for row in grouped.collect():
        pieces.setdefault(row.rule, []).append((row.seq, RuleResult(**orjson.loads(row.payload))))
    results = {rule: merge_parts([r for _, r in sorted(got, key=lambda x: x[0])], split.get(rule))
               for rule, got in pieces.items()}
    # the documents of the hits, each fetched once from stage 1's cache, then the alerts, rule by rule
    starts = sorted(offsets.items(), key=lambda kv: kv[1])
    wanted = sorted({r for res in results.values() for rows, _ in res.found for r in rows if r is not None})
    docs: dict[int, dict] = {}
    if wanted:
        import bisect

        firsts = [start for _, start in starts]
        refs = []
        for r in wanted:
            k = bisect.bisect_right(firsts, r) - 1
            while k + 1 < len(firsts) and firsts[k + 1] == firsts[k]:
                k += 1  # files without events share a start with the next
            refs.append((starts[k][0], r - firsts[k]))
        hits = spark.createDataFrame(refs, "file int, row long")
        for row in stage1.filter("kind = 'doc'").join(hits, ["file", "row"]).select("file", "row", "payload").collect():
            docs[offsets[row.file] + row.row] = orjson.loads(row.payload)
    for index, res in results.items():
        build_alerts(by_index[index], res, docs, now, max_signals)
    return results

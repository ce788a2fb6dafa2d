"""`trailhound watch --engine spark DIR`: rules over files arriving in a directory, with Spark Structured Streaming.

Spark's file source finds the new files of each micro-batch and keeps, in the checkpoint location, which files
each batch took (its offsets and commit logs): a restart goes on with the files no batch has committed. Each
batch's files are then read whole, in the order they arrived (modification time, then path), by the formats'
readers (ECS NDJSON, raw auditd, syslog...), and go through the same live pipeline as `watch`
(`pipeline.watch.StreamPipeline`: event order and the reorder window, the process tree across files, the rules'
filters, the alert replay).

What runs where:
* Spark's keyed state store (`KeyedStep`, spark/keyed.py): the state that grows with the fleet. Sequences whose
  stages all join on the same fields (without `| head` and without a trailing missing stage) keep their partial
  matches per join key, samples (by the same fields in every filter) the rows each filter may use per key, and
  new_terms rules their first-seen history per combination of term values, in
  `groupBy(rule, key).applyInPandasWithState`, checkpointed by Spark in `CHECKPOINT/keyed/state`: each key runs
  the incremental engine's own correlator (`engine.correlate`) over that key's candidate rows, with the documents
  of the rows it holds. The driver keeps a stand-in for each such correlator (its watermark only: late rows are
  left out as one correlator leaves them out) and puts the keys' hits back in one correlator's order. A key's
  expired entries are dropped at the batch where one correlator drops them, idle keys woken by an event-time
  timeout (spark/keyed.py says how).
* The driver's foreachBatch (state in `CHECKPOINT/trailhound/batch-N.json` with the alert file's size): what
  needs the whole stream in order or is shared by every key. The process tree (a process's parent may be in
  another file of its host, and it must be applied in event order), the watermark and buffered events (global
  event order across files), event rules (stateless), threshold rules (an execution every interval over every group, with a signal history shared by the
  groups), sequences joined on different fields per stage or ending in a missing event (decided when time has
  passed for the whole stream, not for one key), `| head` (counts over all keys), and the alert replay
  (suppression and max_signals per execution, per rule).

Exactly once: a batch's driver state is written before Spark commits it; a batch Spark runs again after a crash
starts from the state before it and cuts the alert file back to what that state had written. The keyed rows of
batch N are written once (`keyed/units/batch-N.parquet`) and their hits kept (`keyed/hits/batch-N.json`, written
before the keyed query commits), so a batch run again takes its keyed hits from there instead of feeding Spark's
state store twice: nothing lost, nothing repeated.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import orjson

if TYPE_CHECKING:
    from ..pipeline.hunt import Plan
    from ..pipeline.watch import AlertFile, StreamPipeline
    from ..sinks import Sink

STATE_DIR = "trailhound"
KEYED_DIR = "keyed"


class SparkWatchError(Exception):
    """The stream cannot start or stopped on an error (no Spark, a bad checkpoint): the message says why."""


def _local_path(uri: str) -> str:
    """A path of Spark's file source (file:/x/y or file:///x/y) as a local path."""
    parts = urlsplit(uri)
    return unquote(parts.path) if parts.scheme in ("file", "") else uri


def file_documents(path: str, input_format: str | None, options, skip) -> tuple[bool, Iterator[tuple[dict, int]]]:
    """(whether the documents go through the process tree, the documents of a whole file with their lines), read
    as `watch` reads a file: ECS NDJSON decoded line by line, other formats normalized by their reader."""
    from ..sources.formats import ReadOptions
    from ..sources.inputs import Source
    from ..sources.normalize import documents, format_of, text_lines

    src = Source.open(path)
    fmt = format_of(src, input_format)
    if fmt is not None:
        return True, documents(src, fmt, options or ReadOptions(), skip)

    def ecs() -> Iterator[tuple[dict, int]]:
        for n, text in text_lines(src, skip):
            if not text.strip():
                continue
            try:
                doc = orjson.loads(text)
            except orjson.JSONDecodeError as e:
                skip(n, f"not JSON ({e})")
                continue
            if not isinstance(doc, dict):
                skip(n, "not a JSON object")
                continue
            yield doc, n

    return False, ecs()


class KeyedStep:
    """The keyed rules (`keyed.keyed_spec`: sequences by one set of join keys, new_terms) on Spark's keyed state.

    In the driver, each keyed rule's correlator is replaced by a stand-in (`keyed.stand_in`) that keeps its
    watermark and hands over its candidate rows. After the batch's evaluation, those rows, split by key with
    their documents (`keyed.split`), are written as one Parquet file per batch (`keyed/units/batch-N.parquet`,
    written once: a batch run again finds it there). A second streaming query reads that directory and runs
    `groupBy(rule, key).applyInPandasWithState(keyed.run_key)`, so that each key's correlator state lives in
    Spark's state store and is checkpointed by Spark (`keyed/state/`, its own checkpoint location); it runs
    until the new file is taken (`availableNow`) and its foreachBatch writes the hits of each outer batch
    (`keyed/hits/batch-N.json`, atomically, before it commits). The driver then reads them, puts them in the
    order of one correlator (`keyed.merge`), builds the alerts through the pipeline's alert replay and writes them.

    Exactly once: an outer batch that Spark runs again after a crash finds its units file (not written again)
    and, once the inner query has taken it (again, if it had not committed), its hits file: the alerts are
    built from that, not from a second pass through the keyed state."""

    def __init__(self, spark, checkpoint: str) -> None:
        self.spark = spark
        self.root = os.path.join(checkpoint, KEYED_DIR)
        self.units, self.hits, self.state = (os.path.join(self.root, d) for d in ("units", "hits", "state"))
        os.makedirs(self.units, exist_ok=True)
        os.makedirs(self.hits, exist_ok=True)
        self.specs: dict = {}
        self.clocks: dict[int, int] = {}  # per keyed rule, its clock at the batch being run (see run)
        self.pipe: StreamPipeline | None = None

    def attach(self, pipe: StreamPipeline) -> None:
        """Put the stand-ins in place of the keyed rules' correlators (once the engine has made them)."""
        self.pipe = pipe
        engine = pipe.engine
        if engine.started:
            self._install(pipe)
            return
        start = engine._start

        def started(*args, **kwargs) -> None:
            start(*args, **kwargs)
            self._install(pipe)

        setattr(engine, "_start", started)  # noqa: B010 - the engine makes its correlators at its first batch

    def _install(self, pipe: StreamPipeline) -> None:
        from .keyed import keyed_spec, stand_in

        self.specs = {}
        for i, live in enumerate(pipe.engine.rules):
            spec = keyed_spec(i, live)
            if spec is not None:
                self.specs[i] = spec
                live.run = stand_in(spec, live.run, lambda r: pipe.store[r])

    def pending(self) -> bool:
        return self.pipe is not None and any(self.pipe.engine.rules[i].run.batches for i in self.specs)

    def run(self, batch_id: int, pipe: StreamPipeline, now: str | None) -> int:
        """The keyed rules' part of batch `batch_id`: the alerts written."""
        import polars as pl

        from .keyed import CLOCK, NO_CLOCK, split

        if not self.pending():
            return 0
        runs = {i: pipe.engine.rules[i].run for i in self.specs}
        # the rules' clocks (their correlators' watermarks; samples have none) and the stream's: the latest of them
        self.clocks = {i: run.watermark for i, run in runs.items() if getattr(run, "watermark", None) is not None}
        clock = max(self.clocks.values(), default=0) // 1000
        units: list[tuple] = [(batch_id, CLOCK, "", b"", b"", "", NO_CLOCK, clock)]
        for i, spec in self.specs.items():
            if runs[i].batches:
                units.extend(split(spec, batch_id, runs[i].batches, self.clocks.get(i, NO_CLOCK), clock))
                runs[i].batches = []
        name = os.path.join(self.units, f"batch-{batch_id}.parquet")
        if not os.path.exists(name):
            frame = pl.DataFrame(units, schema={"batch": pl.Int64, "rule": pl.Int32, "key": pl.String,
                                                "payload": pl.Binary, "types": pl.Binary, "es": pl.String,
                                                "wm": pl.Int64, "clock": pl.Int64}, orient="row")
            tmp = os.path.join(self.units, f"_batch-{batch_id}.parquet")  # Spark's file source skips _ names
            frame.write_parquet(tmp)
            _fsync(tmp)
            os.replace(tmp, name)
        self._advance()
        found: dict[int, list[dict]] = {}
        path = os.path.join(self.hits, f"batch-{batch_id}.json")
        if os.path.exists(path):
            with open(path, "rb") as f:
                for item in orjson.loads(f.read()):
                    found.setdefault(item["rule"], []).extend(orjson.loads(item["hits"]))
        return self._write(pipe, found, now)

    def _write(self, pipe: StreamPipeline, found: dict[int, list[dict]], now: str | None) -> int:
        """The alerts of the keyed rules' hits (`found`: rule → its keys' hits), through the pipeline's replay."""
        from ..alerts.build import utc_now
        from ..sources.ecs_readers import load_document
        from .keyed import hit_documents, merge

        written = 0
        stamp = now or utc_now()
        for i in sorted(found):
            docs = {r: load_document(b) for r, b in hit_documents(found[i]).items()}
            written += pipe.deliver(i, merge(self.specs[i], found[i]), docs, stamp)
        return written

    def finish(self, pipe: StreamPipeline, now: str | None) -> int:
        """The end of input: the keyed sample rules' samples, made per key where the key's state is (Spark's state
        store, read with Spark's state data source), then merged in key order; the alerts written."""
        from .keyed import schema_payload

        specs = {i: spec for i, spec in self.specs.items() if spec.kind == "sample"}
        if not specs:
            return 0
        payloads = {}
        for i, spec in specs.items():
            live = pipe.engine.rules[i]
            schema = live.schema or pipe.engine._empty_schema(live)  # as IncrementalHunt.finish takes it
            payloads[i] = schema_payload(spec, schema)
        found: dict[int, list[dict]] = {}
        for rule, hits in self._finish(specs, payloads):
            found.setdefault(rule, []).extend(orjson.loads(hits))
        return self._write(pipe, found, now)

    def _finish(self, specs: dict, payloads: dict) -> list[tuple[int, str]]:
        """(rule, hits JSON) of every key of `specs`' rules held in the state store, computed by Spark's tasks."""
        from .keyed import finish_key

        commits = os.path.join(self.state, "commits")
        if not os.path.isdir(commits) or not any(n.isdigit() for n in os.listdir(commits)):
            return []  # the keyed query never committed a batch: no state
        from pyspark.sql import functions as F

        def made(frames):
            import pandas as pd

            for frame in frames:
                out = []
                for rule, key, state in zip(frame["rule"], frame["key"], frame["state"]):
                    types, es = payloads[int(rule)]
                    hits = finish_key(specs[int(rule)], orjson.loads(key), state, types, es)
                    if hits is not None:
                        out.append((int(rule), hits))
                yield pd.DataFrame({"rule": pd.Series([r for r, _ in out], dtype="int32"),
                                    "hits": pd.Series([h for _, h in out], dtype="object")})

        held = self.spark.read.format("statestore").load(self.state)
        held = held.select(F.col("key.rule").alias("rule"), F.col("key.key").alias("key"),
                           F.col("value.groupState.state").alias("state"))
        held = held.filter(F.col("rule").isin(sorted(specs)))
        return [(r.rule, r.hits) for r in held.mapInPandas(made, "rule int, hits string").collect()]

    def _advance(self) -> None:
        """Run the keyed query over the units files it has not taken: Spark's state store advances. Its event
        time is the units' stream clock (a watermark with no delay: the driver wrote them in event order), so
        that a key's event-time timeout wakes it once the stream's clock is past its state's deadline (see
        spark/keyed.py); a woken key is expired at its own rule's clock (`self.clocks`, this batch's)."""
        from pyspark.sql import functions as F
        from pyspark.sql.streaming.state import GroupStateTimeout

        from .keyed import CLOCK, HITS_SCHEMA, NO_CLOCK, STATE_SCHEMA, UNITS_SCHEMA, run_key, timeout_ms

        specs, clocks = dict(self.specs), dict(self.clocks)
        hits_dir = self.hits

        def step(key, frames, state):
            import pandas as pd

            rule, text = int(key[0]), key[1]
            found: list[tuple[int, str]] = []
            if rule != CLOCK:
                units = [(int(b), bytes(p), bytes(t), e, None if w == NO_CLOCK else int(w)) for frame in frames
                         for b, p, t, e, w in zip(frame["batch"], frame["payload"], frame["types"], frame["es"],
                                                  frame["wm"])]
                saved = state.get[0] if state.exists else None
                kept, found, due = run_key(specs[rule], orjson.loads(text), saved, [] if state.hasTimedOut else units,
                                           clocks.get(rule))
                if kept is None:
                    if state.exists:
                        state.remove()
                else:
                    state.update((kept,))
                    if due is not None:
                        state.setTimeoutTimestamp(timeout_ms(due, state.getCurrentWatermarkMs()))
            yield pd.DataFrame({"batch": pd.Series([b for b, _ in found], dtype="int64"),
                                "rule": pd.Series([rule] * len(found), dtype="int32"),
                                "key": pd.Series([text] * len(found), dtype="object"),
                                "hits": pd.Series([h for _, h in found], dtype="object")})

        def collect(df, _inner: int) -> None:
            per_batch: dict[int, list[dict]] = {}
            for row in df.collect():
                per_batch.setdefault(row.batch, []).append({"rule": row.rule, "key": row.key, "hits": row.hits})
            for batch, items in per_batch.items():
                items.sort(key=lambda x: (x["rule"], x["key"]))
                _write_atomic(os.path.join(hits_dir, f"batch-{batch}.json"), orjson.dumps(items))

        source = (self.spark.readStream.schema(UNITS_SCHEMA).option("maxFilesPerTrigger", 1).parquet(self.units)
                  .withColumn("__clock", F.timestamp_micros("clock")).withWatermark("__clock", "0 seconds"))
        keyed = source.groupBy("rule", "key").applyInPandasWithState(step, HITS_SCHEMA, STATE_SCHEMA, "append",
                                                                      GroupStateTimeout.EventTimeTimeout)
        query = (keyed.writeStream.foreachBatch(collect).option("checkpointLocation", self.state)
                 .trigger(availableNow=True).start())
        query.awaitTermination()
        if query.exception() is not None:
            raise SparkWatchError(f"the keyed state step failed: {str(query.exception()).splitlines()[0]}")

    def forget_before(self, batch_id: int) -> None:
        """Drop the units and hits files of batches before `batch_id` (committed: no rerun needs them)."""
        for folder in (self.units, self.hits):
            for name in os.listdir(folder):
                stem = name.split(".")[0]
                if stem.startswith("batch-") and stem[6:].isdigit() and int(stem[6:]) < batch_id:
                    os.unlink(os.path.join(folder, name))


def _fsync(path: str) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _write_atomic(path: str, data: bytes) -> None:
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class _Batches:
    """The foreachBatch function and the state it carries from batch to batch."""

    def __init__(self, planned: Plan, out: AlertFile | None, sinks: Sequence[Sink], checkpoint: str,
                 input_format: str | None, read_options, max_signals: int | None, now: str | None,
                 on_skip=None, spark=None) -> None:

        self.planned, self.out, self.sinks = planned, out, [*([out] if out is not None else []), *sinks]
        self.keyed = KeyedStep(spark, checkpoint) if spark is not None else None
        self.dir = os.path.join(checkpoint, STATE_DIR)
        self.input_format, self.read_options, self.max_signals, self.now = input_format, read_options, max_signals, now
        self.on_skip = on_skip or (lambda file, line, reason: None)
        self.skipped = 0
        os.makedirs(self.dir, exist_ok=True)
        self.batch, saved = self._latest()
        self.pipe: StreamPipeline = self._pipeline(saved)

    def _pipeline(self, saved: dict | None) -> StreamPipeline:
        from ..pipeline.watch import StreamPipeline

        if saved is None:
            pipe = StreamPipeline(self.planned, self.sinks, now=self.now, max_signals=self.max_signals)
        else:
            if self.out is not None and saved.get("out") is not None:
                self.out.cut_back(saved["out"])
            pipe = StreamPipeline.from_dict(self.planned, saved["pipeline"], self.sinks, now=self.now,
                                            max_signals=self.max_signals)
        if self.keyed is not None:
            self.keyed.attach(pipe)
        return pipe

    def _latest(self, before: int | None = None) -> tuple[int, dict | None]:
        """The last saved batch (before `before`) and its state; (-1, None) when there is none."""
        done = sorted(int(n[6:-5]) for n in os.listdir(self.dir) if n.startswith("batch-") and n.endswith(".json"))
        done = [b for b in done if before is None or b < before]
        if not done:
            return -1, None
        with open(os.path.join(self.dir, f"batch-{done[-1]}.json"), "rb") as f:
            return done[-1], orjson.loads(f.read())

    def __call__(self, df, batch_id: int) -> None:
        if batch_id <= self.batch:  # run again after a crash: from the state before it
            self.batch, saved = self._latest(batch_id)
            self.pipe = self._pipeline(saved)
        rows = df.select("path", "modificationTime").collect()
        for row in sorted(rows, key=lambda r: (r.modificationTime, r.path)):
            self.add_file(_local_path(row.path))
        self.pipe.step()
        self.keyed_step(batch_id)
        self.save(batch_id)

    def keyed_step(self, batch_id: int) -> None:
        """The keyed rules' candidates of the batch through Spark's keyed state; their alerts written."""
        if self.keyed is not None:
            self.keyed.run(batch_id, self.pipe, self.now)

    def add_file(self, path: str) -> None:
        pipe = self.pipe

        def skip(line: int, reason: str) -> None:
            self.skipped += 1
            self.on_skip(path, line, reason)

        source = pipe.add_source(path, False)
        enrich, docs = file_documents(path, self.input_format, self.read_options, skip)
        pipe.set_enrich(source, enrich)
        for doc, line in docs:
            pipe.add(source, doc, line)
        pipe.close_source(source)  # a file the source gave is complete: it holds the others back no longer

    def save(self, batch_id: int) -> None:
        size = self.out.sync() if self.out is not None else None
        data: dict[str, Any] = {"batch": batch_id, "pipeline": self.pipe.to_dict(), "out": size}
        path = os.path.join(self.dir, f"batch-{batch_id}.json")
        tmp = path + ".part"
        with open(tmp, "wb") as f:
            f.write(orjson.dumps(data))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        for old in os.listdir(self.dir):  # keep the last two: the one before is what a rerun of this one needs
            if old.startswith("batch-") and old.endswith(".json") and int(old[6:-5]) < batch_id - 1:
                os.unlink(os.path.join(self.dir, old))
        if self.keyed is not None:
            self.keyed.forget_before(batch_id - 1)
        self.batch = batch_id


def run_watch_spark(planned: Plan, directory: str, out: AlertFile | None, *, spark, checkpoint: str,
                    sinks: Sequence[Sink] = (), once: bool = False, final: bool | None = None, stop=None,
                    trigger_seconds: float = 5.0, input_format: str | None = None, read_options=None,
                    max_signals: int | None = None, now: str | None = None, files_per_batch: int | None = None,
                    on_skip=None, keyed: bool = True) -> StreamPipeline:
    """Watch `directory` for new files with Structured Streaming until `stop` (a threading.Event) is set, or, with
    `once`, process the files there now (`files_per_batch` a batch) and stop. `final` (default: `once`): that was
    the end of the input, so the correlators decide what they still hold, as `hunt` over the same files would;
    the checkpoint is then spent (a later run with it starts over). `checkpoint` is Spark's checkpoint location
    (ours beside it). Returns the pipeline (its `stats`, and its rules' status)."""
    import threading

    handler = _Batches(planned, out, sinks, checkpoint, input_format, read_options, max_signals, now, on_skip,
                       spark=spark if keyed else None)
    reader = spark.readStream.format("binaryFile").option("recursiveFileLookup", "true")  # dated folders too
    if files_per_batch:
        reader = reader.option("maxFilesPerTrigger", files_per_batch)
    schema = "path string, modificationTime timestamp, length long, content binary"  # binaryFile's own
    stream = reader.schema(schema).load(directory).select("path", "modificationTime")
    writer = stream.writeStream.foreachBatch(handler).option("checkpointLocation", checkpoint)
    writer = writer.trigger(availableNow=True) if once else writer.trigger(processingTime=f"{trigger_seconds} seconds")
    stop = stop or threading.Event()
    try:
        query = writer.start()
        try:
            while query.isActive and not stop.is_set():
                query.awaitTermination(1)
        finally:
            if query.isActive:
                query.stop()
    except Exception as e:  # noqa: BLE001 - Spark's errors (a bad path, a failed batch): one line, not a trace
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SparkWatchError(f"the stream stopped: {text}") from None
    if query.exception() is not None:
        raise SparkWatchError(f"the stream stopped: {str(query.exception()).splitlines()[0]}")
    if final if final is not None else once:
        handler.pipe.finish()
        handler.keyed_step(handler.batch + 1)  # rows the end of input let through, if any
        if handler.keyed is not None:
            handler.keyed.finish(handler.pipe, now)
        if out is not None:
            out.sync()
        import shutil

        shutil.rmtree(checkpoint, ignore_errors=True)  # the end of the input: nothing to go on from
    else:
        handler.pipe.step()
        handler.save(max(handler.batch, 0))  # all sources closed: nothing was buffered, no keyed rows wait
    return handler.pipe


def watch_on_spark(planned: Plan, directory: str, out: AlertFile | None, *, master: str | None, state: str,
                   sinks: Sequence[Sink] = (), stop=None, input_format: str | None = None, read_options=None,
                   max_signals: int | None = None, on_note=None, on_skip=None) -> StreamPipeline:
    """`trailhound watch --engine spark`: a session from `master`, then `run_watch_spark` until `stop`."""
    from .driver import SparkUnavailable, session

    note = on_note or (lambda text: None)
    try:
        spark = session(master)
    except SparkUnavailable as e:
        raise SparkWatchError(str(e)) from None
    resumed = os.path.isdir(os.path.join(state, "commits"))
    note(f"Structured Streaming over {directory}; checkpoint {state}" + (" (resumed)" if resumed else ""))
    return run_watch_spark(planned, directory, out, spark=spark, checkpoint=state, sinks=sinks, stop=stop,
                           input_format=input_format, read_options=read_options, max_signals=max_signals,
                           on_skip=on_skip)

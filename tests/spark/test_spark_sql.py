"""compile/sql.py's Spark dialect on a real local Spark: per filter, the rows Spark SQL selects are the rows
the Polars backend selects (the same prepared table: dotted columns, arrays, dates as epoch ns), over
Elasticsearch's EQL QA suite, the Linux detection-rules over generated events, and the lab capture.

The Linux rules' 425 filters (538k characters of SQL) run by default: about a minute of Spark's CPU over the
generated events, most of it Spark's SQL parser reading the conditions the first time in a JVM (ANTLR warming its
prediction caches: about 25 s, then 1 s for all of them again), the rest 8 jobs of 60 columns over 20,000 rows,
interpreted (`sql_stage.interpreted`); the lab capture, with each filter's negation too, about 12 s more."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pl = pytest.importorskip("polars")

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("TRAILHOUND_SHARED", REPO.parent / "shared"))
LINUX = SHARED / "corpora" / "detection-rules" / "rules" / "linux"
LAB = REPO / "tests" / "fixtures" / "lab"
CHUNK = 60  # boolean columns per Spark query (one job each; the Linux rules' 425 filters make 8)


class Tally:
    def __init__(self) -> None:
        self.compared = self.agreed = 0
        self.selecting = 0  # of the filters compared, how many select some row (an agreement on rows, not on none)
        self.refused: dict[str, int] = {}
        self.disagreements: list[str] = []
        self.with_udfs = 0


def _spark_table(spark, tmp_path: Path, prepared, name: str):
    """The prepared frame as Spark reads it from Parquet (a column of nulls only typed as text)."""
    def typed(dt):
        if dt == pl.Null:
            return pl.String
        if isinstance(dt, pl.List):
            return pl.List(typed(dt.inner))
        return dt

    frame = prepared.select([c for c in prepared.columns if not c.startswith("__") or c == "__row"])
    frame = frame.with_columns([pl.col(c).cast(typed(dt)) for c, dt in frame.schema.items() if typed(dt) != dt])
    path = tmp_path / f"{name}.parquet"
    frame.write_parquet(path)
    return spark.read.parquet(str(path))


def compare(spark, tmp_path: Path, prepared, cases, tally: Tally, name: str, udfs_ok: bool = True) -> None:
    """`cases`: (label, category field, ir.EventFilter). Each filter's rows by Polars and by Spark SQL."""
    from trailhound.compile.polars import PolarsCompiler
    from trailhound.compile.schema import Schema
    from trailhound.compile.sql import SqlCompiler
    from trailhound.lang.errors import QueryError
    from trailhound.spark.sql_stage import ansi_off, filter_sql, interpreted, register_spark_udfs

    schema = Schema.of_frame(prepared, {n: t for n, t in TYPES.get(name, {}).items()})
    pc = PolarsCompiler(schema)
    wanted, wheres, labels, udfs = [], [], [], set()
    for label, category, f in cases:
        try:
            want = prepared.filter((pc.category(f.category, category) & pc.predicate(f.condition))
                                   .fill_null(False))["__row"].to_list()
        except QueryError:
            continue  # Polars declines too (the rule is reported as failing either way)
        sc = SqlCompiler(schema, "spark")
        try:
            where = filter_sql(sc, f, category)
        except QueryError as e:
            reason = str(e).splitlines()[0]
            tally.refused[reason] = tally.refused.get(reason, 0) + 1
            continue
        tally.with_udfs += bool(sc.udfs)
        udfs |= sc.udfs
        wanted.append(sorted(want))
        wheres.append(where)
        labels.append(label)
    assert udfs_ok or not udfs, udfs
    register_spark_udfs(spark, udfs)
    df = _spark_table(spark, tmp_path, prepared, name)
    with ansi_off(spark), interpreted(spark):
        for k in range(0, len(wheres), CHUNK):
            part = wheres[k:k + CHUNK]
            cols = [f"COALESCE(({w}), FALSE) AS f{i}" for i, w in enumerate(part)]
            try:
                t0 = time.perf_counter()
                got = df.selectExpr("__row", *cols).toArrow()
                print(f"{name}: filters {k}-{k + len(part)}: {time.perf_counter() - t0:.1f} s", flush=True)
            except Exception:  # noqa: BLE001 - find the filter Spark refused, say which
                for i, w in enumerate(part):
                    try:
                        df.selectExpr(f"COALESCE(({w}), FALSE) AS f").limit(1).collect()
                    except Exception as e:  # noqa: BLE001
                        tally.disagreements.append(f"{labels[k + i]}: Spark failed: {str(e).splitlines()[0]}\n{w}")
                continue
            rows = got.column("__row").to_pylist()
            for i in range(len(part)):
                flags = got.column(f"f{i}").to_pylist()
                have = sorted(r for r, on in zip(rows, flags) if on)
                tally.compared += 1
                tally.selecting += bool(wanted[k + i])
                if have == wanted[k + i]:
                    tally.agreed += 1
                else:
                    extra, missing = sorted(set(have) - set(wanted[k + i])), sorted(set(wanted[k + i]) - set(have))
                    tally.disagreements.append(f"{labels[k + i]}: Spark +{extra[:5]} -{missing[:5]}\n{part[i]}")


TYPES: dict[str, dict[str, str]] = {}


def _prepared(frame, options, name: str):
    from trailhound.engine.filter.frame import prepare

    lf, types = prepare(frame, options, set(frame.columns))
    TYPES[name] = types
    return lf.collect()


def _report(tally: Tally, what: str) -> str:
    return (f"{what}: {tally.compared} filters compared ({tally.selecting} select some row), {tally.agreed} agree, refused {sum(tally.refused.values())} "
            f"{tally.refused}, {tally.with_udfs} call a Python UDF")


# ---- the dialect on small tables the test builds ----------------------------------------------------------


def _docs_frame(docs):
    from trailhound.engine.filter.frame import FrameOptions
    from trailhound.sources import events_from_documents

    return _prepared(events_from_documents(docs).frame, FrameOptions(), "docs")


def _one(spark, tmp_path, docs, query: str, name: str) -> Tally:
    from trailhound.lang import ir
    from trailhound.lang.parser import parse

    tally = Tally()
    cases = [(query, "event.category", f) for f in ir.query_filters(parse(query))]
    compare(spark, tmp_path, _docs_frame(docs), cases, tally, name)
    return tally


DOCS = [
    {"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": "process"}, "process": {
        "name": "ssh", "pid": 10, "args": ["ssh", "-i", "key"], "title": "line\n"}},
    {"@timestamp": "2026-01-01T00:00:01Z", "event": {"category": "process"}, "process": {
        "name": "SSH", "pid": -3, "args": ["x"], "title": "line"}},
    {"@timestamp": "2026-01-01T23:30:01Z", "event": {"category": ["process", "file"]}, "process": {
        "name": "straße", "pid": 7, "ratio": 2.5, "title": "STRASSE"}, "user": {"name": "ÉLODIE"}},
    {"@timestamp": "1969-12-31T23:59:59.999Z", "event": {"category": "network"}, "process": {"name": None}},
]

#: regression cases: each disagreed with Polars in an earlier spelling (see compile/sql.py's Spark notes)
REGRESSIONS = [
    # Java's `$` matches before a final line break; Rust's does not
    ('process where process.title regex "line"', [1]),
    ('process where process.title : "li*e"', [1]),
    ('process where process.title like "lin?"', [1]),
    # Java's (?i) folds ASCII only; Rust's (Polars') all of Unicode
    ('process where user.name regex~ "élodie"', [2]),
    # Spark reads 2.5 as a DECIMAL; a DOUBLE cast keeps float arithmetic and comparison
    ("process where process.pid * 0.1 != 0.7", [0, 1, 2]),  # 7 * 0.1 is 0.7000000000000001 in doubles
    ("process where process.ratio * 3 == 7.5", [2]),
    ("process where process.pid / 2 == -1 or process.pid % 4 == 2", [0, 1]),
    # a date's parts in UTC whatever the session's time zone
    ('any where _timePart(@timestamp, "hour") == 23 and _timePart(@timestamp, "minute") in (30, 59)', [2, 3]),
    ('any where _timePart(@timestamp, "year") == 1969', [3]),
    ('any where _timePart(@timestamp, "day") == 1 and _timePart(@timestamp, "week") == 1', [0, 1, 2]),
]


@pytest.mark.parametrize("query,rows", REGRESSIONS)
def test_spark_dialect_agrees_on_hard_cases(spark, tmp_path, query, rows):
    from trailhound.lang import ir
    from trailhound.lang.parser import parse

    q = _time_part_query(query) if "_timePart" in query else parse(query)
    tally = Tally()
    cases = [(query, "event.category", f) for f in ir.query_filters(q)]
    compare(spark, tmp_path, _docs_frame(DOCS), cases, tally, "docs")
    assert not tally.disagreements, tally.disagreements
    assert tally.agreed == 1


def _time_part_query(query: str):
    """`_timePart` is internal (Sigma's |hour...): built as IR, since EQL has no name for it."""
    import re

    from trailhound.lang import ir

    terms = []
    for m in re.finditer(r'_timePart\(@timestamp, "(\w+)"\) (==|in) \(?([\d, ]+)\)?', query):
        call = ir.Call(ir.TIME_PART, (ir.Field("@timestamp"), ir.Literal(m.group(1))))
        values = [int(v) for v in m.group(3).split(",")]
        terms.append(ir.Compare("==", call, ir.Literal(values[0])) if m.group(2) == "==" else
                     ir.InSet(call, tuple(ir.Literal(v) for v in values)))
    return ir.EventQuery(ir.EventFilter(None, ir.And(tuple(terms)) if len(terms) > 1 else terms[0]))


def test_regression_rows_are_the_expected_ones():
    """The hard cases select what Elasticsearch would (checked on Polars alone: this needs no Spark)."""
    from trailhound.compile.polars import PolarsCompiler
    from trailhound.compile.schema import Schema
    from trailhound.lang.parser import parse

    frame = _docs_frame(DOCS)
    pc = PolarsCompiler(Schema.of_frame(frame, TYPES["docs"]))
    for query, rows in REGRESSIONS:
        f = (_time_part_query(query) if "_timePart" in query else parse(query)).filter
        got = frame.filter((pc.category(f.category, "event.category") & pc.predicate(f.condition))
                           .fill_null(False))["__row"].to_list()
        assert got == rows, query


def test_udf_inside_an_array_lambda_is_refused_with_the_reason(spark, tmp_path):
    tally = _one(spark, tmp_path, DOCS, 'process where cidrMatch(process.args, "10.0.0.0/8")', "docs")
    assert tally.refused and "multi-valued field 'process.args'" in next(iter(tally.refused))
    assert "cidrMatch" in next(iter(tally.refused))


def test_spark_udfs_agree(spark, tmp_path):
    docs = [{"@timestamp": 1, "event": {"category": "network"}, "source": {"ip": ip, "port": p}, "host": {"name": n}}
            for ip, p, n in (("10.1.2.3", 22, "web-01"), ("192.168.0.1", 2222, "DB-02"), ("::1", None, None))]
    queries = ['network where cidrMatch(source.ip, "10.0.0.0/8", "::1/128")',
               'network where substring(host.name, -2) == "02" or indexOf~(host.name, "B") == 1',
               'network where number(string(source.port)) > 100 and between(host.name, "D", "-") == "B"',
               'network where startsWith~(host.name, source.ip) or stringContains(host.name, host.name)']
    for q in queries:
        tally = _one(spark, tmp_path, docs, q, "udfs")
        assert tally.agreed == 1 and not tally.disagreements, (q, tally.disagreements)
        assert tally.with_udfs or "startsWith" in q


# ---- the corpora ---------------------------------------------------------------------------------------------


def test_es_eql_qa_suite_filters_agree(spark, tmp_path):
    es_eql = pytest.importorskip("es_eql")
    if not es_eql.available():
        pytest.skip(f"ES EQL suite not found at {es_eql.SUITE}")
    from trailhound.engine.filter.frame import FrameOptions
    from trailhound.lang import ir
    from trailhound.lang.parser import parse

    tally = Tally()
    event_queries = 0
    for cls in es_eql.CLASSES:
        table, types, aliases = es_eql.dataset(cls.name)
        options = FrameOptions(tiebreaker_field=cls.tiebreaker, es_types=types, aliases=aliases)
        prepared = _prepared(table.frame, options, cls.name)
        cases, seen = [], set()
        for c, spec in es_eql.all_cases():
            if c.name != cls.name or spec.query in seen:
                continue
            seen.add(spec.query)
            q = parse(spec.query)
            event_queries += isinstance(q, ir.EventQuery)
            cases += [(f"{spec.file}::{spec.name}", "event.category", f) for f in ir.query_filters(q)]
        compare(spark, tmp_path, prepared, cases, tally, cls.name)
    print(_report(tally, f"ES EQL QA ({event_queries} event queries)"))
    assert not tally.disagreements, "\n\n".join(tally.disagreements[:10])
    assert tally.compared > 700 and not tally.refused, tally.refused


@functools.cache
def _linux_cases():
    """(label, category field, filter) of every Linux rule that plans, and the fields they read (planned once)."""
    from trailhound.engine.hunt import rule_query
    from trailhound.lang import ir
    from trailhound.pipeline import plan
    from trailhound.rules.loader import load_rules

    planned = plan(load_rules([LINUX]))
    cases, fields = [], set()
    for c in planned.checks:
        if c.status != "ok" or c.query is None:
            continue
        _, query, wanted = rule_query(c, planned.rules.exceptions)
        fields |= wanted
        category = c.rule.event_category_override or "event.category"
        cases += [(c.rule.name, category, f) for f in ir.query_filters(query)]
    return cases, fields


def _with_negations(cases):
    """Each filter and its negation, the rows where its condition is false, not null: few filters select any row of
    our events; their negations check each atom's three values (as a rule's `not` reads them)."""
    from trailhound.lang import ir

    return [case for label, category, f in cases for case in (
        (label, category, f), (f"not: {label}", category, ir.EventFilter(f.category, ir.Not(f.condition))))]


@pytest.mark.skipif(not LINUX.is_dir(), reason="detection-rules not found (../shared absent)")
def test_linux_rules_filters_agree_on_generated_events(spark, tmp_path):
    from trailhound.engine.filter.frame import FrameOptions
    from trailhound.sources import load_events

    events = tmp_path / "events.ndjson"
    subprocess.run([sys.executable, str(REPO / "bench" / "generate.py"), "--events", "20000", "--out", str(events),
                    "--hosts", "20"], check=True, capture_output=True)
    cases, fields = _linux_cases()
    table = load_events([str(events)], sorted(fields | {"@timestamp"}))
    tally = Tally()
    compare(spark, tmp_path, _prepared(table.frame, FrameOptions(), "generated"), cases, tally, "generated")
    print(_report(tally, f"Linux rules over 20,000 generated events ({len(cases)} filters)"))
    assert not tally.disagreements, "\n\n".join(tally.disagreements[:10])
    assert tally.compared > 400


@pytest.mark.skipif(not LINUX.is_dir() or not LAB.is_dir(), reason="detection-rules or the lab capture absent")
def test_linux_rules_filters_agree_on_the_lab_capture(spark, tmp_path):
    from trailhound.engine.filter.frame import FrameOptions
    from trailhound.sources import load_events

    cases, fields = _linux_cases()
    cases = _with_negations(cases)  # the lab capture is small: the negations cost seconds
    table = load_events(sorted(str(p) for p in LAB.glob("*/*.log")), sorted(fields | {"@timestamp"}))
    tally = Tally()
    compare(spark, tmp_path, _prepared(table.frame, FrameOptions(), "lab"), cases, tally, "lab")
    print(_report(tally, f"Linux rules over the lab capture ({len(cases)} filters)"))
    assert not tally.disagreements, "\n\n".join(tally.disagreements[:10])
    assert tally.compared > 800

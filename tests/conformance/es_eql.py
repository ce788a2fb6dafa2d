"""Plays Elasticsearch's EQL QA suite (shared/conformance/es-eql) the way its Java harness does.

Per test class: which spec files, which index data, tiebreaker and id field
(x-pack/plugin/eql/qa/common: DataLoader, EqlSpecLoader, BaseEqlSpecTestCase). A result is
the flattened list of event ids of all returned events / sequences / samples, with -1 for a
missing event, compared exactly (or with any listed alternative); `join_keys` are compared
as strings when the spec gives them.

Run as a script to print the pass count per spec file:  python tests/conformance/es_eql.py
"""

from __future__ import annotations

import json
import os
import re
import sys
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SUITE = Path(os.environ.get("TRAILHOUND_SHARED", REPO.parent / "shared")) / "conformance" / "es-eql"

#: Spec files the issue asks to pass, and the ones played as a bonus.
GOAL_FILES = ("test_queries.toml", "additional_test_queries.toml", "test_queries_date.toml", "test_extra.toml",
              "test_missing_events.toml", "test_sample.toml", "test_sample_multi.toml")


@dataclass(frozen=True)
class TestClass:
    name: str
    specs: tuple[str, ...]
    indices: tuple[str, ...]
    tiebreaker: str | None
    id_field: str


CLASSES = (
    TestClass("EqlSpecTestCase", ("test_queries.toml", "additional_test_queries.toml", "test_queries_date.toml"),
              ("endgame-140",), "serial_event_id", "serial_event_id"),
    TestClass("EqlDateNanosSpecTestCase", ("test_queries_date_nanos.toml", "test_queries.toml"),
              ("endgame-140-nanos",), "serial_event_id", "serial_event_id"),
    TestClass("EqlExtraSpecTestCase", ("test_extra.toml",), ("extra",), "sequence", "sequence"),
    TestClass("EqlMissingEventsSpecTestCase", ("test_missing_events.toml",), ("missing-events",), "sequence", "sequence"),
    TestClass("EqlSampleTestCase", ("test_sample.toml",), ("sample1", "sample2", "sample3"), None, "id"),
    TestClass("EqlSampleMultipleEntriesTestCase", ("test_sample_multi.toml",), ("sample-multi",), None, "id"),
)


@dataclass(frozen=True)
class Spec:
    file: str
    name: str
    query: str
    expected: tuple[tuple[int, ...], ...]  # alternatives
    join_keys: tuple[str, ...] | None
    size: int | None
    max_samples_per_key: int | None


def available() -> bool:
    return SUITE.is_dir()


# ---- loading -------------------------------------------------------------------------------


def load_specs(file: str) -> list[Spec]:
    text = (SUITE / file).read_text()
    # JToml accepts bare `null` in arrays; TOML does not. Only join_keys use it.
    text = re.sub(r"(?m)^\s*join_keys\s*=\s*\[[^\]]*\]",
                  lambda m: re.sub(r'(?<!")\bnull\b(?!")', '"null"', m.group(0)), text)
    out = []
    for q in tomllib.loads(text).get("queries", []):
        exp = q["expected_event_ids"]
        alts = tuple(tuple(a) for a in exp) if exp and isinstance(exp[0], list) else (tuple(exp),)
        jk = q.get("join_keys")
        out.append(Spec(file, q["name"], q["query"].strip(), alts,
                        tuple(str(k) for k in jk) if jk else None, q.get("size"), q.get("max_samples_per_key")))
    return out


def _read_json_with_comments(path: Path) -> Any:
    lines = [ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith(("//", "#"))]
    return json.loads("\n".join(lines))


def _mapping(index: str) -> tuple[dict[str, str], dict[str, str], dict[str, Any]]:
    """(field → ES type, alias → target, field → null_value) from a .mapping file."""
    props = _read_json_with_comments(SUITE / "data" / f"{index}.mapping")["properties"]
    types: dict[str, str] = {}
    aliases: dict[str, str] = {}
    null_values: dict[str, Any] = {}

    def walk(p: dict, prefix: str) -> None:
        for name, spec in p.items():
            path = prefix + name
            if "properties" in spec:
                walk(spec["properties"], path + ".")
            elif spec.get("type") == "alias":
                aliases[path] = spec["path"]
            elif "type" in spec:
                types[path] = spec["type"]
                if "null_value" in spec:
                    null_values[path] = spec["null_value"]

    walk(props, "")
    return types, aliases, null_values


FILETIME_EPOCH_DIFF_MS = 11644473600000


def _nanos_iso(ns: int) -> str:
    dt = datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ns % 1_000_000_000:09d}Z"


def _documents(index: str) -> list[dict]:
    """The index's documents as ES holds them after DataLoader's transformations."""
    source = "endgame-140" if index == "endgame-140-nanos" else index
    docs = _read_json_with_comments(SUITE / "data" / f"{source}.data")
    if index == "endgame-140":
        for d in docs:
            d["@timestamp"] = d["timestamp"] // 10000 - FILETIME_EPOCH_DIFF_MS
    elif index == "endgame-140-nanos":
        for d in docs:
            d["@timestamp"] = _nanos_iso(d["timestamp"])  # the raw value read as nanoseconds
    return docs


@cache
def dataset(cls_name: str):
    """(EventTable, es_types, aliases) for a test class."""
    from trailhound.sources import events_from_documents

    cls = next(c for c in CLASSES if c.name == cls_name)
    docs: list[dict] = []
    types: dict[str, str] = {}
    aliases: dict[str, str] = {}
    for index in cls.indices:
        t, a, nulls = _mapping(index)
        index_docs = _documents(index)
        for d in index_docs:  # ES indexes an explicit null as the mapping's null_value
            for f, v in nulls.items():
                if f in d and d[f] is None:
                    d[f] = v
        docs.extend(index_docs)
        types.update(t)
        aliases.update(a)
    # "[runtime_random_keyword_type]" is keyword or wildcard: results must not depend on it
    types = {k: v for k, v in types.items() if not v.startswith("[")}
    table = events_from_documents(docs)
    return table, types, aliases


# ---- running -------------------------------------------------------------------------------


@dataclass
class Outcome:
    spec: Spec
    passed: bool
    got: list[int] | None
    got_keys: list[str] | None
    error: str | None = None


def _key_str(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def run_spec(cls: TestClass, spec: Spec) -> Outcome:
    from trailhound.engine.search import SearchOptions, search
    from trailhound.lang.parser import parse

    table, types, aliases = dataset(cls.name)
    options = SearchOptions(
        timestamp_field="@timestamp",
        tiebreaker_field=cls.tiebreaker,
        event_category_field="event.category",
        es_types=types,
        aliases=aliases,
        size=spec.size if spec.size is not None else 50,
        max_samples_per_key=spec.max_samples_per_key or 1,
    )
    try:
        result = search(parse(spec.query), table.frame, options)
    except Exception as e:  # noqa: BLE001 - reported as a failure with its message
        return Outcome(spec, False, None, None, f"{type(e).__name__}: {e}")
    rows = [r for h in result.hits for r in h.rows]
    present = [r for r in rows if r is not None]
    docs = dict(zip(present, table.documents(present)))
    ids = [-1 if r is None else docs[r][cls.id_field] for r in rows]
    keys = [_key_str(k) for h in result.hits for k in (h.join_keys or ())]
    ok = any(ids == list(alt) for alt in spec.expected)
    if ok and spec.join_keys:
        ok = keys == list(spec.join_keys)
    return Outcome(spec, ok, ids, keys)


def all_cases() -> list[tuple[TestClass, Spec]]:
    if not available():
        return []
    cases = []
    for cls in CLASSES:
        for f in cls.specs:
            cases.extend((cls, s) for s in load_specs(f))
    return cases


def main() -> int:
    if not available():
        print(f"conformance suite not found at {SUITE}", file=sys.stderr)
        return 2
    totals: dict[tuple[str, str], list[int]] = {}
    failures = []
    for cls, spec in all_cases():
        out = run_spec(cls, spec)
        t = totals.setdefault((cls.name, spec.file), [0, 0])
        t[0] += out.passed
        t[1] += 1
        if not out.passed:
            failures.append(out)
    for o in failures:
        want = " | ".join(str(list(a)) for a in o.spec.expected)
        print(f"FAIL {o.spec.file}::{o.spec.name}: got {o.got} keys {o.got_keys} want {want} keys {o.spec.join_keys}"
              + (f" ERROR {o.error}" if o.error else ""))
    print()
    print(f"{'test class':36} {'spec file':32} {'passed':>8}")
    for (cls_name, file), (p, n) in totals.items():
        print(f"{cls_name:36} {file:32} {p:>4}/{n:<4}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())

"""Run a query over in-memory documents and return their `id`s, for the unit tests."""

import json

from typer.testing import CliRunner

from trailhound.cli.main import app
from trailhound.engine.filter.shared import SharedFilters
from trailhound.engine.search import SearchOptions, search, search_events_batch
from trailhound.lang.parser import parse
from trailhound.sources import events_from_documents


def run(query: str, docs: list[dict], **options):
    table = events_from_documents(docs)
    result = search(parse(query), table.frame, SearchOptions(**options))
    ids = {row: doc.get("id") for row, doc in enumerate(docs)}
    if result.kind == "events":
        return [ids[h.rows[0]] for h in result.hits]
    return [([None if r is None else ids[r] for r in h.rows], list(h.join_keys or ())) for h in result.hits]


def batch_and_singles(texts: list[str], frame, options: SearchOptions | None = None):
    """The event queries `texts` over `frame` in one batch with shared work, and each alone: (the shared work, the
    batch's results, the single searches' results), what the shared-filter tests compare."""
    options = options or SearchOptions()
    queries = [parse(q) for q in texts]
    shared = SharedFilters(frame, options)
    return shared, search_events_batch(queries, frame, options, shared), [search(q, frame, options) for q in queries]


def ev(i: int, ts: int, category: str = "process", **fields) -> dict:
    """A document with id i, @timestamp i ms (epoch), and event.category."""
    return {"id": i, "@timestamp": ts, "event": {"category": category}, **fields}


SSH_RULE = '''
[rule]
name = "{name}"
rule_id = "{rule_id}"
description = "d"
risk_score = 21
severity = "low"
type = "eql"
language = "eql"
query = "process where process.name == \\"ssh\\""
{extra}
'''


def rule(name="SSH", rule_id="r-ssh", extra=""):
    """A detection-rules TOML rule that fires on `process.name == "ssh"`."""
    return SSH_RULE.format(name=name, rule_id=rule_id, extra=extra)


def write_case(tmp_path, events: list[dict], rules: dict[str, str]):
    """An NDJSON file of `events` and a rules folder with `rules` (file name → TOML)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = tmp_path / "events.ndjson"
    data.write_text("".join(json.dumps(e) + "\n" for e in events))
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir(exist_ok=True)
    for name, text in rules.items():
        (rules_dir / name).write_text(text)
    return data, rules_dir


def hunt_cli(data, rules_dir, *extra: str):
    """Run `trailhound hunt` and return (CLI result, alerts written)."""
    out = data.parent / "alerts.ndjson"
    res = CliRunner().invoke(app, ["hunt", "--rules", str(rules_dir), str(data), "--out", str(out), *extra])
    alerts = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return res, alerts

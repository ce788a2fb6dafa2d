#!/usr/bin/env python3
"""Trailhound benchmark runner.

    python bench/run.py [--data bench/data/events_1m.ndjson] [--cases event,event_wide,sequence2]
                        [--no-eql] [--eql-events 200000] [--repeat 1]

Each (case, engine) measurement runs in a fresh Python subprocess, so the peak RSS
(``ru_maxrss`` from ``os.wait4``) belongs to that one measurement.  Timed span =
load + evaluate + collect results (module imports are reported apart).

Engines:

* ``trailhound`` -- ``trailhound.api.search(query, [path])``, ``len(result.hits)``;
* ``eql``        -- PyPI ``eql`` 1.0.1 ``PythonEngine`` end to end: orjson per line,
                    ``eql.Event(category, ms, doc)``, ``stream_events``; on the first
                    ``--eql-events`` lines (default 200,000) to keep the run short;
* ``reference``  -- a hand-written single-pass Python evaluator of the three queries with
                    Elasticsearch semantics; it only supplies the expected result counts
                    (cached next to the data file), it is not a contender.

See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SRC = os.path.join(REPO, "src")
DEFAULT_DATA = os.path.join(HERE, "data", "events_1m.ndjson")

# --------------------------------------------------------------------------------------
# cases: the Elasticsearch EQL text Trailhound runs, and the eql-1.0.1 dialect rewrite
# --------------------------------------------------------------------------------------

CASES = {
    "event": {
        "query": 'process where process.name == "ssh" and process.args : "-i"',
        "eql": 'process where process.name == "ssh" and arrayContains(process.args, "-i")',
        "target_eps": 500_000,
        "what": "one event query: case-sensitive scalar == plus case-insensitive any-element match on an array",
    },
    "event_wide": {
        "query": ('process where event.type == "start" and process.name in ("ssh","scp","sftp") and '
                  '(process.args : "StrictHostKeyChecking=no" or process.command_line : "*authorized_keys*")'),
        "eql": ('process where arrayContains(event.type, "start") and process.name in ("ssh","scp","sftp") and '
                '(arrayContains(process.args, "StrictHostKeyChecking=no") or process.command_line : "*authorized_keys*")'),
        "target_eps": None,
        "what": "wider event query: array ==, in-list, array :, contains-wildcard on a long string, and/or nesting",
    },
    "sequence2": {
        "query": ('sequence by host.name with maxspan=5m '
                  '[process where event.type == "start" and process.name : ("ssh","scp") and process.args : "-i"] '
                  '[file where event.type in ("creation","change") and file.path : "*/.ssh/authorized_keys"]'),
        "eql": ('sequence by host.name with maxspan=5m '
                '[process where arrayContains(event.type, "start") and process.name : ("ssh","scp") and arrayContains(process.args, "-i")] '
                '[file where arrayContains(event.type, "creation", "change") and file.path : "*/.ssh/authorized_keys"]'),
        "target_eps": 300_000,
        "what": "two-stage sequence joined on host.name within 5 minutes",
    },
}
DEFAULT_EQL_CASES = ("event", "sequence2")
#: the `hunt` case: Elastic's Linux detection rules, all run over the file by `trailhound hunt`'s engine
HUNT_RULES = os.path.join(os.environ.get("TRAILHOUND_SHARED", os.path.join(REPO, "..", "shared")),
                          "corpora", "detection-rules", "rules", "linux")
EQL_DIALECT_NOTE = ("eql 1.0.1's PythonEngine never matches a value inside an array, so array comparisons "
                    "(process.args, event.type) are rewritten with arrayContains(); its ==, in and : are all "
                    "case-insensitive (ES: == and in are case-sensitive), and it cannot parse @timestamp "
                    "(times are passed to eql.Event instead)")


# --------------------------------------------------------------------------------------
# children (one measurement each)
# --------------------------------------------------------------------------------------

def _emit(obj):
    sys.stdout.write("@@RESULT " + json.dumps(obj) + "\n")
    sys.stdout.flush()


def child_trailhound(case, path):
    t = time.perf_counter()
    try:
        from trailhound.api import search  # noqa: F401 - the API under test
    except Exception as e:  # ImportError, or a half-written module
        _emit({"status": "unavailable", "error": "%s: %s" % (type(e).__name__, e)})
        return
    import_s = time.perf_counter() - t
    q = CASES[case]["query"]
    t0 = time.perf_counter()
    try:
        result = search(q, [path])
        n = len(result.hits)
    except Exception as e:
        import traceback
        _emit({"status": "error", "error": "%s: %s" % (type(e).__name__, e), "traceback": traceback.format_exc()[-4000:],
               "import_seconds": import_s})
        return
    sec = time.perf_counter() - t0
    _emit({"status": "ok", "seconds": sec, "results": n, "import_seconds": import_s})


def child_hunt(path, rules_dir):
    """Load and check the rules (timed apart), then engine.hunt.hunt over the file: one load and
    every runnable rule. Seconds per rule type are hunt's own per-rule figures, summed."""
    t = time.perf_counter()
    from trailhound.engine.hunt import hunt
    from trailhound.lang import ir
    from trailhound.rules.check import check_rule
    from trailhound.rules.loader import load_rules
    import_s = time.perf_counter() - t
    t = time.perf_counter()
    loaded = load_rules([rules_dir])
    rules = loaded.rules if hasattr(loaded, "rules") else loaded[0]
    checks = [check_rule(r) for r in rules]
    check_s = time.perf_counter() - t
    t = time.perf_counter()
    result = hunt(checks, [path])
    sec = time.perf_counter() - t
    kinds = {}
    for run in result.runs:
        kind = run.check.rule.type
        if kind in ("eql", "query"):
            q = run.check.query
            kind += ":" + ("event" if isinstance(q, ir.EventQuery) else
                           "sequence" if isinstance(q, ir.SequenceQuery) else "sample")
        k = kinds.setdefault(kind, {"rules": 0, "seconds": 0.0, "hits": 0, "errors": 0})
        k["rules"] += 1
        k["seconds"] += run.seconds
        k["hits"] += len(run.hits)
        k["errors"] += run.error is not None
    _emit({"status": "ok", "seconds": sec, "load_seconds": result.load_seconds, "check_seconds": check_s,
           "import_seconds": import_s, "rules": len(result.runs), "results": sum(len(r.hits) for r in result.runs),
           "kinds": kinds})


def run_hunt_case(a, data, n_events, env):
    """The `hunt` case, printed and written on its own (it has no eql or reference counterpart)."""
    if not os.path.isdir(HUNT_RULES):
        print("== case hunt: skipped, the Linux rules are not at %s" % HUNT_RULES, flush=True)
        return None
    print("== case hunt: every runnable rule of %s over %s" % (HUNT_RULES, data), flush=True)
    runs, best = [], None
    for _ in range(max(1, a.repeat)):
        res, wall, rss, _ = run_child(["--_child", "hunt", "--data", data], env)
        res["wall_seconds"], res["peak_rss_mb"] = round(wall, 3), round(rss, 1)
        runs.append(res)
        if res["status"] != "ok":
            print("   hunt: %s %s" % (res["status"], res.get("error", "")), flush=True)
            break
        print("   run: total %.2f s (load %.2f s), rules checked in %.2f s, %d hits, peak RSS %.0f MB" % (
            res["seconds"], res["load_seconds"], res["check_seconds"], res["results"], res["peak_rss_mb"]), flush=True)
        if best is None or res["seconds"] < best["seconds"]:
            best = res
    if best is not None:
        print("   best of %d: %d events, %d rules: total %.2f s = load %.2f s + rules %.2f s" % (
            len(runs), n_events, best["rules"], best["seconds"], best["load_seconds"],
            best["seconds"] - best["load_seconds"]))
        for kind, k in sorted(best["kinds"].items()):
            print("     %-16s %4d rules  %6.2f s  %6d hits  %d errors" % (kind, k["rules"], k["seconds"], k["hits"],
                                                                         k["errors"]))
    cli = run_hunt_cli(a, data, env) if best is not None else None
    return {"case": "hunt", "rules_dir": HUNT_RULES, "events": n_events, "runs": runs, "best": best, "cli": cli}


def run_hunt_cli(a, data, env):
    """`trailhound hunt` end to end, as a user runs it: a fresh process (interpreter start,
    imports, rule loading, the hunt, Kibana alerts written as NDJSON, the summary, exit)."""
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "alerts.ndjson")
        cmd = [sys.executable, "-m", "trailhound.cli.main", "hunt", "--rules", HUNT_RULES, data,
               "--exit-zero", "--out", out]
        for _ in range(max(1, a.repeat)):
            t = time.perf_counter()
            p = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            wall = time.perf_counter() - t
            if p.returncode != 0:
                print("   cli: exit code %d: %s" % (p.returncode, p.stderr.decode()[-800:]), flush=True)
                return {"status": "error", "runs": runs}
            with open(out, "rb") as fh:
                alerts = sum(1 for _ in fh)
            runs.append({"wall_seconds": round(wall, 3), "alerts": alerts, "alert_bytes": os.path.getsize(out)})
            print("   cli: `trailhound hunt --out` end to end %.2f s, %d alerts (%.0f MB)" % (
                wall, alerts, os.path.getsize(out) / 1e6), flush=True)
    best = min(runs, key=lambda r: r["wall_seconds"])
    print("   cli best of %d: %.2f s" % (len(runs), best["wall_seconds"]))
    return {"status": "ok", "runs": runs, "best": best}


def child_eql(case, path, limit, gc_off, materialize=False):
    import gc
    t = time.perf_counter()
    import eql
    import orjson
    from eql.parser import elasticsearch_syntax, parse_query
    import_s = time.perf_counter() - t
    loads = orjson.loads
    Event = eql.Event
    text = CASES[case]["eql"]

    sec_cache = {}

    def to_ms(ts):
        # "2025-03-11T00:00:02.566Z": whole seconds cached per prefix, ms from the string (exact);
        # anything else goes through datetime.fromisoformat
        if len(ts) == 24 and ts[19] == "." and ts[23] == "Z":
            base = sec_cache.get(ts[:19])
            if base is None:
                base = sec_cache[ts[:19]] = int(_dt.datetime.fromisoformat(ts[:19] + "+00:00").timestamp()) * 1000
            return base + int(ts[20:23])
        return round(_dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)

    counter = [0, 0]  # results, events read

    def events():
        n = 0
        with open(path, "rb") as fh:
            for line in fh:
                if limit and n >= limit:
                    break
                n += 1
                d = loads(line)
                ev = d.get("event")
                cat = ev.get("category") if isinstance(ev, dict) else d.get("event.category")
                if isinstance(cat, list):
                    cat = cat[0] if cat else "unknown"
                yield Event(cat or "unknown", to_ms(d["@timestamp"]), d)
        counter[1] = n

    if gc_off:
        gc.disable()
    t0 = time.perf_counter()
    with elasticsearch_syntax:
        query = parse_query(text)
    parse_s = time.perf_counter() - t0
    engine = eql.PythonEngine({"time_unit": 1000})  # event times in ms

    def hook(result):
        counter[0] += 1

    engine.add_output_hook(hook)
    engine.add_query(query)
    if materialize:
        t1 = time.perf_counter()
        evs = list(events())
        decode_s = time.perf_counter() - t1
        engine.stream_events(evs)
    else:
        decode_s = None
        engine.stream_events(events())
    sec = time.perf_counter() - t0
    _emit({"status": "ok", "seconds": sec, "results": counter[0], "events": counter[1], "import_seconds": import_s,
           "parse_seconds": parse_s, "gc_disabled": gc_off, "materialized": materialize, "decode_seconds": decode_s,
           "eql_version": getattr(eql, "__version__", "?")})


# --------------------------------------------------------------------------------------
# reference counts (Elasticsearch semantics, hand-written, single pass)
# --------------------------------------------------------------------------------------

def _getter(path):
    parts = path.split(".")

    def get(d):
        v = d.get(path)  # flattened dotted key
        if v is not None:
            return v
        cur = d
        for p in parts:
            if not isinstance(cur, dict):
                return None
            cur = cur.get(p)
            if cur is None:
                return None
        return cur
    return get


def _as_list(v):
    if v is None:
        return ()
    return v if isinstance(v, list) else (v,)


def reference_counts(path, prefix):
    """Expected result counts of the three cases, over the whole file and over its first `prefix` lines.

    ES semantics: `==`/`in` exact and case-sensitive, `:` case-insensitive wildcard, any-element
    matching on arrays, `where` on event.category any-element; sequences per host.name with the
    latest pending stage-1 event taken by a stage-2 event, dropped when the span exceeds maxspan.
    """
    import orjson
    g_cat, g_type = _getter("event.category"), _getter("event.type")
    g_name, g_args = _getter("process.name"), _getter("process.args")
    g_cl, g_fpath, g_host = _getter("process.command_line"), _getter("file.path"), _getter("host.name")
    g_ts = _getter("@timestamp")
    span = 5 * 60 * 1000
    sec_cache = {}

    def to_ms(ts):
        base = sec_cache.get(ts[:19])
        if base is None:
            base = sec_cache[ts[:19]] = int(_dt.datetime.fromisoformat(ts[:19] + "+00:00").timestamp()) * 1000
        return base + int(ts[20:23])

    c = {"event": 0, "event_wide": 0, "sequence2": 0}
    at_prefix = None
    pending = {}
    n = 0
    t0 = time.perf_counter()
    with open(path, "rb") as fh:
        for line in fh:
            if prefix and n == prefix:
                at_prefix = dict(c)
            n += 1
            d = orjson.loads(line)
            cats = _as_list(g_cat(d))
            if "process" in cats:
                name = g_name(d)
                args = [a.lower() for a in _as_list(g_args(d)) if isinstance(a, str)]
                types = _as_list(g_type(d))
                if name == "ssh" and "-i" in args:
                    c["event"] += 1
                if "start" in types and name in ("ssh", "scp", "sftp"):
                    cl = g_cl(d)
                    if "stricthostkeychecking=no" in args or (isinstance(cl, str) and "authorized_keys" in cl.lower()):
                        c["event_wide"] += 1
                if ("start" in types and isinstance(name, str) and name.lower() in ("ssh", "scp") and "-i" in args):
                    for h in set(_as_list(g_host(d))):
                        if h is not None:
                            pending[h] = to_ms(g_ts(d))
            if "file" in cats:
                types = _as_list(g_type(d))
                fp = g_fpath(d)
                if ("creation" in types or "change" in types) and isinstance(fp, str) and \
                        fp.lower().endswith("/.ssh/authorized_keys"):
                    t2 = to_ms(g_ts(d))
                    for h in set(_as_list(g_host(d))):
                        t1 = pending.pop(h, None)
                        if t1 is not None and t2 - t1 <= span:
                            c["sequence2"] += 1
    if at_prefix is None:
        at_prefix = dict(c)
    return {"full": c, "prefix": at_prefix, "prefix_lines": min(prefix, n) if prefix else n, "lines": n,
            "seconds": round(time.perf_counter() - t0, 2)}


def cached_reference(path, prefix):
    st = os.stat(path)
    cache = path + ".expected.json"
    key = {"size": st.st_size, "mtime": int(st.st_mtime), "prefix": prefix, "version": 1}
    if os.path.exists(cache):
        try:
            with open(cache) as fh:
                data = json.load(fh)
            if data.get("key") == key:
                return data["counts"], True
        except Exception:
            pass
    counts = reference_counts(path, prefix)
    with open(cache, "w") as fh:
        json.dump({"key": key, "counts": counts}, fh, indent=1)
    return counts, False


# --------------------------------------------------------------------------------------
# parent
# --------------------------------------------------------------------------------------

def run_child(args, env=None):
    """Run this script as a child; return (parsed result, wall seconds, peak RSS MB, stderr tail)."""
    cmd = [sys.executable, os.path.abspath(__file__)] + args
    with tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env)
        out = p.stdout.read()
        p.stdout.close()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        err_text = err.read().decode("utf-8", "replace")
    res = None
    for line in out.decode("utf-8", "replace").splitlines():
        if line.startswith("@@RESULT "):
            res = json.loads(line[len("@@RESULT "):])
    if res is None:
        res = {"status": "crashed", "error": "exit code %s; stderr tail: %s" % (p.returncode, err_text[-1500:].strip())}
    return res, wall, ru.ru_maxrss / 1024.0, err_text


def count_lines(path):
    n = 0
    with open(path, "rb") as fh:
        while True:
            b = fh.read(1 << 24)
            if not b:
                break
            n += b.count(b"\n")
    return n


def write_prefix(path, n):
    stem, ext = os.path.splitext(path)
    out = "%s.first%d%s" % (stem, n, ext)
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(path):
        return out
    tmp = out + ".part"
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        for i, line in enumerate(src):
            if i >= n:
                break
            dst.write(line)
    os.replace(tmp, out)
    return out


def pkg_versions():
    from importlib import metadata
    v = {}
    for p in ("polars", "duckdb", "pyarrow", "orjson", "eql", "lark", "trailhound"):
        try:
            v[p] = metadata.version(p)
        except Exception:
            v[p] = None
    return v


def machine_info():
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "cpu_model": None, "mem_gib": None}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal"):
                    info["mem_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
                    break
    except OSError:
        pass
    try:
        info["affinity_cpus"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    return info


def fmt_eps(x):
    return "-" if x is None else f"{x:,.0f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description="Trailhound benchmark (see bench/README.md)")
    ap.add_argument("--data", default=DEFAULT_DATA, help="NDJSON file (generated if missing)")
    ap.add_argument("--events", type=int, default=1_000_000, help="events to generate when --data is missing")
    ap.add_argument("--seed", type=int, default=1, help="generator seed when --data is missing")
    ap.add_argument("--cases", nargs="+", default=[",".join(CASES)],
                    help="cases to run, comma- or space-separated, from: " + ", ".join(CASES) + ", hunt")
    ap.add_argument("--no-eql", action="store_true", help="skip the eql 1.0.1 comparison")
    ap.add_argument("--eql-cases", default=",".join(DEFAULT_EQL_CASES), help="cases also run on eql (default event,sequence2)")
    ap.add_argument("--eql-events", type=int, default=200_000,
                    help="eql runs on the first N lines only (default 200000; 0 = the whole file)")
    ap.add_argument("--eql-gc-off", action="store_true", help="disable Python's GC in the eql child (default: on)")
    ap.add_argument("--eql-materialize", action="store_true",
                    help="eql: decode all lines into a list of eql.Event first, then stream the list (default: stream "
                         "straight from the file); both are timed")
    ap.add_argument("--no-trailhound", action="store_true", help="skip trailhound")
    ap.add_argument("--no-reference", action="store_true", help="skip the expected-count pass")
    ap.add_argument("--repeat", type=int, default=1, help="fresh-process runs per measurement; the best is reported")
    ap.add_argument("--json", default=None, help="where to write the machine-readable run (default bench/data/last_run.json)")
    # internal
    ap.add_argument("--_child", choices=["trailhound", "eql", "hunt"], help=argparse.SUPPRESS)
    ap.add_argument("--_case", help=argparse.SUPPRESS)
    ap.add_argument("--_limit", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--_gc_off", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--_materialize", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    if a._child == "trailhound":
        return child_trailhound(a._case, a.data)
    if a._child == "eql":
        return child_eql(a._case, a.data, a._limit, a._gc_off, a._materialize)
    if a._child == "hunt":
        return child_hunt(a.data, HUNT_RULES)

    cases = [c.strip() for c in ",".join(a.cases).split(",") if c.strip()]
    want_hunt = "hunt" in cases
    cases = [c for c in cases if c != "hunt"]
    for c in cases:
        if c not in CASES:
            ap.error("unknown case %r (known: %s)" % (c, ", ".join(CASES)))
    eql_cases = [] if a.no_eql else [c for c in (x.strip() for x in a.eql_cases.split(",")) if c in cases]
    data = os.path.abspath(a.data)
    json_out = a.json or os.path.join(HERE, "data", "last_run.json")

    # 0. data
    if not os.path.exists(data):
        print("== %s is missing: generating %d events (seed %d)" % (data, a.events, a.seed), flush=True)
        os.makedirs(os.path.dirname(data), exist_ok=True)
        subprocess.check_call([sys.executable, os.path.join(HERE, "generate.py"), "--events", str(a.events),
                               "--seed", str(a.seed), "--out", data])
    size = os.path.getsize(data)
    t = time.perf_counter()
    n_events = count_lines(data)  # also pulls the file into the page cache
    print("== data: %s  %d events  %.1f MB  (%.0f B/line; read once to warm the page cache in %.2f s)" % (
        data, n_events, size / 1e6, size / max(n_events, 1), time.perf_counter() - t), flush=True)
    eql_limit = a.eql_events if a.eql_events and a.eql_events < n_events else 0
    eql_n = eql_limit or n_events

    # 1. expected counts
    ref = None
    if not a.no_reference and cases:
        t = time.perf_counter()
        ref, cached = cached_reference(data, eql_limit)
        print("== expected counts (hand-written ES-semantics reference, %s): full file %s; first %d lines %s" % (
            "cached" if cached else "computed in %.1f s" % (time.perf_counter() - t),
            ref["full"], ref["prefix_lines"], ref["prefix"]), flush=True)

    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    rows = []
    th_state = {"available": not a.no_trailhound, "why": "skipped (--no-trailhound)" if a.no_trailhound else None}
    prefix_path = None
    hunt_result = run_hunt_case(a, data, n_events, env) if want_hunt and not a.no_trailhound else None

    def measure(engine, case, path, n, limit=0):
        runs = []
        best = None
        for _ in range(max(1, a.repeat)):
            if engine == "trailhound":
                child = ["--_child", "trailhound", "--_case", case, "--data", path]
            else:
                child = ["--_child", "eql", "--_case", case, "--data", path, "--_limit", str(limit)]
                if a.eql_gc_off:
                    child.append("--_gc_off")
                if a.eql_materialize:
                    child.append("--_materialize")
            res, wall, rss, _ = run_child(child, env)
            res["wall_seconds"] = round(wall, 3)
            res["peak_rss_mb"] = round(rss, 1)
            runs.append(res)
            if res["status"] != "ok":
                break
            if best is None or res["seconds"] < best["seconds"]:
                best = res
        return runs, best

    def record(engine, case, path, n, runs, best, scope):
        expected = None
        if ref is not None:
            expected = ref["full"][case] if n == ref["lines"] else (ref["prefix"][case] if n == ref["prefix_lines"] else None)
        row = {"case": case, "engine": engine, "scope": scope, "data": path, "events": n, "status": runs[-1]["status"],
               "seconds": None, "events_per_s": None, "results": None, "expected": expected, "peak_rss_mb": None,
               "import_seconds": None, "runs": runs}
        if best is not None:
            row.update(seconds=round(best["seconds"], 3), events_per_s=round(n / best["seconds"]),
                       results=best["results"], peak_rss_mb=max(r["peak_rss_mb"] for r in runs),
                       import_seconds=round(best.get("import_seconds", 0), 3))
        else:
            row["error"] = runs[-1].get("error")
        rows.append(row)
        line = "   %-10s %-10s %-7s events=%-9d " % (case, engine, scope, n)
        if best is not None:
            line += "%7.2f s  %10s ev/s  results=%-6d peak RSS %6.0f MB  (imports %.2f s, process wall %.2f s)" % (
                best["seconds"], fmt_eps(n / best["seconds"]), best["results"], row["peak_rss_mb"],
                best.get("import_seconds", 0), best["wall_seconds"])
            if expected is not None and best["results"] != expected:
                line += "  [expected %d]" % expected
        else:
            line += "%s: %s" % (runs[-1]["status"], runs[-1].get("error"))
        print(line, flush=True)
        return row

    for case in cases:
        print("== case %s: %s" % (case, CASES[case]["what"]), flush=True)
        print("   ES EQL  : %s" % CASES[case]["query"])
        if case in eql_cases:
            print("   eql 1.0.1: %s" % CASES[case]["eql"])
        # trailhound, whole file
        if th_state["available"]:
            runs, best = measure("trailhound", case, data, n_events)
            if runs[-1]["status"] == "unavailable":
                th_state.update(available=False, why=runs[-1]["error"])
                print("   trailhound: NOT MEASURED -- trailhound.api is not importable yet (%s); "
                      "running the eql side only" % runs[-1]["error"], flush=True)
                rows.append({"case": case, "engine": "trailhound", "scope": "full", "events": n_events,
                             "status": "unavailable", "error": runs[-1]["error"]})
            else:
                record("trailhound", case, data, n_events, runs, best, "full")
        else:
            rows.append({"case": case, "engine": "trailhound", "scope": "full", "events": n_events,
                         "status": "unavailable", "error": th_state["why"]})
        if case in eql_cases:
            # trailhound on the same prefix eql reads, for a like-for-like count and speed check
            if th_state["available"] and eql_limit:
                if prefix_path is None:
                    prefix_path = write_prefix(data, eql_limit)
                runs, best = measure("trailhound", case, prefix_path, eql_n)
                record("trailhound", case, prefix_path, eql_n, runs, best, "prefix")
            if eql_limit:
                print("   (eql runs on the first %d of %d lines only: --eql-events %d)" % (eql_limit, n_events, eql_limit))
            runs, best = measure("eql", case, data, eql_n, eql_limit)
            record("eql", case, data, eql_n, runs, best, "prefix" if eql_limit else "full")

    # ---- summary
    def get(case, engine, scope):
        for r in rows:
            if r["case"] == case and r["engine"] == engine and r.get("scope") == scope:
                return r
        return None

    ratios = []
    for case in eql_cases:
        e = get(case, "eql", "prefix" if eql_limit else "full")
        th_full = get(case, "trailhound", "full")
        th_pre = get(case, "trailhound", "prefix") if eql_limit else th_full
        entry = {"case": case, "eql_events_per_s": e and e.get("events_per_s"),
                 "trailhound_full_events_per_s": th_full and th_full.get("events_per_s"),
                 "trailhound_same_lines_events_per_s": th_pre and th_pre.get("events_per_s"),
                 "ratio_full_vs_eql": None, "ratio_same_lines_vs_eql": None,
                 "eql_results": e and e.get("results"), "trailhound_same_lines_results": th_pre and th_pre.get("results"),
                 "counts_note": None}
        if e and e.get("events_per_s"):
            if th_full and th_full.get("events_per_s"):
                entry["ratio_full_vs_eql"] = round(th_full["events_per_s"] / e["events_per_s"], 1)
            if th_pre and th_pre.get("events_per_s"):
                entry["ratio_same_lines_vs_eql"] = round(th_pre["events_per_s"] / e["events_per_s"], 1)
        if e and e.get("results") is not None:
            exp = e.get("expected")
            notes = []
            if exp is not None and e["results"] != exp:
                notes.append("eql returned %d where ES semantics give %d (dialect: %s)" % (e["results"], exp, EQL_DIALECT_NOTE))
            if th_pre and th_pre.get("results") is not None and th_pre["results"] != e["results"]:
                notes.append("trailhound returned %d on the same lines, eql %d" % (th_pre["results"], e["results"]))
            entry["counts_note"] = "; ".join(notes) or "eql's count equals the ES-semantics expectation on the same lines"
        ratios.append(entry)

    meta = None
    if os.path.exists(data + ".meta.json"):
        with open(data + ".meta.json") as fh:
            meta = json.load(fh)
            meta.pop("scenarios", None)
    out = {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(), "versions": pkg_versions(),
        "data": {"path": data, "events": n_events, "bytes": size, "bytes_per_line": round(size / max(n_events, 1), 1),
                 "generator": meta},
        "options": {"cases": cases, "eql_cases": eql_cases, "eql_events": eql_limit or n_events, "repeat": a.repeat,
                    "eql_gc_disabled": a.eql_gc_off, "eql_materialize": a.eql_materialize},
        "queries": {c: {"es": CASES[c]["query"], "eql": CASES[c]["eql"]} for c in cases},
        "expected": ref, "trailhound_available": th_state["available"], "trailhound_unavailable_reason": th_state["why"],
        "rows": rows, "ratios": ratios, "hunt": hunt_result,
    }
    os.makedirs(os.path.dirname(json_out), exist_ok=True)
    with open(json_out, "w") as fh:
        json.dump(out, fh, indent=1)
    print()
    print("%-10s %-10s %-7s %10s %9s %12s %8s %8s %9s  %s" % (
        "case", "engine", "scope", "events", "seconds", "events/s", "results", "expected", "RSS MB", "note"))
    for r in rows:
        tgt = CASES[r["case"]]["target_eps"]
        note = ""
        if r.get("status") != "ok":
            note = "NOT MEASURED (%s)" % r.get("status")
        elif r["engine"] == "trailhound" and r["scope"] == "full" and tgt:
            note = "target >= %s ev/s: %s" % (fmt_eps(tgt), "met" if r["events_per_s"] >= tgt else "NOT met")
        if r.get("status") == "ok" and r.get("expected") is not None and r["results"] != r["expected"]:
            note += (" " if note else "") + "COUNT DIFFERS"
        print("%-10s %-10s %-7s %10d %9s %12s %8s %8s %9s  %s" % (
            r["case"], r["engine"], r.get("scope", ""), r["events"],
            "-" if r.get("seconds") is None else "%.2f" % r["seconds"], fmt_eps(r.get("events_per_s")),
            "-" if r.get("results") is None else r["results"], "-" if r.get("expected") is None else r["expected"],
            "-" if r.get("peak_rss_mb") is None else "%.0f" % r["peak_rss_mb"], note))
    for x in ratios:
        print("ratio %-10s trailhound/eql events/s: full file %s, same %d lines %s  (eql %s ev/s)" % (
            x["case"], "not measured" if x["ratio_full_vs_eql"] is None else "%.1fx" % x["ratio_full_vs_eql"], eql_n,
            "not measured" if x["ratio_same_lines_vs_eql"] is None else "%.1fx" % x["ratio_same_lines_vs_eql"],
            fmt_eps(x["eql_events_per_s"])))
        print("      counts: %s" % x["counts_note"])
    if not th_state["available"]:
        print("NOTE: trailhound figures were not measured: %s" % th_state["why"])
    if eql_cases and eql_limit:
        print("NOTE: eql ran on the first %d lines of %d (--eql-events); its events/s is over those lines." % (eql_limit, n_events))

    print("wrote %s" % json_out)


if __name__ == "__main__":
    main()

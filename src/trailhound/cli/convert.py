"""`trailhound convert`: rules and queries into Sigma, EQL, TOML and other SIEMs' languages."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path

import typer

from .common import EXIT_ERROR, EXIT_FOUND, EXIT_OK, SigmaPlaceholder, SigmaPlaceholders, err, fail, sigma_placeholders
from .safe import m


class Target(str, Enum):
    sigma = "sigma"
    eql = "eql"
    toml = "toml"
    splunk = "splunk"
    kusto = "kusto"
    esql = "esql"
    lucene = "lucene"
    kusto_xdr = "kusto-xdr"


class QueryLanguage(str, Enum):
    eql = "eql"
    kuery = "kuery"
    sigma = "sigma"


SIGMA_SUFFIXES = (".yml", ".yaml")


def _inputs(paths: list[Path]) -> list[Path]:
    from ..rules.discovery import is_test_file

    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(x for x in p.rglob("*") if x.is_file() and (x.suffix in SIGMA_SUFFIXES or (
                x.suffix == ".toml" and not is_test_file(x))))
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise fail(f"[red]error[/red]: {m(p)}: no such file or directory")
    return out


def convert(
    inputs: list[Path] = typer.Argument(None, help="Rule files (detection-rules TOML, Sigma YAML) or directories."),
    to: Target = typer.Option(..., "--to", "-t", help="Target language."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write one file per rule into this directory "
                                    "(default: standard output)."),
    query: str | None = typer.Option(None, "--query", "-q", help="Convert this query instead of files."),
    language: QueryLanguage = typer.Option(QueryLanguage.eql, "--language", "-l", help="The language of --query."),
    placeholders: SigmaPlaceholders = None,
    placeholder: SigmaPlaceholder = None,
) -> None:
    """Convert rules between EQL/KQL (detection-rules TOML), Sigma and other SIEMs' languages.

    Targets: sigma, eql, toml; splunk (SPL), kusto (Microsoft Sentinel, ASIM parsers), kusto-xdr (Microsoft Defender
    XDR tables), esql and
    lucene through pySigma's backends (the convert extra). A rule the target cannot express is
    refused with the reason, never converted into a weaker one; caveats are printed as warnings.

    Exit codes: 0 every rule converted; 1 some were refused; 2 none converted, or an input error.
    """
    from ..emit import convert as cv
    from ..lang.errors import QueryError
    from ..rules.discovery import read_rule_file
    from ..rules.errors import RuleError

    target = to.value
    values = sigma_placeholders(placeholders, placeholder)  # a bad file or pair: exit 2, as hunt does
    results: list[cv.Result] = []
    if query is not None:
        if inputs:
            raise fail("[red]error[/red]: give either --query or input files, not both")
        if language is QueryLanguage.sigma:
            results = cv.from_sigma(query, "query", target, placeholders=values)
        else:
            from ..lang.kql import parse_kql_query
            from ..lang.parser import parse

            try:
                q = parse_kql_query(query) if language is QueryLanguage.kuery else parse(query)
            except QueryError as e:
                raise fail(f"[red]error[/red]: {m(e.render() if hasattr(e, 'render') else e)}") from None
            results = [cv.from_query(q, query, language.value, target)]
    else:
        if not inputs:
            raise fail("[red]error[/red]: give rule files or directories, or --query")
        from ..rules.loader import load_rules

        for path in _inputs(inputs):
            if path.suffix in SIGMA_SUFFIXES:
                try:
                    text = read_rule_file(path)
                except RuleError as e:
                    err.print(f"[red]error[/red]: {m(e)}")
                    results.append(cv.Refused(path.stem, str(path), e.message))
                    continue
                results.extend(cv.from_sigma(text, path.stem, target, str(path), values))
                continue
            loaded = load_rules([path])
            for problem in loaded.errors:
                err.print(f"[red]error[/red]: {m(problem)}")
                results.append(cv.Refused(path.stem, str(path), problem.message))
            for rule in loaded.rules:
                results.append(cv.from_rule(rule, target, path.stem))
    if not results:
        raise fail("[red]error[/red]: no rule found (rules are detection-rules *.toml or Sigma *.yml files)")
    _write(results, target, out)
    done = sum(isinstance(r, cv.Converted) for r in results)
    refused = len(results) - done
    err.print(f"{done} converted, {refused} refused")
    raise typer.Exit(EXIT_ERROR if done == 0 else EXIT_FOUND if refused else EXIT_OK)


#: a comment line naming each rule when several go to standard output (Lucene has no comments)
_COMMENT = {"sigma": ("# ", ""), "eql": ("// ", ""), "toml": ("# ", ""), "kusto": ("// ", ""), "kusto-xdr": ("// ", ""), "esql": ("// ", ""),
            "splunk": ("``` ", " ```")}


def _one_line(text: str) -> str:
    return " ".join(text.replace("`", "'").split())


def _write(results: list, target: str, out: Path | None) -> None:
    from ..emit.convert import EXTENSIONS, Converted

    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise fail(f"[red]error[/red]: cannot create {m(out)}: {m(e.strerror or e)}") from None
    used: set[str] = set()
    first = True
    for r in results:
        if not isinstance(r, Converted):
            err.print(f"[yellow]refused[/yellow]: {m(r.title)}: {m(r.reason)}")
            continue
        for w in r.warnings:
            err.print(f"[yellow]warning[/yellow]: {m(r.title)}: {m(w)}")
        if out is None:
            if not first:
                sys.stdout.write("---\n" if target == "sigma" else "\n")
            if len(results) > 1 and target in _COMMENT:
                start, end = _COMMENT[target]
                sys.stdout.write(f"{start}{_one_line(r.title)}{end}\n")
            sys.stdout.write(r.text)
            first = False
            continue
        stem, n = r.stem, 2
        while stem in used:
            stem, n = f"{r.stem}-{n}", n + 1
        used.add(stem)
        path = out / (stem + EXTENSIONS[target])
        try:
            path.write_text(r.text, encoding="utf-8")
        except OSError as e:
            raise fail(f"[red]error[/red]: cannot write {m(path)}: {m(e.strerror or e)}") from None
    sys.stdout.flush()

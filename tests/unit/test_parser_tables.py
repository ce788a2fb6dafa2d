"""The shipped LALR tables (lang/_tables.py) are current and give the same parsers as the grammars."""

from __future__ import annotations

import pytest
from lark.exceptions import UnexpectedInput

from trailhound.lang import _tables, grammars

EQL = [
    'process where process.name == "ssh" and process.args : "-i"',
    'sequence by host.id with maxspan=30s [process where true] by user.name ![file where file.path : "/tmp/*"] '
    '[network where destination.port in (22, 2222)] until [process where event.type == "end"]',
    'sample by host.name [process where process.name : "ssh*"] [network where true]',
    'any where cidrMatch(source.ip, "10.0.0.0/8") or length(process.args) > 3 | head 5',
    'process where process.command_line regex~ ".*-[LR] [0-9]+:.*" and not process.parent.name in~ ("a", "b")',
    'file where ?file.path like~ "*/.ssh/authorized_keys*" and (1 + 2 * 3) % 2 == 1 and `weird field` != null',
    "process where process.name == 'single' and process.pid >= -5 and process.args_count < 1.5e3",
]
KQL = [
    'process.name:ssh and process.args:(-i or -L) and not user.name:"root"',
    'destination.port >= 22 and source.ip:10.0.0.0/8 or event.action:(connected-to or "bound socket")',
    'process.parent.name:* and message:"Accepted publickey*" and host.name:web-??',
]
BAD = {
    "eql": ['process where', 'process where (a == 1', 'sequence [process where true', 'process where a = = 1'],
    "kql": ['a:(b or', 'a and', 'a:"unterminated', '(a:b'],
}


@pytest.mark.parametrize("name", sorted(grammars.OPTIONS))
def test_tables_match_the_grammar(name):
    assert _tables.FINGERPRINTS[name] == grammars.fingerprint(name), (
        f"{name}.lark (or the parser options, or Lark's version) changed since the tables were built: "
        "run python3 tools/gen_parser_tables.py")


@pytest.mark.parametrize("name, texts", [("eql", EQL), ("kql", KQL)])
def test_loaded_parser_equals_built_parser(name, texts):
    loaded, built = grammars.lalr(name), grammars.build(name)
    assert loaded is not built
    for text in texts:
        a, b = loaded.parse(text), built.parse(text)
        assert a == b, text
        assert [(n.meta.line, n.meta.column, n.meta.end_pos) for n in a.iter_subtrees() if not n.meta.empty] == \
               [(n.meta.line, n.meta.column, n.meta.end_pos) for n in b.iter_subtrees() if not n.meta.empty], text


@pytest.mark.parametrize("name", sorted(BAD))
def test_loaded_parser_fails_as_the_built_one(name):
    loaded, built = grammars.lalr(name), grammars.build(name)
    for text in BAD[name]:
        errors = []
        for parser in (loaded, built):
            with pytest.raises(UnexpectedInput) as info:
                parser.parse(text)
            e = info.value
            errors.append((type(e).__name__, e.line, e.column, sorted(getattr(e, "expected", None) or []),
                           sorted(getattr(e, "allowed", None) or [])))
        assert errors[0] == errors[1], text


def test_stale_tables_fall_back_to_the_grammar(monkeypatch):
    monkeypatch.setitem(_tables.FINGERPRINTS, "kql", "stale")
    parser = grammars.lalr("kql")
    assert parser.parse("a:b") == grammars.build("kql").parse("a:b")
    assert parser.source_path != "<deserialized>"  # built from the grammar, not loaded
    monkeypatch.undo()
    assert grammars.lalr("kql").source_path == "<deserialized>"

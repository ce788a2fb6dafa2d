"""What an EQL syntax error says: Lark's exception turned into a message, a position and a hint
an author can act on (the usual slips of other query languages named)."""

from __future__ import annotations

from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .errors import EqlSyntaxError

_TOKEN_WORDS = {
    "LSQB": '"["', "RSQB": '"]"', "LPAR": '"("', "RPAR": '")"', "COMMA": '","', "VBAR": '"|"',
    "WHERE": '"where"', "NAME": "a name", "STRING": "a string", "NUMBER": "a number",
    "COMP_OP": "a comparison", "MATCH_OP": '":", "like" or "regex"', "IN_OP": '"in"',
    "FUNC_NAME": "a function", "AND": '"and"', "OR": '"or"', "NOT": '"not"', "BY": '"by"',
    "WITH": '"with"', "UNTIL": '"until"', "DOT": '"."', "EQUAL": '"="', "RAW_STRING": "a string",
    "BACKTICK_NAME": "a `quoted` name", "SINGLE_QUOTED": "a string", "OPTIONAL": '"?"', "ANY": '"any"', "__ANON_0": '"!["', "BANG": '"!["',
}


def _describe_expected(expected: set[str]) -> str:
    words = sorted({_TOKEN_WORDS.get(t, t.lower()) for t in expected if not t.startswith("$")})
    if len(words) > 8:
        return ""
    return "expected " + ", ".join(words) if words else ""


def syntax_error(text: str, e: UnexpectedInput) -> EqlSyntaxError:
    line, col = e.line, e.column
    hint = None
    if isinstance(e, UnexpectedCharacters):
        pos = e.pos_in_stream or 0  # lark declares it None; the lexer sets the offending offset
        ch = text[pos] if pos < len(text) else ""
        msg = f"unexpected character {ch!r}"
        if ch == "'":
            hint = 'strings are written in double quotes: "text" (or """raw""")'
        elif ch == "=":
            hint = "use == to compare"
        elif ch == "?" or text[pos:].startswith('?"'):
            hint = '?"..." raw strings are not EQL; use """..."""'
        return EqlSyntaxError(msg, text, line, col, col + 1, hint)
    if isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END"):
        expected = getattr(e, "expected", None) or getattr(e, "accepts", set()) or set()
        lines = text.rstrip().splitlines() or [""]
        line, col = len(lines), len(lines[-1]) + 1
        return EqlSyntaxError("the query ends too early", text, line, col, col + 1, _describe_expected(set(expected)) or None)
    assert isinstance(e, UnexpectedToken)
    tok = e.token
    value = str(tok)
    end = col + max(1, len(value))
    if tok.type == "SINGLE_QUOTED":
        hint = 'strings are written in double quotes: "text" (or """raw""")'
    elif tok.type == "ASSIGN" or value == "=":
        hint = "use == to compare"
    elif tok.type == "COMP_OP":
        hint = "comparisons cannot be chained; combine them with and"
    elif tok.type in ("STRING", "RAW_STRING") and text[: tok.start_pos].rstrip().endswith("?"):
        hint = '?"..." raw strings are not EQL; use """..."""'
    elif value.lower() == "join":
        hint = "join is not supported by Elasticsearch EQL; use sequence"
    elif value.lower() in ("of",):
        hint = "lineage (descendant of, child of, event of) is not supported by Elasticsearch EQL"
    else:
        hint = _describe_expected(set(e.expected)) or None
    return EqlSyntaxError(f"unexpected {value!r}", text, line, col, end, hint)

"""Rule loading errors: which file, which key, what is wrong; and the one type for "a feature
Trailhound lacks", which is reported as unsupported, never as an error."""

from __future__ import annotations


class RuleError(ValueError):
    def __init__(self, source: str | None, key: str | None, message: str) -> None:
        self.source, self.key, self.message = source, key, message
        where = source or "<rule>"
        super().__init__(f"{where}: {('[rule] ' + key + ': ') if key else ''}{message}")


class UnsupportedError(Exception):
    """Valid input that needs a feature Trailhound does not have (a rule type, a query language,
    a form of date math...). `rules validate` and `hunt` report the rule as unsupported with this
    reason. Other layers may raise a subclass that is also their own error type, e.g.
    `class UnsupportedQueryError(QueryError, UnsupportedError)`: check_rule tests for this class
    first, so such an error counts as unsupported, and its `render()` (if any) gives the reason."""

    def __init__(self, reason: str, *args: object) -> None:
        self.reason = reason
        super().__init__(reason, *args)

    def __str__(self) -> str:
        return getattr(self, "reason", None) or super().__str__()


def reason_of(error: BaseException) -> str:
    """The text to report for an error: a QueryError's rendering (position, caret, hint), a
    RuleError's message, else the exception's first lines, without the engine's expression dump."""
    render = getattr(error, "render", None)
    if callable(render):
        try:
            return str(render())
        except Exception:  # a subclass whose fields were never set: fall back to str()
            pass
    if isinstance(error, RuleError):
        return error.message
    if isinstance(error, UnsupportedError):
        return str(error)
    text = str(error).split("\n\nThis error occurred", 1)[0]  # Polars appends the failing expression
    text = " ".join(line.strip() for line in text.splitlines() if line.strip())
    if len(text) > 400:
        text = text[:400] + "…"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__

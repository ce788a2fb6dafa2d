"""Rule loading errors: which file, which key, what is wrong."""

from __future__ import annotations


class RuleError(ValueError):
    def __init__(self, source: str | None, key: str | None, message: str) -> None:
        self.source, self.key, self.message = source, key, message
        where = source or "<rule>"
        super().__init__(f"{where}: {('[rule] ' + key + ': ') if key else ''}{message}")

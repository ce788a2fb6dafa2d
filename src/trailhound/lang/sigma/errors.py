"""Errors of Sigma rules: a rule that is wrong (SigmaRuleError) or one that needs what we lack (SigmaUnsupported)."""

from __future__ import annotations

from ...rules.errors import UnsupportedError
from ..errors import QueryError


class SigmaRuleError(QueryError):
    """A Sigma rule that cannot run as written (pySigma refuses it, or a value makes no sense)."""


class SigmaUnsupported(SigmaRuleError, UnsupportedError):
    """A valid Sigma rule that needs a feature Trailhound lacks; the reason names it."""

    def __init__(self, reason: str) -> None:
        SigmaRuleError.__init__(self, reason)
        self.reason = reason

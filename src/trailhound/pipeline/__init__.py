"""One pipeline for every way of hunting (`hunt`, `test`, later `watch` and Spark): see `hunt.run_hunt`."""

from .hunt import run_hunt
from .report import HuntReport, RuleOutcome

__all__ = ["HuntReport", "RuleOutcome", "run_hunt"]

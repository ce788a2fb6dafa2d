"""One pipeline for every way of hunting (`hunt`, `test`, later `watch` and Spark): `plan` checks
the rules, `run_hunt` runs them over inputs into sinks and returns a `HuntReport`."""

from .hunt import Plan, plan, run_hunt
from .report import HITS_AND_ALERTS, HuntReport, RuleOutcome

__all__ = ["HITS_AND_ALERTS", "HuntReport", "Plan", "RuleOutcome", "plan", "run_hunt"]

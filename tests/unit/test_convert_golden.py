"""Golden files: a handful of rules (frozen copies of pack rules, tests/fixtures/convert/rules) in every
target, compared with tests/fixtures/convert/golden/<rule>.<target> (a `.refused` file holds the
reason when the target refuses the rule). Outputs with a parser here are also parsed: EQL by ours,
Sigma by pySigma's parser and validators, the TOML by our rule loader.

Regenerate after a deliberate change: TRAILHOUND_UPDATE_GOLDEN=1 pytest tests/unit/test_convert_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trailhound.emit.convert import EXTENSIONS, Converted, from_rule
from trailhound.emit.sigma import check_sigma
from trailhound.lang.parser import parse
from trailhound.rules.loader import load_rules, rule_from_toml

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "convert"
RULES = sorted((FIXTURES / "rules").glob("*.toml"))
UPDATE = os.environ.get("TRAILHOUND_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("target", list(EXTENSIONS))
@pytest.mark.parametrize("path", RULES, ids=lambda p: p.stem)
def test_golden(path, target):
    if target in ("splunk", "kusto", "kusto-xdr", "esql", "lucene"):
        pytest.importorskip("sigma.backends.splunk", reason="the convert extra (pySigma backends) is not installed")
    (rule,) = load_rules([path]).rules
    out = from_rule(rule, target, path.stem)
    if isinstance(out, Converted):
        name, text = f"{path.stem}{EXTENSIONS[target]}", out.text
        if out.warnings:
            text += "".join(f"\n# warning: {w}" for w in out.warnings) + "\n"
    else:
        name, text = f"{path.stem}.{target}.refused", out.reason + "\n"
    golden = FIXTURES / "golden" / name
    if UPDATE:
        for stale in (FIXTURES / "golden").glob(f"{path.stem}{EXTENSIONS[target]}"):
            stale.unlink()
        for stale in (FIXTURES / "golden").glob(f"{path.stem}.{target}.refused"):
            stale.unlink()
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"no golden file {name} (regenerate with TRAILHOUND_UPDATE_GOLDEN=1)"
    assert text == golden.read_text(encoding="utf-8")
    if not isinstance(out, Converted):
        return
    if target == "eql":
        parse(out.text)
    elif target == "sigma":
        assert check_sigma(out.text) == []
    elif target == "toml":
        assert rule_from_toml(out.text).query == rule.query

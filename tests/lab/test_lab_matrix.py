"""The bundled rule pack over the recorded lab capture, and what the issue asks of it: every
Atomic-style scenario detected by a pack rule with severity, the benign baseline free of high and
critical alerts, every alert inside a scenario's window. Prints the matrix."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from evidence import FIXTURES

from trailhound.lab.matrix import OUTSIDE, default_rules_dir, markdown, render_matrix, run_matrix
from trailhound.lab.scenarios import ATOMIC, SCENARIOS

PACK = default_rules_dir()
pytestmark = pytest.mark.skipif(not (FIXTURES / "scenarios.json").exists() or not any(PACK.glob("*.toml")),
                                reason="no recorded lab capture or no rule pack")


def test_pack_over_the_recorded_lab(capsys):
    meta = json.loads((FIXTURES / "scenarios.json").read_text())
    windows = [SimpleNamespace(**{k: s.get(k) for k in ("name", "start", "end", "benign", "skipped")})
               for s in meta["scenarios"]]
    files = [FIXTURES / w.name / f for w in windows if not w.skipped for f in ("audit.log", "auth.log")]
    m = run_matrix([PACK], files, windows)
    with capsys.disabled():
        render_matrix(m)
        print(markdown(m))
    assert m.rules_run > 0
    assert not [k for k in m.cells if k[0] == OUTSIDE], "an alert outside every scenario window"
    assert not [n for n in m.notes if n.startswith("rule error")]

    for name in ATOMIC:
        fired = m.fired(name)
        assert fired, f"no pack rule fired on the {name} scenario"
        assert any(m.rules[r] in ("medium", "high", "critical") for r in fired), (name, fired)
    baseline = {r: n for r, n in m.false_positives().items() if m.rules[r] in ("high", "critical")}
    assert baseline == {}, f"the benign baseline raised high or critical alerts: {baseline}"
    # every scenario that was not skipped and is not benign is detected by some rule
    missed = [s.name for s in SCENARIOS if s.name not in m.benign and any(w.name == s.name and not w.skipped
                                                                              for w in windows) and not m.fired(s.name)]
    assert missed == []

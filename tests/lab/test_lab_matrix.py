"""The bundled rule pack over the recorded lab capture: every alert falls in a scenario's window.
Which rule must fire for which scenario is the pack's own tests' business; this prints the matrix."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from evidence import FIXTURES
from trailhound.lab.matrix import OUTSIDE, default_rules_dir, markdown, render_matrix, run_matrix

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

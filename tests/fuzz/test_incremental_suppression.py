"""Alert suppression fed in batches, with its state through JSON and expired at every cut, leaves the
alerts (in their final state, updates applied by `kibana.alert.uuid`) of one batch (issue 16)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from trailhound.alerts.suppression import SuppressionState
from trailhound.rules.model import SuppressionSpec

SEC = 1_000_000_000
INTERVAL = 5 * SEC

alerts_in = st.lists(st.tuples(st.sampled_from([0, 0, 1, 2, 3, 4]), st.sampled_from(["a", "b", None]), st.sampled_from([1, 2])),
                     min_size=1, max_size=50)
specs = st.builds(SuppressionSpec, st.sampled_from([("host",), ("host", "n")]),
                  st.sampled_from([None, 3 * SEC, 7 * SEC]), st.sampled_from(["suppress", "doNotSuppress"]))


def _replay(spec, items, cuts):
    """Alerts as a stream writes them: new ones at once, updated ones again; returns the final alerts
    in the order they were first written, and how many were suppressed."""
    state, written, order, suppressed, last = SuppressionState(spec), {}, [], 0, None
    t = 0
    for i, (gap, host, n) in enumerate(items):
        if i in cuts:
            if i % 2:  # the updates written before the checkpoint, or after it (they are part of it)
                for a in state.take_changed():
                    written[a["kibana.alert.uuid"]] = json.loads(json.dumps(a))
            if last is not None:
                state.expire(*last)
            state = SuppressionState.from_dict(spec, json.loads(json.dumps(state.to_dict())))
        t += gap * SEC
        values = (host,) if len(spec.group_by) == 1 else (host, n)
        when, execution = f"t{t}", t // INTERVAL
        last = (t, execution)
        if state.fold(values, t, when, execution):
            suppressed += 1
            continue
        alert = {"kibana.alert.uuid": f"a{i}", "kibana.alert.rule.rule_id": "r"}
        state.start(alert, values, t, when, execution)
        written[alert["kibana.alert.uuid"]] = json.loads(json.dumps(alert))
        order.append(alert["kibana.alert.uuid"])
    for a in state.take_changed():
        written[a["kibana.alert.uuid"]] = json.loads(json.dumps(a))
    return [written[u] for u in order], suppressed


@given(specs, alerts_in, st.sets(st.integers(0, 50), max_size=12))
def test_suppression_any_cuts(spec, items, cuts):
    assert _replay(spec, items, cuts) == _replay(spec, items, set())


def test_suppression_replay_folds_and_expires():
    """The comparison above bites: alerts fold, and expiry keeps the state to the open windows."""
    spec = SuppressionSpec(("host",), 3 * SEC)
    items = [(1, "a", 1)] * 6 + [(10, "b", 1)] + [(1, "a", 1)] * 3
    alerts, suppressed = _replay(spec, items, set(range(10)))
    assert suppressed == 6 and [a["kibana.alert.suppression.docs_count"] for a in alerts] == [3, 1, 0, 2]
    # a window is open through its whole duration, across a checkpoint and an expiry
    assert _replay(spec, [(0, "a", 1), (3, "a", 1), (0, "a", 1)], {1, 2})[1] == 2
    assert _replay(spec, [(0, "a", 1), (3, "a", 1), (1, "a", 1)], {1, 2})[1] == 1
    state = SuppressionState(spec)
    for i in range(100):
        state.start({"kibana.alert.uuid": str(i)}, (f"h{i}",), i * SEC, None, 0)
        state.expire(i * SEC, 0)
        assert len(state.windows) <= 4

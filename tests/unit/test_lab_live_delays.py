"""`lab run --watch`'s attribution of live alerts to scenarios and their delays (pure logic; the live run itself
is tests/lab/test_lab_live.py)."""

from __future__ import annotations

from types import SimpleNamespace

from trailhound.lab.live import SeenAlert, scenario_delays


def win(name, start, end, benign=False, skipped=None):
    return SimpleNamespace(name=name, start=start, end=end, benign=benign, skipped=skipped)


def alert(uid, rule, t, severity="medium", **extra):
    from datetime import UTC, datetime

    return {"kibana.alert.uuid": uid, "kibana.alert.rule.name": rule, "kibana.alert.severity": severity,
            "kibana.alert.original_time": datetime.fromtimestamp(t, UTC).isoformat(), **extra}


def test_each_alert_goes_to_the_window_of_its_event_with_its_delay():
    windows = [win("a", 100.0, 110.0), win("b", 110.0, 120.0, benign=True), win("c", 0, 0, skipped="no tool")]
    seen = [
        SeenAlert(alert("1", "r1", 101.0), 101.4),
        SeenAlert(alert("2", "r2", 103.0, "high"), 104.5),
        SeenAlert(alert("1", "r1", 101.0), 106.0),  # a suppression update of alert 1: not a new alert
        SeenAlert(alert("3", "r1", 112.0, "low"), 112.3),
        SeenAlert(alert("4", "r3", 130.0), 130.5),  # outside every window
    ]
    got = {d.scenario: d for d in scenario_delays(seen, windows)}
    assert set(got) == {"a", "b"}
    a = got["a"]
    assert (a.alerts, a.rules, a.first_rule, a.severity) == (2, ["r1", "r2"], "r1", "medium")
    assert (a.command_to_alert, a.start_to_alert, a.worst_command_to_alert) == (0.4, 1.4, 1.5)
    assert a.severities == {"r1": "medium", "r2": "high"}
    assert got["b"].benign and got["b"].alerts == 1 and got["b"].command_to_alert == 0.3


def test_a_sequence_is_timed_from_its_last_building_block():
    windows = [win("a", 100.0, 110.0)]
    gid = {"kibana.alert.group.id": "g"}
    seen = [
        SeenAlert(alert("b1", "seq", 101.0, **gid, **{"kibana.alert.building_block_type": "default"}), 105.2),
        SeenAlert(alert("b2", "seq", 105.0, **gid, **{"kibana.alert.building_block_type": "default"}), 105.2),
        SeenAlert({**alert("g", "seq", 101.0), **gid}, 105.2),
    ]
    (a,) = scenario_delays(seen, windows)
    assert a.alerts == 1 and a.command_to_alert == 0.2 and a.start_to_alert == 5.2


def test_lab_run_watch_writes_the_delays_and_the_live_alerts(tmp_path, capsys):
    import json

    from trailhound.cli.lab import report_live

    seen = [SeenAlert(alert("1", "r1", 101.0), 101.4)]
    cap = SimpleNamespace(live=scenario_delays(seen, [win("a", 100.0, 110.0)]), live_alerts=[s.doc for s in seen])
    report_live(cap, tmp_path)
    saved = json.loads((tmp_path / "watch.json").read_text())["scenarios"]
    assert saved[0]["scenario"] == "a" and saved[0]["command_to_alert"] == 0.4 and saved[0]["first_rule"] == "r1"
    assert [json.loads(x)["kibana.alert.uuid"] for x in (tmp_path / "watch-alerts.ndjson").read_text().splitlines()] \
        == ["1"]
    assert "0.40" in capsys.readouterr().out

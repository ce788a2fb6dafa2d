"""Help text through the installed command: nothing lost to markup, flags shown as flags,
choices listed."""

from __future__ import annotations

from test_cli_exit_codes import trailhound


def test_help_keeps_brackets_and_braces():
    res = trailhound("query", "--help")
    assert res.returncode == 0
    text = " ".join(res.stdout.split())
    assert '{"sequence": [documents, null for a missing event], "join_keys": [...]}' in text  # lost to Rich markup


def test_flags_show_no_type_and_choices_are_listed():
    for cmd in (["query"], ["hunt"], ["normalize"], ["test"], ["rules", "validate"], ["lab", "run"]):
        res = trailhound(*cmd, "--help")
        assert res.returncode == 0, cmd
        assert "<bool>" not in res.stdout, cmd
    hunt = trailhound("hunt", "--help").stdout
    assert "--input-format [ecs|auditd|syslog]" in hunt and "--format <table|ndjson>" in hunt
    assert "--exit-zero " in hunt and "--allow-bad-input " in hunt
    assert "--tail " in trailhound("query", "--help").stdout


def test_top_level_help_names_the_global_options_and_exit_codes():
    res = trailhound("--help")
    assert "--version" in res.stdout and "--debug" in res.stdout and "Exit codes" in res.stdout

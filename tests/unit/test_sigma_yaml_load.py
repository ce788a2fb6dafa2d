"""Sigma YAML is parsed by libyaml when PyYAML has it: the same values as PyYAML's pure-Python safe
loader, and for text it refuses, the same error users saw before."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from trailhound.rules.errors import RuleError
from trailhound.rules.sigma import load_yaml, rules_from_yaml

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("TRAILHOUND_SHARED", REPO.parent / "shared"))
TRICKY = """\
title: "quoted: colon"  # comment
id: 1f7a0c1e-0000-4000-8000-000000000001
when: 2024-01-02
empty:
numbers: [1, 0x1F, 1.5e3, .inf, -0]
flags: [yes, No, on, true, ~, null]
text: |
  line one
    indented \\t tab
folded: >-
  a
  b
anchors: &a {k: v}
alias: *a
unicode: "caf\\u00e9 \\U0001F600"
---
second: document
"""


def _yaml_files() -> list[Path]:
    files = sorted((REPO / "tests" / "fixtures").rglob("*.yml")) + sorted((REPO / "src").rglob("*.yml"))
    corpus = SHARED / "corpora" / "sigma" / "rules-linux" / "rules" / "linux"
    return files + (sorted(corpus.rglob("*.yml")) if corpus.is_dir() else [])


def test_same_values_as_the_pure_python_loader():
    texts = [TRICKY] + [p.read_text(encoding="utf-8") for p in _yaml_files()]
    assert len(texts) > 5
    for text in texts:
        assert load_yaml(text, all_documents=True) == list(yaml.safe_load_all(text))
    assert load_yaml(TRICKY.split("---")[0]) == yaml.safe_load(TRICKY.split("---")[0])


@pytest.mark.skipif(not getattr(yaml, "__with_libyaml__", False), reason="PyYAML built without libyaml")
def test_libyaml_is_used_when_present(monkeypatch):
    calls = []
    real = yaml.load_all

    def spy(stream, Loader):  # noqa: N803 - PyYAML's spelling
        calls.append(Loader)
        return real(stream, Loader=Loader)

    monkeypatch.setattr(yaml, "load_all", spy)
    load_yaml("a: 1", all_documents=True)
    assert calls == [yaml.CSafeLoader]


def test_invalid_yaml_keeps_the_pure_python_message():
    bad = "title: x\ndetection:\n  sel: [a, b\n  condition: sel\n"
    with pytest.raises(yaml.YAMLError) as python_error:
        list(yaml.safe_load_all(bad))
    with pytest.raises(RuleError) as ours:
        rules_from_yaml(bad, "bad.yml")
    mark = python_error.value.problem_mark  # type: ignore[attr-defined]
    assert f"line {mark.line + 1}, column {mark.column + 1}" in str(ours.value)
    assert python_error.value.problem in str(ours.value)  # type: ignore[attr-defined]

"""``sargs policy test DIR``: pass/fail per example, exit 1 on any failure; corpora scored."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from proxy.cli.main import main
from proxy.settings import ROOT


def test_shipped_policy_passes(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["policy", "test", str(ROOT / "policies" / "institutions" / "example")])
    out = capsys.readouterr().out
    assert code == 0
    assert "FAIL" not in out
    assert "PASS: " in out
    # The example institution's corpus is scored, not failed draft by draft.
    assert "policy corpus: " in out
    assert re.search(r"disguised caught: \d+/\d+ \(\d+%\)", out)
    assert re.search(r"micro-F1 on ordinary drafts: [01]\.\d{3}", out)


def _policy(tmp_path: Path, tests: str, name: str = "mine.yaml") -> Path:
    (tmp_path / "policy.yaml").write_text(
        f"extends: {ROOT / 'policies' / 'base'}\nname: T\nversion: '1'\n"
        "institution: {name: T, timezone: Europe/Tirane}\n"
    )
    (tmp_path / "tests").mkdir(exist_ok=True)
    (tmp_path / "tests" / name).write_text(tests)
    return tmp_path


def test_failures_show_expected_and_found_with_positions(tmp_path: Path, capsys) -> None:
    directory = _policy(
        tmp_path,
        "tests:\n"
        "  - name: passes\n    text: Ti je budalla\n    expect: [offensive]\n"
        "  - name: misses\n    text: Sot është bukur\n    expect: [{rule: partisan}]\n"
        "  - name: too much\n    text: Idiot!\n    expect: []\n"
        "  - name: wrong severity\n    text: Idiot!\n"
        "    expect: [{rule: offensive, severity: block}]\n"
        "  - name: wrong place\n    text: Idiot, you moron\n"
        "    expect: [{rule: offensive, match: you moron}]\n",
    )
    code = main(["policy", "test", "-v", str(directory)])
    out = capsys.readouterr().out
    assert code == 1
    assert "PASS: passes" in out
    assert "FAIL: misses (line 5)\n    missing partisan; found no such finding" in out
    assert "FAIL: too much (line 8)\n    unexpected offensive (warn) at 0-5 'Idiot'" in out
    assert "severity warn, expected block" in out
    # Expected vs found: the finding that was there, with its UTF-16 span and text.
    assert ("missing offensive 'you moron'; found offensive (warn) at 0-5 'Idiot'; "
            "offensive (warn) at 11-16 'moron'") in out
    # The base's tests ran too, and pass against this policy.
    summary = re.search(r"PASS: (\d+)/(\d+)  FAIL: (\d+)", out)
    assert summary is not None
    assert int(summary[3]) == 4
    assert int(summary[2]) > 50


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("tests:\n  - name: a\n    text: x\n    expect: []\n  - name: b\n    text: y\n"
         "    expect: [{rule: offensiv}]\n",
         "mine.yaml:7: tests.1.expect.0.rule: Input should be 'classified'"),
        ("tests:\n  - name: a\n    text: x\n    expect: []\n    severity: warn\n",
         "mine.yaml:5: tests.0.severity: Extra inputs are not permitted"),
        ("tests:\n  - name: a\n    text: [x\n", "mine.yaml:4: not valid YAML: expected ',' or ']'"),
        ("score: true\ntests:\n  - name: a\n    class: plain\n    text: Idiot\n"
         "    expect: [offensive]\n",
         "mine.yaml:3: tests.0: a plain draft expects no finding"),
        ("score: true\ntests:\n  - name: a\n    text: Idiot\n    expect: [offensive]\n",
         "mine.yaml:1: 'a': a scored file's drafts need a 'class' and a 'lang'"),
    ],
)
def test_broken_test_files_name_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    directory = _policy(tmp_path, content)
    assert main(["policy", "test", str(directory)]) == 1
    out = capsys.readouterr().out
    assert message in out


_CORPUS = """\
score: true
defaults: {at: "2026-11-22T12:00:00+02:00"}
tests:
  - {name: insult, class: ordinary, lang: en, text: "Idiot!", expect: [offensive]}
  - {name: no call, class: ordinary, lang: sq, text: "Sot është bukur", expect: [partisan]}
  - {name: fullwidth, class: look-alike, lang: en, text: "\\uff49\\uff44\\uff49\\uff4f\\uff54",
     expect: [offensive]}
  - {name: title, class: hard-negative, lang: en, text: "'The Idiot' tonight", expect: []}
  - {name: hello, class: plain, lang: en, text: "Hello, world", expect: []}
  - {name: severity, class: ordinary, lang: en, text: "Idiot!",
     expect: [{rule: offensive, severity: block}]}
"""


def test_corpus_is_scored_and_targets_set_the_exit_code(tmp_path: Path, capsys) -> None:
    corpus = tmp_path / "corpus.yaml"
    corpus.write_text(_CORPUS)
    example = str(ROOT / "policies" / "institutions" / "example")
    assert main(["policy", "test", example, "--corpus", str(corpus), "-v"]) == 0
    out = capsys.readouterr().out.split(f"{corpus}\n", 1)[1]
    lines = out.splitlines()
    assert lines[0] == "6 drafts"
    # offensive: three caught, one false alarm (the title); partisan: one miss.
    assert "  offensive         0.750   1.000  0.857     3    1    0" in lines
    assert "  partisan          1.000   0.000  0.000     0    0    1" in lines
    assert "  sq                1.000   0.000  0.000     0    0    1" in lines
    assert "micro-F1 on ordinary drafts: 0.800 (precision 1.000, recall 0.667)" in lines
    assert "disguised caught: 1/1 (100%)" in lines
    assert "false alarms: 1/1 hard negatives, 0/1 plain posts" in lines
    assert "target missed: micro-F1 on ordinary drafts 0.800 < 0.95" in lines
    # A personal account's insult is a warning: the expected severity is counted apart.
    assert "found with another severity than expected: 1 drafts" in lines
    assert "    offensive: severity warn, expected block" in lines
    assert "target missed: false alarms on hard negatives 1/1 > 1 per 25" in lines
    assert "  WRONG [hard-negative, en] title (corpus.yaml:8)" in lines
    assert "    found: offensive (warn) at 5-10 'Idiot'" in lines
    # --targets turns a missed target into exit 1.
    assert main(["policy", "test", example, "--corpus", str(corpus), "--targets"]) == 1
    capsys.readouterr()
    # A corpus that is not there is an error, not an empty score.
    assert main(["policy", "test", example, "--corpus", str(tmp_path / "nothing")]) == 1
    assert "cannot read" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert main(["policy", "test", example, "--corpus", str(tmp_path / "empty")]) == 1
    assert "no *.yaml files there" in capsys.readouterr().err


def test_inherited_severity_is_a_minimum(tmp_path: Path, capsys) -> None:
    (tmp_path / "base").mkdir()
    base = tmp_path / "base"
    (base / "policy.yaml").write_text(
        "name: B\nversion: '1'\ninstitution: {name: B}\nplatforms: {}\n"
        "compliance:\n  rules:\n    offensive:\n      severity: warn\n"
        "      message: {en: m, lv: m, sv: m, sq: m}\n      terms: {en: [idiot]}\n"
    )
    (base / "tests").mkdir()
    (base / "tests" / "t.yaml").write_text(
        "tests:\n  - name: warn\n    text: idiot\n    expect: [{rule: offensive, severity: warn}]\n"
    )
    inst = tmp_path / "inst"
    inst.mkdir()
    (inst / "policy.yaml").write_text(
        "extends: ../base\ncompliance:\n  rules:\n    offensive:\n      severity: block\n"
    )
    assert main(["policy", "test", str(inst)]) == 0
    assert main(["policy", "test", str(base)]) == 0
    capsys.readouterr()


def _imports(module: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_cli_commands_do_not_import_each_other_both_ways() -> None:
    cli = ROOT / "proxy" / "cli"
    graph = {p.stem: {n.rsplit(".", 1)[-1] for n in _imports(p) if n.startswith("proxy.cli")}
             for p in cli.glob("*.py")}
    cycles = [(a, b) for a, deps in graph.items() for b in deps
              if b != a and a in graph.get(b, set())]
    assert cycles == []
    assert "policy_cmd" not in graph["policy_test_cmd"]

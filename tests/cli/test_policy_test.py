"""``sargs policy test DIR``: pass/fail per example, exit 1 on any failure."""

from __future__ import annotations

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


def _policy(tmp_path: Path, tests: str) -> Path:
    (tmp_path / "policy.yaml").write_text(
        f"extends: {ROOT / 'policies' / 'base'}\nname: T\nversion: '1'\n"
        "institution: {name: T, timezone: Europe/Tirane}\n"
    )
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "mine.yaml").write_text(tests)
    return tmp_path


def test_failures_are_reported_and_exit_1(tmp_path: Path, capsys) -> None:
    directory = _policy(
        tmp_path,
        "tests:\n"
        "  - name: passes\n    text: Ti je budalla\n    expect: [offensive]\n"
        "  - name: misses\n    text: Sot është bukur\n    expect: [{rule: partisan}]\n"
        "  - name: too much\n    text: Idiot!\n    expect: []\n"
        "  - name: wrong severity\n    text: Idiot!\n"
        "    expect: [{rule: offensive, severity: block}]\n",
    )
    code = main(["policy", "test", "-v", str(directory)])
    out = capsys.readouterr().out
    assert code == 1
    assert "PASS: passes" in out
    assert "FAIL: misses\n    missing partisan" in out
    assert "FAIL: too much\n    unexpected offensive (warn) 'Idiot'" in out
    assert "severity warn, expected block" in out
    # The base's tests ran too, and pass against this policy.
    summary = re.search(r"PASS: (\d+)/(\d+)  FAIL: (\d+)", out)
    assert summary is not None
    assert int(summary[3]) == 3
    assert int(summary[2]) > 50


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

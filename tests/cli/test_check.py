"""``sargs check``: draft on standard input, JSON out, exit 0 (the contract)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.cli.main import main
from proxy.compliance.config import RuleId
from proxy.settings import ROOT

EXAMPLE = str(ROOT / "policies" / "institutions" / "example")


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], text: str,
        *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    code = main(["check", "--policy", EXAMPLE, *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_contract_shape_and_utf16_offsets(monkeypatch, capsys) -> None:
    text = "😀 Zvani 29123456, muļķi"
    code, out, _ = run(monkeypatch, capsys, text, "--at", "2026-11-22T12:00", "--lang", "lv")
    assert code == 0
    result = json.loads(out)
    assert set(result) == {"verdict", "policy", "findings"}
    assert result["verdict"] == "block"
    assert result["policy"].startswith("2026.11-example+")
    spans = [(f["rule"], f["severity"], f["start"], f["end"]) for f in result["findings"]]
    assert spans == [("personal-data", "block", 9, 17), ("offensive", "warn", 19, 24)]
    assert result["findings"][0]["message"].startswith("Tas izskatās pēc tālruņa")
    assert set(result["findings"][0]) == {"rule", "severity", "start", "end", "message",
                                          "guideline", "ways", "simulated"}
    # the policy's ways forward: a phone number may be justified, an insult acknowledged
    assert result["findings"][0]["ways"] == ["justify", "report", "review"]
    assert result["findings"][1]["ways"] == ["acknowledge", "report", "review"]
    assert result["findings"][0]["simulated"] is False


def test_clean_draft_is_ok(monkeypatch, capsys) -> None:
    code, out, _ = run(monkeypatch, capsys, "Sveiki!", "--at", "2026-11-22T12:00+02:00")
    assert code == 0
    assert json.loads(out)["verdict"] == "ok"


def test_at_switches_embargo_and_working_hours(monkeypatch, capsys) -> None:
    text = "The 2027 budget is ready"
    _, before, _ = run(monkeypatch, capsys, text, "--at", "2026-12-01T09:59")
    _, after, _ = run(monkeypatch, capsys, text, "--at", "2026-12-01T10:00")
    assert [f["rule"] for f in json.loads(before)["findings"]] == ["working-hours", "embargo"]
    assert [f["rule"] for f in json.loads(after)["findings"]] == ["working-hours"]
    _, official, _ = run(monkeypatch, capsys, text, "--at", "2026-12-01T10:00",
                         "--account", "official")
    assert json.loads(official)["findings"] == []


def test_attachments_and_official_allowed(monkeypatch, capsys) -> None:
    _, out, _ = run(monkeypatch, capsys, "", "--attach", "image", "--attach", "file",
                    "--account", "official", "--official-allowed", "no",
                    "--at", "2026-11-22T12:00", "--platform", "x")
    assert sorted(f["rule"] for f in json.loads(out)["findings"]) == [
        "copyright", "minors-consent", "official-account"
    ]


def test_bad_options(monkeypatch, capsys) -> None:
    code, _, err = run(monkeypatch, capsys, "x", "--platform", "myspace")
    assert code == 2
    assert "unknown platform 'myspace'" in err
    code, _, err = run(monkeypatch, capsys, "x", "--at", "next tuesday")
    assert code == 2
    assert "--at" in err


def test_broken_policy_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(
        "extends: " + str(ROOT / "policies" / "base") + "\nname: T\nversion: '1'\n"
        "institution: {name: T}\ncompliance:\n  rules:\n    offensive:\n      severity: loud\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "proxy.cli.main", "check", "--policy", str(tmp_path)],
        input="hello", capture_output=True, text=True, check=False, cwd=ROOT,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "policy.yaml:8" in proc.stderr
    assert "severity" in proc.stderr


def test_text_format_marks_the_findings_in_the_draft(monkeypatch, capsys) -> None:
    text = "😀 Zvani 29123456, mu\u200bļķi un muļķis"
    code, out, _ = run(monkeypatch, capsys, text, "--format", "text", "--lang", "lv",
                       "--at", "2026-11-23T12:00")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("vērtējums: block (politika 2026.11-example+")
    # The emoji counts two UTF-16 units in the offsets, one character in the marked text;
    # the zero-width space a reader cannot see is spelled out (and does not hide the word).
    assert lines[2] == "😀 Zvani ⟦29123456⟧2, ⟦mu⟨U+200B⟩ļķi⟧3 un ⟦muļķis⟧4"
    assert lines[4].startswith("1. working-hours (warn) viss melnraksts: Ir darba laiks.")
    assert "2. personal-data (block) 9-17 '29123456': Tas izskatās pēc tālruņa" in out
    assert "3. offensive (warn) 19-25 'mu⟨U+200B⟩ļķi': " in out
    assert "4. offensive (warn) 29-35 'muļķis': " in out


def test_text_format_shows_what_a_draft_hides(monkeypatch, capsys) -> None:
    # A bidi override reverses what a reader sees; ESC sequences would drive the terminal
    # (here: conceal the rest of the line); a carriage return would overwrite the line.
    text = "ok \u202eevil\u202c \x1b[8mhidden\x1b[0m\rfake\nline 2\ttab"
    code, out, _ = run(monkeypatch, capsys, text, "--format", "text",
                       "--at", "2026-11-22T12:00")
    assert code == 0
    for hidden in ("\x1b", "\r", "\u202e"):
        assert hidden not in out
    assert out.splitlines()[2:4] == [
        "ok ⟨U+202E⟩evil⟨U+202C⟩ ⟨U+001B⟩[8mhidden⟨U+001B⟩[0m⟨U+000D⟩fake", "line 2\ttab"]


def test_text_format_of_a_clean_draft(monkeypatch, capsys) -> None:
    code, out, _ = run(monkeypatch, capsys, "Sveiki!", "--format", "text",
                       "--at", "2026-11-22T12:00")
    assert code == 0
    assert out.splitlines()[2:] == ["Sveiki!", "", "no findings"]


def test_marks_of_nested_and_overlapping_findings() -> None:
    from proxy.cli.check_cmd import marked
    from proxy.compliance.config import Severity
    from proxy.compliance.model import CheckResult, Finding

    def finding(rule: RuleId, start: int, end: int) -> Finding:
        return Finding(rule=rule, severity=Severity.warn, start=start, end=end, message="m",
                       guideline="")

    result = CheckResult(verdict="warn", policy="p", findings=[
        finding("embargo", 0, 11), finding("classified", 5, 11), finding("offensive", 9, 14)])
    assert marked("Blue Heron idiot", result).splitlines()[2] == (
        "⟦Blue ⟦Hero⟦n ⟧2⟧1idi⟧3ot")


@pytest.mark.parametrize(
    ("text", "args", "code"),
    [
        ("Idiot", [], 0),  # the contract: exit 0 whatever the verdict
        ("Idiot", ["--fail-on", "warn"], 1),
        ("Idiot", ["--fail-on", "block"], 0),
        ("Idiot", ["--fail-on", "block", "--account", "official"], 1),
        ("Zvani 29123456", ["--fail-on", "warn"], 1),
        ("Sveiki!", ["--fail-on", "warn"], 0),
        ("Idiot", ["--fail-on", "warn", "--format", "text"], 1),
    ],
)
def test_fail_on_sets_the_exit_code(monkeypatch, capsys, text: str, args: list[str],
                                    code: int) -> None:
    got, out, _ = run(monkeypatch, capsys, text, "--at", "2026-11-22T12:00", *args)
    assert got == code
    assert out  # the result is printed either way

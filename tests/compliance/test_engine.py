"""The engine on its own: offsets, folding, boundaries, stems, context rules, layering."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from proxy.compliance.engine import Engine
from proxy.compliance.model import CheckRequest, CheckResult
from proxy.compliance.normalize import Draft
from proxy.policy.loader import PolicyError, load
from proxy.settings import ROOT

EXAMPLE = ROOT / "policies" / "institutions" / "example"
SUNDAY = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def engine() -> tuple[Engine, str]:
    loaded = load(EXAMPLE)
    return Engine.from_policy(loaded.policy), loaded.version


def check(engine: tuple[Engine, str], text: str, **fields: object) -> CheckResult:
    fields.setdefault("at", SUNDAY)
    return engine[0].check(CheckRequest(text=text, **fields), engine[1])  # type: ignore[arg-type]


def js_slice(text: str, start: int, end: int) -> str:
    """What ``text.slice(start, end)`` gives in JavaScript."""
    return text.encode("utf-16-le")[2 * start : 2 * end].decode("utf-16-le")


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("😀 idiot", "idiot"),
        ("👩‍👩‍👧 family photo, you idiot", "idiot"),
        ("𝐁𝐨𝐥𝐝 and then muļķis", "muļķis"),
        ("Mans 😀😀 personas kods 161175-19997", "161175-19997"),
        ("🇱🇻 zvani 29123456", "29123456"),
        ("🎉 see https://bit.ly/x now", "https://bit.ly/x"),
    ],
)
def test_offsets_count_utf16_units(engine: tuple[Engine, str], text: str, word: str) -> None:
    result = check(engine, text)
    assert result.findings, text
    finding = result.findings[0]
    assert js_slice(text, finding.start, finding.end) == word
    assert finding.start == len(text[: text.index(word)].encode("utf-16-le")) // 2


def test_folding_maps_back_to_the_original_letters() -> None:
    text = "Straße  MUĻĶIS\tok"
    draft = Draft(text)
    assert draft.folded == "strasse mulkis ok"
    start = draft.folded.index("mulkis")
    assert draft.span(start, start + 6) == (8, 14)
    assert text[8:14] == "MUĻĶIS"


def test_decomposed_diacritics_match_like_composed(engine: tuple[Engine, str]) -> None:
    text = "tu esi mul\u0327k\u0327is"  # combining cedillas, as some keyboards produce
    (finding,) = check(engine, text).findings
    assert (finding.rule, js_slice(text, finding.start, finding.end)) == ("offensive", text[7:])


def test_word_boundaries(engine: tuple[Engine, str]) -> None:
    assert check(engine, "The idiosyncratic budget").verdict == "ok"
    assert check(engine, "hora" + "s of work, horizon").verdict == "ok"
    assert [f.rule for f in check(engine, "(idiot)").findings] == ["offensive"]


def test_verdict_is_the_highest_severity(engine: tuple[Engine, str]) -> None:
    result = check(engine, "Rumour has it", account="official")
    assert result.verdict == "block"  # raised by the example institution
    assert check(engine, "Use promo code X").verdict == "info"
    assert check(engine, "Nice day").model_dump(mode="json") == {
        "verdict": "ok", "policy": engine[1], "findings": []
    }


def test_messages_and_guidelines_in_each_language(engine: tuple[Engine, str]) -> None:
    seen = set()
    for lang in ("en", "lv", "sv", "sq"):
        (finding,) = check(engine, "Idiot!", lang=lang).findings
        assert finding.message
        assert finding.guideline
        seen.add((finding.message, finding.guideline))
    assert len(seen) == 4


def test_embargo_edges(engine: tuple[Engine, str]) -> None:
    text = "buxheti 2027 ka më shumë mësues"
    before = datetime.fromisoformat("2026-12-01T09:59:59+02:00")
    release = datetime.fromisoformat("2026-12-01T08:00:00+00:00")
    (finding,) = check(engine, text, account="official", at=before, lang="en").findings
    assert finding.rule == "embargo"
    assert "2026-12-01 10:00" in finding.message
    assert check(engine, text, account="official", at=release).verdict == "ok"


@pytest.mark.parametrize(
    ("at", "working"),
    [
        ("2026-11-23T08:29:59+02:00", False),
        ("2026-11-23T08:30:00+02:00", True),
        ("2026-11-26T16:59:59+02:00", True),
        ("2026-11-26T17:00:00+02:00", False),
        ("2026-11-27T15:29:00+02:00", True),
        ("2026-11-27T13:30:00Z", False),  # 15:30 in Riga
        ("2026-11-28T10:00:00+02:00", False),  # Saturday
    ],
)
def test_working_hours_in_the_institution_time_zone(
    engine: tuple[Engine, str], at: str, working: bool
) -> None:
    rules = [f.rule for f in check(engine, "hi", at=datetime.fromisoformat(at)).findings]
    assert rules == (["working-hours"] if working else [])


def test_attachments(engine: tuple[Engine, str]) -> None:
    result = check(engine, "", attachments=[{"kind": "video"}, {"kind": "image"}])
    assert sorted(f.rule for f in result.findings) == ["copyright", "minors-consent"]
    assert all(f.start == f.end == 0 for f in result.findings)


def test_official_account(engine: tuple[Engine, str]) -> None:
    assert check(engine, "hi", account="official", official_allowed=False).verdict == "block"
    assert check(engine, "hi", account="official", official_allowed=True).verdict == "ok"
    assert check(engine, "hi", account="personal", official_allowed=False).verdict == "ok"


def test_request_is_validated() -> None:
    with pytest.raises(ValueError, match="account"):
        CheckRequest.model_validate({"text": "x", "account": "boss"})
    with pytest.raises(ValueError, match="at"):
        CheckRequest.model_validate({"text": "x", "at": "2026-11-23T10:00:00"})
    with pytest.raises(ValueError, match="extra"):
        CheckRequest.model_validate({"text": "x", "colour": "red"})
    with pytest.raises(ValueError, match="kind"):
        CheckRequest.model_validate({"text": "x", "attachments": [{"kind": "pdf"}]})


def _overlay(tmp_path: Path, compliance_yaml: str) -> Path:
    base = tmp_path / "base"
    shutil.copytree(ROOT / "policies" / "base", base, ignore=shutil.ignore_patterns("tests"))
    inst = tmp_path / "inst"
    inst.mkdir()
    (inst / "policy.yaml").write_text(
        "extends: ../base\nname: T\nversion: '1'\n"
        "institution: {name: T, timezone: Europe/Stockholm, domains: [kommun.se]}\n"
    )
    (inst / "compliance.yaml").write_text(compliance_yaml)
    return inst


def test_overlay_may_raise_but_not_lower_a_severity(tmp_path: Path) -> None:
    inst = _overlay(tmp_path, "compliance:\n  rules:\n    offensive:\n      severity: info\n")
    with pytest.raises(PolicyError) as caught:
        load(inst)
    text = str(caught.value)
    assert "compliance.yaml:4" in text
    assert "compliance.rules.offensive.severity" in text
    assert "never lower" in text


def test_overlay_adds_terms_and_code_names(tmp_path: Path) -> None:
    inst = _overlay(
        tmp_path,
        "compliance:\n  code_names: [Projekt Ugglan]\n  rules:\n"
        "    offensive:\n      severity: block\n      terms: {sv: [tönt]}\n",
    )
    loaded = load(inst)
    engine = Engine.from_policy(loaded.policy), loaded.version
    result = check(engine, "Projekt ugglan, din tönt")
    assert [(f.rule, f.severity.value) for f in result.findings] == [
        ("classified", "block"), ("offensive", "block")
    ]
    assert check(engine, "Idiot").findings[0].severity.value == "block"


def test_bad_rule_content_names_file_and_line(tmp_path: Path) -> None:
    inst = _overlay(
        tmp_path,
        "compliance:\n  rules:\n    offensive:\n      patterns: ['(unclosed']\n",
    )
    with pytest.raises(PolicyError, match=r"compliance.yaml:4.*regular expression"):
        load(inst)
    bad_rule = _overlay(tmp_path / "b", "compliance:\n  rules:\n    rudeness: {severity: warn}\n")
    with pytest.raises(PolicyError, match=r"compliance.yaml:3"):
        load(bad_rule)


def test_gap_unless_and_quoted_from_the_policy(tmp_path: Path) -> None:
    inst = _overlay(
        tmp_path,
        "compliance:\n  code_names: [Blue Heron]\n  rules:\n"
        "    classified:\n      gap: 1\n"
        "    speculation:\n      unless: ['\\bnot true\\b', '\\bwe deny\\b']\n"
        "    offensive:\n      quoted: info\n",
    )
    loaded = load(inst)
    engine = Engine.from_policy(loaded.policy), loaded.version
    assert [f.rule for f in check(engine, "the blue grey heron flies").findings] == [
        "classified"
    ]
    assert check(engine, "the blue big grey heron").verdict == "ok"  # two words between
    assert check(engine, "Rumour has it the office moves.").verdict != "ok"
    assert check(engine, "It is not true that, as rumour has it, the office moves.").verdict == (
        "ok"
    )
    quoted = check(engine, 'We watched "The Idiot" by Dostoevsky.')
    assert [(f.rule, f.severity.value) for f in quoted.findings] == [("offensive", "info")]
    assert check(engine, "We watched the idiot.").findings[0].severity.value == "warn"

"""The detectors alone: identifiers, links and the lexicon automaton."""

from __future__ import annotations

import re

import pytest

from proxy.compliance.config import Links, PersonalData
from proxy.compliance.identifiers import Identifiers, _alternation, _Digits, _DigitsPlan
from proxy.compliance.lexicon import Entry, Lexicon
from proxy.compliance.links import LinkChecker, edit_distance, skeleton
from proxy.compliance.normalize import fold_text


@pytest.fixture(scope="module")
def ids() -> Identifiers:
    return Identifiers(PersonalData(role_mailboxes=["info"], reference_markers=["Nr."]))


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("161175-19997", "id-number"),
        ("32867300679", "id-number"),
        ("880320-0016", "id-number"),
        ("J91402501L", "id-number"),
        ("+46 70 123 45 67", "phone"),
        ("+355 69 123 4567", "phone"),
        ("jane.doe@example.com", "email"),
        ("SE45 5000 0000 0583 9825 7466", "iban"),
        ("AL47 2121 1009 0000 0002 3569 8741", "iban"),
        ("5555 5555 5555 4444", "card"),
    ],
)
def test_identifier_found(ids: Identifiers, text: str, kind: str) -> None:
    spans = ids.find(f"x {text} y")
    assert [(s.kind, s.start, s.end) for s in spans] == [(kind, 2, 2 + len(text))]


@pytest.mark.parametrize(
    "text",
    [
        "161175-19998",  # bad checksum
        "40003521600",  # company, not a person
        "LV80 BANK 0000 4351 9500 2",  # bad mod-97
        "4111 1111 1111 1112",  # bad Luhn
        "2026-11-23",
        "23.11.2026",
        "Nr. 29123456",
        "info@example.gov.lv",
        "version 1.2.3",
        "12345",
    ],
)
def test_identifier_not_found(ids: Identifiers, text: str) -> None:
    assert ids.find(text) == []


def test_lexicon_stems_exact_forms_and_boundaries() -> None:
    lex = Lexicon([("muļķ*", Entry("offensive")), ("top secret", Entry("classified"))])
    folded = fold_text("Mulkim; topsecret; TOP  secret; muļķībām ne-mulkis xmulkis")
    hits = [(h.entry.rule, folded.text[h.start:h.end]) for h in lex.scan(folded.text)]
    assert hits == [
        ("offensive", "mulkim"), ("classified", "top secret"), ("offensive", "mulkibam"),
        ("offensive", "mulkis"),
    ]


def test_lexicon_of_nothing() -> None:
    assert Lexicon([]).scan("anything") == []


def test_look_alikes() -> None:
    links = LinkChecker(Links(shorteners=["bit.ly"]), ["example.gov.lv"])
    flagged = {
        "https://examp1e.gov.lv": "look-alike",
        "https://exarnple.gov.lv": "look-alike",
        "https://example.lv": "look-alike",
        "https://exmaple.gov.lv": "look-alike",
        "http://example.gov.lv": "http",
        "http://10.0.0.1/x": "raw-ip",
        "https://[::1]/x": "raw-ip",
        "bit.ly/abc": "shortener",
    }
    for url, kind in flagged.items():
        assert [s.kind for s in links.find(f"see {url}.")] == [kind], url
    for fine in ("https://www.example.gov.lv/a", "https://europa.eu", "x.com is fine", "e.g. this"):
        assert links.find(fine) == [], fine


def test_skeleton_and_distance() -> None:
    assert skeleton("ехаmрle") == "example"  # Cyrillic е, х, а, р
    assert skeleton("rnk") == "mk"
    assert edit_distance("example", "exmaple") == 1
    assert edit_distance("example", "samples", 1) == 2


def test_phone_digits_decided_from_metadata() -> None:
    """Runs of digits alone skip PhoneNumberMatcher; shared country codes do not."""
    lv, se = _DigitsPlan.build("LV"), _DigitsPlan.build("SE")
    assert lv is not None
    assert se is not None
    assert _DigitsPlan.build("US") is None  # +1 is shared by many regions
    assert lv.decides("29123456")
    assert lv.national_number("29123456") == "29123456"
    assert lv.national_number("12345678") is None
    assert not lv.decides("37129123456")
    assert not lv.decides("0037129123456")
    assert se.national_number("0701234567") == "701234567"
    assert se.national_number("701234567") is None  # a national prefix is expected


@pytest.mark.parametrize(
    "text",
    [
        "", "abc", "a1b22c333", "9:00 līdz 17.00", "😀 12 ā 345 ö 6", "12\u2013345", "x\u0663y 12",
        "\uff11\uff12 34", "12 \ud800 34", "ĀĀ00 AA00 LV30", "1234567890123456789",
    ],
)
def test_digit_runs_as_the_regex_finds_them(text: str) -> None:
    """Runs in code points, from the classified bytes or (digits of other scripts, lone
    surrogates) the plain way."""
    view = _Digits(text)
    runs = [m.span() for m in re.finditer(r"\d+", text)]
    assert view.runs() == runs
    assert view.count == sum(end - start for start, end in runs)


def test_digit_shapes() -> None:
    assert _Digits("LV30 TREL").holds(b"AA00")
    assert not _Digits("lv30 ĀĀ30").holds(b"AA00")
    assert _Digits("29 12-34 (56").phone_shaped()
    assert not _Digits("9:00 līdz 17.00, 1 200").phone_shaped()
    assert _Digits("x\u0663").phone_shaped()  # another script's digit: every shape may be


def test_marker_alternation_matches_the_same_words() -> None:
    words = ["Nr.", "Nr", "No.", "ärende", "Reg. Nr.", "§", "#", "a", "ab", "abc"]
    pattern = re.compile(_alternation(words) + r"\Z", re.IGNORECASE)
    for word in words:
        assert pattern.match(word)
        assert pattern.match(word.upper())
    for other in ("N", "Nr.x", "Re", "ärend", "b", ""):
        assert not pattern.match(other), other

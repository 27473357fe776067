"""The detectors alone: identifiers, links and the lexicon automaton."""

from __future__ import annotations

import pytest

from proxy.compliance.config import Links, Pattern, PersonalData
from proxy.compliance.identifiers import Identifiers
from proxy.compliance.lexicon import Entry, Lexicon, Term
from proxy.compliance.links import LinkChecker, edit_distance, skeleton
from proxy.compliance.normalize import Draft
from proxy.compliance.patterns import PatternDetector


@pytest.fixture(scope="module")
def ids() -> Identifiers:
    return Identifiers(PersonalData(role_mailboxes=["info"], reference_markers=["Nr."]))


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("161175-19997", "id-number"),
        ("32867300679", "id-number"),
        ("880320-0016", "id-number"),
        ("+46 70 123 45 67", "phone"),
        ("+355 69 123 4567", "phone"),
        ("jane.doe@example.com", "email"),
        ("SE45 5000 0000 0583 9825 7466", "iban"),
        ("AL47 2121 1009 0000 0002 3569 8741", "iban"),
        ("5555 5555 5555 4444", "card"),
    ],
)
def test_identifier_found(ids: Identifiers, text: str, kind: str) -> None:
    hits = ids.find(Draft(f"x {text} y"))
    assert [(h.kind, h.start, h.end) for h in hits] == [(kind, 2, 2 + len(text))]


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
    assert ids.find(Draft(text)) == []


def test_albanian_nipt_needs_a_context_word(ids: Identifiers) -> None:
    """stdnum.al.nipt checks the format only: a bare code may be a product code."""
    assert ids.find(Draft("product J91402501L in stock")) == []
    hits = ids.find(Draft("NIPT: J91402501L"))
    assert [(h.kind, h.start, h.end) for h in hits] == [("id-number", 6, 16)]


def test_lexicon_stems_exact_forms_and_boundaries() -> None:
    lex = Lexicon([Term("muļķ*", Entry("offensive")), Term("top secret", Entry("classified"))])
    text = "Mulkim; topsecret; TOP  secret; muļķībām ne-mulkis xmulkis top-secret"
    hits = [(h.rule, text[h.start : h.end]) for h in lex.find(Draft(text))]
    assert hits == [
        ("offensive", "Mulkim"), ("classified", "topsecret"), ("classified", "TOP  secret"),
        ("offensive", "muļķībām"), ("offensive", "mulkis"), ("classified", "top-secret"),
    ]


def test_lexicon_gap_allows_words_between() -> None:
    lex = Lexicon([Term("top secret", Entry("classified"), gap=2)])
    text = "top very very secret; top one two three secret"
    assert [text[h.start : h.end] for h in lex.find(Draft(text))] == ["top very very secret"]
    plain = Lexicon([Term("top secret", Entry("classified"))])
    assert plain.find(Draft("top very secret")) == []


def test_lexicon_of_nothing() -> None:
    assert Lexicon([]).find(Draft("anything")) == []


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
        assert [h.kind for h in links.find(Draft(f"see {url}."))] == [kind], url
    for fine in ("https://www.example.gov.lv/a", "https://europa.eu", "x.com is fine", "e.g. this"):
        assert links.find(Draft(fine)) == [], fine
    hidden = "see bit\u200b.ly/abc"
    assert [(h.kind, h.start, h.end) for h in links.find(Draft(hidden))] == [
        ("shortener", 4, len(hidden))
    ]


def test_skeleton_and_distance() -> None:
    assert skeleton("ехаmрle") == "example"  # Cyrillic е, х, а, р
    assert skeleton("rnk") == "mk"
    assert edit_distance("example", "exmaple") == 1
    assert edit_distance("example", "samples", 1) == 2


def test_a_pattern_with_near_counts_only_close_to_its_second_expression() -> None:
    pattern = Pattern.model_validate({
        "regex": r"\bhighly recommend\w*", "fold": True,
        "near": {"regex": r"\b(?:bakery|cafe\w*)\b", "within": 40},
    })
    detector = PatternDetector("commercial", pattern)

    def found(text: str) -> list[str]:
        draft = Draft(text)
        return [draft.typed(h.start, h.end) for h in detector.find(draft)]

    assert found("New bakery on Elm street, highly recommend!") == ["highly recommend"]
    assert found("Highly recommended: the Café Rīga by the river") == ["Highly recommended"]
    assert found("Vaccination is highly recommended for everyone over 65.") == []
    far = "Our bakery course starts in May. " + "Bring a notebook and a pen. " * 3
    assert found(far + "We highly recommend it.") == []

"""Drafts written to slip past the rules, and drafts that must stay clean: what a user
sees (which rule, where in the draft as typed, which severity)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from proxy.compliance.engine import Engine
from proxy.compliance.model import CheckRequest
from proxy.policy.loader import load
from proxy.settings import ROOT

EXAMPLE = ROOT / "policies" / "institutions" / "example"
SUNDAY = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def engine() -> tuple[Engine, str]:
    loaded = load(EXAMPLE)
    return Engine.from_policy(loaded.policy), loaded.version


def found(engine: tuple[Engine, str], text: str) -> list[tuple[str, str]]:
    """(rule, the reported piece of the draft as a JavaScript string slices it)."""
    result = engine[0].check(CheckRequest(text=text, at=SUNDAY), engine[1])
    units = text.encode("utf-16-le")
    return [
        (f.rule, units[2 * f.start : 2 * f.end].decode("utf-16-le")) for f in result.findings
    ]


@pytest.mark.parametrize(
    ("text", "rule", "piece"),
    [
        ("you are an id\u200biot", "offensive", "id\u200biot"),  # zero-width space
        ("you are an idi\u00adot", "offensive", "idi\u00adot"),  # soft hyphen
        ("you are an i\u2060diot", "offensive", "i\u2060diot"),  # word joiner
        ("you are an \u0456diot", "offensive", "\u0456diot"),  # Cyrillic і
        ("you are an 𝐢𝐝𝐢𝐨𝐭", "offensive", "𝐢𝐝𝐢𝐨𝐭"),  # mathematical bold
        ("you are an 1d10t", "offensive", "1d10t"),
        ("you are an i d i o t", "offensive", "i d i o t"),
        ("you are an i.d.i.o.t", "offensive", "i.d.i.o.t"),
        ("you are idiots", "offensive", "idiots"),  # inflected: simplemma's lemma
        ("kods 161175\u201319997", "personal-data", "161175\u201319997"),  # en dash
        ("kods 161175 / 19997", "personal-data", "161175 / 19997"),
        ("kods １６１１７５－１９９９７", "personal-data", "１６１１７５－１９９９７"),  # fullwidth
        ("kods 1611\u200b75-19997", "personal-data", "1611\u200b75-19997"),
        ("zvani 29\u00a0123\u00a0456", "personal-data", "29\u00a0123\u00a0456"),
        ("zvani 29-12-34-56", "personal-data", "29-12-34-56"),
        ("zvani 29_123_456", "personal-data", "29_123_456"),
        ("zvani ٢٩١٢٣٤٥٦", "personal-data", "٢٩١٢٣٤٥٦"),  # Arabic-Indic digits
        ("mail jane.doe [at] example [dot] com", "personal-data",
         "jane.doe [at] example [dot] com"),
        ("mail jane.doe(at)example.com", "personal-data", "jane.doe(at)example.com"),
        ("mail jane.doe at example.com", "personal-data", "jane.doe at example.com"),
        ("NIPT: J91402501L", "personal-data", "J91402501L"),
        # case-sensitive patterns read look-alike capitals, digits and spelled capitals
        ("Zīmogs SL\u0415\u0420\u0415NI uz vāka", "classified", "SL\u0415\u0420\u0415NI"),
        ("H\u0415\u041cLIG bilaga", "classified", "H\u0415\u041cLIG"),  # Cyrillic М
        ("SL3P3NI papīri", "classified", "SL3P3NI"),
        ("S L E P E N I papīri", "classified", "S L E P E N I"),
        ("Votoni \u0420DK të dielën!", "partisan", "Votoni \u0420DK"),
        # folded patterns read the word view
        ("V0te for the Green Party!", "partisan", "V0te for the Green Party"),
        ("R\u00f6sta p\u00e5 M0deraterna!", "partisan", "R\u00f6sta p\u00e5 M0deraterna"),
        # digits read as letters only inside a word: the year beside it stays a year
        ("The budg3t 2027 is out early.", "embargo", "budg3t 2027"),
        ("Zvani 2654\u0417210", "personal-data", "2654\u0417210"),  # Cyrillic Ze for 3
        ("Zvani 26.54.32.10", "personal-data", "26.54.32.10"),  # IPv4-shaped, a phone word
        ("Mail me at anna.karlsson[at]gmail.com", "personal-data",
         "anna.karlsson[at]gmail.com"),
        ("Contact: peter.jones at outlook dot com", "personal-data",
         "peter.jones at outlook dot com"),
        ("Register here: bit[.]ly/3xYz12q", "unsafe-link", "bit[.]ly/3xYz12q"),
        ("Pieteikšanās: bit(.)ly/3kLmN8p", "unsafe-link", "bit(.)ly/3kLmN8p"),
        # words between the words of a term, where the rule allows it (gap)
        ("I will personally kill you.", "offensive", "I will personally kill you"),
        ("Ky raport është sekret.", "classified", "raport është sekret"),
        # a stem in each word of a term: both words inflect
        ("Tas bija slepenajos dokumentos.", "classified", "slepenajos dokumentos"),
        # a 1 read as l, a typographic apostrophe, format characters inside capitals
        ("Tu esi mu1ķis.", "offensive", "mu1ķis"),
        ("You’re stupid, mate.", "offensive", "You’re stupid"),
        ("Protokols ar atzīmi SLE‍PENI.", "classified", "SLE‍PENI"),
        ("Write to anna dot berzina at gmail dot com", "personal-data",
         "anna dot berzina at gmail dot com"),
    ],
)
def test_disguised_violations_are_found_where_typed(
    engine: tuple[Engine, str], text: str, rule: str, piece: str
) -> None:
    assert (rule, piece) in found(engine, text)


@pytest.mark.parametrize(
    "text",
    [
        "Open 9.00–17.00, Saturdays 10:00-14:00.",
        "The budget is € 1 200 000 and 2 500 000 EUR next year.",
        "Support rose to 12 % in the survey; 45,5 % disagree.",
        "Product code J91402501L is back in stock.",
        "We meet at riga.lv on Monday.",
        "The idiosyncratic budget of the covid19 programme.",
        "Server 192.168.10.5 is down.",
        "See you on 23.11.2026 at 10.30.",
        "Schedule 0900-1700 / 1800-2200 on weekdays.",
        "Darba laiks 0830-1700, piektdienās 0830-1530.",
        "Passengers last year: 21 345 678, a record.",
        "ISBN 978-9934-0-1234-1 is the new handbook.",
        "Server 10.20.30.40 answers again.",
        "Scholarships for 2027\u20132028 open in February.",
        "Ange diarienummer KS 2026/1143 n\u00e4r du kontaktar oss.",
        "We meet at riga dot lv tomorrow.",
        "Numri serial A30412345Z n\u00eb kuti.",
        # a service's line: a toll-free number, or one named as such
        "Questions? +44 800 123 4567 answers day and night.",
        "Telefononi falas n\u00eb numrin e gjelb\u00ebr 0800 0808.",
        "Reservdel 4417-220-0391 \u00e4r best\u00e4lld.",
    ],
)
def test_hard_negatives_stay_clean_of_personal_data(engine: tuple[Engine, str], text: str) -> None:
    assert [r for r, _ in found(engine, text) if r == "personal-data"] == []


def test_disguise_never_lowers_the_verdict(engine: tuple[Engine, str]) -> None:
    plain = engine[0].check(CheckRequest(text="you idiot", at=SUNDAY), engine[1])
    hidden = engine[0].check(CheckRequest(text="you id\u200biot", at=SUNDAY), engine[1])
    assert hidden.verdict == plain.verdict
    (finding,) = hidden.findings
    assert finding.message.startswith(plain.findings[0].message)
    assert "hidden or look-alike" in finding.message


def test_a_disguised_word_that_matches_nothing_is_shown(engine: tuple[Engine, str]) -> None:
    result = engine[0].check(CheckRequest(text="hello w\u200borld and p\u0430ypal", at=SUNDAY),
                             engine[1])
    assert result.verdict == "info"
    assert [(f.rule, f.severity, f.start, f.end) for f in result.findings] == [
        ("unsafe-link", "info", 6, 12),
        ("unsafe-link", "info", 17, 23),
    ]
    assert result.findings[0].message.startswith("Hidden characters in this word")


def test_plain_words_of_other_scripts_are_not_disguise(engine: tuple[Engine, str]) -> None:
    for text in ("Привет всем", "Καλημέρα", "𝐁𝐨𝐥𝐝 news", "family 👩\u200d👩\u200d👧"):
        assert found(engine, text) == [], text


def test_two_numbers_in_one_run_are_both_found(engine: tuple[Engine, str]) -> None:
    text = "Zvaniet 29123456 29123457"
    assert found(engine, text) == [
        ("personal-data", "29123456"), ("personal-data", "29123457")
    ]


def test_a_denial_in_the_next_sentence_cancels_the_rumour(engine: tuple[Engine, str]) -> None:
    rumour = "Det g\u00e5r ett rykte om att biblioteket st\u00e4nger."
    assert ("speculation", "rykte") in found(engine, rumour + " Vi vet mer p\u00e5 m\u00e5ndag.")
    assert found(engine, rumour + " Det \u00e4r inte sant, vi har \u00f6ppet.") == []
    # two sentences on, a denial is about something else
    later = " Vi vet mer p\u00e5 m\u00e5ndag. Att vi h\u00f6jer avgiften \u00e4r inte sant."
    assert ("speculation", "rykte") in found(engine, rumour + later)

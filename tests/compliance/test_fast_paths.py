"""The engine's fast paths find exactly what the plain expressions find.

The detectors skip work the straightforward way would do (gates on digits and "@",
look-behinds moved after the first character, e-mail matching from each "@", patterns
run only where their required words occur). Each is compared here with the expressions
as first written, run over the whole draft, on many drafts built from tricky pieces.
"""

from __future__ import annotations

import random
import re

import pytest
from stdnum import iban, luhn
from stdnum.al import nipt
from stdnum.lv import pvn
from stdnum.se import personnummer

from proxy.compliance import identifiers, links
from proxy.compliance.identifiers import Identifiers
from proxy.compliance.links import LinkChecker
from proxy.compliance.model import CheckRequest
from proxy.compliance.normalize import fold_text
from proxy.compliance.prefilter import Prefilter, required_words
from proxy.policy.loader import load
from proxy.runtime import compile_policy
from proxy.settings import ROOT

EXAMPLE = ROOT / "policies" / "institutions" / "example"

# The expressions as first written (look-behind first, run over the whole draft).
PLAIN = {
    "lv": re.compile(r"(?<![\w-])\d{6}-?\d{5}(?![\w-])"),
    "se": re.compile(r"(?<![\w-])(?:\d{2})?\d{6}[-+]?\d{4}(?![\w-])"),
    "al": re.compile(r"(?<!\w)[A-Za-z]\d{8}[A-Za-z](?!\w)"),
    "iban": re.compile(
        r"(?<![\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])"
    ),
    "card": re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])"),
    "email": re.compile(r"(?<![\w.%+-])([\w.%+-]+)@((?:[\w-]+\.)+[^\W\d_]{2,63})(?![\w-])"),
    "phone": re.compile(r"(?<![\w/.+-])\+?\(?\d[\d \t().-]{5,20}\d(?![\w/]|-\d)"),
}

PIECES = [
    "161175-19997", "32867300679", "880320-0016", "19880320-0016", "8803200016",
    "J91402501L", "j91402501l", "xJ91402501L", "+46 70 123 45 67", "+355 69 123 4567",
    "(0)29123456", "+(371) 29123456", "29123456", "2912345", "jane.doe@example.com",
    "info@example.gov.lv", "a@b.cd@e.fg", "x@y", "@", "@@a.bc", "ā.b@ē.lv", "-@x.lv",
    "SE45 5000 0000 0583 9825 7466", "LV80BANK0000435195001",
    "AL47 2121 1009 0000 0002 3569 8741", "5555 5555 5555 4444", "4111-1111-1111-1111",
    "4111111111111111", "2026-11-23", "23.11.2026", "Nr. 29123456", "Nr.", "ID", "1-2/345",
    "12345", "123456", "1234567890", "20261123", "-", "+", "(", ")", ".", "/", " ", "  ",
    "\t", "\n", "x", "X", "Ā", "ž", "😀", "٣", "_", "%", "0", "1", "9", "a1", "AB12", "SE",
    "LV", "+371", "371", "67 123 456", "8 800 123 45 67",
]


def drafts(seed: int, count: int, pieces: list[str]) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 12))) for _ in range(count)]


def plain_candidates(text: str) -> dict[str, list[tuple[int, int]]]:
    return {name: [m.span() for m in rx.finditer(text)] for name, rx in PLAIN.items()
            if name != "email"}  # e-mail keeps its expression; it is tried from each "@"


def fast_candidates(text: str) -> dict[str, list[tuple[int, int]]]:
    """The same candidates through the module's own expressions and entry points."""
    found = {name: [m.span() for m in getattr(identifiers, f"_{name.upper()}").finditer(text)]
             for name in ("iban", "card", "phone")}
    found["lv"] = [m.span() for m in identifiers._LV_CODE.finditer(text)]
    found["se"] = [m.span() for m in identifiers._SE_PNR.finditer(text)]
    found["al"] = [(m.start() - 1, m.end()) for m in identifiers._AL_NID.finditer(text)]
    return found


@pytest.mark.parametrize("seed", range(4))
def test_rewritten_expressions_match_the_plain_ones(seed: int) -> None:
    for text in drafts(seed, 500, PIECES):
        assert fast_candidates(text) == plain_candidates(text), repr(text)


def plain_find(ids: Identifiers, text: str) -> list[tuple[int, int, str]]:
    """``Identifiers.find`` as first written: every expression over the whole draft."""
    spans: list[tuple[int, int, str]] = []
    for m in PLAIN["lv"].finditer(text):
        digits = m.group().replace("-", "")
        if digits[0] <= "3" and pvn.is_valid(digits) and digits not in ids.public:
            spans.append((m.start(), m.end(), "id-number"))
    for m in PLAIN["se"].finditer(text):
        if personnummer.is_valid(m.group()) and identifiers._compact(m.group()) not in ids.public:
            spans.append((m.start(), m.end(), "id-number"))
    for m in PLAIN["al"].finditer(text):
        if nipt.is_valid(m.group().upper()) and m.group().upper() not in ids.public:
            spans.append((m.start(), m.end(), "id-number"))
    for m in PLAIN["iban"].finditer(text):
        if iban.is_valid(m.group()) and identifiers._compact(m.group()) not in ids.public:
            spans.append((m.start(), m.end(), "iban"))
    for m in PLAIN["card"].finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if (13 <= len(digits) <= 19 and identifiers._CARD_PREFIX.match(digits)
                and luhn.is_valid(digits)):
            spans.append((m.start(), m.end(), "card"))
    for m in PLAIN["email"].finditer(text):
        if (m.group(1).casefold() not in ids.role_mailboxes
                and m.group().casefold() not in ids.public):
            spans.append((m.start(), m.end(), "email"))
    taken = [(s, e) for s, e, _ in spans]
    for s in ids._phones(text):
        if not any(s.start < e and b < s.end for b, e in taken):
            spans.append((s.start, s.end, "phone"))
    return sorted(spans)


@pytest.mark.parametrize("seed", range(2))
def test_identifiers_find_what_the_plain_expressions_find(seed: int) -> None:
    policy = load(EXAMPLE).policy
    ids = Identifiers(policy.compliance.personal_data)
    found = 0
    for text in drafts(100 + seed, 400, PIECES):
        expected = plain_find(ids, text)
        assert sorted((s.start, s.end, s.kind) for s in ids.find(text)) == expected, repr(text)
        found += len(expected)
    assert found > 100  # the drafts do hold identifiers


LINK_PIECES = [
    "https://www.example.gov.lv/jaunumi", "http://example.gov.lv", "http://10.0.0.1/x",
    "https://[::1]:8080/", "bit.ly/abc", "examp1e.gov.lv", "example-gov.lv", "example.lv",
    "example.gov.lv.login.top", "jane@example.com", "a.b", "x.yz", "x.y1", "v1.2.3", "ā.lv",
    "www.", ".com", "..", "://", "http://", "(see bit.ly/x).", "'x.com'", "<a.bc>", "-x.co",
    "x_.co", "e.g.", "Ā", "😀", " ", "\n", "\t", ".", "/", "@", ":", "-", "a", "Z", "9",
]


def plain_links(checker: LinkChecker, text: str) -> list[tuple[int, int, str]]:
    """``LinkChecker.find`` as first written: both expressions over the whole draft."""
    out: list[tuple[int, int, str]] = []
    taken: list[tuple[int, int]] = []
    for m in links._SCHEME_URL.finditer(text):
        start, end = m.start(), links._trim(text, m.start(), m.end())
        taken.append((start, end))
        kind = checker._scheme_kind(m.group(1).lower(), m.group(2))
        if kind:
            out.append((start, end, kind))
    for m in links._BARE_HOST.finditer(text):
        start, end = m.start(), links._trim(text, m.start(), m.end())
        if not any(start < b and a < end for a, b in taken):
            kind = checker._host_kind(m.group(1).casefold())
            if kind:
                out.append((start, end, kind))
    return out


@pytest.mark.parametrize("seed", range(3))
def test_links_find_what_the_plain_expressions_find(seed: int) -> None:
    policy = load(EXAMPLE).policy
    checker = LinkChecker(policy.compliance.links, policy.institution.domains)
    found = 0
    for text in drafts(200 + seed, 400, LINK_PIECES):
        expected = plain_links(checker, text)
        assert [(s.start, s.end, s.kind) for s in checker.find(text)] == expected, repr(text)
        found += len(expected)
    assert found > 100


def test_ip_hosts() -> None:
    assert [links._is_ip(h) for h in ("10.0.0.1", "::1", "1.2.3", "example.lv", "")] == [
        True, True, False, False, False]
    checker = LinkChecker(load(EXAMPLE).policy.compliance.links, ["example.gov.lv"])
    # A draft without any dot still has its IPv6 links checked.
    assert [s.kind for s in checker.find("see https://[::1]:8080/x")] == ["raw-ip"]


ENGINE_PIECES = [
    "SECRET", "TOP SECRET", "secret", "Sevišķi slepeni", "SEVIŠĶI SLEPENI", "HEMLIGT",
    "Vote for our party", "vote for the best photo", "Balsojiet par mūsu partiju",
    "rösta på Moderaterna", "Votoni për Vetëvendosje", "support the Green Party",
    "numri personal: 1234567890", "personal number 1234567890", "20% off", "20 % atlaide",
    "idiot", "muļķis", "Zilais Gārnis", "classified ads", "call 29123456", "jane@example.com",
    "https://bit.ly/x", "example-gov.lv", "party", "off", "personal", "😀", " ", "  ", "\n",
    ", ", ". ", "Ā", "ß", "İ", "x", "1",
]


class _Everything:
    """A prefilter that lets every pattern run over the whole draft (as without one)."""

    anchored: dict[int, frozenset[str]] = {}  # noqa: RUF012  (no pattern is anchored)

    def __init__(self, size: int) -> None:
        self.size = size

    def collect(self, occurrences: object) -> tuple[set[int], dict[int, list[int]]]:
        del occurrences
        return set(range(self.size)), {}


@pytest.mark.parametrize("seed", range(2))
def test_prefiltered_and_anchored_patterns_find_what_every_pattern_finds(seed: int) -> None:
    engine = compile_policy(load(EXAMPLE)).engine
    plain = compile_policy(load(EXAMPLE)).engine
    plain.prefilter = _Everything(len(plain.patterns))  # type: ignore[assignment]
    skipped = found = 0
    for text in drafts(300 + seed, 300, ENGINE_PIECES):
        request = CheckRequest(text=text, account="official", lang="lv",
                               at="2026-11-22T12:00:00+02:00")  # type: ignore[arg-type]
        fast = engine.check(request, "v")
        assert fast == plain.check(request, "v"), repr(text)
        skipped += len(engine.patterns) - len(engine.prefilter.candidates(fold_text(text).text))
        found += len(fast.findings)
    assert skipped > 0  # the filter did spare work
    assert engine.prefilter.anchored  # and the partisan pattern is tried at its verbs only
    assert found > 200


@pytest.mark.parametrize(
    ("regex", "text"),
    [
        (r"(?:aa|a)", "aaa aa a"),
        (r"\b(?:vote|voting)\s+\w+", "vote voting for voting vote"),
        (r"(?:ab|b)c?", "abcbc ab b"),
        (r"\bre-?elect\b", "re-elect reelect rere-elect"),
    ],
)
def test_anchored_matches_are_those_of_finditer(regex: str, text: str) -> None:
    prefilter = Prefilter([regex], anchored=[0])
    assert prefilter.anchored  # every match begins with a known word
    _, starts = prefilter.scan(text)
    compiled = re.compile(regex, re.IGNORECASE)
    expected = [m.span() for m in compiled.finditer(text)]
    assert [m.span() for m in Prefilter.matches(compiled, text, starts[0])] == expected
    assert expected


@pytest.mark.parametrize(
    ("regex", "words"),
    [
        (r"\bTOP SECRET\b", {"top secret"}),
        (r"(?:numri|nr\.?)\s*personal", {"personal"}),
        (r"[Vv]ote(?: for)?|[Ss]upport", {"vote", "support"}),
        (r"\d{1,2}\s?%\s?(?:off|atlaide)", {"off", "atlaide"}),
        (r"\w+@\w+", None),  # nothing to require: always run
        (r"ab|x", None),  # too short to be worth it
    ],
)
def test_required_words(regex: str, words: set[str] | None) -> None:
    assert required_words(regex) == (frozenset(words) if words is not None else None)

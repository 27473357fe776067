"""The personal-data and link detectors find exactly what they found before they were made
faster.

``_reference_detectors`` is a frozen copy of both modules as they were (every phone
candidate through ``phonenumbers.PhoneNumberMatcher``, region by region). The live ones
must give the same spans, kinds and order on: the benchmark's drafts, the policy test
corpus, drafts built from tricky pieces (phone numbers of every region and format, dates,
decision numbers, ids, IBANs, cards, e-mail addresses, URLs, emoji, four languages),
runs of digits shaped by each region's prefixes, and hypothesis' random mixes.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import phonenumbers
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from proxy.compliance.config import Links, PersonalData
from proxy.compliance.identifiers import Identifiers
from proxy.compliance.links import LinkChecker
from proxy.policy.loader import load
from proxy.settings import ROOT
from scripts.benchmarks import compliance as bench
from tests.compliance import _reference_detectors as ref

EXAMPLE = ROOT / "policies" / "institutions" / "example"
POLICY = load(EXAMPLE).policy

CONFIGS = {
    "example": POLICY.compliance.personal_data,
    "parts": PersonalData(role_mailboxes=["info"], reference_markers=["Nr."]),
    # Regions with a shared country code (GB, US, NO, FI), a leading zero kept (IT), and
    # none at all: the matcher decides there.
    "wide": PersonalData(
        phone_regions=["SE", "GB", "US", "IT", "DE", "FI", "NO", "XK", "EE", "LT", "AL"],
        public=["+46 8 123 456 78", "29123456", "+355 69 123 4567"],
        # longer than the 24 characters looked back: searched the plain way
        reference_markers=["Nr.", "decision of the council", "the registry of decisions, case"],
    ),
    "none": PersonalData(phone_regions=[]),
}
LINKS = {
    "example": (POLICY.compliance.links, POLICY.institution.domains),
    "parts": (Links(shorteners=["bit.ly"]), ["example.gov.lv"]),
    "none": (Links(), []),
    # own domains the suffix list has rules under or around, upper case, IP, bare label,
    # punycode, a shortener of our own
    "odd": (
        Links(shorteners=["bit.ly", "mk.gov.lv"], http_allowed=["example.lv"]),
        ["city.kawasaki.jp", "example.gov.lv", "Example.LV", "gov.lv", "10.0.0.1", "intranet",
         "kawasaki.jp", "xn--80ak6aa92e.com", "mk.gov.lv", "blogspot.com", "www.europa.eu"],
    ),
}


def pair(name: str) -> tuple[Identifiers, ref.Identifiers]:
    return Identifiers(CONFIGS[name]), ref.Identifiers(CONFIGS[name])


IDS = {name: pair(name) for name in CONFIGS}
CHECKERS = {
    name: (LinkChecker(links, own), ref.LinkChecker(links, own))
    for name, (links, own) in LINKS.items()
}


def same(text: str) -> int:
    """Assert that every configuration finds the same in ``text``; how many were found."""
    found = 0
    for name, (live, old) in IDS.items():
        expected = [(s.start, s.end, s.kind) for s in old.find(text)]
        assert [(s.start, s.end, s.kind) for s in live.find(text)] == expected, (name, text)
        found += len(expected)
    for name, (live_links, old_links) in CHECKERS.items():
        expected = [(s.start, s.end, s.kind) for s in old_links.find(text)]
        got = [(s.start, s.end, s.kind) for s in live_links.find(text)]
        assert got == expected, (name, text)
        found += len(expected)
    return found


# ---- phone numbers of many regions, in every format ----------------------------------

REGIONS = ["LV", "SE", "XK", "AL", "EE", "LT", "FI", "NO", "DE", "GB", "US", "IT", "RS", "MK"]


def example_numbers() -> Iterator[phonenumbers.PhoneNumber]:
    for region in REGIONS:
        for kind in (
            PhoneNumberType.FIXED_LINE,
            PhoneNumberType.MOBILE,
            PhoneNumberType.TOLL_FREE,
            PhoneNumberType.PREMIUM_RATE,
            PhoneNumberType.SHARED_COST,
            PhoneNumberType.VOIP,
            PhoneNumberType.PERSONAL_NUMBER,
            PhoneNumberType.UAN,
        ):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                yield number


def spellings(number: phonenumbers.PhoneNumber) -> list[str]:
    """The ways people write one number: national, international, E.164, bare digits,
    other separators, the international prefix, without the national prefix."""
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    nsn = phonenumbers.national_significant_number(number)
    digits = "".join(c for c in national if c.isdigit())
    return [
        national,
        international,
        e164,
        digits,
        nsn,
        "00" + e164[1:],
        e164[1:],
        national.replace(" ", "-"),
        national.replace(" ", "."),
        national.replace(" ", ""),
        international.replace(" ", ""),
        f"+{number.country_code} ({nsn[:2]}) {nsn[2:]}",
        f"(0){nsn}",
        f"{national} ext. 12",
    ]


def mutations(rng: random.Random, digits: str) -> list[str]:
    """A digit changed, dropped or added: mostly invalid numbers of the same shape."""
    i = rng.randrange(len(digits))
    return [
        digits[:i] + str(rng.randrange(10)) + digits[i + 1 :],
        digits[:i] + digits[i + 1 :],
        digits[:i] + str(rng.randrange(10)) + digits[i:],
    ]


PHONES = sorted({s for n in example_numbers() for s in spellings(n)})

NOISE = [
    "2026-11-23", "23.11.2026", "2026.11.23.", "20261123", "23/11/2026", "1-2/345",
    "Nr. 29123456", "Nr.29123456", "Dnr 29123456", "ID: 29123456", "§ 29123456",
    "lēmums 29123456", "ärende 70 123 45 67", "vendimi 044 123 456", "12345", "1 000 000",
    "10.000.000", "2020-2024", "2012-01-02 08:00", "211-227 (2003)", "(29) 123 456",
    "29 12 34 56", "29123456/7", "+371 67 123 456", "67123456", "+46 (0)70-123 45 67",
    "070-123 45 67", "044 123 456", "+383 44 123 456", "069 123 4567", "+355 69 123 4567",
    "8 800 123 45 67", "+1 202-555-0101", "+44 20 7946 0958", "0039 06 1234 5678",
    # reference markers: case, up to three (four with a final newline) characters between
    "nr. 29123456", "NR 29123456", "dnr: 29123456", "Nr.:  29123456", "Nr. -\n29123456",
    "Nr. - \n29123456", "NR\n29123456", "xNr. 29123456", "Nr.\t(29123456)", "LĒMUMS 29123456",
    "Ärende: 070-123 45 67", "protokolli nr 044 123 456", "decision of the council 29123456",
]
IDENTIFIERS = [
    "161175-19997", "32867300679", "880320-0016", "19880320-0016", "8803200016",
    "J91402501L", "j91402501l", "LV30 TREL 1234 5678 9012 3", "LV30TREL1234567890123",
    "LV80BANK0000435195001", "SE45 5000 0000 0583 9825 7466",
    "AL47 2121 1009 0000 0002 3569 8741", "5555 5555 5555 4444", "4111-1111-1111-1111",
    "4111111111111111", "4111 1111 1111 1112", "40003521600", "numri personal: 1234567890",
]
ADDRESSES = [
    "jane.doe@example.com", "info@example.gov.lv", "press@mk.gov.lv", "a@b.cd@e.fg",
    "x@y", "ā.b@ē.lv", "-@x.lv", "anna+tag@sub.example.se", "https://www.example.gov.lv/jaunumi",
    "http://example.gov.lv", "http://10.0.0.1/x", "https://[::1]:8080/", "bit.ly/abc",
    "https://bit.ly/x", "examp1e.gov.lv", "exarnple.gov.lv", "example-gov.lv", "example.lv",
    "example.gov.lv.login.top", "ехаmрle.gov.lv", "mk.gov.lv", "rnk.gov.lv", "europa.eu",
    "e.g.", "v1.2.3", "www.", "(see bit.ly/x).", "'x.com'", "<a.bc>", "http://", "://",
    "HTTPS://WWW.EXAMPLE.GOV.LV/A", "Http://Example.Gov.Lv", "xhttps://a.lv", "https//a.lv",
    "https://a.lv/?u=http://b.lv", "https://www.example.gov.lv。evil.com", "www。example.gov.lv",
    "a..example.gov.lv", "https://.example.gov.lv/", "user@www.example.gov.lv",
    "https://user:pw@www.example.gov.lv:8443/x", "https://x.city.kawasaki.jp/",
    "www.city.kawasaki.jp", "foo.kawasaki.jp", "a.b.blogspot.com", "x.intranet", "a.10.0.0.1",
    "http://www.example.lv", "example.lv", "news.mk.gov.lv", "https://mk.gov.lv/x",
    "ехаmрle.gov.lv", "https://xn--80ak6aa92e.com", "europa.eu/x", "a.www.europa.eu",
    "kawasakii.foo.kawasaki.jp", "https://kawasakii.foo.kawasaki.jp/", "HTTPS://bit.ly/x",
    "HTTP://10.0.0.1/", "HTTPS://examp1e.gov.lv", "https://evil。x.example.gov.lv/",
    "x\u00a0www.example-gov.lv", "x\twww.examp1e.gov.lv", "x\u2009bit.ly/y", "a.b\u3000c.lv",
]
WORDS = [
    "Zvaniet man uz", "Ring mig på", "Më telefononi në", "Call me on", "vakarā", "i kväll",
    "sonte", "tonight", "Šodien ministrija atklāj", "Idag öppnar kommunen",
    "Sot ministria hap", "Read more at", "personas kods", "personnummer", "numri",
    "😀", "👍🏽", "Ā", "ž", "ë", "ö", "٣", "İ", "ß",
]
SEPARATORS = [" ", " ", " ", ", ", ". ", "\n", "\t", "(", ")", ":", "/", "-", "+", "", "x", "#"]


def draft(rng: random.Random, pieces: list[str]) -> str:
    parts = []
    for _ in range(rng.randint(1, 10)):
        parts.append(rng.choice(pieces))
        parts.append(rng.choice(SEPARATORS))
    return "".join(parts)


def corpus_texts() -> list[str]:
    """Every draft of the policy test corpus and of the existing compliance tests."""
    texts = []
    for path in sorted(Path(ROOT / "policies").rglob("tests/*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")).get("tests", []):
            if isinstance(case.get("text"), str):
                texts.append(case["text"])
    return texts


def test_benchmark_drafts() -> None:
    drafts = [bench._draft(n, seed) for n in (280, 5000) for seed in range(1, 17)]
    assert sum(same(text) for text in drafts) > 100


def test_policy_corpus() -> None:
    texts = corpus_texts()
    assert len(texts) > 80
    assert sum(same(text) for text in texts) > 20


def test_phone_numbers_in_every_format() -> None:
    rng = random.Random(7)
    found = 0
    for phone in PHONES + NOISE:
        for text in (phone, f"Zvaniet {phone}.", f"x{phone}", f"{phone}a", f"({phone})"):
            found += same(text)
        digits = "".join(c for c in phone if c.isdigit())
        for mutated in mutations(rng, digits):
            found += same(f"tel. {mutated} ")
    assert found > 500


@pytest.mark.parametrize("seed", range(3))
def test_runs_of_digits_shaped_by_each_region(seed: int) -> None:
    """Bare runs of 7 to 15 digits starting as each region's numbers do (international
    and national prefixes, country codes, the leading digits of each format)."""
    rng = random.Random(seed)
    starts = ["", "0", "00", "000", "1", "2", "3", "4", "6", "7", "8", "9", "20", "29", "37",
              "371", "3712", "46", "4607", "467", "070", "07", "383", "38344", "044", "355",
              "35569", "069", "06", "0039", "390", "44", "4420", "1202", "49", "358", "47"]
    found = 0
    for _ in range(1500):
        head = rng.choice(starts)
        length = rng.randint(7, 15)
        digits = (head + "".join(rng.choice("0123456789") for _ in range(length)))[:length]
        found += same(f"a {digits} b")
    assert found > 100


@pytest.mark.parametrize("seed", range(4))
def test_mixed_drafts(seed: int) -> None:
    rng = random.Random(1000 + seed)
    pieces = PHONES + NOISE + IDENTIFIERS + ADDRESSES + WORDS
    assert sum(same(draft(rng, pieces)) for _ in range(600)) > 300


# ---- what staff write: numbers with separators in four languages ----------------------

SEPARATED = [
    # times
    "9:00", "9.00", "9.00 līdz 17.00", "klockan 9–17", "kl. 9.00-17.00", "09:00-17:00",
    "nga ora 9 deri në 17", "8.30–16.30", "08 30 - 16 30", "9 - 17", "10.00 - 18.00",
    # dates and years
    "15. martam", "15.03.2026", "2026-03-15", "15/3", "15 mars 2026", "15 marsi 2026",
    "2020-2024", "2020–2024", "2020 - 2024", "1990. - 2000.", "2019/2020", "2024.gada",
    "2026 03 15", "15 03 2026", "2012-01-02 08", "20.-22. maijā",
    # thousands and amounts
    "1 000 000", "1,200", "1 200", "10.000", "1.200.000", "1 200 000 000", "12 345 678",
    "1 234 567,89 EUR", "2 500 000 €", "300 000 kr", "1.234.567", "99 999 999", "1 200 synpunkter",
    # buses, rooms, articles
    "Buss 3 och 12", "3, 12 un 22", "autobusët 3, 12 dhe 22", "tel. 1 2 3 4 5 6 7 8",
    "telpa 2.12", "panti 12.3.4", "§ 12 - 14", "Nr. 1-2/345", "lieta Nr. 12 345 678",
    # phone numbers with spaces, dashes, dots, brackets and country codes
    "+371 26 555 123", "26 555 123", "26-555-123", "26.555.123", "(+371) 26555123",
    "(26) 555 123", "+46 70 123 45 67", "070-123 45 67", "08-123 456 78", "+383 44 123 456",
    "044 123 456", "+355 69 123 4567", "069 123 4567", "04 222 3333", "29 123 456",
    "291 23 456", "2912 3456", "00371 29123456", "+371 2912 3456", "0037129123456",
    "67 123 456", "6712 3456", "+371 67 123 456", "371 29 123 456", "29 12 34 56",
    "29-12-34-56", "29.12.34.56", "2912-3456", "29123456 29123457", "2 9123456",
    "29123456 12", "12 29123456", "070 123 45 67 08 123 456", "0701234567-0701234568",
    "29 123 456 / 29 123 457", "+46 (0)70-123 45 67", "070 - 123 45 67", "29\t123\t456",
    "070  123  45  67", "29 - 123 - 456", "+371 29-123-456", "070.123.45.67",
]
LEAD_INS = [
    "Zvaniet", "pa tālruni", "Ring", "tfn", "Telefononi", "numri", "Call", "from", "no",
    "līdz", "till", "deri", "Nr.", "ärende", "vendimi", "", "(", "—", "ca", "över",
]


def test_realistic_posts() -> None:
    """The benchmark's posts, and the same posts with numbers written as staff write them."""
    rng = random.Random(11)
    assert sum(same(post) for post in bench._POSTS) >= 3
    for post in bench._POSTS:
        words = post.split(" ")
        for _ in range(30):
            at = rng.randrange(len(words))
            piece = f"{rng.choice(LEAD_INS)} {rng.choice(SEPARATED)}".strip()
            same(" ".join([*words[:at], piece, *words[at:]]))


def test_separated_numbers() -> None:
    found = 0
    for piece in SEPARATED:
        for text in (piece, f"Zvaniet {piece}.", f"x{piece}", f"{piece}a", f"({piece})",
                     f"tel: {piece}, vai", f"{piece}\n{piece}"):
            found += same(text)
    assert found > 60


@pytest.mark.parametrize("seed", range(3))
def test_digit_groups(seed: int) -> None:
    """Groups of digits joined by every separator a candidate may hold, after the ways a
    number can begin (country codes, international and national prefixes)."""
    rng = random.Random(500 + seed)
    heads = ["", "", "+371 ", "+46 ", "+383 ", "+355 ", "00371 ", "0046 ", "0", "(0) ", "+",
             "(", "371 ", "46 ", "2", "29", "07", "04", "06"]
    seps = [" ", " ", "-", ".", " - ", "  ", "(", ")", "\t", ") ", " (", "--", ". ", "/"]
    found = 0
    for _ in range(700):
        groups = [
            "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 5)))
            for _ in range(rng.randint(1, 5))
        ]
        number = rng.choice(heads) + groups[0]
        for group in groups[1:]:
            number += rng.choice(seps) + group
        found += same(f"{rng.choice(LEAD_INS)} {number} {rng.choice(WORDS)}")
    assert found > 100


PIECES = st.sampled_from(
    PHONES + NOISE + IDENTIFIERS + ADDRESSES + WORDS + SEPARATORS + SEPARATED
)
NOISY = st.text(alphabet="0123456789 +-().,/@:x#aZāž😀\n\t", max_size=12)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(st.lists(st.one_of(PIECES, NOISY), max_size=12))
def test_random_mixes(parts: list[str]) -> None:
    same("".join(parts))


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.text(max_size=40))
def test_random_text(text: str) -> None:
    same(text)

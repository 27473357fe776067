"""A frozen copy of ``proxy/compliance/identifiers.py`` and ``proxy/compliance/links.py``
as of commit 233a671 (before the detectors were rewritten for speed).

Do not edit or "improve": tests/compliance/test_detectors_equivalence.py compares the
live detectors with these, so any change of behaviour there shows up as a difference.
The two modules are concatenated unchanged (their private names do not collide); their
docstrings explain the decisions.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import date

import phonenumbers
import tldextract
from stdnum import iban, luhn
from stdnum.al import nipt
from stdnum.lv import pvn
from stdnum.se import personnummer

from proxy.compliance.config import Links, PersonalData

# The left boundary of each candidate is a look-behind placed after its first character
# ("\d(?<![\w-]\d)" is "(?<![\w-])\d"): an expression that starts with a character class
# lets the regex engine skip to where a candidate may start without trying each position.
_LV_CODE = re.compile(r"\d(?<![\w-]\d)\d{5}-?\d{5}(?![\w-])")
_SE_PNR = re.compile(r"\d(?<![\w-]\d)(?:\d{2})?\d{5}[-+]?\d{4}(?![\w-])")
_AL_NID = re.compile(r"\d(?<=(?<!\w)[A-Za-z]\d)\d{7}[A-Za-z](?!\w)")
"""Matched from its first digit: the number starts one character earlier, at its letter."""
_IBAN = re.compile(
    r"[A-Z](?<!\w[A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])"
)
_CARD = re.compile(r"\d(?<![\d-]\d)(?:[ -]?\d){12,18}(?![\d-])")
_EMAIL = re.compile(r"(?<![\w.%+-])([\w.%+-]+)@((?:[\w-]+\.)+[^\W\d_]{2,63})(?![\w-])")
_PHONE = re.compile(
    r"[+(\d](?<![\w/.+-][+(\d])(?:(?<=\+)\(?\d|(?<=\()\d|(?<=\d))"
    r"[\d \t().-]{5,20}\d(?![\w/]|-\d)"
)
_DATE = re.compile(
    r"^(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}\.\d{1,2}\.\d{1,2}\.?)$"
)
_NOT_DIGIT = re.compile(r"\D")
_DIGIT = re.compile(r"\d")
_ID_DIGITS = re.compile(r"\d{6}[-+]?\d{4}")
"""What Latvian and Swedish numbers cannot lack (found at most two digits into them)."""
_EIGHT_DIGITS = re.compile(r"\d{8}")
_IBAN_START = re.compile(r"[A-Z]{2}\d\d")
_COMPACT = re.compile(r"[\s().-]")
_CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|6(?:011|5|4[4-9]))")


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    kind: str
    """phone, email, iban, card or id-number: selects the rule's message."""


def _compact(value: str) -> str:
    return _COMPACT.sub("", value).upper()


def _yyyymmdd(digits: str) -> bool:
    if len(digits) != 8 or not digits.startswith(("19", "20")):
        return False
    try:
        date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return False
    return True


class Identifiers:
    def __init__(self, config: PersonalData) -> None:
        self.regions = list(config.phone_regions)
        self.role_mailboxes = {m.casefold() for m in config.role_mailboxes}
        markers = sorted({m.strip() for m in config.reference_markers if m.strip()}, key=len)
        self._marker = (
            re.compile(
                r"(?<!\w)(?:" + "|".join(re.escape(m) for m in reversed(markers)) + r")\W{0,3}$",
                re.IGNORECASE,
            )
            if markers
            else None
        )
        self.public: set[str] = set()
        for value in config.public:
            self.public.add(_compact(value))
            if value.strip().startswith("+"):
                try:
                    number = phonenumbers.parse(value, None)
                except phonenumbers.NumberParseException:
                    continue
                self.public.add(
                    phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                )

    def find(self, text: str) -> list[Span]:
        spans: list[Span] = []
        digits = _digit_count(text)  # what each scheme needs at least, checked first
        if digits >= 8:
            spans += self._ids(text, digits)
        if digits >= 2 and _IBAN_START.search(text):
            spans += self._ibans(text)
        if digits >= 13:
            spans += self._cards(text)
        if "@" in text:
            spans += self._emails(text)
        if digits >= 7:
            taken = [(s.start, s.end) for s in spans]
            spans += [p for p in self._phones(text) if not _overlaps(p, taken)]
        return spans

    def _ids(self, text: str, digits: int) -> list[Span]:
        """Identity numbers in a draft holding ``digits`` digits (at least eight)."""
        out = []
        gate = _ID_DIGITS.search(text) if digits >= 10 else None
        if gate is not None:
            first = max(0, gate.start() - 2)
            for m in _LV_CODE.finditer(text, first):
                number = m.group().replace("-", "")
                if number[0] <= "3" and pvn.is_valid(number) and number not in self.public:
                    out.append(Span(m.start(), m.end(), "id-number"))
            for m in _SE_PNR.finditer(text, first):
                if personnummer.is_valid(m.group()) and _compact(m.group()) not in self.public:
                    out.append(Span(m.start(), m.end(), "id-number"))
        gate = _EIGHT_DIGITS.search(text)
        if gate is not None:
            for m in _AL_NID.finditer(text, gate.start()):
                value = text[m.start() - 1 : m.end()].upper()
                if nipt.is_valid(value) and value not in self.public:
                    out.append(Span(m.start() - 1, m.end(), "id-number"))
        return out

    def _ibans(self, text: str) -> list[Span]:
        return [
            Span(m.start(), m.end(), "iban")
            for m in _IBAN.finditer(text)
            if iban.is_valid(m.group()) and _compact(m.group()) not in self.public
        ]

    def _cards(self, text: str) -> list[Span]:
        out = []
        for m in _CARD.finditer(text):
            digits = re.sub(r"\D", "", m.group())
            if 13 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) and luhn.is_valid(digits):
                out.append(Span(m.start(), m.end(), "card"))
        return out

    def _emails(self, text: str) -> list[Span]:
        """``_EMAIL.finditer`` tried only where it can match: from the start of the run of
        local-part characters before each "@" (the same matches, found faster)."""
        out = []
        done = 0  # end of the last match: matches do not overlap
        at = text.find("@")
        while at >= 0:
            start = at
            while start > done and _local_char(text[start - 1]):
                start -= 1
            m = _EMAIL.match(text, start) if start < at else None
            if m is not None:
                done = m.end()
                local = m.group(1).casefold()
                if local not in self.role_mailboxes and m.group().casefold() not in self.public:
                    out.append(Span(m.start(), m.end(), "email"))
            at = text.find("@", max(at + 1, done))
        return out

    def _phones(self, text: str) -> list[Span]:
        out: list[Span] = []
        for m in _PHONE.finditer(text):
            candidate = m.group()
            digits = _NOT_DIGIT.sub("", candidate)
            if not 7 <= len(digits) <= 15 or _DATE.match(candidate) or _yyyymmdd(candidate):
                continue
            marker = self._marker
            if marker is not None and marker.search(text, max(0, m.start() - 24), m.start()):
                continue
            out += [
                Span(m.start() + start, m.start() + end, "phone")
                for start, end in self._phone_spans(candidate)
            ]
        return out

    def _phone_spans(self, candidate: str) -> list[tuple[int, int]]:
        # Not memoized: that would keep people's numbers from drafts in memory.
        for region in self.regions:
            found = [
                (match.start, match.end)
                for match in phonenumbers.PhoneNumberMatcher(
                    candidate, region, leniency=phonenumbers.Leniency.VALID
                )
                if not self._public_phone(match.number)
            ]
            if found:
                return found
        return []

    def _public_phone(self, number: phonenumbers.PhoneNumber) -> bool:
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        national = str(number.national_number)
        return e164 in self.public or national in self.public


def _digit_count(text: str) -> int:
    """How many digits (``\\d``) ``text`` holds; ASCII ones counted in C."""
    count = sum(map(text.count, "0123456789"))
    return count if text.isascii() else len(_DIGIT.findall(text))


def _local_char(char: str) -> bool:
    """A character of an e-mail address's local part (``[\\w.%+-]``)."""
    return char.isalnum() or char in "_.%+-"


def _overlaps(span: Span, taken: list[tuple[int, int]]) -> bool:
    return any(span.start < end and start < span.end for start, end in taken)


# ---- links.py ----------------------------------------------------------------------

_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

_SCHEME_URL = re.compile(r"(?i)\b(https?)://(\[[0-9a-f:.]+\]|[^\s/?#<>\"'\[\]]+)[^\s<>\"']*")
_BARE_HOST = re.compile(
    r"(?i)(?<![\w@.:/-])((?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63})(?![\w@-]|\.\w)"
    r"(?:/[^\s<>\"']*)?"
)
_TRAILING = ".,;:!?)]}'\""
_DOT_LETTERS = re.compile(r"\.[^\W\d_]{2}")
"""What every bare host holds (its last dot and the suffix's first letters)."""
_SPACE = re.compile(r"\s")

_HOMOGLYPHS = str.maketrans(
    {
        "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i",
        "ј": "j", "ѕ": "s", "ԁ": "d", "ɡ": "g", "ӏ": "l", "к": "k", "м": "m", "т": "t",
        "0": "o", "1": "l", "3": "e", "5": "s", "7": "t", "|": "l", "!": "l",
    }
)


@dataclass(frozen=True, slots=True)
class LinkSpan:
    start: int
    end: int
    kind: str
    """shortener, raw-ip, http or look-alike: selects the rule's message."""


def _split(host: str) -> tuple[str, str, str]:
    ext = _EXTRACT(host)
    return ext.subdomain, ext.domain, ext.suffix


def skeleton(label: str) -> str:
    """A label as it looks: homoglyphs mapped to the Latin letters they imitate."""
    text = label.casefold().translate(_HOMOGLYPHS)
    for a, b in (("rn", "m"), ("vv", "w"), ("cl", "d")):
        text = text.replace(a, b)
    return text


def edit_distance(a: str, b: str, limit: int = 2) -> int:
    """Optimal string alignment distance, giving up above ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


class LinkChecker:
    def __init__(self, config: Links, own_domains: list[str]) -> None:
        self.shorteners = {d.casefold() for d in config.shorteners}
        self.http_allowed = {d.casefold() for d in config.http_allowed}
        self.own: list[tuple[str, str, str]] = []  # (registered domain, label, skeleton)
        for domain in own_domains:
            _, label, suffix = _split(domain)
            if label:
                self.own.append((f"{label}.{suffix}" if suffix else label, label, skeleton(label)))

    def find(self, text: str) -> list[LinkSpan]:
        out: list[LinkSpan] = []
        taken: list[tuple[int, int]] = []
        if "://" in text:
            for m in _SCHEME_URL.finditer(text):
                start, end = m.start(), _trim(text, m.start(), m.end())
                taken.append((start, end))
                kind = self._scheme_kind(m.group(1).lower(), m.group(2))
                if kind:
                    out.append(LinkSpan(start, end, kind))
        for word_start, word_end in _words_with_hosts(text):
            for m in _BARE_HOST.finditer(text, word_start, word_end):
                start, end = m.start(), _trim(text, m.start(), m.end())
                if any(start < b and a < end for a, b in taken):
                    continue
                kind = self._host_kind(m.group(1).casefold())
                if kind:
                    out.append(LinkSpan(start, end, kind))
        return out

    def _scheme_kind(self, scheme: str, authority: str) -> str | None:
        host = authority.rsplit("@", 1)[-1]
        host = host[1:].split("]", 1)[0] if host.startswith("[") else host.split(":", 1)[0]
        host = host.rstrip(_TRAILING).rstrip(".").casefold()
        if _is_ip(host):
            return "raw-ip"
        kind = self._host_kind(host)
        if kind:
            return kind
        if scheme == "http" and host not in self.http_allowed:
            return "http"
        return None

    def _host_kind(self, host: str) -> str | None:
        if host in self.shorteners:
            return "shortener"
        sub, label, suffix = _split(host)
        if not label:
            return None
        registered = f"{label}.{suffix}" if suffix else label
        if registered in self.shorteners:
            return "shortener"
        if any(registered == own[0] for own in self.own):
            return None
        shape = skeleton(label)
        for own_registered, own_label, own_skeleton in self.own:
            if f".{own_registered}." in f".{sub}.":
                return "look-alike"
            if shape == own_skeleton:
                return "look-alike"
            if len(own_label) >= 5 and edit_distance(shape, own_skeleton, 1) <= 1:
                return "look-alike"
            if len(own_label) >= 4 and own_skeleton in re.split(r"[-.]", shape):
                return "look-alike"
            if len(own_label) >= 5 and shape.startswith(own_skeleton) and shape != own_skeleton:
                return "look-alike"
        return None


def _is_ip(host: str) -> bool:
    if not host or not (host[0].isdigit() or ":" in host):  # neither IPv4 nor IPv6
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _words_with_hosts(text: str) -> list[tuple[int, int]]:
    """[start, end) of each white-space-delimited word holding a dot and two letters."""
    words: list[tuple[int, int]] = []
    done = 0
    for m in _DOT_LETTERS.finditer(text):
        if m.start() < done:
            continue
        start = m.start()
        while start > done and not text[start - 1].isspace():
            start -= 1
        space = _SPACE.search(text, m.end())
        done = space.start() if space else len(text)
        words.append((start, done))
    return words


def _trim(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1] in _TRAILING:
        end -= 1
    return end

"""``personal-data`` detectors: identity numbers, phone numbers, e-mail addresses, IBANs,
card numbers. Checksums come from python-stdnum, phone numbers from phonenumbers.

Each detector finds candidates with a cheap expression and keeps those the library
validates, so dates ("2026-11-23"), decision numbers ("Nr. 1-2/345") and reference
numbers are not reported. Spans are code point indices of the draft.

Decisions (docs/rules.md):
- Latvian personas kods (old ``ddmmyy-nnnnn`` and new ``32…``) via ``stdnum.lv.pvn``,
  which also accepts company VAT numbers; those (first digit above 3) are not personal.
- Swedish personnummer (10 or 12 digits) via ``stdnum.se.personnummer``.
- Albanian personal numbers share the NIPT format (letter, 8 digits, check letter):
  ``stdnum.al.nipt``. Company NIPTs look the same and are reported too.
- Kosovo personal numbers have 10 digits and no public checksum: a bare 10-digit number
  is not reported; the base policy has a pattern that catches them after words such as
  "numri personal".
- Role mailboxes (info@, press@ …, listed in the policy) are not personal data.
- Compact 8-digit dates (20261123) are read as dates, not as Latvian mobile numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import phonenumbers
from stdnum import iban, luhn
from stdnum.al import nipt
from stdnum.lv import pvn
from stdnum.se import personnummer

from proxy.compliance.config import PersonalData

_LV_CODE = re.compile(r"(?<![\w-])\d{6}-?\d{5}(?![\w-])")
_SE_PNR = re.compile(r"(?<![\w-])(?:\d{2})?\d{6}[-+]?\d{4}(?![\w-])")
_AL_NID = re.compile(r"(?<!\w)[A-Za-z]\d{8}[A-Za-z](?!\w)")
_IBAN = re.compile(
    r"(?<![\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])"
)
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_EMAIL = re.compile(r"(?<![\w.%+-])([\w.%+-]+)@((?:[\w-]+\.)+[^\W\d_]{2,63})(?![\w-])")
_PHONE = re.compile(r"(?<![\w/.+-])\+?\(?\d[\d \t().-]{5,20}\d(?![\w/]|-\d)")
_DATE = re.compile(
    r"^(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}\.\d{1,2}\.\d{1,2}\.?)$"
)
_DIGIT = re.compile(r"\d")
_FOUR_DIGITS = re.compile(r"\d{4}")
_SIX_DIGITS = re.compile(r"\d{6}")
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
        has_digits = _DIGIT.search(text) is not None
        if has_digits:
            # Cheap gates: each scheme needs a run its candidates cannot lack.
            if _SIX_DIGITS.search(text):
                spans += self._ids(text)
            if _IBAN_START.search(text):
                spans += self._ibans(text)
            if _FOUR_DIGITS.search(text):
                spans += self._cards(text)
        if "@" in text:
            spans += self._emails(text)
        if has_digits:
            taken = [(s.start, s.end) for s in spans]
            spans += [p for p in self._phones(text) if not _overlaps(p, taken)]
        return spans

    def _ids(self, text: str) -> list[Span]:
        out: list[Span] = []
        for m in _LV_CODE.finditer(text):
            digits = m.group().replace("-", "")
            if digits[0] <= "3" and pvn.is_valid(digits) and digits not in self.public:
                out.append(Span(m.start(), m.end(), "id-number"))
        for m in _SE_PNR.finditer(text):
            if personnummer.is_valid(m.group()) and _compact(m.group()) not in self.public:
                out.append(Span(m.start(), m.end(), "id-number"))
        for m in _AL_NID.finditer(text):
            if nipt.is_valid(m.group().upper()) and m.group().upper() not in self.public:
                out.append(Span(m.start(), m.end(), "id-number"))
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
        out = []
        for m in _EMAIL.finditer(text):
            local = m.group(1).casefold()
            if local in self.role_mailboxes or m.group().casefold() in self.public:
                continue
            out.append(Span(m.start(), m.end(), "email"))
        return out

    def _phones(self, text: str) -> list[Span]:
        out: list[Span] = []
        for m in _PHONE.finditer(text):
            candidate = m.group()
            digits = re.sub(r"\D", "", candidate)
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

    @lru_cache(maxsize=1024)  # noqa: B019  # one per policy load; drafts are re-checked as typed
    def _phone_spans(self, candidate: str) -> tuple[tuple[int, int], ...]:
        for region in self.regions:
            found = tuple(
                (match.start, match.end)
                for match in phonenumbers.PhoneNumberMatcher(
                    candidate, region, leniency=phonenumbers.Leniency.VALID
                )
                if not self._public_phone(match.number)
            )
            if found:
                return found
        return ()

    def _public_phone(self, number: phonenumbers.PhoneNumber) -> bool:
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        national = str(number.national_number)
        return e164 in self.public or national in self.public


def _overlaps(span: Span, taken: list[tuple[int, int]]) -> bool:
    return any(span.start < end and start < span.end for start, end in taken)

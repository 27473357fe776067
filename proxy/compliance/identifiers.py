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

Speed (every check runs these): the draft's bytes are classified once (``_Digits``:
digit, capital, phone separator) and each scheme runs only when the shape its numbers
need is there ("AA00", six digits in a row, seven digits linked by separators) and the
draft holds as many digits as they need; most posts stop there. Every expression but
the e-mail one begins at a run of digits (at its first digit, or at the "+", "(" or two
capital letters just before it), so each is tried there only (``_matches``: the same
matches as ``finditer`` over the whole draft). E-mail addresses are matched from their
"@" only.
A phone candidate made of digits alone is decided from its regions' metadata
(``_DigitsPlan``: what ``PhoneNumberMatcher`` would find, without its generic work); any
other goes through the matcher. Reference markers are read backwards from a candidate.
tests/compliance/test_detectors_equivalence.py compares all of this with a frozen copy
of the plain detectors. Nothing is remembered between drafts: the same draft costs the
same the second time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import phonenumbers
from phonenumbers import phonenumberutil
from phonenumbers.phonemetadata import PhoneMetadata
from stdnum import iban, luhn
from stdnum.al import nipt
from stdnum.lv import pvn
from stdnum.se import personnummer

from proxy.compliance.config import PersonalData
from proxy.compliance.prefilter import matches_at

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
_DIGIT_RUN = re.compile(r"\d+")
_DIGIT_LEAD = chr(next(c for c in range(0x80, 0x110000) if chr(c).isdecimal())).encode()[0]
"""The first byte of the first non-ASCII decimal digit (U+0660) in UTF-8: every other
one begins with this byte or a higher one."""


def _byte_class(byte: int) -> int:
    char = chr(byte)
    if byte < 0x80:
        return ord("0" if char.isdigit() else "A" if "A" <= char <= "Z" else
                   "s" if char in " \t().-" else " ")
    return 0x80 if byte < 0xC0 else ord("!") if byte >= _DIGIT_LEAD else ord(" ")


_BYTE_CLASSES = bytes(_byte_class(b) for b in range(256))
"""UTF-8 bytes by class: ASCII digit "0", capital "A", phone separator "s" (the
characters ``_PHONE`` allows between digits), continuation byte 0x80, first byte of a
character that may be a digit of another script "!", anything else " "."""
_ASCII_BYTES = bytes(range(0x80))
_ZERO_RUN = re.compile(rb"00*")
"""Runs of digits in ``_BYTE_CLASSES`` letters ("0" first: the regex engine skips to it)."""
_SEVEN_LINKED = re.compile(rb"0(?:s*0){6}")
"""Seven digits linked by phone separators alone, as a phone candidate's digits are."""
_UPPER2 = re.compile(r"[A-Z]{2}").fullmatch
_MARKER_REACH = 24
"""How far before a phone candidate a reference marker is looked for."""
_COMPACT = re.compile(r"[\s().-]")
_CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|6(?:011|5|4[4-9]))")


@dataclass(slots=True)  # made per draft: see normalize.Folded
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


_TYPES = (
    "premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan",
    "voicemail", "fixed_line", "mobile",
)
"""The number types ``phonenumbers.is_valid_number`` accepts (any of them will do)."""
_KEPT = {
    phonenumberutil.ValidationResult.IS_POSSIBLE,
    phonenumberutil.ValidationResult.TOO_LONG,
}
"""Length verdicts under which ``parse`` keeps a number without its national prefix."""


@dataclass(frozen=True, slots=True)
class _DigitsPlan:
    """What ``PhoneNumberMatcher(digits, region, leniency=VALID)`` decides for a candidate
    made of ASCII digits alone, from the region's metadata, without the matcher.

    Why: the matcher costs ~40 µs per candidate and region (``parse`` ~20 µs, then
    ``is_valid_number``), most of it generic work that a run of digits does not need.
    For such a run the matcher's only attempt is the whole run (nothing inside it can be
    tried: every inner split needs punctuation or white space), so it finds the run or
    nothing; whether it finds it is ``parse`` + ``is_valid_number`` + "national prefix
    present if the format needs it", replayed here step by step with the same metadata
    expressions (compiled once). Runs that start with the international prefix or with
    the region's country code take ``parse``'s other paths: ``decides`` says no and the
    matcher is asked. Regions whose code is shared (+1, +7, +44 …) or whose national
    prefix has a transform rule get no plan (None): the matcher always decides there.
    tests/compliance/test_detectors_equivalence.py compares both on many digit runs.
    """

    code: str
    idd: re.Pattern[str] | None
    national_prefix: re.Pattern[str] | None
    general: re.Pattern[str]
    kept_lengths: frozenset[int]
    valid: dict[int, re.Pattern[str]]
    """Per national-number length: the general pattern and every type allowing it, as
    one expression (lookahead for the general one, then the types' alternation)."""
    formats: tuple[tuple[re.Pattern[str] | None, re.Pattern[str], bool], ...]
    """(leading digits, pattern, national prefix required) in metadata order."""
    prefix_required: bool
    """Whether any format requires the national prefix (if none does, none is read)."""

    @classmethod
    def build(cls, region: str) -> _DigitsPlan | None:
        meta = PhoneMetadata.metadata_for_region(region, None)
        if (
            meta is None
            or meta.country_code is None
            or phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(meta.country_code) != (region,)
            or meta.national_prefix_transform_rule
            or not all(f.pattern for f in meta.number_format)
        ):
            return None
        general = meta.general_desc
        if general is None or not general.national_number_pattern:
            return None
        # is_valid_number skips the mobile pattern when it is the fixed-line one.
        names = _TYPES[:-1] if meta.same_mobile_and_fixed_line_pattern else _TYPES
        descs = [d for d in (getattr(meta, n) for n in names) if d and d.national_number_pattern]
        valid: dict[int, re.Pattern[str]] = {}
        for length in range(phonenumberutil._MIN_LENGTH_FOR_NSN, 18):
            if general.possible_length and length not in general.possible_length:
                continue
            types = [
                f"(?:{d.national_number_pattern})"
                for d in descs
                if not d.possible_length or length in d.possible_length
            ]
            if types:
                valid[length] = re.compile(
                    rf"(?=(?:{general.national_number_pattern})\Z)(?:{'|'.join(types)})"
                )
        formats = tuple(
            (
                re.compile(f.leading_digits_pattern[-1]) if f.leading_digits_pattern else None,
                re.compile(str(f.pattern)),
                bool(f.national_prefix_formatting_rule)
                and not f.national_prefix_optional_when_formatting
                and not phonenumberutil._formatting_rule_has_first_group_only(
                    f.national_prefix_formatting_rule
                ),
            )
            for f in meta.number_format
        )
        kept = frozenset(
            n for n in range(40) if phonenumberutil._test_number_length("0" * n, meta) in _KEPT
        )
        return cls(
            code=str(meta.country_code),
            idd=re.compile(meta.international_prefix) if meta.international_prefix else None,
            national_prefix=(
                re.compile(meta.national_prefix_for_parsing)
                if meta.national_prefix_for_parsing
                else None
            ),
            general=re.compile(general.national_number_pattern),
            kept_lengths=kept,
            valid=valid,
            formats=formats,
            prefix_required=any(required for _, _, required in formats),
        )

    def decides(self, digits: str) -> bool:
        """Whether ``parse`` reads ``digits`` as a national number of this region."""
        return not digits.startswith(self.code) and not (
            self.idd is not None and self.idd.match(digits)
        )

    def national_number(self, digits: str) -> str | None:
        """The national significant number the matcher finds in ``digits``, or None."""
        national, stripped = digits, False
        prefix = self.national_prefix.match(digits) if self.national_prefix else None
        if prefix is not None:
            rest = digits[prefix.end() :]
            if not self.general.fullmatch(digits) or self.general.fullmatch(rest):
                stripped = True
                if len(rest) in self.kept_lengths:
                    national = rest
        if len(national) > phonenumberutil._MAX_LENGTH_FOR_NSN:
            return None
        valid = self.valid.get(len(national))
        if valid is None or not valid.fullmatch(national):
            return None
        if stripped or not self.prefix_required:
            return national
        for leading, pattern, prefix_required in self.formats:
            if (leading is None or leading.match(national)) and pattern.fullmatch(national):
                return None if prefix_required else national
        return national


class Identifiers:
    def __init__(self, config: PersonalData) -> None:
        self.regions = list(config.phone_regions)
        self._plans = [(region, _DigitsPlan.build(region)) for region in self.regions]
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
        self._marker_before = (
            re.compile(
                r"\n?\W{0,3}" + _alternation([m[::-1] for m in markers]) + r"(?!\w)",
                re.IGNORECASE,
            ).match
            if markers and len(markers[-1]) + 4 < _MARKER_REACH
            else None
        )
        """``_marker`` read backwards from a candidate: one attempt instead of a search.
        Its markers are one alternation factored on their characters (``_alternation``):
        with IGNORECASE the regex engine tries every branch of a plain alternation."""
        self._marker_span = len(markers[-1]) + 5 if markers else 0
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
        view = _Digits(text)  # every scheme but e-mail needs digits: one pass reads them
        digits = view.count
        if digits >= 8 and view.holds(b"000000"):  # LV and SE begin with six, AL has eight
            spans += self._ids(text, view.runs(), digits)
        if digits >= 2 and view.holds(b"AA00"):
            spans += self._ibans(text, view.runs())
        shaped = digits >= 7 and view.phone_shaped()  # so are a card's thirteen digits
        if digits >= 13 and shaped:
            spans += self._cards(text, view.runs())
        if "@" in text:
            spans += self._emails(text)
        if shaped:  # a candidate with fewer than seven digits is skipped
            taken = [(s.start, s.end) for s in spans]
            spans += [p for p in self._phones(text, view.runs()) if not _overlaps(p, taken)]
        return spans

    def _ids(self, text: str, runs: list[tuple[int, int]], digits: int) -> list[Span]:
        """Identity numbers in a draft holding ``digits`` digits (at least eight)."""
        out = []
        if digits >= 10:
            # A match begins a run and ends it, or the run stops at its separator: LV has
            # 11 digits or 6 and "-"; SE 10 or 12, or 6 or 8 and "-" or "+".
            lv = [s for s, e in runs if e - s == 11 or (e - s == 6 and text[e : e + 1] == "-")]
            se = [
                s for s, e in runs
                if e - s in (10, 12) or (e - s in (6, 8) and text[e : e + 1] in ("-", "+"))
            ]
            for m in matches_at(_LV_CODE, text, lv):
                number = m.group().replace("-", "")
                if number[0] <= "3" and pvn.is_valid(number) and number not in self.public:
                    out.append(Span(m.start(), m.end(), "id-number"))
            for m in matches_at(_SE_PNR, text, se):
                if personnummer.is_valid(m.group()) and _compact(m.group()) not in self.public:
                    out.append(Span(m.start(), m.end(), "id-number"))
        eight = [start for start, end in runs if end - start == 8 and start]
        for m in matches_at(_AL_NID, text, eight):
            value = text[m.start() - 1 : m.end()].upper()
            if nipt.is_valid(value) and value not in self.public:
                out.append(Span(m.start() - 1, m.end(), "id-number"))
        return out

    def _ibans(self, text: str, runs: list[tuple[int, int]]) -> list[Span]:
        # Two capital letters, then the digits
        places = [s - 2 for s, e in runs if e - s >= 2 and s >= 2 and _UPPER2(text, s - 2, s)]
        return [
            Span(m.start(), m.end(), "iban")
            for m in matches_at(_IBAN, text, places)
            if iban.is_valid(m.group()) and _compact(m.group()) not in self.public
        ]

    def _cards(self, text: str, runs: list[tuple[int, int]]) -> list[Span]:
        out = []
        for m in matches_at(_CARD, text, [start for start, _ in runs]):
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

    def _phones(self, text: str, runs: list[tuple[int, int]] | None = None) -> list[Span]:
        out: list[Span] = []
        places = []  # where a candidate may begin: "+(", "+" or "(" before digits, or digits
        for start, _ in _runs(text) if runs is None else runs:
            if text[start - 2 : start] == "+(":
                places.append(start - 2)
            if start and text[start - 1] in "+(":
                places.append(start - 1)
            places.append(start)
        for m in matches_at(_PHONE, text, places):
            candidate = m.group()
            if candidate.isascii() and candidate.isdigit():  # _DATE needs separators
                if not 7 <= len(candidate) <= 15 or _yyyymmdd(candidate):
                    continue
            else:
                digits = _NOT_DIGIT.sub("", candidate)
                if not 7 <= len(digits) <= 15 or _DATE.match(candidate) or _yyyymmdd(candidate):
                    continue
            if self._after_marker(text, m.start()):
                continue
            out += [
                Span(m.start() + start, m.start() + end, "phone")
                for start, end in self._phone_spans(candidate)
            ]
        return out

    def _after_marker(self, text: str, start: int) -> bool:
        """Whether a reference marker ("Nr.", "Dnr") ends at most three non-word characters
        before ``start``: ``_marker`` searched in the 24 characters before it."""
        if self._marker is None:
            return False
        if self._marker_before is None:
            return self._marker.search(text, max(0, start - _MARKER_REACH), start) is not None
        before = text[max(0, start - self._marker_span) : start][::-1]
        return self._marker_before(before) is not None

    def _phone_spans(self, candidate: str) -> list[tuple[int, int]]:
        # Not memoized: that would keep people's numbers from drafts in memory.
        digits_only = candidate.isascii() and candidate.isdigit()
        for region, plan in self._plans:
            if digits_only and plan is not None and plan.decides(candidate):
                national = plan.national_number(candidate)
                if national is not None and not self._public_national(plan.code, national):
                    return [(0, len(candidate))]
                continue
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

    def _public_national(self, code: str, national: str) -> bool:
        """``_public_phone`` of the number ``PhoneNumberMatcher`` would have parsed."""
        return f"+{code}{national}" in self.public or str(int(national)) in self.public

    def _public_phone(self, number: phonenumbers.PhoneNumber) -> bool:
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        national = str(number.national_number)
        return e164 in self.public or national in self.public


class _Digits:
    """The draft's ASCII digits, capitals and phone separators as one byte each, read
    without the regex engine, and its runs of digits (``\\d+``) found only when needed.

    Why: ``_DIGIT_RUN.finditer`` tries every position of the draft (~200 CPU instructions
    per character: more than all the detectors together on a post). Here the draft's UTF-8
    bytes are classified by one ``bytes.translate`` (``_BYTE_CLASSES``), and each detector
    first asks with one C-speed ``find`` whether the shape its matches need is there at
    all ("AA00" for an IBAN, six digits in a row for an identity number, seven digits
    linked by separators for a phone or card number). Most posts stop there. A run's byte
    offsets become code point offsets by not counting the continuation bytes before it.
    ``\\d`` also matches digits of other scripts (Arabic-Indic …): a draft holding one (or
    a lone surrogate) is read the plain way, and every shape is taken to be there.
    """

    __slots__ = ("_runs", "ascii", "count", "marks", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._runs: list[tuple[int, int]] | None = None
        self.marks: bytes | None = None
        self.ascii = text.isascii()
        marks = _ascii_marks(text)
        if marks is not None:
            self.marks = marks
            self.count = marks.count(b"0")
        else:
            self._runs = [m.span() for m in _DIGIT_RUN.finditer(text)]
            self.count = sum(end - start for start, end in self._runs)

    def holds(self, shape: bytes) -> bool:
        """Whether ``shape`` (in ``_BYTE_CLASSES`` letters) may occur: False is certain."""
        return self.marks is None or self.marks.find(shape) >= 0

    def phone_shaped(self) -> bool:
        """Whether seven digits may stand linked by phone separators alone."""
        return self.marks is None or _SEVEN_LINKED.search(self.marks) is not None

    def runs(self) -> list[tuple[int, int]]:
        """[start, end) of each run of digits, in code points."""
        if self._runs is None:
            marks = self.marks
            assert marks is not None
            runs, shift, counted = [], 0, 0
            for m in _ZERO_RUN.finditer(marks):
                start, end = m.span()
                if not self.ascii:
                    shift += marks.count(b"\x80", counted, start)
                    counted = start
                runs.append((start - shift, end - shift))
            self._runs = runs
        return self._runs


def _alternation(words: list[str]) -> str:
    """A regex matching exactly ``words`` (non-empty), factored on their first characters
    ("ab|ac|b" becomes "(?=[ab])(?:a(?=[bc])(?:b|c)|b)"), so that a failed match costs one class
    test per position. The same strings match (only which branch is taken may differ)."""
    tails: dict[str, list[str]] = {}
    for word in words:
        tails.setdefault(word[:1], []).append(word[1:])
    branches = [
        re.escape(head) + (_alternation(rest) if rest != [""] else "")
        if head
        else ""
        for head, rest in tails.items()
    ]
    if len(branches) == 1:
        return branches[0]
    if "" in tails:
        return "(?:" + "|".join(branches) + ")"
    heads = "".join(re.escape(head) for head in tails)
    return "(?=[" + heads + "])(?:" + "|".join(branches) + ")"


def _ascii_marks(text: str) -> bytes | None:
    """``text``'s UTF-8 bytes by ``_BYTE_CLASSES``; None when ``text`` holds a digit of
    another script or a lone surrogate (its digits are not all ASCII digits)."""
    try:
        data = text.encode()
    except UnicodeEncodeError:
        return None
    marks = data.translate(_BYTE_CLASSES)
    if marks.find(b"!") >= 0 and _DIGIT_RUN.search(data.translate(None, _ASCII_BYTES).decode()):
        return None
    return marks


def _runs(text: str) -> list[tuple[int, int]]:
    """[start, end) of each run of digits (``\\d+``) in ``text``."""
    return _Digits(text).runs()


def _local_char(char: str) -> bool:
    """A character of an e-mail address's local part (``[\\w.%+-]``)."""
    return char.isalnum() or char in "_.%+-"


def _overlaps(span: Span, taken: list[tuple[int, int]]) -> bool:
    return any(span.start < end and start < span.end for start, end in taken)

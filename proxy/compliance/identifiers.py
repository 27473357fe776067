"""``personal-data``: identity numbers, phone numbers, e-mail addresses, IBANs, card numbers.

Candidates are read from the folded draft (``normalize``: digits of any script are ASCII
digits, dashes are "-", hidden characters are gone) and kept only when a library
validates them: identity numbers, IBANs and cards by python-stdnum, phone numbers by
phonenumbers' public API (``parse`` + ``is_valid_number``).

Numbers are written any way people write them: a *number run* is digit groups joined by
up to three separators (spaces, dots, slashes, underscores, dashes, brackets). A run is
tried whole, then, if that fails, as windows of its groups (longest first, a few per
group) so that two numbers in one run are both found. Each scheme is a row of
``NUMBER_SCHEMES`` (digits only) or ``TEXT_SCHEMES`` (letters and digits): its kind,
the shape its compact value must have, the validator, and — for a scheme without a
checksum — the context words that must come before it. Adding a country's identity
number is adding a row.

Not phone numbers: dates, times and time ranges, amounts (a currency or "%" beside
them), and numbers right after a reference marker ("Nr.", "Dnr", from the policy). After
words that make a number the writer's own ("my mobile", "zvaniet man", ``_MY_PHONE``), a
run of 7–15 digits is a phone even when no configured region validates it.

Linear worst case: a run holds at most ``MAX_RUN`` digits, each group starts at most
``WINDOWS`` windows, answers are remembered for the draft, and a draft gets at most
``BUDGET`` validations. Past that budget, or past ``MAX_FOUND`` identifiers, the rest
is not read but reported as one finding (kind ``unread``): a draft made to exhaust the
reader fails closed.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate

import phonenumbers
from stdnum import iban, luhn
from stdnum.al import nipt
from stdnum.lv import pvn
from stdnum.se import personnummer

from proxy.compliance.config import PersonalData
from proxy.compliance.detectors import Hit
from proxy.compliance.normalize import Draft, fold

MAX_RUN = 40
"""Digits in one number run at most; a longer sequence is read in runs of this many."""
WINDOWS = 3
"""Windows tried from each group of a run that is not one number."""
BUDGET = 400
"""Validations per draft: a checksum or one phone region each (each 5–30 µs)."""
MAX_FOUND = 100
"""Identifiers found one by one; numbers after them are reported as one finding."""

_S = r"[ ./_()-]"
_RUN = re.compile(rf"(?<![\w+/])(?<!\d\.)\+?\(?\d(?:{_S}{{1,3}}\d|\d){{0,{MAX_RUN - 1}}}")
"""A number run; not one starting inside a dotted number whose start was refused
("http://192.168.14.22/…": "168.14.22" is part of an address, not a phone)."""
_GROUP = re.compile(r"\d+")
_CARD_SHAPED = re.compile(r"\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,4})?")
"""One number in groups of four: never read as several."""
_NOT_A_NUMBER = re.compile(  # dates, times, time ranges, years, case numbers
    r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}\.?|\d{4}\.\d{1,2}\.\d{1,2}\.?"
    r"|\d{1,2}[.:]\d{2} ?- ?\d{1,2}[.:]\d{2}|\d{1,2}[.:]\d{2}"
    # a range of years ("2027–2028"), a case number of a year ("KS 2026/1143")
    r"|(?:19|20)\d\d ?- ?(?:19|20)\d\d|(?:19|20)\d\d/\d{1,6}(?:-\d{1,4})?"
)
_TIME_RANGE = re.compile(r"([01]\d|2[0-3])([0-5]\d) ?- ?([01]\d|2[0-4])([0-5]\d)")
"""Office hours written without a colon ("0830-1700")."""
_THOUSANDS = re.compile(r"\d{1,3}(?: \d{3}){2,}")
"""A count grouped in thousands ("21 345 678"): a phone only after "+" or a phone word."""
_IPV4 = re.compile(r"(?:[1-9]\d{0,2}|0)(?:\.(?:[1-9]\d{0,2}|0)){3}")
_PHONE_WORD = re.compile(
    r"\b(?:call|phone\w*|tel|tel\.|telephone|mob\w*|cell|zvan\w*|tālr\w*|talr\w*|"
    r"ring|telefon\w*|numri|text|sms\w*|whatsapp|viber|telegram|signal|messenger)\b(?:\W+\w+){0,3}?\W*$"
)
_MY_PHONE = re.compile(
    r"\b(?:(?:my|mans|manu|mana|min|mitt|mina)\s+(?:(?:private|personal|own|new|privatais|"
    r"privato|personigais|personigo|jaunais|jauno|privata|privat|nya)\s+)?"
    r"(?:mobile|mob|cell|cellphone|phone|number|mobil\w*|talr\w*|numur\w*|telefon\w*|nummer)"
    r"|(?:call|ring|text|phone|message|whatsapp|sms)\s+me|zvan\w*\s+man|rakst\w*\s+man"
    r"|ring\s+mig|sms\w*\s+mig|messa\s+mig|(?:celular\w*|numr\w*|telefon\w*)\s+(?:im|tim)"
    r"|me\s+(?:telefono\w*|merr\w*|shkrua\w*))\b(?:\W+\w+){0,3}?\W*$"
)
"""Words that make the number after them the writer's own ("text me on my mobile …",
"zvaniet man", "ring mig på", "më telefononi"): read as a phone even when no region
the policy names validates it (a foreign or a made-up number is still not to be posted)."""
_SERVICE_NUMBERS = frozenset({
    phonenumbers.PhoneNumberType.TOLL_FREE,
    phonenumbers.PhoneNumberType.SHARED_COST,
    phonenumbers.PhoneNumberType.PREMIUM_RATE,
    phonenumbers.PhoneNumberType.UAN,
})
"""Numbers of services, not of persons ("numri i gjelbër 0800 0808")."""
_MONEY_BEFORE = re.compile(r"(?:[€$£]|\b(?:eur|euro|eiro|usd|sek|kr|lek|all|chf))\s?\(?$")
_AFTER = re.compile(
    r"^\s?(?:[%‰€$£]|(?:eur|euro|eiro|usd|sek|kr|kronor|lek|leke|leké|chf|procent\w*|"
    r"percent|per cent|mln|milj\w*|million\w*|thousand|tūkst\w*|miljard\w*|bn)\b|[,.]\d)"
)
_CARD_PREFIX = r"(?:4|5[1-5]|2[2-7]|3[47]|6(?:011|5|4[4-9]))"


@dataclass(frozen=True, slots=True)
class Scheme:
    """One kind of identifier: a row of the table below."""

    name: str
    kind: str
    """The rule's message for it (``messages`` of ``personal-data``)."""
    shape: re.Pattern[str]
    """NUMBER_SCHEMES: the compact digits must match it whole; TEXT_SCHEMES: searched
    in the folded draft (separators allowed where the expression allows them)."""
    valid: Callable[[str], bool]
    context: re.Pattern[str] | None = None
    """Words one of which must stand in the 40 characters before (no checksum)."""


def _lv_person(digits: str) -> bool:
    return pvn.is_valid(digits)  # personas kods; company numbers start above 3 (shape)


NUMBER_SCHEMES = (
    Scheme("lv.personas_kods", "id-number", re.compile(r"[0-3]\d{10}"), _lv_person),
    Scheme("se.personnummer", "id-number", re.compile(r"\d{10}|\d{12}"), personnummer.is_valid),
    Scheme("card", "card", re.compile(rf"{_CARD_PREFIX}\d{{11,17}}"), luhn.is_valid),
)
TEXT_SCHEMES = (
    Scheme(
        "al.nipt",  # personal and company numbers; stdnum checks the format only
        "id-number",
        re.compile(rf"(?<![a-z0-9])[a-z]{_S}?\d(?:{_S}?\d){{7}}{_S}?[a-z](?![a-z0-9])"),
        nipt.is_valid,
        context=re.compile(
            # "numri" / "nr", but not of a product or an order ("numri serial A30412345Z")
            r"\b(?:nipt|nuis|nid|(?:numri?|nr)(?![.:]?\s*(?:serial|i\s+(?:serise|produktit|"
            r"artikullit|porosise|fatures|modelit)))|personal\w*|identifik\w*|letërnjoftim\w*|"
            r"leternjoftim\w*|id|tax|tatim\w*|identity|card|karta?)\b"
        ),
    ),
    Scheme(
        "iban",
        "iban",
        re.compile(rf"(?<![a-z0-9])[a-z]{{2}}\d{{2}}(?:{_S}{{0,2}}[a-z0-9]){{11,30}}(?![a-z0-9])"),
        iban.is_valid,
    ),
)
_DOT = r"(?:[.\u3002\u00b7]|\s?[\[({]\s?(?:dot|\.)\s?[\])}]\s?|\sdot\s)"
"""A dot as people write it in an address: ".", look-alikes, "[dot]", "[.]", " dot "."""
_EMAIL = re.compile(
    rf"(?<![\w.%+-])((?:[\w%+-]{{1,64}}{_DOT}){{0,4}}[\w%+-]{{1,64}})"
    r"(@|\s?[\[({]\s?at\s?[\])}]\s?|\s(at)\s)"
    rf"((?:[\w-]{{1,63}}{_DOT}){{1,8}}[a-z]{{2,63}})"
    r"(?![\w-])"
)
_DOTS = re.compile(_DOT)
_ADDRESS_LIKE = re.compile(rf"[_\d]|{_DOT}")
"""What the part before " at " holds when it is an address ("anna.berzina", "anna dot
berzina", "a_b", "anna77"), not a word ("meet at riga.lv")."""
_AT = re.compile(r"at[\])}]| at [\w-]+(?:\.|\s?[\[(]dot|\sdot\s)")
"""What an address written with "at" holds (quick to look for: it starts with letters)."""
_SEVEN_DIGITS = re.compile(rf"\d(?:{_S}{{0,3}}\d){{6}}")
"""Seven digits linked by separators: in every identity number, phone, card and IBAN."""
_AS_DIGITS = str.maketrans({"з": "3", "б": "6"})
_DIGIT_LIKE = re.compile(r"(?<=\d)[зб]|[зб](?=\d)")
"""A letter that passes for a digit beside a digit ("12з456"): read as the digit."""
_SEPARATORS = re.compile(rf"(?:{_S}|\s)+")


def _compact(value: str) -> str:
    return _SEPARATORS.sub("", value).upper()


class Identifiers:
    rules = frozenset({"personal-data"})

    def __init__(self, config: PersonalData) -> None:
        self.regions = list(config.phone_regions)
        self.role_mailboxes = {fold(m) for m in config.role_mailboxes}
        markers = sorted({fold(m) for m in config.reference_markers if m.strip()}, key=len)
        alternatives = "|".join(re.escape(m) for m in reversed(markers))
        self._marker = (
            re.compile(rf"(?<!\w)(?:{alternatives})\W{{0,3}}$") if markers else None
        )
        self.public: set[str] = set()
        self.public_addresses = {fold(v) for v in config.public if "@" in v}
        for value in config.public:
            self.public.add(_compact(fold(value)))
            if value.strip().startswith("+"):
                try:
                    number = phonenumbers.parse(value, None)
                except phonenumbers.NumberParseException:
                    continue
                self.public.add(
                    phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                )

    def find(self, draft: Draft) -> list[Hit]:
        return [Hit("personal-data", *draft.span(s, e), kind) for s, e, kind in self.spans(draft)]

    def spans(self, draft: Draft) -> list[tuple[int, int, str]]:
        """(start, end, kind) in the folded text."""
        text = draft.folded
        out: list[tuple[int, int, str]] = []
        maybe_at = " at " in text or "(" in text or "[" in text or "{" in text
        if "@" in text or (maybe_at and _AT.search(text) is not None):
            out += self._emails(text)
        if "з" in text or "б" in text:  # Cyrillic letters that pass for 3 and 6
            text = _DIGIT_LIKE.sub(lambda m: m.group().translate(_AS_DIGITS), text)
        if sum(map(text.count, "0123456789")) < 7 or _SEVEN_DIGITS.search(text) is None:
            return out  # every number read below holds seven digits linked by separators
        taken: list[tuple[int, int]] = []  # read by a text scheme: not a phone, found or not
        reader = _NumberReader(self, text)
        for scheme in TEXT_SCHEMES:
            out += self._text_scheme(scheme, text, taken, reader)
        taken = sorted(taken + [(s, e) for s, e, _ in out])
        reach = list(accumulate((e for _, e in taken), max))  # furthest end so far
        runs = _RUN.finditer(text)
        for m in runs:
            before = bisect_left(taken, (m.end(),))  # the spans starting before the run ends
            if before == 0 or reach[before - 1] <= m.start():
                out += reader.read(m)
            if reader.left < 0 or len(out) >= MAX_FOUND:  # enough read: the rest as one
                rest = [m.end() for m in runs]
                if rest:
                    out.append((m.end(), rest[-1], "unread"))
                break
        unread = [(s, e) for s, e, kind in out if kind == "unread"]
        if unread:  # one finding for all that was not read
            out = [o for o in out if o[2] != "unread"]
            out.append((unread[0][0], unread[-1][1], "unread"))
        return out

    def _text_scheme(
        self, scheme: Scheme, text: str, taken: list[tuple[int, int]], reader: _NumberReader
    ) -> list[tuple[int, int, str]]:
        out = []
        for m in scheme.shape.finditer(text):
            start, piece = m.start(), m.group()
            taken.append(m.span())
            if scheme.context and not scheme.context.search(text, max(0, start - 40), start):
                continue
            # A candidate may run into the next words: try it shorter at each separator.
            cuts = [len(piece)] + [g.start() for g in reversed(list(_SEPARATORS.finditer(piece)))]
            for cut in cuts[:8]:
                value = _compact(piece[:cut])
                if not reader.spend(1):
                    out.append((start, m.end(), "unread"))
                    break
                if scheme.valid(value):
                    if value not in self.public:
                        out.append((start, start + cut, scheme.kind))
                    break
        return out

    def _emails(self, text: str) -> list[tuple[int, int, str]]:
        out = []
        pos = 0
        while (m := _EMAIL.search(text, pos)) is not None:
            pos = m.end()
            local = m.group(1)
            if m.group(3) and _ADDRESS_LIKE.search(local) is None:
                # "meet at riga.lv": " at " only between address-like words; what
                # follows may be an address of its own ("mail me at anna[at]x.com")
                pos = m.start(4)
                continue
            name = _DOTS.sub(".", local)  # "info dot desk" is "info.desk"
            address = f"{name}@{_DOTS.sub('.', m.group(4))}"
            if name in self.role_mailboxes or address in self.public_addresses:
                continue
            out.append((m.start(), m.end(), "email"))
        return out

    def after_marker(self, text: str, start: int) -> bool:
        return self._marker is not None and (
            self._marker.search(text, max(0, start - 40), start) is not None
        )

    def phone(self, digits: str, plus: bool, mine: bool = False) -> bool:
        """Whether phonenumbers reads ``digits`` as a valid number not published; with
        ``mine`` (the words before it say it is the writer's), also a number no region
        validates."""
        for region in [None] if plus else self.regions:
            try:
                number = phonenumbers.parse(("+" if plus else "") + digits, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number):
                if phonenumbers.number_type(number) in _SERVICE_NUMBERS:
                    return False  # a free, shared-cost or premium line is a service's
                e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                return e164 not in self.public and str(number.national_number) not in self.public
        return mine


class _NumberReader:
    """Reads the number runs of one draft (answers remembered for this draft only)."""

    def __init__(self, ids: Identifiers, text: str) -> None:
        self.ids = ids
        self.text = text
        self.left = BUDGET
        self.known: dict[tuple[str, bool, bool], str | None] = {}
        self.unread: tuple[int, int] | None = None

    def spend(self, units: int) -> bool:
        """Whether ``units`` validations are still allowed (and count them)."""
        self.left -= units
        return self.left >= 0

    def read(self, run: re.Match[str]) -> list[tuple[int, int, str]]:
        text = self.text
        if run.end() - run.start() < 7:
            return []  # fewer than seven digits
        groups = [(g.start(), g.end()) for g in _GROUP.finditer(text, run.start(), run.end())]
        if sum(e - s for s, e in groups) < 7:
            return []
        if _NOT_A_NUMBER.fullmatch(run.group()) or self.ids.after_marker(text, run.start()):
            return []
        if not self._phone_shaped(run.group(), run.start()):
            return []
        if _MONEY_BEFORE.search(text, max(0, run.start() - 6), run.start()) or _AFTER.match(
            text[run.end() : run.end() + 16]
        ):
            return []
        plus = text[run.start()] == "+"
        digits = "".join(text[s:e] for s, e in groups)
        mine = _MY_PHONE.search(text, max(0, run.start() - 48), run.start()) is not None
        found = self._kind(digits, plus, mine)
        if found:
            return [(run.start(), run.end(), found)]
        if _CARD_SHAPED.fullmatch(run.group()):
            return []
        out: list[tuple[int, int, str]] = []
        digits_before = [0]  # digits in groups[:k]
        for start, end in groups:
            digits_before.append(digits_before[-1] + end - start)
        i, last = 0, 0
        while i < len(groups):
            last = max(last, i)
            while last < len(groups) and digits_before[last + 1] - digits_before[i] <= 19:
                last += 1  # groups[i:last] is the longest window of at most 19 digits
            for j in range(last, max(i, last - WINDOWS), -1):
                if digits_before[j] - digits_before[i] < 7:
                    break
                if (i, j) == (0, len(groups)):
                    continue
                start = run.start() if i == 0 else groups[i][0]
                if _time_range(text[start : groups[j - 1][1]]):
                    i = j - 1  # hours from and to: read on after them
                    break
                kind = self._kind(
                    digits[digits_before[i] : digits_before[j]], plus and i == 0
                )
                if kind:
                    out.append((start, groups[j - 1][1], kind))
                    i = j - 1
                    break
            i += 1
        return out

    def _phone_shaped(self, run: str, start: int) -> bool:
        """False for a time range, and for a run that reads as something else unless a
        phone word comes before it: an IPv4 address, a count in thousands."""
        if _time_range(run):
            return False
        if _IPV4.fullmatch(run) or _THOUSANDS.fullmatch(run):
            return _PHONE_WORD.search(self.text, max(0, start - 32), start) is not None
        return True

    def _kind(self, digits: str, plus: bool, mine: bool = False) -> str | None:
        key = (digits, plus, mine)
        if key in self.known:
            return self.known[key]
        kind = self._validate(digits, plus, mine)
        self.known[key] = kind
        return kind

    def _validate(self, digits: str, plus: bool, mine: bool) -> str | None:
        if not plus:
            for scheme in NUMBER_SCHEMES:
                if scheme.shape.fullmatch(digits):
                    if not self.spend(1):
                        return "unread"
                    if scheme.valid(digits):
                        return None if digits in self.ids.public else scheme.kind
        if 7 <= len(digits) <= 15 and not _yyyymmdd(digits):
            if not self.spend(1 if plus else len(self.ids.regions)):
                return "unread"
            return "phone" if self.ids.phone(digits, plus, mine) else None
        return None


def _time_range(text: str) -> bool:
    """Hours from and to ("0830-1700"): on the quarter hour, the second after the first."""
    m = _TIME_RANGE.fullmatch(text)
    return (
        m is not None
        and m[2] in ("00", "15", "30", "45")
        and m[4] in ("00", "15", "30", "45")
        and m[1] + m[2] < m[3] + m[4]
    )


def _yyyymmdd(digits: str) -> bool:
    """A compact date (20261123): not a phone."""
    return (
        len(digits) == 8
        and digits[:2] in ("19", "20")
        and "01" <= digits[4:6] <= "12"
        and "01" <= digits[6:] <= "31"
    )

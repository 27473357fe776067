"""The one normalisation every detector shares, with a map back to the draft's UTF-16 offsets.

A draft is matched in its *folded* form (docs/rules.md, "How a draft is read"):

1. Unicode format characters (zero-width space, joiners, word joiner, soft hyphen, bidi
   controls: general category ``Cf``) are removed: the published text looks the same
   with or without them.
2. Each character is NFKC-normalised (fullwidth, circled and mathematical letters become
   plain ones), case folded and stripped of diacritics ("muļķis" and "mulkis" are one word).
3. Letters of other scripts that look like Latin letters (Cyrillic "а", Greek "ο") become
   the Latin letter they imitate: Unicode's confusables data (TR39), read through the
   ``confusable-homoglyphs`` package.
4. Digits of any script become ASCII digits; Unicode dashes become "-"; white space runs
   become one space.

Every character of the folded text remembers the UTF-16 span of the draft character(s)
it came from (``Draft.span``), so a match found in the folded text is reported where it
was typed — the indices of a JavaScript string. The map is built only when a detector
reports something (most drafts report nothing).

The lexicon also reads a *word view* of the folded text (``Draft.words``): digits and
symbols inside words read as the letters they stand for ("1d10t", "$cam") and letters
spelled one by one with spaces or dots between them joined ("i d i o t", "i.d.i.o.t"),
joined first, so that a digit among them is read too ("i d 1 o t").
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain, repeat

from confusable_homoglyphs import categories, confusables

_APOSTROPHES = frozenset("\u2019\u2018\u201b\u02bc\u2032\uff07")
"""Typographic apostrophes and look-alikes, read as "'" ("you’re", "I’ll")."""

# Letters that Unicode does not decompose into a base letter and a mark.
_EXTRA = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ı": "i", "æ": "ae", "œ": "oe"})

LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)
"""Digits and symbols read as letters inside a word that also holds letters."""
LEET_L = str.maketrans({**LEET, ord("1"): "l"})
"""``LEET`` with the other letter a 1 stands for (``Draft.words_l``)."""


def is_hidden(char: str) -> bool:
    """A format character: invisible, removed before matching."""
    return unicodedata.category(char) == "Cf"


_FORMAT = [c for c in (*range(0x20000), *range(0xE0000, 0xE0100)) if is_hidden(chr(c))]
"""Every format character (of the planes that have them)."""
_FORMAT_CHARS = frozenset(map(chr, _FORMAT))
_VISIBLE = dict.fromkeys(_FORMAT)
"""``str.translate`` table that deletes format characters."""
HIDDEN = re.compile("[" + "".join(re.escape(chr(c)) for c in _FORMAT) + "]")
"""Any format character (slow to search for: ``Draft.visible`` says first whether any is
there)."""
_HIDDEN_WORD = re.compile(rf"(?<!\w)\w+(?:{HIDDEN.pattern}+\w+)+")
"""A word with format characters inside it."""
_FOREIGN = re.compile(r"[^\W\x00-\u024f\u1e00-\u1eff]")
"""A word character outside the Latin blocks (Greek, Cyrillic, mathematical …)."""
_FOREIGN_WORD = re.compile(rf"(?<!\w)\w*{_FOREIGN.pattern}\w*")


@lru_cache(maxsize=1024)
def _latin(char: str) -> str:
    """The ASCII letter a letter of another script imitates, or the letter itself."""
    if char.isascii() or not char.isalpha():
        return char
    found = confusables.is_confusable(char, greedy=True, preferred_aliases=["latin"])
    for item in found or ():
        for glyph in item["homoglyphs"]:
            c = str(glyph["c"])
            if c.isascii() and c.isalpha():
                return c.lower()
    return char


@lru_cache(maxsize=8192)
def fold_char(char: str) -> str:
    """One character as the matcher sees it (may be empty or longer than one)."""
    if char.isspace():
        return " "
    category = unicodedata.category(char)
    if category == "Cf":
        return ""
    if category == "Nd":
        return str(unicodedata.decimal(char))
    if category == "Pd":
        return "-"
    if char in _APOSTROPHES:
        return "'"
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", char).casefold())
    text = "".join(c for c in text if not unicodedata.combining(c) and not c.isspace())
    text = text.translate(_EXTRA)
    if text.isascii():
        return text
    return "".join(_latin(c) for c in text)


_TABLE: dict[int, str] = {}
"""``str.translate`` table: code point → folded text, for every character seen so far."""
_KNOWN: set[str] = set()
"""The characters in ``_TABLE``."""
_TABLE_LIMIT = 1 << 17


def _table(chars: set[str]) -> dict[int, str]:
    """A translate table holding ``chars``: the shared one, with the characters it did
    not have yet put in it (a draft is then folded by one ``str.translate`` with no call
    back into Python). Past ``_TABLE_LIMIT`` characters (a flood of distinct ones) the
    shared table stops growing and a draft's new characters go in a copy of it."""
    new = chars - _KNOWN
    if not new:
        return _TABLE
    folded = {ord(char): fold_char(char) for char in new}
    if len(_KNOWN) + len(new) > _TABLE_LIMIT:
        return {**_TABLE, **folded}
    _TABLE.update(folded)
    _KNOWN.update(new)
    return _TABLE


def _fold_raw(text: str, chars: set[str] | None = None) -> str:
    """Each character folded (``fold_char``), white space not yet collapsed."""
    return text.translate(_table(set(text) if chars is None else chars))


_table(set(map(chr, range(128))))
_SPACES = re.compile(r" {2,}")
MAX_DISGUISED = 200
"""Disguised words reported one by one; the rest of the draft is reported as one."""
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def fold(text: str) -> str:
    """A term or phrase as the matcher sees it (no offset map: for lexicon entries)."""
    return _SPACES.sub(" ", _fold_raw(text)).strip()


def fold_pattern(regex: str) -> str:
    """A regular expression for the folded text: its non-ASCII letters folded.

    Escapes and syntax are ASCII and stay as written."""
    return "".join(c if c.isascii() else fold_char(c) for c in regex)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


_SPELLED = re.compile(r"(?<![\w.$@])[a-z0-9@$](?:[ .*_-][a-z0-9@$]){2,}(?![\w$@])")
"""Single letters (or digits and symbols standing for letters) joined by single spaces or
dots ("i d i o t", "i d 1 o t"); a run without a letter ("2 2 2") is not a word."""
_LETTER = re.compile(r"[a-z]")
_LEET_HINT = re.compile(r"[0-9@$](?=[a-z])|(?<=[a-z])[0-9@$]")
"""A digit or symbol beside a letter: the word view may differ from the folded text."""
_DIGITS = re.compile(r"[0-9@$]+")
_MIXED = re.compile(r"(?<![a-z0-9@$])(?=[a-z0-9@$]*[0-9@$])(?=[a-z0-9@$]*[a-z])[a-z0-9@$]+")
"""A word of letters and digits or symbols ("budg3t"; not "2027" beside it)."""


def _leet_hint(view: str) -> bool:
    """Whether a digit or symbol stands beside a letter (``_LEET_HINT``): the runs of
    digits a post holds are few, and looking at their ends is quicker than the
    expression; past a few dozen runs the expression reads the rest."""
    for count, m in enumerate(_DIGITS.finditer(view)):
        start, end = m.span()
        if count == 64:
            return _LEET_HINT.search(view, start) is not None
        if (start and "a" <= view[start - 1] <= "z") or "a" <= view[end : end + 1] <= "z":
            return True
    return False


_SPELLED_HINTS = tuple(
    (sep, re.compile(rf"{re.escape(sep)}[a-z0-9@$][ .*_-][a-z0-9@$][ .*_-]")) for sep in " .*_-"
)
"""What every spelled-out word holds, one expression per separator it starts with (an
expression that starts with a letter is looked for many times quicker than one that
starts with a class)."""


def _spelled_hint(view: str) -> bool:
    view = f" {view}"
    return any(sep in view and hint.search(view) is not None for sep, hint in _SPELLED_HINTS)


@dataclass(slots=True)
class Draft:
    """A draft as the detectors read it: ``text`` as typed, ``folded`` for matching, and
    the ways back to UTF-16 offsets. Read-only by convention (made for every draft)."""

    text: str
    folded: str = ""
    _source: list[int] | None = field(default=None, repr=False)
    _astral: list[int] | None = field(default=None, repr=False)
    """Code point indices of the characters outside the BMP (two UTF-16 units each)."""
    _words: tuple[str, list[int] | None] | None = field(default=None, repr=False)
    _words_l: str | None = field(default=None, repr=False)
    _apart: tuple[str, list[int] | None] | None = field(default=None, repr=False)
    visible: str = ""
    """The draft as typed less its format characters."""
    _cased: tuple[str, list[int] | None] | None = field(default=None, repr=False)
    foreign: bool = False
    """Whether the draft holds letters outside the Latin script (read once, from its
    set of characters)."""

    def __post_init__(self) -> None:
        text = self.text
        if text.isascii():  # every ASCII character is in the table from the start
            raw = text.translate(_TABLE)
            self.visible = text
        else:
            chars = set(text)
            raw = _fold_raw(text, chars)
            hidden = not chars.isdisjoint(_FORMAT_CHARS)
            self.visible = text.translate(_VISIBLE) if hidden else text
            self.foreign = _FOREIGN.search("".join(chars)) is not None
        self.folded = _SPACES.sub(" ", raw) if "  " in raw else raw

    # --- offsets ------------------------------------------------------------------------

    def utf16(self, index: int) -> int:
        """UTF-16 offset of code point ``index`` of the draft as typed."""
        if self._astral is None:
            text = self.text
            self._astral = (
                [m.start() for m in _ASTRAL.finditer(text)] if utf16_len(text) != len(text) else []
            )
        return index + bisect_left(self._astral, index) if self._astral else index

    def typed(self, start: int, end: int) -> str:
        """The draft as typed between UTF-16 offsets ``start`` and ``end``."""
        return self.text[self.index(start) : self.index(end)]

    def index(self, offset: int) -> int:
        """The code point index at UTF-16 ``offset`` (the inverse of ``utf16``)."""
        self.utf16(0)
        astral = self._astral
        assert astral is not None
        # the k-th astral character (code point index a) starts at UTF-16 offset a + k
        low, high = 0, len(astral)
        while low < high:
            mid = (low + high) // 2
            if astral[mid] + mid < offset:
                low = mid + 1
            else:
                high = mid
        return offset - low

    def span(self, start: int, end: int) -> tuple[int, int]:
        """UTF-16 ``[start, end)`` in the draft of folded ``[start, end)`` (end > start).

        A folded character stands for the draft from its own character up to the next
        folded character's: a run of white space, a combining mark or a hidden character
        belongs to what comes before it."""
        if self._source is None:
            self._source = self._sources()
        source = self._source
        if not source:  # each character folded to one, no spaces collapsed: same indices
            return self.utf16(start), self.utf16(end)
        first = source[start]
        last = max(source[end - 1] + 1, source[end] if end < len(source) else len(self.text))
        return self.utf16(first), self.utf16(last)

    def _sources(self) -> list[int]:
        """For each folded character, the index of the draft character it comes from;
        empty when that is its own index (most drafts)."""
        text = self.text
        chars = set(text)
        table = _table(chars)
        if len(self.folded) == len(text) and all(len(table[ord(c)]) == 1 for c in chars):
            return []
        lengths = map(len, map(table.__getitem__, map(ord, text)))
        source = list(chain.from_iterable(map(repeat, range(len(text)), lengths)))
        if len(source) == len(self.folded):
            return source
        kept: list[int] = []  # collapse runs of spaces as ``_SPACES`` did
        done = 0
        raw = text.translate(table)
        for m in _SPACES.finditer(raw):
            kept += source[done : m.start() + 1]
            done = m.end()
        kept += source[done:]
        return kept

    # --- the cased view -----------------------------------------------------------------

    def cased(self) -> tuple[str, list[int] | None]:
        """The draft as typed, case kept, with disguised words read as words: letters of
        other scripts as the Latin letters they imitate ("SLЕРЕNI"), digits and symbols
        between letters as letters ("SL3P3NI", "V0te"), spelled-out capitals joined
        ("S L E P E N I"), format characters left out ("SLE\u200dPENI"). For the
        case-sensitive patterns (a marking in capitals). Second: each character's code
        point index in the draft, or None when the view has the draft's own indices.
        The view is the draft itself when nothing is disguised (most drafts)."""
        if self._cased is None:
            text = self.text
            hidden = len(self.visible) != len(text)
            # no digit beside a letter, no spelled-out word (``words``): nothing to read
            if not hidden and not self.foreign and self.words() == self.folded:
                self._cased = (text, None)
            else:
                view, index = _cased(self.visible, self.foreign)
                if hidden:  # indices in the visible text → indices in the draft
                    kept = [i for i, c in enumerate(text) if c not in _FORMAT_CHARS]
                    index = [kept[i] for i in (range(len(view)) if index is None else index)]
                self._cased = (view, index)
        return self._cased

    # --- the word view ------------------------------------------------------------------

    def words(self) -> str:
        """The folded text with disguised words read as words (see the module's doc);
        ``words_span`` maps its offsets to UTF-16."""
        if self._words is None:
            self._words = _word_view(self.folded, LEET)
        return self._words[0]

    def words_l(self) -> str:
        """The word view with each 1 inside a word read as "l" instead of "i" ("mu1ķis",
        "stu1bs"), at the same offsets as ``words``; ``words`` itself when no word of the
        draft holds a 1."""
        if self._words_l is None:
            words = self.words()
            alternative = words != self.folded and "1" in self.folded
            self._words_l = _word_view(self.folded, LEET_L)[0] if alternative else words
        return self._words_l

    def words_apart(self) -> str:
        """The word view with a one-letter word kept apart from the letters spelled one by
        one after it ("is a m o r o n" read as "is a moron"; ``words`` reads "amoron",
        and must, for "a s s h o l e"); ``apart_span`` maps its offsets to UTF-16.
        ``words`` itself when no spelled-out word starts so."""
        if self._apart is None:
            self.words()
            assert self._words is not None
            apart = self._words[1] is not None and _APART_HINT.search(self.folded) is not None
            self._apart = _word_view(self.folded, LEET, apart=True) if apart else self._words
        return self._apart[0]

    def apart_span(self, start: int, end: int) -> tuple[int, int]:
        self.words_apart()
        assert self._apart is not None
        return self._view_span(self._apart[1], start, end)

    def words_span(self, start: int, end: int) -> tuple[int, int]:
        self.words()
        assert self._words is not None
        return self._view_span(self._words[1], start, end)

    def _view_span(self, index: list[int] | None, start: int, end: int) -> tuple[int, int]:
        """``span`` of ``[start, end)`` in a view whose characters stand at ``index`` in
        ``folded`` (None: at the same offsets)."""
        if index is None:
            return self.span(start, end)
        return self.span(index[start], index[end - 1] + 1)

    def disguised(self) -> list[tuple[int, int]]:
        """[start, end) code point spans of the words typed with format characters inside
        them or with letters of two scripts: words that look like one thing and read as
        another ("hidden characters in this word")."""
        text = self.text
        out: list[tuple[int, int]] = []
        if len(self.visible) != len(text):
            out += [m.span() for m in _HIDDEN_WORD.finditer(text)]
        if self.foreign:
            hidden = list(out)
            for m in _FOREIGN_WORD.finditer(text):
                if len(out) == MAX_DISGUISED:  # the rest of the draft as one
                    out.append((m.start(), len(text)))
                    break
                if mixed_scripts(m.group()) and not _within(m.span(), hidden):
                    out.append(m.span())
        return out


_CASED_LEET = re.compile(r"(?<=[A-Za-z])[0-9@$]|[0-9@$](?=[A-Za-z])")
_CASED_MIXED = re.compile(
    r"(?<![A-Za-z0-9@$])(?=[A-Za-z0-9@$]*[0-9@$])(?=[A-Za-z0-9@$]*[A-Za-z])[A-Za-z0-9@$]+"
)
_LEET_UPPER = {k: v.upper() for k, v in LEET.items()}
_CASED_SPELLED = re.compile(r"(?<![\w.])[A-Za-z](?:[ .][A-Za-z]){2,}(?!\w)")


def _cased(text: str, foreign: bool) -> tuple[str, list[int] | None]:
    """``Draft.cased``: each step keeps one character for one but the joining."""
    view = text
    if foreign:
        table: dict[int, str] = {}
        for char in set(text):
            if _FOREIGN.match(char):
                latin = fold_char(char)
                if not latin.isascii() and char.isupper():
                    latin = _latin(char)  # capitals like "К", "М" whose small letters are not
                if len(latin) == 1 and latin.isascii() and latin.isalpha():
                    table[ord(char)] = latin.upper() if char.isupper() else latin
        view = view.translate(table)
    if _CASED_LEET.search(view) is not None:

        def letters(m: re.Match[str]) -> str:
            word = m.group()  # a word of capitals reads its digits as capitals
            return word.translate(_LEET_UPPER if word.upper() == word else LEET)

        view = _CASED_MIXED.sub(letters, view)
    if _CASED_SPELLED.search(view) is None:
        return view, None
    pieces: list[str] = []
    index: list[int] = []
    done = 0
    for m in _CASED_SPELLED.finditer(view):
        pieces.append(view[done : m.start()])
        index.extend(range(done, m.start()))
        pieces.append(view[m.start() : m.end() : 2])
        index.extend(range(m.start(), m.end(), 2))
        done = m.end()
    pieces.append(view[done:])
    index.extend(range(done, len(view)))
    return "".join(pieces), index


def _within(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    return any(a <= span[0] and span[1] <= b for a, b in spans)


def _word_view(
    folded: str, leet: dict[int, str], apart: bool = False
) -> tuple[str, list[int] | None]:
    """``Draft.words`` read with ``leet``; second, each character's index in ``folded``
    (None: the same indices). Digits and symbols are read one character for one, so
    every ``leet`` gives the same indices; ``apart``: see ``_joined``."""
    view, index = _joined(folded, apart) if _spelled_hint(folded) else (folded, None)
    if _leet_hint(view):  # after joining: "m 0 r o n" is "m0ron", then "moron"
        view = _MIXED.sub(lambda m: m.group().translate(leet), view)
    return view, index


_APART_HINT = re.compile(r"(?<![\w.])[aeiou] [a-z0-9@$](?:[ .*_-][a-z0-9@$]){3}")
"""A word of one letter and a space before four letters spelled out (``_joined``)."""
_ONE_LETTER_WORDS = frozenset("aeiou")
"""Words of one letter ("a", "i", Swedish "i", "å" and "ö" folded, Albanian "e", "u")."""


def _joined(view: str, apart: bool = False) -> tuple[str, list[int]]:
    """``view`` with spelled-out words joined, and each character's index in ``view``;
    with ``apart``, a one-letter word and a space before four or more spelled letters
    stay as they are (``Draft.words_apart``)."""
    pieces: list[str] = []
    index: list[int] = []
    done = 0
    for m in _SPELLED.finditer(view):
        if _LETTER.search(m.group()) is None:
            continue  # "2 2 2", "1.2.3": numbers
        pieces.append(view[done : m.start()])
        index.extend(range(done, m.start()))
        first = m.start()
        # with ``apart``: a one-letter word, a space and four or more spelled letters
        if (
            apart
            and view[first] in _ONE_LETTER_WORDS
            and view[first + 1] == " "
            and m.end() - first >= 9
        ):
            pieces.append(view[first : first + 2])
            index.extend((first, first + 1))
            first += 2
        pieces.append(view[first : m.end() : 2])
        index.extend(range(first, m.end(), 2))
        done = m.end()
    pieces.append(view[done:])
    index.extend(range(done, len(view)))
    return "".join(pieces), index


@lru_cache(maxsize=4096)
def _script(char: str) -> str:
    return str(categories.alias(char)) if char.isalpha() else "COMMON"


def mixed_scripts(word: str) -> bool:
    """Whether ``word`` mixes letters of two scripts (Latin with Cyrillic or Greek …)."""
    scripts = set(map(_script, word))
    scripts.discard("COMMON")
    return len(scripts) > 1

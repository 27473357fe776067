"""Text normalization for matching, with a map back to the draft's UTF-16 offsets.

Lexicons match on a folded copy of the draft: case folded, diacritics removed (staff
often type Latvian without them: "muļķis" and "mulkis" are the same word) and runs of
white space collapsed to one space. Every character of the folded copy remembers the
UTF-16 span of the draft character it came from, so a match found in the copy is
reported at the right place in the original — the indices of a JavaScript string.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

# Letters that Unicode does not decompose into a base letter and a mark.
_EXTRA = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ı": "i", "æ": "ae", "œ": "oe"})


@lru_cache(maxsize=4096)
def fold_char(char: str) -> str:
    """One character, case folded and without diacritics (may be empty or longer)."""
    folded = unicodedata.normalize("NFKD", char.casefold())
    return "".join(c for c in folded if not unicodedata.combining(c)).translate(_EXTRA)


def fold(text: str) -> str:
    """A term or phrase as the matcher sees it (no offset map: for lexicon entries)."""
    return " ".join("".join(fold_char(c) for c in text).split())


def fold_pattern(regex: str) -> str:
    """A regular expression for the folded text: its non-ASCII letters folded.

    Escapes and syntax are ASCII and stay as written."""
    return "".join(c if c.isascii() else fold_char(c) for c in regex)


def utf16_len(text: str) -> int:
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


_ASTRAL = re.compile("[\U00010000-\U0010FFFF]")


class _FoldTable(dict[int, str]):
    """``str.translate`` table that folds any character, filled on first sight."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        value = " " if char.isspace() else fold_char(char)
        if len(self) < 65536:
            self[code] = value
        return value


_TABLE = _FoldTable()


@dataclass(slots=True)
class Folded:
    """The folded text and the way back to UTF-16 offsets of the draft.

    Three shapes, cheapest first: folding kept every position (``astral`` empty, no
    arrays); it kept every position but the draft has characters outside the BMP, which
    count twice in UTF-16; or it changed lengths (``ß`` → ``ss``, collapsed spaces, lone
    combining marks): one span per character (``starts``, ``ends``).

    ``astral`` always holds the code point indices of the draft's characters outside the
    BMP (what ``Utf16Index`` needs for the draft as typed).

    Read-only by convention, not ``frozen``: a frozen dataclass sets each field through
    ``object.__setattr__``, which triples what making one costs, and this one, like the
    detectors' spans and hits, is made for every draft.
    """

    text: str
    starts: tuple[int, ...] | None = None
    ends: tuple[int, ...] | None = None
    astral: tuple[int, ...] = ()

    def span(self, start: int, end: int) -> tuple[int, int]:
        """UTF-16 ``[start, end)`` in the draft of folded ``[start, end)`` (end > start)."""
        if self.starts is not None and self.ends is not None:
            return self.starts[start], self.ends[end - 1]
        if not self.astral:
            return start, end
        return start + bisect_left(self.astral, start), end + bisect_left(self.astral, end)


def fold_text(text: str) -> Folded:
    """Fold a draft, keeping the map back to UTF-16 offsets."""
    if text.isascii() and text.isprintable():  # no tab or line break: ``lower`` folds it
        lowered = text.lower()
        return _fold_by_character(text) if "  " in lowered else Folded(lowered)
    raw = _encode(text, _LOOK_UP, _ENCODING)[0].translate(_FOLD_BYTES)
    folded: str = _decode(raw, "strict", _DECODING)[0]
    astral: list[int] = []
    if "\x00" in folded:  # characters outside the code space: fold them one by one
        if raw.count(0) > _MAX_LOOKUPS:
            return _fold_translated(text)
        pieces: list[str] = []
        done = 0
        at = raw.find(0)
        while at >= 0:
            piece = _TABLE[ord(text[at])]
            if len(piece) != 1:
                return _fold_by_character(text)
            if ord(text[at]) > 0xFFFF:
                astral.append(at)
            pieces += (folded[done:at], piece)
            done = at + 1
            at = raw.find(0, done)
        pieces.append(folded[done:])
        folded = "".join(pieces)
    if "  " in folded:
        return _fold_by_character(text)
    return Folded(folded, astral=tuple(astral))


def _fold_translated(text: str) -> Folded:
    """``fold_text`` by ``str.translate`` (text mostly outside the code space)."""
    folded = text.translate(_TABLE)
    if len(folded) == len(text) and "  " not in folded:
        return Folded(folded, astral=tuple(m.start() for m in _ASTRAL.finditer(text)))
    return _fold_by_character(text)


def _fold_by_character(text: str) -> Folded:
    """``fold_text`` when folding changes lengths: one UTF-16 span per folded character."""
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    astral: list[int] = []
    pos = 0
    for index, char in enumerate(text):
        width = 1
        if ord(char) > 0xFFFF:
            width = 2
            astral.append(index)
        piece = _TABLE[ord(char)]
        if piece == " " and out and out[-1] == " ":
            ends[-1] = pos + width
        elif not piece and ends:
            ends[-1] = pos + width  # a lone combining mark belongs to the letter before
        else:
            for c in piece:
                out.append(c)
                starts.append(pos)
                ends.append(pos + width)
        pos += width
    return Folded("".join(out), tuple(starts), tuple(ends), tuple(astral))


# --- folding at C speed -----------------------------------------------------------------
#
# ``str.translate`` with a dict calls back into Python for every character once a draft
# holds one non-ASCII character (≈ 400 instructions each: half the cost of checking a
# realistic Latvian post). Instead, the draft is encoded into a one-byte code space with
# a charmap codec (C, one table lookup per character): byte 0 means "look this character
# up", 1–127 are ASCII, 128–255 the most frequent non-ASCII characters of the four
# languages' posts. ``bytes.translate`` folds inside the code space and the charmap
# decoder turns the bytes back into text. Only characters whose fold is one character
# of the code space get a byte, so every position is kept; the few others go to byte 0
# and are folded one by one from ``_TABLE`` (or, when that changes lengths, the whole
# draft goes the old way). The result is the same as ``text.translate(_TABLE)``: the
# tests compare the two over every character of the BMP.

_PREFERRED = (
    "\u00a0\u2009\u202f\u200b\u2013\u2014\u2018\u2019\u201a\u201c\u201d\u201e\u00ab\u00bb"
    "\u2022\u00b7\u20ac\u00a3\u00b0\u00a7\u00a9\u00ae\u00d7"
    "ĀāČčĒēĢģĪīĶķĻļŅņŠšŪūŽž"  # Latvian
    "ÅåÄäÖöÉéÜü"  # Swedish (and German)
    "ËëÇç"  # Albanian
    "ÕõĄąĘęĖėĮįŲųŁłŃńŚśŹźŻżĆć"  # Estonian, Lithuanian, Polish
    "ÀàÁáÂâÈèÊêÍíÎîÏïÑñÓóÔôÙùÚúÛûÝý"  # French, Spanish, ...
)
_MAX_LOOKUPS = 16
"""More characters outside the code space than this (a post in Cyrillic): translate."""


def _code_space() -> str:
    """256 characters: byte value → character (byte 0: look the character up)."""
    chosen: list[str] = []
    others = [chr(i) for i in range(0xA0, 0x180)] + [chr(i) for i in range(0x2000, 0x2070)]
    for char in dict.fromkeys(_PREFERRED + "".join(others)):
        if len(chosen) == 128:
            break
        piece = _TABLE[ord(char)]
        if len(piece) == 1 and (piece.isascii() or piece == char or piece in chosen):
            chosen.append(char)
    return "\x00" + "".join(chr(i) for i in range(1, 128)) + "".join(chosen)


def _look_up(error: UnicodeError) -> tuple[bytes, int]:
    """Characters outside the code space become byte 0, one byte per character."""
    assert isinstance(error, UnicodeEncodeError)
    return b"\x00" * (error.end - error.start), error.end


_LOOK_UP = "sargs.fold"
codecs.register_error(_LOOK_UP, _look_up)
_DECODING = _code_space()
_ENCODING = codecs.charmap_build(_DECODING)
_FOLD_BYTES = bytes(
    _DECODING.index(_TABLE[ord(char)]) if i else 0 for i, char in enumerate(_DECODING)
)
_encode = codecs.charmap_encode
_decode = codecs.charmap_decode


class Utf16Index:
    """Code point index → UTF-16 offset for one text (patterns run on the original)."""

    __slots__ = ("_astral",)

    def __init__(self, astral: Sequence[int]) -> None:
        """From the code point indices of the text's astral characters (``Folded.astral``:
        known once the text is folded, no second pass over it)."""
        self._astral = astral

    def __call__(self, index: int) -> int:
        return index + bisect_left(self._astral, index) if self._astral else index

"""Text normalization for matching, with a map back to the draft's UTF-16 offsets.

Lexicons match on a folded copy of the draft: case folded, diacritics removed (staff
often type Latvian without them: "muļķis" and "mulkis" are the same word) and runs of
white space collapsed to one space. Every character of the folded copy remembers the
UTF-16 span of the draft character it came from, so a match found in the copy is
reported at the right place in the original — the indices of a JavaScript string.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
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


@dataclass(frozen=True, slots=True)
class Folded:
    """The folded text and the way back to UTF-16 offsets of the draft.

    Three shapes, cheapest first: folding kept every position (``astral`` empty, no
    arrays); it kept every position but the draft has characters outside the BMP, which
    count twice in UTF-16 (``astral``: their code point indices); or it changed lengths
    (``ß`` → ``ss``, collapsed spaces, lone combining marks): one span per character.
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
    folded = text.translate(_TABLE)
    if len(folded) == len(text) and "  " not in folded:
        return Folded(folded, astral=tuple(m.start() for m in _ASTRAL.finditer(text)))
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    for char in text:
        width = 2 if ord(char) > 0xFFFF else 1
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
    return Folded("".join(out), tuple(starts), tuple(ends))


class Utf16Index:
    """Code point index → UTF-16 offset for one text (patterns run on the original)."""

    __slots__ = ("_astral",)

    def __init__(self, text: str) -> None:
        self._astral = [m.start() for m in _ASTRAL.finditer(text)]

    def __call__(self, index: int) -> int:
        return index + bisect_left(self._astral, index) if self._astral else index

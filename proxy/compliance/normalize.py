"""Text normalization for matching, with a map back to the draft's UTF-16 offsets.

Lexicons match on a folded copy of the draft: case folded, diacritics removed (staff
often type Latvian without them: "muļķis" and "mulkis" are the same word) and runs of
white space collapsed to one space. Every character of the folded copy remembers the
UTF-16 span of the draft character it came from, so a match found in the copy is
reported at the right place in the original — the indices of a JavaScript string.
"""

from __future__ import annotations

import unicodedata
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


@dataclass(frozen=True, slots=True)
class Folded:
    """The folded text and, per folded character, the UTF-16 span it came from."""

    text: str
    starts: tuple[int, ...] | None
    ends: tuple[int, ...] | None
    """``None`` when folding changed nothing but case (indices are the same)."""

    def span(self, start: int, end: int) -> tuple[int, int]:
        """UTF-16 ``[start, end)`` in the draft of folded ``[start, end)`` (end > start)."""
        if self.starts is None or self.ends is None:
            return start, end
        return self.starts[start], self.ends[end - 1]


def fold_text(text: str) -> Folded:
    """Fold a draft, keeping the map back to UTF-16 offsets."""
    if text.isascii() and "  " not in text and all(c == " " or not c.isspace() for c in text):
        return Folded(text.lower(), None, None)
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    for char in text:
        width = 2 if ord(char) > 0xFFFF else 1
        if char.isspace():
            if out and out[-1] == " ":
                ends[-1] = pos + width
            else:
                out.append(" ")
                starts.append(pos)
                ends.append(pos + width)
        else:
            piece = char.lower() if char.isascii() else fold_char(char)
            if not piece and ends:
                ends[-1] = pos + width  # a lone combining mark belongs to the letter before
            for c in piece:
                out.append(c)
                starts.append(pos)
                ends.append(pos + width)
        pos += width
    return Folded("".join(out), tuple(starts), tuple(ends))


class Utf16Index:
    """Code point index → UTF-16 offset for one text (patterns run on the original)."""

    __slots__ = ("_offsets",)

    def __init__(self, text: str) -> None:
        if all(ord(c) <= 0xFFFF for c in text):
            self._offsets: list[int] | None = None
        else:
            offsets = [0]
            for c in text:
                offsets.append(offsets[-1] + (2 if ord(c) > 0xFFFF else 1))
            self._offsets = offsets

    def __call__(self, index: int) -> int:
        return index if self._offsets is None else self._offsets[index]

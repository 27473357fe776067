"""Lexicon matching: one Aho-Corasick automaton for every term of every rule.

Built once per policy load; a scan costs the same however many terms the policy holds.
Terms are folded like the draft (``normalize.fold``) and match on word boundaries; a term
ending in ``*`` is a stem that matches any word it begins ("muļķ*": muļķis, muļķim,
mulkis), which is how Latvian and Albanian inflections are covered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from proxy.compliance.automaton import WordAutomaton
from proxy.compliance.normalize import fold


@dataclass(frozen=True, slots=True)
class Entry:
    """What a term stands for: a rule's term, an exception phrase, an embargo's term."""

    rule: str
    tag: str = "term"
    ref: int = -1
    """For embargo terms: the index of the embargo."""


@dataclass(slots=True)  # made per draft: see normalize.Folded
class Hit:
    entry: Entry
    start: int
    end: int
    """Indices in the folded text; end exclusive."""


def _word(char: str) -> bool:
    return char.isalnum() or char == "_"


class Lexicon:
    """``extra``: more words for the same automaton, each with a payload that ``scan_all``
    reports wherever the word occurs (anywhere, not only on word boundaries): the
    engine's prefilter words ride along, so a draft is scanned once for both."""

    def __init__(
        self, terms: Iterable[tuple[str, Entry]], extra: Mapping[str, object] | None = None
    ) -> None:
        grouped: dict[tuple[str, bool], list[Entry]] = {}
        for term, entry in terms:
            stem = term.endswith("*")
            key = fold(term.rstrip("*"))
            if key:
                grouped.setdefault((key, stem), []).append(entry)
        by_key: dict[str, list[tuple[bool, tuple[Entry, ...]]]] = {}
        for (key, stem), entries in grouped.items():
            by_key.setdefault(key, []).append((stem, tuple(dict.fromkeys(entries))))
        self.size = len(grouped)
        extra = extra or {}
        self._automaton = WordAutomaton(
            {
                key: (len(key), tuple(by_key.get(key, ())), extra.get(key))
                for key in by_key.keys() | extra.keys()
            }
        )

    def scan(self, text: str) -> list[Hit]:
        """Every term occurrence on word boundaries (stems extended to the word's end)."""
        return self.scan_all(text)[0]

    def scan_all(self, text: str) -> tuple[list[Hit], list[tuple[int, object]]]:
        """The terms' hits, and (index of the last character, payload) of every ``extra``
        word occurrence, from one pass over ``text``."""
        hits: list[Hit] = []
        extras: list[tuple[int, object]] = []
        n = len(text)
        for last, (length, variants, payload) in self._automaton.find(text):
            if payload is not None:
                extras.append((last, payload))
            if not variants:
                continue
            start, end = last - length + 1, last + 1
            if start > 0 and _word(text[start]) and _word(text[start - 1]):
                continue
            open_end = end < n and _word(text[end - 1]) and _word(text[end])
            for stem, entries in variants:
                stop = end
                if stem:
                    while stop < n and _word(text[stop]):
                        stop += 1
                elif open_end:
                    continue
                hits.extend(Hit(entry, start, stop) for entry in entries)
        return hits, extras

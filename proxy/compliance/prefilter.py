"""Which of a policy's regular expressions can match a draft at all, found in one pass.

Most drafts match none of a policy's patterns, yet running each pattern over a draft costs
as much as the pattern is long. Here each pattern is read once, when the policy is loaded
(with Python's own regex parser), for words that every match must contain: in
``\\b(?:vote|support)\\s+(?:for\\s+)?our\\s+party`` every match contains "our" and "party"
and one of "vote", "support"; the longest such requirement is kept. All requirements of
all patterns go into one Aho-Corasick automaton, scanned over the folded draft (case and
diacritics removed, white space collapsed: ``normalize.fold_text``). A pattern runs only
when one of its words was seen; a pattern without a usable requirement always runs.

Patterns on the folded draft whose every match begins with one of a few words (``\b(?:vote|
support)…``) go further: the same scan gives where those words start, and the pattern is
tried only there (``regex.match`` at each start, left to right, never inside the previous
match: the matches ``finditer`` would give), instead of at every character.

This is safe for patterns on the draft as typed, too: folding a substring of the draft
gives a substring of the folded draft, and folding can only merge what a requirement
distinguishes (case, diacritics, runs of spaces), never split it. The tests compare the
engine's findings with and without this filter on many drafts.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Sequence
from re import _constants as c  # type: ignore[attr-defined]
from re import _parser as sre  # type: ignore[attr-defined]
from typing import Any

from proxy.compliance.automaton import WordAutomaton
from proxy.compliance.normalize import fold

MIN_WORD = 3
"""Shorter requirements would let a pattern run on nearly every draft: not used."""

_Words = frozenset[str]
Payload = tuple[int, tuple[int, ...], tuple[int, ...]]


def _char(op: Any, av: Any) -> str | None:
    """The character a literal or a class of one folded letter (``[Vv]``) stands for."""
    if op is c.LITERAL:
        return chr(av)
    if op is c.IN and av and all(o is c.LITERAL for o, _ in av):
        folded = {fold(chr(v)) for _, v in av}
        if len(folded) == 1:
            (one,) = folded
            if len(one) == 1 and not one.isspace():
                return one
    return None


def _quality(words: _Words) -> int:
    return min(len(w) for w in words)


def _folded(words: Iterable[str]) -> _Words | None:
    out = frozenset(fold(w) for w in words)
    return out if out and all(out) else None


def _best(options: list[_Words]) -> _Words | None:
    return max(options, key=_quality, default=None)


def _sequence(items: Sequence[tuple[Any, Any]]) -> _Words | None:
    """Words one of which every match of this sequence contains (the most selective)."""
    options: list[_Words] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            words = _folded(["".join(run)])
            if words:
                options.append(words)
            run.clear()

    for op, av in items:
        char = _char(op, av)
        if char is not None:
            run.append(char)
            continue
        if op in (c.AT, c.ASSERT, c.ASSERT_NOT):
            continue  # zero width: the literal run goes on around it
        flush()
        words: _Words | None = None
        if op is c.SUBPATTERN:
            words = _sequence(av[-1])
        elif op is c.ATOMIC_GROUP:
            words = _sequence(av)
        elif op is c.BRANCH:
            branches = [_sequence(b) for b in av[1]]
            if branches and all(b is not None for b in branches):
                words = frozenset().union(*(b for b in branches if b is not None))
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            low, _high, body = av
            if low >= 1:
                words = _sequence(body)
        if words:
            options.append(words)
    flush()
    return _best(options)


def _leading(items: Sequence[tuple[Any, Any]]) -> _Words | None:
    """Words one of which every match of this sequence begins with."""
    run: list[str] = []
    for op, av in items:
        char = _char(op, av)
        if char is not None:
            run.append(char)
            continue
        if op in (c.AT, c.ASSERT, c.ASSERT_NOT):
            continue
        if run:
            break
        if op is c.SUBPATTERN:
            return _leading(av[-1])
        if op is c.BRANCH:
            branches = [_leading(b) for b in av[1]]
            if branches and all(b is not None for b in branches):
                return frozenset().union(*(b for b in branches if b is not None))
        return None
    return frozenset(["".join(run)]) if run else None


def _parsed(regex: str) -> list[tuple[Any, Any]] | None:
    """``regex`` read by Python's own regex parser; None where it cannot be read."""
    try:
        return list(sre.parse(regex, 0))
    except (re.error, RecursionError):
        return None


def leading_words(regex: str) -> _Words | None:
    """Words (as written, lower case) one of which every match of ``regex`` begins with."""
    parsed = _parsed(regex)
    words = _leading(parsed) if parsed is not None else None
    if words is None or not all(w and w == fold(w) and w.islower() for w in words):
        return None
    return words


def required_words(regex: str) -> _Words | None:
    """Folded words one of which every match of ``regex`` contains, or None (unknown)."""
    parsed = _parsed(regex)
    words = _sequence(parsed) if parsed is not None else None
    if words is None or _quality(words) < MIN_WORD:
        return None
    return words


class Prefilter:
    """Built once per policy load from the patterns' expressions (by position).

    ``anchored``: the positions of the patterns (run on the folded draft) to be tried only
    where one of their leading words starts."""

    def __init__(self, regexes: Sequence[str], anchored: Sequence[int] = ()) -> None:
        by_word: dict[str, tuple[list[int], list[int]]] = {}
        always = set()
        for i, regex in enumerate(regexes):
            words = required_words(regex)
            if words is None:
                always.add(i)
            for word in words or ():
                by_word.setdefault(word, ([], []))[0].append(i)
        self.anchored: dict[int, _Words] = {}
        for i in anchored:
            lead = leading_words(regexes[i])
            if lead is not None:
                self.anchored[i] = lead
                for word in lead:
                    by_word.setdefault(word, ([], []))[1].append(i)
        self.always = frozenset(always)
        self.size = len(regexes)
        self.words: dict[str, Payload] = {
            word: (len(word), tuple(required), tuple(leading))
            for word, (required, leading) in by_word.items()
        }
        """Every word to look for, with (its length, the patterns requiring it, the
        anchored patterns it begins): what ``collect`` takes, from any automaton."""

    @functools.cached_property
    def _automaton(self) -> WordAutomaton[Payload]:
        """Built only for ``scan``: the engine scans these words with its lexicon's
        automaton (``Lexicon(extra=words)``) and calls ``collect``."""
        return WordAutomaton(self.words)

    def candidates(self, folded: str) -> set[int]:
        """Indices of the patterns that may match the draft whose folded text is given."""
        return self.scan(folded)[0]

    def scan(self, folded: str) -> tuple[set[int], dict[int, list[int]]]:
        """The patterns that may match, and for anchored ones where they may start (in
        the folded text; an anchored pattern without starts, not in the dict, cannot
        match)."""
        return self.collect(self._automaton.find(folded))

    def collect(
        self, occurrences: Iterable[tuple[int, Any]]
    ) -> tuple[set[int], dict[int, list[int]]]:
        """``scan``'s answer from the occurrences of ``words`` (index of the last
        character, payload) found by someone else's pass over the folded draft
        (``Lexicon.scan_all``: one automaton for the lexicon and these words)."""
        found = set(self.always)
        starts: dict[int, list[int]] = {}
        for end, (length, required, leading) in occurrences:
            found.update(required)
            for i in leading:
                starts.setdefault(i, []).append(end - length + 1)
        return found, starts

    @staticmethod
    def matches(regex: re.Pattern[str], folded: str, starts: list[int]) -> list[re.Match[str]]:
        """``regex.finditer(folded)`` for a pattern that can only match at ``starts``."""
        return list(matches_at(regex, folded, sorted(set(starts))))

def matches_at(pattern: re.Pattern[str], text: str, places: list[int]) -> Iterator[re.Match[str]]:
    """``pattern.finditer(text)`` for a pattern that can only match at ``places`` (in
    increasing order): a match is looked for at each place not inside the previous one,
    as ``finditer`` does at every position; a look-behind still sees the text before the
    place (``match(text, pos)`` does not cut the string there)."""
    done = 0
    for pos in places:
        if pos >= done:
            m = pattern.match(text, pos)
            if m is not None:
                yield m
                done = m.end()

"""Which of a policy's regular expressions can match a draft at all, found in one pass.

Most drafts match none of a policy's patterns, yet running each pattern over a draft costs
as much as the pattern is long. Here each pattern is read once, when the policy is loaded
(with Python's own regex parser), for words that every match must contain: in
``\\b(?:vote|support)\\s+(?:for\\s+)?our\\s+party`` every match contains "our" and "party"
and one of "vote", "support"; the longest such requirement is kept. All requirements of
all patterns go into one Aho-Corasick automaton, scanned over the folded draft (case and
diacritics removed, white space collapsed: ``normalize.fold_text``). A pattern runs only
when one of its words was seen; a pattern without a usable requirement always runs.

This is safe for patterns on the draft as typed, too: folding a substring of the draft
gives a substring of the folded draft, and folding can only merge what a requirement
distinguishes (case, diacritics, runs of spaces), never split it. The tests compare the
engine's findings with and without this filter on many drafts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from re import _constants as c  # type: ignore[attr-defined]
from re import _parser as sre  # type: ignore[attr-defined]
from typing import Any

import ahocorasick

from proxy.compliance.normalize import fold

MIN_WORD = 3
"""Shorter requirements would let a pattern run on nearly every draft: not used."""

_Words = frozenset[str]


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


def required_words(regex: str) -> _Words | None:
    """Folded words one of which every match of ``regex`` contains, or None (unknown)."""
    try:
        parsed = sre.parse(regex, 0)
    except (re.error, RecursionError):
        return None
    words = _sequence(list(parsed))
    if words is None or _quality(words) < MIN_WORD:
        return None
    return words


class Prefilter:
    """Built once per policy load from the patterns' expressions (by position)."""

    def __init__(self, regexes: Sequence[str]) -> None:
        self.always: frozenset[int] = frozenset()
        by_word: dict[str, list[int]] = {}
        always = set()
        for i, regex in enumerate(regexes):
            words = required_words(regex)
            if words is None:
                always.add(i)
                continue
            for word in words:
                by_word.setdefault(word, []).append(i)
        self.always = frozenset(always)
        self.size = len(regexes)
        self._automaton: Any = None
        if by_word:
            self._automaton = ahocorasick.Automaton()
            for word, indices in by_word.items():
                self._automaton.add_word(word, tuple(indices))
            self._automaton.make_automaton()

    def candidates(self, folded: str) -> set[int]:
        """Indices of the patterns that may match the draft whose folded text is given."""
        found = set(self.always)
        if self._automaton is not None and len(found) < self.size:
            for _end, indices in self._automaton.iter(folded):
                found.update(indices)
        return found

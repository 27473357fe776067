"""A rule's regular expressions, run on the draft as typed or on its folded form.

When an expression has a group, the finding covers group 1 only (the context around it,
such as "personal number:", is not underlined). With ``requires`` (words one of which
every match contains), the expression runs only on drafts holding one of them. With
``near``, a match counts only when a second expression matches close to it; each
expression runs once over the draft, so the pair costs what the two cost alone.
"""

from __future__ import annotations

import re
from bisect import bisect_right

from ahocorasick_rs import AhoCorasick

from proxy.compliance.config import Pattern
from proxy.compliance.detectors import Hit
from proxy.compliance.normalize import Draft, fold, fold_pattern

_SENTENCE_END = re.compile(r"[.!?\n]\s")
"""Where a sentence ends (for ``near.same_sentence``)."""
_CAPITAL = re.compile(r"(?<!\\)[A-Z]")
"""A capital letter that is not an escape (``\\W``, ``\\S`` …)."""


class PatternDetector:
    """One rule's expression."""

    def __init__(self, rule: str, pattern: Pattern) -> None:
        self.rules = frozenset({rule})
        self.rule = rule
        self.kind = pattern.kind
        self.on_folded = pattern.fold
        self.requires = [w for w in (fold(r) for r in pattern.requires) if w]
        self.regex = self._compile(pattern.regex, pattern)
        near = pattern.near
        self.near = None if near is None else (self._compile(near.regex, pattern), near.within)
        self.same_sentence = near is not None and near.same_sentence

    @staticmethod
    def _compile(regex: str, pattern: Pattern) -> re.Pattern[str]:
        if pattern.fold:
            # The folded draft has no capitals: only an expression with capitals of its
            # own needs IGNORECASE (which costs ten times as much on a long draft).
            regex = fold_pattern(regex)
            return re.compile(regex, re.IGNORECASE if _CAPITAL.search(regex) else 0)
        return re.compile(regex, re.IGNORECASE if pattern.ignore_case else 0)

    def find(self, draft: Draft) -> list[Hit]:
        """Matches in the draft, then those only its disguised reading holds (the word
        view of the folded draft, the cased view of the draft as typed)."""
        if self.on_folded:
            spans = self._spans(draft.folded)
            out = [Hit(self.rule, *draft.span(s, e), self.kind) for s, e in spans]
            words = draft.words()
            if words != draft.folded:
                out += self._disguised(out, [draft.words_span(s, e) for s, e in self._spans(words)])
            return out
        out = [Hit(self.rule, draft.utf16(s), draft.utf16(e), self.kind)
               for s, e in self._spans(draft.text)]
        cased, index = draft.cased()
        if cased is not draft.text:
            spans = self._spans(cased)
            if index is not None:
                spans = [(index[s], index[e - 1] + 1) for s, e in spans]
            out += self._disguised(out, [(draft.utf16(s), draft.utf16(e)) for s, e in spans])
        return out

    def _spans(self, text: str) -> list[tuple[int, int]]:
        out = []
        for m in self.regex.finditer(text):
            group = 1 if self.regex.groups and m.start(1) >= 0 else 0
            start, end = m.span(group)
            if end > start:
                out.append((start, end))
        if out and self.near is not None:
            regex, within = self.near
            marks = [(m.start(), m.end()) for m in regex.finditer(text)]
            ends = [e for _, e in marks]  # in order too: matches do not overlap
            if self.same_sentence:
                starts = [m.end() for m in _SENTENCE_END.finditer(text)]
                out = [(s, e) for s, e in out
                       if _close(marks, ends, *_sentence(starts, s, e, within, len(text)))]
            else:
                out = [(s, e) for s, e in out if _close(marks, ends, s - within, e + within)]
        return out

    def _disguised(self, found: list[Hit], spans: list[tuple[int, int]]) -> list[Hit]:
        seen = {(h.start, h.end) for h in found}
        return [Hit(self.rule, s, e, self.kind, disguised=True) for s, e in spans
                if (s, e) not in seen]


class Patterns:
    """Every expression of a policy: the ``requires`` words of all of them are looked for
    in one pass, then each expression runs if it requires nothing or one of its words
    is there."""

    def __init__(self, patterns: list[PatternDetector]) -> None:
        self.patterns = patterns
        self.rules = frozenset(p.rule for p in patterns)
        words = sorted({w for p in patterns for w in p.requires})
        self._automaton = AhoCorasick(words) if words else None
        index = {w: i for i, w in enumerate(words)}
        self._needs = [frozenset(index[w] for w in p.requires) for p in patterns]

    def find(self, draft: Draft) -> list[Hit]:
        present: set[int] = set()
        if self._automaton is not None:
            # overlapping: one pattern's word may hide in or overlap another's ("röst"
            # and "rösta på", "su" and "support"); every one must be seen
            find = self._automaton.find_matches_as_indexes
            present = {i for i, _, _ in find(draft.folded, overlapping=True)}
            words = draft.words()
            if words != draft.folded:  # "v0te" needs "vote"
                present |= {i for i, _, _ in find(words, overlapping=True)}
            cased = draft.cased()[0]
            if cased is not draft.text:  # "SЕКRЕT" needs "sekret"
                present |= {i for i, _, _ in find(fold(cased), overlapping=True)}
        out: list[Hit] = []
        for pattern, needs in zip(self.patterns, self._needs, strict=True):
            if not needs or not needs.isdisjoint(present):
                out += pattern.find(draft)
        return out


def _sentence(starts: list[int], s: int, e: int, within: int, size: int) -> tuple[int, int]:
    """``[s - within, e + within]`` cut to the sentence of ``[s, e)`` (``starts``: where
    each sentence but the first starts)."""
    i = bisect_right(starts, s)
    first = starts[i - 1] if i else 0
    j = bisect_right(starts, max(s, e - 1))
    last = starts[j] if j < len(starts) else size
    return max(s - within, first), min(e + within, last)


def _close(marks: list[tuple[int, int]], ends: list[int], low: int, high: int) -> bool:
    """Whether a match of ``marks`` lies within ``[low, high]`` (one that ends after
    ``low`` and starts before ``high``)."""
    i = bisect_right(ends, low)
    return i < len(marks) and marks[i][0] < high

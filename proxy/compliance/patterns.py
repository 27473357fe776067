"""A rule's regular expressions, run on the draft as typed or on its folded form.

When an expression has a group, the finding covers group 1 only (the context around it,
such as "personal number:", is not underlined). With ``requires`` (words one of which
every match contains), the expression runs only on drafts holding one of them.
"""

from __future__ import annotations

import re

from ahocorasick_rs import AhoCorasick

from proxy.compliance.config import Pattern
from proxy.compliance.detectors import Hit
from proxy.compliance.normalize import Draft, fold, fold_pattern

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
        if pattern.fold:
            # The folded draft has no capitals: only an expression with capitals of its
            # own needs IGNORECASE (which costs ten times as much on a long draft).
            regex = fold_pattern(pattern.regex)
            capitals = _CAPITAL.search(regex) is not None
            self.regex = re.compile(regex, re.IGNORECASE if capitals else 0)
        else:
            self.regex = re.compile(pattern.regex, re.IGNORECASE if pattern.ignore_case else 0)

    def find(self, draft: Draft) -> list[Hit]:
        out = []
        text = draft.folded if self.on_folded else draft.text
        for m in self.regex.finditer(text):
            group = 1 if self.regex.groups and m.start(1) >= 0 else 0
            start, end = m.span(group)
            if end <= start:
                continue
            if self.on_folded:
                start, end = draft.span(start, end)
            else:
                start, end = draft.utf16(start), draft.utf16(end)
            out.append(Hit(self.rule, start, end, self.kind))
        return out


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
            present = {i for i, _, _ in self._automaton.find_matches_as_indexes(draft.folded)}
        out: list[Hit] = []
        for pattern, needs in zip(self.patterns, self._needs, strict=True):
            if not needs or not needs.isdisjoint(present):
                out += pattern.find(draft)
        return out

"""What a hit's surroundings change: disguise, quotation, cancelling context.

- A hit read through hidden characters or letters of another script, or found only in
  the word view ("1d10t", "i d i o t"), keeps its rule and severity and says so in its
  message: disguise never lowers a verdict. A word with hidden characters inside it or
  with letters of two scripts that matches nothing is still shown: an ``info`` finding
  under ``unsafe-link`` (the rule for text that imitates something it is not), kind
  ``hidden-characters``, when the policy sets that rule.
- A rule's ``unless`` expressions cancel its hits in a sentence they match (a denial of a
  rumour, a poll figure reported); its ``quoted`` severity applies to hits inside
  quotation marks (the title of a work).
"""

from __future__ import annotations

import itertools
import re
from bisect import bisect_left
from collections import Counter

from proxy import i18n
from proxy.compliance.config import Rule
from proxy.compliance.detectors import Hit
from proxy.compliance.normalize import Draft, fold, fold_pattern

HIDDEN_KIND = "hidden-characters"
HIDDEN_RULE = "unsafe-link"
_OWN_KINDS = ("disguised", HIDDEN_KIND, "unread")
_REACH = 300
"""Characters read on each side of a hit for its sentence."""
MAX_CONTEXTS = 64
"""Hits of one rule whose sentences are read for ``unless`` and quotes, per draft."""
_END = re.compile(r"[.!?\n]\s")
_OPEN, _CLOSE = "“„«‘‚", "”»’"


def message(kind: str | None, lang: str) -> str | None:
    """The engine's own text for ``kind`` (None: the policy's message applies)."""
    return i18n.text("compliance", kind, lang) if kind in _OWN_KINDS else None


class Disguise:
    def __init__(self, rules: dict[str, Rule]) -> None:
        self.unless = {
            rule_id: [re.compile(fold_pattern(u), re.IGNORECASE) for u in rule.unless]
            for rule_id, rule in rules.items()
            if rule.unless
        }
        self.quoted = {rule_id: rule.quoted for rule_id, rule in rules.items() if rule.quoted}
        self.next_sentence = {
            rule_id for rule_id, rule in rules.items() if rule.unless_reach == "next-sentence"
        }
        self.hidden_rule = HIDDEN_RULE in rules

    def review(self, draft: Draft, hits: list[Hit]) -> list[Hit]:
        if self.unless or self.quoted:
            # the sentences around a rule's first hits are read; past MAX_CONTEXTS (a
            # draft of one word repeated) its hits stand as found: linear, fail closed
            read: Counter[str] = Counter()
            kept = []
            for hit in hits:
                read[hit.rule] += 1
                if read[hit.rule] > MAX_CONTEXTS or not self._context(draft, hit):
                    kept.append(hit)
            hits = kept
        spans = draft.disguised()
        if not spans:
            return hits
        hits.sort(key=lambda h: h.start)
        starts = [h.start for h in hits]
        longest = max((h.end - h.start for h in hits), default=0)
        for start, end in spans:
            start, end = draft.utf16(start), draft.utf16(end)
            inside = [
                h
                for h in hits[bisect_left(starts, start - longest) : bisect_left(starts, end)]
                if h.start < end and start < h.end
            ]
            for hit in inside:
                hit.disguised = True
            if not inside and self.hidden_rule:
                hits.append(Hit(HIDDEN_RULE, start, end, HIDDEN_KIND))
        return hits

    def _context(self, draft: Draft, hit: Hit) -> bool:
        """Whether ``hit`` is cancelled (True); lowers it when quoted (``quoted_as``)."""
        unless, quoted = self.unless.get(hit.rule), self.quoted.get(hit.rule)
        if (unless is None and quoted is None) or hit.end <= hit.start:
            return False
        before = draft.typed(max(0, hit.start - _REACH), hit.start)
        after = draft.typed(hit.end, hit.end + _REACH)
        ends = list(_END.finditer(before))
        before = before[ends[-1].end() :] if ends else before
        sentences = 2 if hit.rule in self.next_sentence else 1
        ends = list(itertools.islice(_END.finditer(after), sentences))
        after = after[: ends[-1].start() + 1] if len(ends) == sentences else after
        if unless and any(u.search(fold(before + draft.typed(hit.start, hit.end) + after))
                          for u in unless):
            return True
        if quoted and _in_quotes(before, after):
            hit.quoted_as = quoted
        return False


def _in_quotes(before: str, after: str) -> bool:
    opened = max(before.rfind(c) for c in _OPEN)
    if opened >= 0 and max(before.rfind(c) for c in _CLOSE) < opened:
        return any(c in after for c in _CLOSE)
    return before.count('"') % 2 == 1 and '"' in after

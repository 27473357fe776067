"""The compliance engine: a draft in, findings out. Built once per policy load.

Detectors, each cheap and independent:

- lexicon terms of every rule, institution code names and embargoed terms, in one
  automaton over the folded draft (``lexicon``); a rule's exception phrases ("classified
  ads") cancel its terms inside them; the prefilter's words (below) are in the same
  automaton, so the draft is scanned once;
- each rule's regular expressions, on the draft as typed or folded, each run only when
  the folded draft holds one of the words every match of it contains (``prefilter``);
- ``personal-data`` identifiers (``identifiers``) and ``unsafe-link`` links (``links``);
- context rules: attachments (``minors-consent``, ``copyright``), the time of day
  (``working-hours``), the account (``official-account``).

Findings of one rule never overlap (the longest wins); findings of different rules may.
They are ordered by position; draft-wide findings (start == end == 0) come first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import cast
from zoneinfo import ZoneInfo

from proxy.compliance.config import Rule, RuleId, Severity
from proxy.compliance.identifiers import Identifiers
from proxy.compliance.lexicon import Entry, Lexicon
from proxy.compliance.links import LinkChecker
from proxy.compliance.model import CheckRequest, CheckResult, Finding
from proxy.compliance.normalize import Utf16Index, fold_pattern, fold_text
from proxy.compliance.prefilter import Prefilter
from proxy.policy.model import Policy


@dataclass(slots=True)  # made per draft: see normalize.Folded
class _Raw:
    rule: str
    start: int
    end: int
    kind: str | None = None
    ref: int = -1


class Engine:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        config = policy.compliance
        self.rules: dict[str, Rule] = {str(k): v for k, v in config.rules.items()}
        self.embargoes = config.embargoes
        terms: list[tuple[str, Entry]] = []
        for rule_id, rule in self.rules.items():
            for items in rule.terms.values():
                terms += [(term, Entry(rule_id)) for term in items]
            for items in rule.exceptions.values():
                terms += [(term, Entry(rule_id, "except")) for term in items]
        if "classified" in self.rules:
            terms += [(term, Entry("classified")) for term in config.code_names]
        if "embargo" in self.rules:
            for i, embargo in enumerate(config.embargoes):
                terms += [(term, Entry("embargo", ref=i)) for term in embargo.terms]
        sources = [(rule_id, p) for rule_id, rule in self.rules.items() for p in rule.patterns]
        self.patterns: list[tuple[str, re.Pattern[str], str | None, bool]] = [
            (
                rule_id,
                re.compile(fold_pattern(p.regex), re.IGNORECASE)
                if p.fold
                else re.compile(p.regex, re.IGNORECASE if p.ignore_case else 0),
                p.kind,
                p.fold,
            )
            for rule_id, p in sources
        ]
        """(rule, expression, kind, on the folded draft) of every pattern of every rule."""
        self.prefilter = Prefilter(
            [fold_pattern(p.regex) if p.fold else p.regex for _, p in sources],
            anchored=[i for i, (_, p) in enumerate(sources) if p.fold],
        )
        self.lexicon = Lexicon(terms, extra=self.prefilter.words)
        """The terms, and the prefilter's words: one pass over each draft finds both."""
        self._pattern_order = [(not p.fold, i) for i, (_, p) in enumerate(sources)].__getitem__
        self.identifiers = (
            Identifiers(config.personal_data) if "personal-data" in self.rules else None
        )
        self.links = (
            LinkChecker(config.links, policy.institution.domains)
            if "unsafe-link" in self.rules
            else None
        )
        self.tz = ZoneInfo(policy.institution.timezone)
        self._text_cache: dict[tuple[str, str | None, str], tuple[str, str]] = {}
        """Messages by (rule, kind, language): policy texts only, bounded by the policy."""
        self._clean: dict[str, CheckResult] = {}
        self._graded = {
            account: {
                rule_id: (rule.severity.of(account), rule.severity.of(account).rank)
                for rule_id, rule in self.rules.items()
            }
            for account in ("official", "personal")
        }
        """Account → rule → (severity, its rank): read per finding, not computed (the
        enum's hash and properties are Python code)."""

    def check(self, request: CheckRequest, policy_version: str) -> CheckResult:
        raw = self._text_findings(request.text, request.at)
        if request.attachments or request.account == "personal" or (
            request.official_allowed is False
        ):
            raw += self._context_findings(request)
        if not raw:  # most drafts: nothing to sort, rank or validate
            return self.clean(policy_version)
        graded = self._graded[request.account]
        kept = [(r, *graded[r.rule]) for r in _without_overlaps(raw)]
        kept.sort(key=lambda k: (k[0].start, k[0].end, -k[2], k[0].rule))
        findings = [self._finding(r, severity, request) for r, severity, _ in kept]
        verdict = _BY_RANK[max(rank for _, _, rank in kept)]
        return CheckResult(verdict=verdict, policy=policy_version, findings=findings)

    def clean(self, policy_version: str) -> CheckResult:
        """The answer for a draft without findings: one (frozen) object per version."""
        result = self._clean.get(policy_version)
        if result is None:
            if len(self._clean) > 16:
                self._clean.clear()
            result = CheckResult(verdict="ok", policy=policy_version, findings=[])
            self._clean[policy_version] = result
        return result

    # --- detectors ------------------------------------------------------------------

    def _text_findings(self, text: str, at: datetime) -> list[_Raw]:
        if not text:
            return []
        out: list[_Raw] = []
        folded = fold_text(text)
        hits, occurrences = self.lexicon.scan_all(folded.text)
        shields: dict[str, list[tuple[int, int]]] = {}
        for hit in hits:
            if hit.entry.tag == "except":
                shields.setdefault(hit.entry.rule, []).append((hit.start, hit.end))
        for hit in hits:
            entry = hit.entry
            if entry.tag != "term":
                continue
            if any(a <= hit.start and hit.end <= b for a, b in shields.get(entry.rule, ())):
                continue
            if entry.ref >= 0 and at >= self.embargoes[entry.ref].until:
                continue
            start, end = folded.span(hit.start, hit.end)
            out.append(_Raw(entry.rule, start, end, ref=entry.ref))
        utf16: Utf16Index | None = None
        # Patterns on the folded draft first, then those on the draft as typed (each in
        # policy order): ties between findings are kept in the order they are found.
        candidates, starts = self.prefilter.collect(occurrences)
        anchored = self.prefilter.anchored
        for i in sorted(candidates, key=self._pattern_order):
            rule_id, regex, kind, on_folded = self.patterns[i]
            anchors = starts.get(i)
            if anchors is not None:
                matches: Iterable[re.Match[str]] = Prefilter.matches(regex, folded.text, anchors)
            elif i in anchored:
                continue  # none of the words its matches begin with is in the draft
            else:
                matches = regex.finditer(folded.text if on_folded else text)
            for m in matches:
                group = 1 if regex.groups and m.start(1) >= 0 else 0
                if m.end(group) <= m.start(group):
                    continue
                if on_folded:
                    start, end = folded.span(m.start(group), m.end(group))
                else:
                    utf16 = utf16 or Utf16Index(folded.astral)
                    start, end = utf16(m.start(group)), utf16(m.end(group))
                out.append(_Raw(rule_id, start, end, kind))
        if not (self.identifiers or self.links):
            return out
        utf16 = utf16 or Utf16Index(folded.astral)
        if self.identifiers is not None:
            out += [
                _Raw("personal-data", utf16(s.start), utf16(s.end), s.kind)
                for s in self.identifiers.find(text)
            ]
        if self.links is not None:
            out += [
                _Raw("unsafe-link", utf16(s.start), utf16(s.end), s.kind)
                for s in self.links.find(text)
            ]
        return out

    def _context_findings(self, request: CheckRequest) -> list[_Raw]:
        out: list[_Raw] = []
        kinds = {a.kind for a in request.attachments}
        if kinds & {"image", "video"}:
            out.append(_Raw("minors-consent", 0, 0, "video" if "video" in kinds else "image"))
        if kinds:
            out.append(_Raw("copyright", 0, 0, "attachment"))
        if request.account == "personal" and self.in_working_hours(request.at):
            out.append(_Raw("working-hours", 0, 0))
        if request.account == "official" and request.official_allowed is False:
            out.append(_Raw("official-account", 0, 0))
        return [r for r in out if r.rule in self.rules]

    def in_working_hours(self, at: datetime) -> bool:
        local = at.astimezone(self.tz)
        clock = local.time().replace(tzinfo=None)
        return any(
            w.contains(local.weekday(), clock) for w in self.policy.institution.working_hours
        )

    # --- presentation -----------------------------------------------------------------

    def _finding(self, raw: _Raw, severity: Severity, request: CheckRequest) -> Finding:
        lang = request.lang or "en"
        message, guideline = self._texts(raw.rule, raw.kind, lang)
        if raw.ref >= 0 and "{until}" in message:
            until = self.embargoes[raw.ref].until.astimezone(self.tz)
            message = message.replace("{until}", until.strftime("%Y-%m-%d %H:%M"))
        return Finding(  # validated: as cheap as model_construct in pydantic 2
            rule=cast(RuleId, raw.rule),  # keys of ``rules`` are rule ids
            severity=severity,
            start=raw.start,
            end=raw.end,
            message=message,
            guideline=guideline,
        )

    def _texts(self, rule_id: str, kind: str | None, lang: str) -> tuple[str, str]:
        """A finding's message and guideline text in ``lang`` (from the policy, kept)."""
        key = (rule_id, kind, lang)
        texts = self._text_cache.get(key)
        if texts is None:
            rule = self.rules[rule_id]
            text = (rule.messages.get(kind) if kind else None) or rule.message
            guideline = self.policy.guidelines.get(rule.guideline or "")
            texts = (text.get(lang), guideline.text.get(lang) if guideline else "")
            self._text_cache[key] = texts
        return texts


_BY_RANK = {Severity.info.rank: "info", Severity.warn.rank: "warn", Severity.block.rank: "block"}


def _without_overlaps(raw: list[_Raw]) -> list[_Raw]:
    """Per rule, drop findings that overlap a longer (or earlier) one of the same rule."""
    kept: list[_Raw] = []
    by_rule: dict[str, list[_Raw]] = {}
    for r in sorted(raw, key=lambda r: (r.start, -(r.end - r.start))):
        same = by_rule.setdefault(r.rule, [])
        if r.end > r.start and any(r.start < k.end and k.start < r.end for k in same):
            continue
        if r.end == r.start and any(k.end == k.start for k in same):
            continue
        same.append(r)
        kept.append(r)
    return kept


__all__ = ["Engine", "Severity"]

"""The compliance engine: a draft in, findings out. Built once per policy load.

``Engine(config, setting)`` takes the policy's ``compliance:`` section and what else a
check needs from the policy (``Setting``: time zone, working hours, the institution's
domains, guideline texts), so this package does not import ``proxy.policy``;
``Engine.from_policy`` reads both from anything shaped like a policy.

A check (docs/rules.md):

1. reads the draft once (``normalize.Draft``: folded text, word view, offsets);
2. runs the policy's detectors (``registry.build``: lexicons, patterns, identifiers,
   links), each reporting ``Hit``s at UTF-16 offsets;
3. drops the hits a rule's ``unless`` context cancels and the embargo terms already
   released, lowers those in quotation marks where the rule says so (``quoted``), and
   marks those read through hidden or look-alike characters; a disguised word that
   matches nothing is an ``info`` finding of its own (``disguise``);
4. adds the context rules: attachments (``minors-consent``, ``copyright``), the time of
   day (``working-hours``), the account (``official-account``);
5. gives each finding its ways forward (``ways``: the rule's, the policy's or the
   defaults, per severity) and marks it ``simulated`` where the rule, the policy or the
   platform runs in simulation. The verdict counts the findings that are not simulated.

Findings of one rule never overlap (the longest wins); findings of different rules may.
They are ordered by position; draft-wide findings (start == end == 0) come first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Protocol, cast
from zoneinfo import ZoneInfo

from proxy.compliance import disguise
from proxy.compliance.config import (
    ComplianceConfig,
    Rule,
    RuleId,
    Severity,
    Way,
    simulated,
    ways_of,
)
from proxy.compliance.detectors import Hit, Registry
from proxy.compliance.model import CheckRequest, CheckResult, Finding
from proxy.compliance.normalize import Draft
from proxy.compliance.registry import build

MAX_PER_RULE = 100
"""Findings of one rule shown one by one; the rest are shown as one (a draft made of
thousands of matches is answered as quickly as a post)."""


class Localized(Protocol):
    def get(self, lang: str) -> str: ...


class Window(Protocol):
    def contains(self, weekday: int, clock: time) -> bool: ...


@dataclass(frozen=True)
class Setting:
    """What the engine needs from the rest of the policy."""

    timezone: str = "UTC"
    working_hours: Sequence[Window] = ()
    domains: Sequence[str] = ()
    """The institution's own domains (look-alike links)."""
    guidelines: Mapping[str, Localized] = field(default_factory=dict)
    """Guideline key → its text, shown with each finding of a rule that names it."""
    review_official: bool = False
    """Posts as an official account need a superior's review (policy
    ``reviews.official_accounts``): an ``official-account`` finding of kind ``review``
    whose only way forward is ``review``."""


class _Institution(Protocol):
    @property
    def timezone(self) -> str: ...
    @property
    def working_hours(self) -> Sequence[Window]: ...
    @property
    def domains(self) -> Sequence[str]: ...


class _Guideline(Protocol):
    @property
    def text(self) -> Localized: ...


class PolicyLike(Protocol):
    @property
    def compliance(self) -> ComplianceConfig: ...
    @property
    def institution(self) -> _Institution: ...
    @property
    def guidelines(self) -> Mapping[str, _Guideline]: ...


REVIEW_KIND = "review"
"""The kind of the ``official-account`` finding that asks for a review (not a refusal of
the author's right: its message is the rule's ``messages.review``)."""


class Engine:
    def __init__(self, config: ComplianceConfig, setting: Setting | None = None) -> None:
        self.config = config
        self.setting = setting or Setting()
        self.rules: dict[str, Rule] = {str(k): v for k, v in config.rules.items()}
        self.registry: Registry = build(config, self.rules, self.setting.domains)
        self.embargoes = config.embargoes
        self.tz = ZoneInfo(self.setting.timezone)
        self.disguise = disguise.Disguise(self.rules)
        self._clean: dict[str, CheckResult] = {}
        self._ways: dict[tuple[str, Severity], list[Way]] = {}

    @classmethod
    def from_policy(cls, policy: PolicyLike) -> Engine:
        institution = policy.institution
        return cls(
            policy.compliance,
            Setting(
                timezone=institution.timezone,
                working_hours=tuple(institution.working_hours),
                domains=tuple(institution.domains),
                guidelines={key: g.text for key, g in policy.guidelines.items()},
                review_official=bool(getattr(getattr(policy, "reviews", None),
                                             "official_accounts", False)),
            ),
        )

    def check(self, request: CheckRequest, policy_version: str) -> CheckResult:
        hits = self._text_hits(request.text, request.at) if request.text else []
        hits += self._context_hits(request)
        if not hits:  # most drafts
            return self.clean(policy_version)
        kept = _at_most(MAX_PER_RULE, _without_overlaps(hits))
        graded = [(hit, self._severity(hit, request.account)) for hit in kept]
        graded.sort(key=lambda g: (g[0].start, g[0].end, -g[1].rank, g[0].rule))
        findings = [self._finding(hit, severity, request) for hit, severity in graded]
        enforced = [f.severity for f in findings if not f.simulated]
        verdict = max(enforced, key=lambda s: s.rank).value if enforced else "ok"
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

    def _text_hits(self, text: str, at: datetime) -> list[Hit]:
        draft = Draft(text)
        hits = [
            hit
            for hit in self.registry.find(draft)
            if hit.ref < 0 or at < self.embargoes[hit.ref].until
        ]
        return self.disguise.review(draft, hits)

    def _context_hits(self, request: CheckRequest) -> list[Hit]:
        out: list[Hit] = []
        kinds = {a.kind for a in request.attachments}
        if kinds & {"image", "video"}:
            out.append(Hit("minors-consent", 0, 0, "video" if "video" in kinds else "image"))
        if kinds:
            out.append(Hit("copyright", 0, 0, "attachment"))
        if request.account == "personal" and self.in_working_hours(request.at):
            out.append(Hit("working-hours", 0, 0))
        if request.account == "official" and request.official_allowed is False:
            out.append(Hit("official-account", 0, 0))
        elif request.account == "official" and request.official_allowed \
                and self.setting.review_official:
            out.append(Hit("official-account", 0, 0, REVIEW_KIND))
        return [hit for hit in out if hit.rule in self.rules]

    def in_working_hours(self, at: datetime) -> bool:
        local = at.astimezone(self.tz)
        clock = local.time().replace(tzinfo=None)
        return any(w.contains(local.weekday(), clock) for w in self.setting.working_hours)

    # --- presentation -----------------------------------------------------------------

    def _severity(self, hit: Hit, account: str) -> Severity:
        if hit.kind == disguise.HIDDEN_KIND:
            return Severity.info
        severity = self.rules[hit.rule].severity.of(account)
        if hit.quoted_as is not None and hit.quoted_as.rank < severity.rank:
            return hit.quoted_as
        return severity

    def _finding(self, hit: Hit, severity: Severity, request: CheckRequest) -> Finding:
        lang = request.lang or "en"
        rule = self.rules[hit.rule]
        text = (rule.messages.get(hit.kind) if hit.kind else None) or rule.message
        message = disguise.message(hit.kind, lang) or text.get(lang)
        if hit.ref >= 0 and "{until}" in message:
            until = self.embargoes[hit.ref].until.astimezone(self.tz)
            message = message.replace("{until}", until.strftime("%Y-%m-%d %H:%M"))
        if hit.disguised:
            message = f"{message} {disguise.message('disguised', lang)}"
        guideline = self.setting.guidelines.get(rule.guideline or "")
        ways = self._ways.get((hit.rule, severity)) if hit.kind != REVIEW_KIND else ["review"]
        if ways is None:
            ways = self._ways[(hit.rule, severity)] = cast(
                list[Way], list(ways_of(self.config, hit.rule, severity)))
        return Finding(
            rule=cast(RuleId, hit.rule),  # keys of ``rules`` are rule ids
            severity=severity,
            start=hit.start,
            end=hit.end,
            message=message,
            guideline=guideline.get(lang) if guideline else "",
            ways=ways,
            simulated=simulated(self.config, hit.rule, request.platform),
        )


def _without_overlaps(hits: list[Hit]) -> list[Hit]:
    """Per rule, drop findings that overlap a longer (or earlier) one of the same rule.

    In order of start (longest first): a hit overlaps a kept one of its rule exactly
    when it starts before the end of the last one kept."""
    kept: list[Hit] = []
    reach: dict[str, int] = {}
    whole: set[str] = set()  # rules with a draft-wide finding (start == end == 0)
    for hit in sorted(hits, key=lambda h: (h.start, -(h.end - h.start), not h.disguised)):
        if hit.end == hit.start:
            if hit.rule in whole:
                continue
            whole.add(hit.rule)
        elif hit.start < reach.get(hit.rule, -1):
            continue
        else:
            reach[hit.rule] = hit.end
        kept.append(hit)
    return kept


def _at_most(limit: int, hits: list[Hit]) -> list[Hit]:
    """``hits`` (in order of start) with each rule's hits past ``limit`` joined into one."""
    count: dict[str, int] = {}
    out: list[Hit] = []
    rest: dict[str, Hit] = {}
    for hit in hits:
        seen = count[hit.rule] = count.get(hit.rule, 0) + 1
        if seen <= limit or hit.start == hit.end:
            out.append(hit)
        elif hit.rule not in rest:
            rest[hit.rule] = Hit(hit.rule, hit.start, hit.end, hit.kind, disguised=hit.disguised)
            out.append(rest[hit.rule])
        else:
            joined = rest[hit.rule]
            joined.end = max(joined.end, hit.end)
            joined.disguised = joined.disguised or hit.disguised
    return out


__all__ = ["Engine", "Setting", "Severity"]

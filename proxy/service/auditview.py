"""The audit log as people read it: one short sentence per entry, in the reader's language.

``/audit`` shows a page of entries in two lists: what people decided (requests,
approvals, rejections, revocations, overrides, false-positive reports, reviews, user
changes) first, then what Sargs did by itself (blocks, warnings, grant use, logins...),
where a run of the same event (same kind, user, platform and rules, one after the other)
is one line with its count and time span. The CSV export keeps every entry as stored.

Sentences are ``audit_<kind>`` texts in ``proxy/locales/service.yaml``; names of users,
platforms, rules and roles are filled in (``localize.py``), never ids when a name exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from proxy.i18n import Translator
from proxy.store.audit import AuditEntry

HUMAN = frozenset({
    "request", "approve", "reject", "revoke", "post-override", "false-positive",
    "review-request", "review-approve", "review-return", "review-withdraw", "user-add",
    "user-remove", "user-password", "user-roles",
})
"""Kinds that record a person's decision (shown first)."""

SEVERE = {"block": "block", "warn": "warn", "post-simulated": "warn", "approve": "approve",
          "review-approve": "approve", "reject": "reject", "review-return": "reject",
          "revoke": "reject"}
"""The tag colour of a kind."""


@dataclass(frozen=True, slots=True)
class Line:
    """One line on the page: a sentence, when, and how many entries it stands for."""

    kind: str
    sentence: str
    first: AuditEntry
    last: AuditEntry
    count: int
    tag: str

    @property
    def span(self) -> tuple[datetime, datetime]:
        return (min(self.first.at, self.last.at), max(self.first.at, self.last.at))


def rules_of(details: Mapping[str, Any]) -> list[str]:
    """The rule ids an entry names (``rule``, ``rules`` or ``findings[].rule``)."""
    found: list[str] = []
    rule = details.get("rule")
    if isinstance(rule, str):
        found.append(rule)
    rules = details.get("rules")
    if isinstance(rules, list):
        found.extend(r for r in rules if isinstance(r, str))
    findings = details.get("findings")
    if isinstance(findings, list):
        found.extend(f["rule"] for f in findings
                     if isinstance(f, Mapping) and isinstance(f.get("rule"), str))
    return list(dict.fromkeys(found))


class Sentences:
    """Turns entries into sentences for one reader."""

    def __init__(self, t: Translator, *, rule_name: Callable[[str], str],
                 role_name: Callable[[str], str], platform_name: Callable[[str | None], str],
                 duration: Callable[[float], str]) -> None:
        self.t = t
        self.rule_name = rule_name
        self.role_name = role_name
        self.platform_name = platform_name
        self.duration = duration

    def values(self, e: AuditEntry) -> dict[str, str]:
        d = e.details
        rules = rules_of(d)
        minutes = d.get("duration_minutes")
        roles = d.get("roles")
        way = d.get("way")
        would = d.get("would")
        return {
            "actor": e.actor or self.t("audit_someone"),
            "user": e.user or self.t("audit_someone"),
            "platform": self.platform_name(e.platform) or self.t("audit_a_platform"),
            "rules": ", ".join(self.rule_name(r) for r in rules) or self.t("rule_none"),
            "access": self.t(f"access_{d['access']}").lower()
            if d.get("access") in ("read", "allow") else "",
            "duration": self.duration(minutes) if isinstance(minutes, int | float) else "",
            "reason": str(d.get("reason") or "")[:300],
            "said": f": “{' '.join(str(d['reason']).split())[:300]}”" if d.get("reason") else "",
            "roles": ", ".join(self.role_name(r) for r in roles if isinstance(r, str))
            if isinstance(roles, list) else "",
            "way": self.t(f"way_{way}") if way in ("acknowledge", "justify", "report")
            else str(way or ""),
            "would": self.t(f"would_{would}") if would in ("block", "warn") else "",
            "count": str(d.get("count", "")),
            "version": f"({v})" if (v := d.get("version") or d.get("policy_version")) else "",
            "kind": e.kind,
        }

    def sentence(self, e: AuditEntry) -> str:
        key = "audit_" + e.kind.replace("-", "_")
        values = self.values(e)
        try:
            text = self.t(key, **values)
        except KeyError:
            text = self.t("audit_other", **values)
        text = " ".join(text.split()).replace(" .", ".").replace("()", "").strip()
        return text[:1].upper() + text[1:] if text.startswith(self.t("audit_someone")) else text

    def lines(self, entries: Iterable[AuditEntry]) -> tuple[list[Line], list[Line]]:
        """(people's decisions, what Sargs did) — the second with repeats collapsed."""
        human: list[Line] = []
        machine: list[Line] = []
        for e in entries:
            tag = SEVERE.get(e.kind, "")
            if e.kind in HUMAN:
                human.append(Line(e.kind, self.sentence(e), e, e, 1, tag))
                continue
            if machine and _same(machine[-1].last, e):
                prev = machine[-1]
                machine[-1] = Line(prev.kind, prev.sentence, prev.first, e, prev.count + 1,
                                   prev.tag)
                continue
            machine.append(Line(e.kind, self.sentence(e), e, e, 1, tag))
        return human, machine


def _same(a: AuditEntry, b: AuditEntry) -> bool:
    return (a.kind == b.kind and a.user == b.user and a.platform == b.platform
            and a.actor == b.actor and rules_of(a.details) == rules_of(b.details)
            and a.kind not in ("checkpoint", "policy-reload"))


def details_text(details: Mapping[str, Any], hidden: Sequence[str] = ("event_id",)) -> str:
    """The stored details as ``key: value`` pairs, for the folded-away part of a line."""
    return "; ".join(f"{k}: {v}" for k, v in details.items() if k not in hidden)

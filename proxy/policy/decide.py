"""Access decisions: who may do what on which platform, now.

How rules combine (documented for policy authors in docs/policy.md):

1. A ``deny`` entry blocks a platform for everyone; nothing overrides it, not even a grant.
2. Each role a user holds gives an access level for the platform: its rule for that
   platform (inside the rule's time windows; ``otherwise`` outside them), or the role's
   ``default``. Roles grant, so the most permissive level among the user's roles wins
   (``allow`` > ``read`` > ``block``).
3. An active grant (temporary access approved by an approver) raises the level to the
   grant's, until it expires.
4. The level decides the request: ``block`` refuses everything; ``read`` refuses posts
   to the platform's posting endpoints and every other unsafe request (POST, PUT, PATCH,
   DELETE...) that the catalog does not list as a reading call; media/video CDN
   requests are refused when every role that gives access blocks media (a grant allows
   media).
5. A user with no known role is blocked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from proxy.policy.model import Action, Policy


class RequestKind(StrEnum):
    page = "page"
    """An HTML page load (a refusal gets the block page)."""
    api = "api"
    """Any other request to the platform (a refusal gets JSON)."""
    post = "post"
    """An unsafe request to one of the platform's posting endpoints."""
    write = "write"
    """Any other unsafe request (POST, PUT, PATCH, DELETE...) the catalog does not list as
    a reading call: a like, a follow, a deletion, an unknown endpoint."""
    media = "media"
    """A request to the platform's media/video CDN."""


class Rule(StrEnum):
    """Which clause of the policy decided."""

    deny = "deny"
    role = "role"
    default = "default"
    window = "window"
    grant = "grant"
    no_role = "no-role"
    read_only = "read-only"
    media = "media"


_UNSAFE = frozenset({RequestKind.post, RequestKind.write})


@dataclass(frozen=True, slots=True)
class Subject:
    """Who is asking: a user name (if known) and the roles they hold."""

    user: str | None
    roles: frozenset[str]
    source: str = "basic"


@dataclass(frozen=True, slots=True)
class Grant:
    id: str
    user: str
    platform: str
    action: Action
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    action: Action
    """The user's effective access level to the platform."""
    platform: str
    rule: Rule
    """The clause that decided this request."""
    reason: str
    """One English sentence for logs; pages build localized text from the fields."""
    role: str | None = None
    grant: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class _Compiled:
    action: Action
    windows: tuple[tuple[frozenset[int], int, int], ...]
    otherwise: Action
    media: bool
    explicit: bool


def _minutes(t: object) -> int:
    from datetime import time

    assert isinstance(t, time)
    if t == time.max:
        return 24 * 60
    return t.hour * 60 + t.minute


class AccessPolicy:
    """A policy's access rules compiled for fast decisions (a dictionary lookup per role)."""

    def __init__(self, policy: Policy) -> None:
        self.tz = ZoneInfo(policy.institution.timezone)
        self._deny = {d.platform: d for d in policy.deny}
        self._platforms = frozenset(policy.platforms)
        self._by_role: dict[tuple[object, ...], Decision] = {}
        """Decisions made by roles alone, by what made them (bounded by the policy: its
        platforms × kinds × levels × clauses × roles); Decisions are immutable."""
        self._rules: dict[tuple[str, str], _Compiled] = {}
        for role_id, role in policy.roles.items():
            for platform_id in policy.platforms:
                rule = role.platforms.get(platform_id)
                if rule is None:
                    self._rules[role_id, platform_id] = _Compiled(
                        role.default, (), role.default, not role.block_media, False
                    )
                    continue
                windows = tuple(
                    (frozenset(w.days), _minutes(w.start), _minutes(w.end)) for w in rule.windows
                )
                media = rule.media if rule.media is not None else not role.block_media
                self._rules[role_id, platform_id] = _Compiled(
                    rule.action, windows, rule.otherwise, media, True
                )

    def level(self, role: str, platform: str, now: datetime) -> tuple[Action, Rule, bool]:
        """One role's access level to a platform at ``now``, the clause, and media."""
        compiled = self._rules.get((role, platform))
        if compiled is None:
            return Action.block, Rule.no_role, False
        if not compiled.windows:
            return compiled.action, Rule.role if compiled.explicit else Rule.default, compiled.media
        local = now.astimezone(self.tz)
        weekday, minute = local.weekday(), local.hour * 60 + local.minute
        for days, start, end in compiled.windows:
            if weekday in days and start <= minute < end:
                return compiled.action, Rule.window, compiled.media
        return compiled.otherwise, Rule.window, compiled.media

    def decide(
        self,
        subject: Subject,
        platform: str,
        kind: RequestKind,
        now: datetime,
        grants: Iterable[Grant] = (),
    ) -> Decision:
        denied = self._deny.get(platform)
        if denied is not None:
            return Decision(
                False, Action.block, platform, Rule.deny,
                f"{platform} is blocked for everyone: {denied.reason.en}",
            )
        best, best_rule, best_role, media = Action.block, Rule.no_role, None, False
        for role in subject.roles:
            action, rule, role_media = self.level(role, platform, now)
            if rule is Rule.no_role:
                continue
            if best_role is None or action.rank > best.rank:
                best, best_rule, best_role = action, rule, role
            if action is not Action.block:
                media = media or role_media
        grant_id, expires = None, None
        for grant in grants:
            if (
                grant.platform == platform
                and grant.user == subject.user
                and grant.expires_at > now
                and grant.action.rank > best.rank
            ):
                best, best_rule = grant.action, Rule.grant
                grant_id, expires = grant.id, grant.expires_at
                media = True
        if best_role is None and grant_id is None:
            return Decision(
                False, Action.block, platform, Rule.no_role,
                f"no known role for {subject.user or 'this address'}",
            )
        if grant_id is None:  # decided by roles: the same few answers again and again
            key = (platform, kind, best, best_rule, best_role, media)
            decision = self._by_role.get(key)
            if decision is None:
                decision = self._by_role[key] = self._decision(
                    platform, kind, best, best_rule, best_role, media, None, None)
            return decision
        return self._decision(platform, kind, best, best_rule, best_role, media, grant_id,
                              expires)

    @staticmethod
    def _decision(
        platform: str, kind: RequestKind, best: Action, best_rule: Rule,
        best_role: str | None, media: bool, grant_id: str | None, expires: datetime | None,
    ) -> Decision:
        who = f"grant {grant_id}" if grant_id else f"role {best_role}"
        if best is Action.block:
            return Decision(False, best, platform, best_rule,
                            f"{who} blocks {platform} ({best_rule})", best_role, grant_id, expires)
        if kind in _UNSAFE and best is not Action.allow:
            return Decision(False, best, platform, Rule.read_only,
                            f"{who} gives read-only access to {platform}", best_role, grant_id,
                            expires)
        if kind is RequestKind.media and not media:
            return Decision(False, best, platform, Rule.media,
                            f"{who} blocks {platform} media and video", best_role, grant_id,
                            expires)
        return Decision(True, best, platform, best_rule,
                        f"{who} gives {best} access to {platform} ({best_rule})", best_role,
                        grant_id, expires)

    def matrix(self, now: datetime | None = None) -> dict[str, dict[str, _Compiled]]:
        """role → platform → compiled rule (for ``sargs policy matrix``)."""
        del now
        out: dict[str, dict[str, _Compiled]] = {}
        for (role, platform), compiled in self._rules.items():
            out.setdefault(role, {})[platform] = compiled
        return out

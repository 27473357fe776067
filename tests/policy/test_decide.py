"""Access decisions: roles, windows at their edges, deny wins, grants, media, read-only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from proxy.policy.decide import AccessPolicy, Grant, RequestKind, Rule, Subject
from proxy.policy.loader import load
from proxy.policy.model import Action
from proxy.settings import ROOT

RIGA = ZoneInfo("Europe/Riga")


@pytest.fixture(scope="module")
def access() -> AccessPolicy:
    return AccessPolicy(load(ROOT / "policies" / "institutions" / "example").policy)


def who(*roles: str, user: str = "u") -> Subject:
    return Subject(user, frozenset(roles))


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A time in Riga in the week of Monday 2026-11-23 (day 0 = Monday)."""
    return datetime(2026, 11, 23 + day, hour, minute, second, tzinfo=RIGA)


@pytest.mark.parametrize(
    ("roles", "platform", "kind", "allowed", "action", "rule"),
    [
        (("staff",), "linkedin", RequestKind.post, True, Action.allow, Rule.role),
        (("staff",), "reddit", RequestKind.page, True, Action.read, Rule.default),
        (("staff",), "reddit", RequestKind.post, False, Action.read, Rule.read_only),
        (("staff",), "tiktok", RequestKind.page, False, Action.block, Rule.role),
        (("staff",), "x", RequestKind.media, False, Action.read, Rule.media),
        (("staff",), "youtube", RequestKind.media, True, Action.read, Rule.role),
        (("intern",), "facebook", RequestKind.page, False, Action.block, Rule.default),
        (("communicator",), "tiktok", RequestKind.post, True, Action.allow, Rule.default),
        (("communicator",), "vk", RequestKind.page, False, Action.block, Rule.deny),
        (("intern", "expert"), "x", RequestKind.post, True, Action.allow, Rule.role),
        # both block; which clause is reported depends on set order (intern's default or
        # expert's rule), so only the outcome is checked
        (("intern", "expert"), "tiktok", RequestKind.page, False, Action.block, None),
        (("nonexistent",), "x", RequestKind.page, False, Action.block, Rule.no_role),
        ((), "x", RequestKind.page, False, Action.block, Rule.no_role),
    ],
)
def test_decisions(access: AccessPolicy, roles: tuple[str, ...], platform: str,
                   kind: RequestKind, allowed: bool, action: Action, rule: Rule | None) -> None:
    decision = access.decide(who(*roles), platform, kind, at(0, 10))
    assert (decision.allowed, decision.action) == (allowed, action)
    if rule is not None:
        assert decision.rule is rule


@pytest.mark.parametrize(
    ("when", "allowed"),
    [
        (at(0, 8, 29, 59), True), (at(0, 8, 30), False),
        (at(0, 11, 59, 59), False), (at(0, 12, 0), True), (at(0, 12, 59, 59), True),
        (at(0, 13, 0), False), (at(0, 16, 59, 59), False), (at(0, 17, 0), True),
        (at(0, 23, 59, 59), True), (at(4, 15, 29, 59), False), (at(4, 15, 30), True),
        (at(5, 10), True), (at(6, 23, 59), True),
        # the same instant given in UTC decides the same (Riga is UTC+2 in November)
        (datetime(2026, 11, 23, 10, 0, tzinfo=UTC), True),
        (datetime(2026, 11, 23, 11, 0, tzinfo=UTC), False),
    ],
)
def test_time_windows_at_their_edges(access: AccessPolicy, when: datetime,
                                     allowed: bool) -> None:
    decision = access.decide(who("staff"), "facebook", RequestKind.post, when)
    assert decision.allowed is allowed
    assert decision.rule is (Rule.window if allowed else Rule.read_only)


def test_deny_wins_over_grants(access: AccessPolicy) -> None:
    grant = Grant("g", "u", "vk", Action.allow, at(1, 0).astimezone(UTC))
    decision = access.decide(who("communicator"), "vk", RequestKind.page, at(0, 10), [grant])
    assert decision.rule is Rule.deny
    assert not decision.allowed


def test_grants_raise_access_until_they_expire(access: AccessPolicy) -> None:
    now = at(0, 10)
    grant = Grant("g1", "u", "facebook", Action.allow, now + timedelta(hours=1))
    post = access.decide(who("intern"), "facebook", RequestKind.post, now, [grant])
    assert (post.allowed, post.rule, post.grant) == (True, Rule.grant, "g1")
    assert post.expires_at == grant.expires_at
    media = access.decide(who("intern"), "facebook", RequestKind.media, now, [grant])
    assert media.allowed  # a grant allows media
    later = access.decide(who("intern"), "facebook", RequestKind.page,
                          now + timedelta(hours=1), [grant])
    assert not later.allowed
    other_user = access.decide(who("intern", user="v"), "facebook", RequestKind.page, now,
                               [grant])
    assert not other_user.allowed
    # a grant never lowers access
    low = Grant("g2", "u", "linkedin", Action.read, now + timedelta(hours=1))
    assert access.decide(who("staff"), "linkedin", RequestKind.post, now, [low]).allowed

"""The per-account cache against a real slapd: TTL, one query per account, single flight,
fail-static when slapd stops, roles combining from two groups, a disabled account."""

from __future__ import annotations

import asyncio
import logging

import pytest
from prometheus_client import CollectorRegistry

from proxy.directory.cache import DirectoryMetrics, GroupCache
from proxy.directory.ldap import Directory, DirectoryConfig, DirectoryUnavailable
from proxy.directory.negotiate import Principal
from proxy.directory.service import DirectoryIdentity
from tests.support.slapd import ROOT_DN, ROOT_PW, SUFFIX, Slapd


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def principal(name: str) -> Principal:
    return Principal(f"{name}@EXAMPLE.TEST", name, "EXAMPLE.TEST")


def build(slapd: Slapd, clock: Clock, mapping: dict[str, list[str]]) -> tuple[
    DirectoryIdentity, Directory, CollectorRegistry
]:
    directory = Directory(DirectoryConfig(slapd.url, SUFFIX, ROOT_DN, ROOT_PW, timeout=1.0))
    registry = CollectorRegistry()
    cache = GroupCache(directory, ttl=60, clock=clock, metrics=DirectoryMetrics(registry))
    return DirectoryIdentity(None, cache, lambda: mapping), directory, registry


MAPPING = {"press": ["communications"], "staff": ["staff"], "heads": ["approver"]}


async def test_one_query_per_account_per_ttl_and_changes_after_it(slapd: Slapd) -> None:
    alice = slapd.add_user("alice")
    staff = slapd.add_group("staff", [alice])
    clock = Clock()
    identity, directory, _ = build(slapd, clock, MAPPING)

    first = await identity.resolve(principal("alice"))
    searches = directory.searches
    assert first.roles == {"staff"}
    assert first.answered_by == "directory"
    for _ in range(50):
        again = await identity.resolve(principal("alice"))
    assert again.answered_by == "cache"
    assert directory.searches == searches

    slapd.add_group("press", [alice])  # a new group: seen only after the TTL
    slapd.modify(staff, "delete: member", f"member: {alice}", "-",
                 "add: member", f"member: cn=nobody,{SUFFIX}")
    clock.now += 59
    assert (await identity.resolve(principal("alice"))).roles == {"staff"}
    clock.now += 2
    after = await identity.resolve(principal("alice"))
    assert after.roles == {"communications"}
    assert after.answered_by == "directory"


async def test_concurrent_first_requests_share_one_lookup(slapd: Slapd) -> None:
    slapd.add_group("staff", [slapd.add_user("alice")])
    identity, _directory, registry = build(slapd, Clock(), MAPPING)
    results = await asyncio.gather(*(identity.resolve(principal("alice")) for _ in range(20)))
    assert {r.roles for r in results} == {frozenset({"staff"})}
    assert registry.get_sample_value("sargs_directory_lookups_total", {"outcome": "found"}) == 1


async def test_fail_static_when_the_directory_stops(
    slapd: Slapd, caplog: pytest.LogCaptureFixture
) -> None:
    alice = slapd.add_user("alice")
    slapd.add_group("staff", [alice])
    slapd.add_group("heads", [alice])  # two mapped groups: both roles
    clock = Clock()
    identity, _, registry = build(slapd, clock, MAPPING)
    assert (await identity.resolve(principal("alice"))).roles == {"staff", "approver"}

    slapd.stop()
    clock.now += 120
    with caplog.at_level(logging.WARNING, "sargs.directory"):
        stale = await identity.resolve(principal("alice"))
    assert stale.roles == {"staff", "approver"}
    assert stale.answered_by == "stale"
    assert stale.age == 120
    assert "last known groups" in caplog.text
    assert registry.get_sample_value("sargs_directory_failstatic_total") == 1
    assert registry.get_sample_value("sargs_directory_up") == 0

    # A user never seen before gets no role (fail closed), and is not retried per request.
    never = await identity.resolve(principal("bob"))
    assert never.roles == frozenset()
    assert never.answered_by == "none"
    assert (await identity.resolve(principal("bob"))).answered_by == "none"
    assert registry.get_sample_value(
        "sargs_directory_lookups_total", {"outcome": "unavailable"}
    ) == 2  # alice's refresh and bob's first attempt; bob's second waited

    slapd.start()
    clock.now += 61
    back = await identity.resolve(principal("alice"))
    assert back.answered_by == "directory"
    assert registry.get_sample_value("sargs_directory_up")


async def test_disabled_and_unknown_accounts_hold_no_role(slapd: Slapd) -> None:
    slapd.add_group("staff", [slapd.add_user("gone", extra=["shadowExpire: 1"])])
    identity, _, _ = build(slapd, Clock(), MAPPING)
    gone = await identity.resolve(principal("gone"))
    assert gone.roles == frozenset()
    assert gone.groups == ("staff",)
    assert gone.ignored == "account expired (shadowExpire)"
    unknown = await identity.resolve(principal("nobody"))
    assert unknown.roles == frozenset()
    assert unknown.ignored == "no such account in the directory"


async def test_unreachable_from_the_start_raises_for_the_cache(slapd: Slapd) -> None:
    slapd.stop()
    directory = Directory(DirectoryConfig(slapd.url, SUFFIX, timeout=1.0))
    cache = GroupCache(directory, ttl=60)
    with pytest.raises(DirectoryUnavailable):
        await cache.resolve("alice")

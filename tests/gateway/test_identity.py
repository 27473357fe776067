"""Identity sources: Basic parsing, IP ranges, the login cache."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import pytest

from proxy.gateway.identity import (
    ANONYMOUS,
    BasicCredentials,
    Identifier,
    IpRanges,
    MemoryDirectory,
    StoreDirectory,
    parse_basic,
)
from proxy.policy.model import Identity, IpRange


def basic(raw: str) -> str:
    return "Basic " + base64.b64encode(raw.encode()).decode()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (basic("anna:pw"), BasicCredentials("anna", "pw")),
        (basic("anna:p:w"), BasicCredentials("anna", "p:w")),
        (basic("anna:"), BasicCredentials("anna", "")),
        (basic("jānis:parole"), BasicCredentials("jānis", "parole")),
        ("basic " + base64.b64encode(b"a:b").decode(), BasicCredentials("a", "b")),
        (basic(":pw"), None),
        (basic("nocolon"), None),
        ("Bearer abc", None),
        ("Basic", None),
        ("Basic !!!", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_basic(header: str | None, expected: BasicCredentials | None) -> None:
    assert parse_basic(header) == expected


RANGES = Identity(
    sources=["ip"],
    ip_ranges=[
        IpRange(cidr="10.20.5.0/24", roles=["communicator"]),
        IpRange(cidr="10.20.0.0/16", roles=["staff"]),
        IpRange(cidr="2001:db8::/32", roles=["expert"]),
    ],
)


@pytest.mark.parametrize(
    ("address", "roles"),
    [
        ("10.20.5.7", {"communicator", "staff"}),  # several ranges combine
        ("10.20.9.1", {"staff"}),
        ("::ffff:10.20.5.7", {"communicator", "staff"}),  # IPv4-mapped IPv6
        ("2001:db8::1", {"expert"}),
        ("10.21.0.1", set()),
        ("not-an-ip", set()),
        ("", set()),
    ],
)
def test_ip_ranges(address: str, roles: set[str]) -> None:
    assert IpRanges(RANGES).roles_for(address) == roles


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class ThreadCheckingDirectory(MemoryDirectory):
    def __init__(self) -> None:
        super().__init__({"anna": ("pw", ["staff"])})
        self.threads: set[int] = set()

    def verify(self, name: str, password: str) -> frozenset[str] | None:
        self.threads.add(threading.get_ident())
        return super().verify(name, password)


BASIC_ONLY = Identity(sources=["basic"], realm="R", login_cache_seconds=300)


async def test_login_verified_once_then_cached_until_ttl() -> None:
    directory = ThreadCheckingDirectory()
    clock = FakeClock()
    ident = Identifier(directory, clock)
    ranges = IpRanges(BASIC_ONLY)
    for _ in range(5):
        outcome = await ident.identify(basic("anna:pw"), "10.0.0.1", BASIC_ONLY, ranges)
        assert outcome.subject is not None
        assert outcome.subject.user == "anna"
        assert outcome.subject.roles == {"staff"}
    assert directory.calls == 1
    assert threading.get_ident() not in directory.threads  # never on the event loop
    clock.t += 301
    await ident.identify(basic("anna:pw"), "10.0.0.1", BASIC_ONLY, ranges)
    assert directory.calls == 2


async def test_failures_are_cached_briefly() -> None:
    directory = MemoryDirectory({"anna": ("pw", ["staff"])})
    clock = FakeClock()
    ident = Identifier(directory, clock, failure_seconds=2)
    ranges = IpRanges(BASIC_ONLY)
    for _ in range(3):
        outcome = await ident.identify(basic("anna:guess"), "", BASIC_ONLY, ranges)
        assert outcome == (None, "login-failed", 0)
    assert directory.calls == 1
    clock.t += 2.5
    await ident.identify(basic("anna:guess"), "", BASIC_ONLY, ranges)
    assert directory.calls == 2


async def test_sources_in_order() -> None:
    both = Identity(
        sources=["basic", "ip"], ip_ranges=[IpRange(cidr="10.0.0.0/8", roles=["intern"])]
    )
    ident = Identifier(MemoryDirectory({"anna": ("pw", ["staff"])}))
    ranges = IpRanges(both)
    by_login = await ident.identify(basic("anna:pw"), "10.1.1.1", both, ranges)
    assert by_login.subject is not None
    assert by_login.subject.roles == {"staff"}
    by_ip = await ident.identify(None, "10.1.1.1", both, ranges)
    assert by_ip.subject is not None
    assert (by_ip.subject.roles, by_ip.subject.source) == ({"intern"}, "ip")
    # a wrong login never falls back to the address
    assert (await ident.identify(basic("anna:x"), "10.1.1.1", both, ranges)).challenge
    assert (await ident.identify(None, "192.0.2.1", both, ranges)).challenge == "login-required"
    ip_only = Identity(sources=["ip"])
    assert (await ident.identify(None, "192.0.2.1", ip_only, IpRanges(ip_only))).subject == (
        ANONYMOUS
    )


def test_store_directory_adapts_the_store(tmp_path: Path) -> None:
    from proxy.store import open_store
    from proxy.store.users import add_user

    store = open_store(f"sqlite:///{tmp_path / 'sargs.db'}")
    try:
        add_user(store, "anna", "correct horse", ["staff", "expert"])
        directory = StoreDirectory(store)
        assert directory.verify("anna", "correct horse") == {"staff", "expert"}
        assert directory.verify("anna", "wrong") is None
        assert directory.verify("nobody", "correct horse") is None
    finally:
        store.close()

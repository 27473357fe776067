"""Kerberos sign-on through the real gateway (mitmproxy on a real port), a real MIT KDC,
a real slapd for groups, real clients (aiohttp with pyspnego tokens, curl)."""

from __future__ import annotations

import asyncio
import base64
import logging
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import spnego
from prometheus_client import CollectorRegistry

from proxy.directory.cache import DirectoryMetrics, GroupCache
from proxy.directory.ldap import Directory, DirectoryConfig
from proxy.directory.negotiate import Negotiator
from proxy.directory.service import DirectoryIdentity
from proxy.gateway.addons import make_addons
from proxy.gateway.negotiate import NegotiateLogins
from proxy.runtime import PolicyState
from tests.support.gateway import FakeSite, Gateway, copy_policy, fake_site, running_gateway
from tests.support.kdc import Kerberos
from tests.support.slapd import GROUPS, ROOT_DN, ROOT_PW, SUFFIX, Slapd

TTL = 60.0


class Monotonic:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Stand:
    gateway: Gateway
    kdc: Kerberos
    slapd: Slapd
    clock: Monotonic
    registry: CollectorRegistry
    directory: Directory
    monkeypatch: pytest.MonkeyPatch
    site: FakeSite

    def ticket(self, user: str) -> None:
        """Be ``user`` (a principal with a fresh ticket) for the next client tokens."""
        self.monkeypatch.setenv("KRB5CCNAME", self.kdc.add_user(user))

    def refused(self, reason: str) -> float:
        value = self.registry.get_sample_value(
            "sargs_identity_refused_total", {"source": "negotiate", "reason": reason}
        )
        return value or 0.0


def negotiate_header() -> str:
    token = spnego.client(hostname="127.0.0.1", service="HTTP", protocol="negotiate").step()
    assert token is not None
    return "Negotiate " + base64.b64encode(token).decode()


def policy_with_groups(tmp_path: Path) -> Path:
    directory = copy_policy(tmp_path)
    policy = directory / "policy.yaml"
    text = policy.read_text()
    start = text.index("  directory_groups:")
    end = text.index("\n\n", start)
    text = text[:start] + (
        "  directory_groups:\n"
        f'    "CN=Press,{GROUPS.upper()}": [communicator]\n'
        "    experts: [expert]\n"
    ) + text[end:]
    text = text.replace("sources: [basic, ip]", "sources: [negotiate, basic]")
    policy.write_text(text)
    return directory


@pytest.fixture
async def stand(
    tmp_path: Path, kdc: Kerberos, slapd: Slapd, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Stand]:
    for name, value in kdc.env.items():
        monkeypatch.setenv(name, value)
    state = PolicyState(policy_with_groups(tmp_path))
    clock = Monotonic()
    registry = CollectorRegistry()
    metrics = DirectoryMetrics(registry)
    directory = Directory(DirectoryConfig(slapd.url, SUFFIX, ROOT_DN, ROOT_PW, timeout=1.0))
    identity = DirectoryIdentity(
        Negotiator([kdc.name]), GroupCache(directory, TTL, clock=clock, metrics=metrics),
        lambda: state.current.loaded.policy.identity.directory_groups, metrics=metrics,
    )

    def make(settings: Any, policy: Any, **kw: Any) -> list[object]:
        return make_addons(settings, policy, negotiate=NegotiateLogins(identity), **kw)

    async with fake_site() as site, running_gateway(
        tmp_path, site.port, policy=state, make=make
    ) as gateway:
        gateway.access.identifier.clock = clock  # one clock for the cache and the gateway
        yield Stand(gateway, kdc, slapd, clock, registry, directory, monkeypatch, site)


async def get(
    stand: Stand, session: aiohttp.ClientSession, header: str | None = None,
    url: str = "http://tiktok.com/",
) -> aiohttp.ClientResponse:
    headers = {"Accept": "text/html"}
    if header:
        headers["Proxy-Authorization"] = header  # aiohttp: in headers= for http:// URLs
    async with session.get(url, proxy=stand.gateway.proxy_url, headers=headers) as response:
        await response.read()
        return response


def one_connection() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))


async def test_a_ticket_signs_on_for_the_connection(stand: Stand) -> None:
    alice = stand.slapd.add_user("alice")
    stand.slapd.add_group("press", [alice])
    stand.ticket("alice")
    async with one_connection() as session:
        first = await get(stand, session, negotiate_header())
        assert first.status == 200  # communicator: tiktok allowed, no password asked
        again = await get(stand, session)  # same connection, no header: still alice
        assert again.status == 200
    async with one_connection() as session:
        fresh = await get(stand, session)  # a new connection must sign on again
        assert fresh.status == 407
        assert fresh.headers.getall("Proxy-Authenticate") == [
            "Negotiate", 'Basic realm="Sargs (Example Ministry)", charset="UTF-8"'
        ]


async def test_replayed_and_forged_tickets_are_refused_and_recorded(
    stand: Stand, caplog: pytest.LogCaptureFixture
) -> None:
    stand.slapd.add_group("press", [stand.slapd.add_user("alice")])
    stand.ticket("alice")
    header = negotiate_header()
    async with one_connection() as session:
        assert (await get(stand, session, header)).status == 200
    with caplog.at_level(logging.WARNING, "sargs.identity"):
        async with one_connection() as session:  # the same header on another connection
            replay = await get(stand, session, header)
        async with one_connection() as session:
            forged = await get(stand, session, "Negotiate " + base64.b64encode(
                b"\x60\x82\x01\x00" + b"\x00" * 300).decode())
    assert replay.status == 407
    assert forged.status == 407
    assert stand.refused("rejected") == 2
    assert caplog.text.count("sign-on refused") == 2


async def test_a_realm_the_gateway_does_not_accept_is_refused(
    tmp_path: Path, kdc: Kerberos, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in kdc.env.items():
        monkeypatch.setenv(name, value)
    registry = CollectorRegistry()
    metrics = DirectoryMetrics(registry)
    state = PolicyState(policy_with_groups(tmp_path))
    identity = DirectoryIdentity(Negotiator(["OTHER.TEST"]), None, lambda: {}, metrics=metrics)

    def make(settings: Any, policy: Any, **kw: Any) -> list[object]:
        return make_addons(settings, policy, negotiate=NegotiateLogins(identity), **kw)

    async with fake_site() as site, running_gateway(
        tmp_path, site.port, policy=state, make=make
    ) as gateway, one_connection() as session:
        response = await session.get("http://tiktok.com/", proxy=gateway.proxy_url,
                                     headers={"Proxy-Authorization": negotiate_header()})
        assert response.status == 407
        assert not site.seen
    assert registry.get_sample_value(
        "sargs_identity_refused_total", {"source": "negotiate", "reason": "wrong-realm"}
    ) == 1


async def test_groups_nested_two_mapped_disabled_and_after_the_ttl(stand: Stand) -> None:
    slapd = stand.slapd
    bob, carol, dave = (slapd.add_user(n) for n in ("bob", "carol", "dave"))
    slapd.add_user("erin", extra=["shadowExpire: 1"])  # expired in 1970
    team = slapd.add_group("press-team", [bob])
    press = slapd.add_group("press", [team, slapd.add_user("erin2")])  # bob: nested
    slapd.modify(press, "add: member", f"member: uid=erin,ou=people,{SUFFIX}")
    slapd.add_group("experts", [carol, dave])
    slapd.modify(press, "add: member", f"member: {carol}")  # carol: press and experts

    async def status(user: str, url: str = "http://tiktok.com/") -> int:
        stand.ticket(user)
        async with one_connection() as session:
            return (await get(stand, session, negotiate_header(), url)).status

    assert await status("bob") == 200  # nested group → communicator
    assert await status("carol") == 200  # communicator + expert: the most permissive wins
    assert await status("dave") == 403  # expert: tiktok blocked …
    assert await status("dave", "http://linkedin.com/") == 200  # … linkedin allowed
    assert await status("erin") == 403  # expired account: in press, but no role

    stand.ticket("dave")
    async with one_connection() as open_connection:  # dave keeps a connection open
        assert (await get(stand, open_connection, negotiate_header())).status == 403
        slapd.modify(press, "add: member", f"member: {dave}")
        assert await status("dave") == 403  # cached for the TTL (a new connection too)
        assert (await get(stand, open_connection)).status == 403
        stand.clock.now += TTL + 1
        assert (await get(stand, open_connection)).status == 200  # the open one sees it
    assert await status("dave") == 200


async def test_primary_group_and_fail_static_when_the_directory_stops(stand: Stand) -> None:
    stand.slapd.add_user("frank", gid=7000)
    # frank's primary group (gidNumber), a posixGroup that does not list him; the policy
    # maps its DN (cn=press,ou=groups) to communicator.
    stand.slapd.add_posix_group("press", 7000)
    stand.ticket("frank")
    async with one_connection() as session:
        assert (await get(stand, session, negotiate_header())).status == 200
    stand.slapd.stop()
    stand.clock.now += TTL + 1
    async with one_connection() as session:
        # Signed on again, directory gone, answer due: the last known groups still decide.
        assert (await get(stand, session, negotiate_header())).status == 200
    assert stand.registry.get_sample_value("sargs_directory_failstatic_total") == 1
    assert stand.registry.get_sample_value("sargs_directory_up") == 0
    stand.ticket("grace")  # never resolved while the directory is down: no role
    async with one_connection() as session:
        assert (await get(stand, session, negotiate_header())).status == 403


async def test_curl_signs_on_through_a_connect_tunnel(stand: Stand) -> None:
    stand.slapd.add_group("press", [stand.slapd.add_user("henry")])
    ccache = stand.kdc.add_user("henry")
    env = stand.kdc.client_env(ccache)
    cmd = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20",
           "-x", stand.gateway.proxy_url, "--cacert", str(stand.gateway.ca_cert),
           "https://tiktok.com/"]
    with_ticket = await asyncio.to_thread(
        subprocess.run, [*cmd[:-1], "--proxy-negotiate", "-U", ":", cmd[-1]],
        env=env, capture_output=True, text=True,
    )
    assert with_ticket.stdout == "200"
    cmd[5] = "%{http_code} %{http_connect}"
    without = await asyncio.to_thread(subprocess.run, cmd, env=env, capture_output=True,
                                      text=True)
    assert without.stdout == "000 407"  # the CONNECT is refused: no tunnel, no page


async def test_without_a_directory_roles_come_from_the_store(
    tmp_path: Path, kdc: Kerberos, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway as `sargs run` builds it from settings: Negotiate on, no LDAP; a ticket
    holder gets the roles of the store's user of the same name, or none."""
    from proxy.gateway.identity import StoreDirectory
    from proxy.store import open_store, users

    for name, value in kdc.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SARGS_KERBEROS_REALMS", f'["{kdc.name}"]')
    store = open_store(f"sqlite:///{tmp_path / 'sargs.db'}")
    users.add_user(store, "kate", "unused-pw-1", ["communicator"])

    def make(settings: Any, policy: Any, **kw: Any) -> list[object]:
        kw["directory"] = StoreDirectory(store)
        return make_addons(settings, policy, **kw)

    state = PolicyState(policy_with_groups(tmp_path))
    try:
        async with fake_site() as site, running_gateway(
            tmp_path, site.port, policy=state, make=make
        ) as gateway:
            for user, expected in (("kate", 200), ("liam", 403)):
                monkeypatch.setenv("KRB5CCNAME", kdc.add_user(user))
                async with one_connection() as session:
                    response = await session.get(
                        "http://tiktok.com/", proxy=gateway.proxy_url,
                        headers={"Proxy-Authorization": negotiate_header(),
                                 "Accept": "text/html"})
                    assert response.status == expected, user
    finally:
        store.close()

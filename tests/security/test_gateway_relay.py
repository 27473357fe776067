"""Issue 12, class 1: no open proxy, no way through the gateway to its own network.

Attacks a real gateway on loopback with curl (plain-HTTP proxy requests and CONNECT
tunnels) and aiohttp: without an identity nothing is relayed (407), and with one nothing
inside is reached — the service's port (and its event API that writes the audit chain),
the gateway's metrics port, another loopback server, however the address is spelled.
The harness's stand-in platform port is the one IT-listed exception, and a control
request shows each target listens and answers when asked directly.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from proxy.store import audit
from tests.security.attack import PROTOCOLS, basic, curl, free_port
from tests.support.gateway import FakeSite, Gateway, fake_site, running_gateway
from tests.support.service import Service, running_service

pytestmark = pytest.mark.asyncio(loop_scope="module")

USERS = {"anna": ("anna-pw", ["staff"])}
ANNA = ("anna", "anna-pw")


@dataclass
class Env:
    gw: Gateway
    site: FakeSite
    """The stand-in platform (IT-listed: the only inside destination allowed)."""
    inside: FakeSite
    """Another loopback server, not listed: it must never see a request."""
    service: Service
    metrics_port: int


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    tmp: Path = tmp_path_factory.mktemp("relay")
    metrics_port = free_port()
    async with (
        fake_site() as site,
        fake_site() as inside,
        running_service(tmp, f"sqlite:///{tmp}/store.db") as service,
        running_gateway(
            tmp, site.port, users=USERS,
            settings={"gateway_metrics_port": metrics_port},
        ) as gw,
    ):
        yield Env(gw, site, inside, service, metrics_port)


@pytest.fixture(autouse=True)
def _clear(env: Env) -> None:
    env.site.seen.clear()
    env.inside.seen.clear()


def _refused(status: int) -> bool:
    """Not relayed: refused by Sargs (403) or the connection killed before connect (502),
    or no HTTP answer at all for a tunnel that was never opened."""
    return status in (0, 403, 502)


# --- without an identity: nothing, catalog or not -------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_no_identity_no_relay_anywhere(env: Env, protocol: str) -> None:
    for url in (
        f"http://127.0.0.1:{env.site.port}/anything",  # plain proxy request (absolute form)
        "http://example.org/",
        "https://example.org/",  # CONNECT to a host outside the catalog
        "https://www.linkedin.com/",  # CONNECT to a catalog host
    ):
        answer = await curl(env.gw, url, user=None, protocol=protocol)
        assert 407 in (answer.status, answer.connect_status), url
    assert env.site.seen == []
    assert env.gw.sites.refused == []  # nothing even tried to leave


# --- with an identity: never inside ------------------------------------------------------


def inside_targets(env: Env) -> list[tuple[str, int]]:
    """Every spelling of a loopback or private destination, with a port that listens."""
    port = env.inside.port
    metrics = env.metrics_port
    service = int(env.service.url.rsplit(":", 1)[1])
    return [
        ("127.0.0.1", port),
        ("localhost", port),
        ("localhost.", port),
        ("LOCALHOST", port),
        ("0x7f000001", port),
        ("2130706433", port),
        ("0177.0.0.1", port),
        ("0x7f.1", port),
        ("127.1", port),
        ("127.0.0.1.", port),
        ("[::1]", port),
        ("[::ffff:127.0.0.1]", port),
        ("[::ffff:7f00:1]", port),
        ("0.0.0.0", port),
        ("169.254.169.254", 80),  # cloud metadata
        ("10.0.0.1", 80),
        ("192.168.1.1", 80),
        ("172.16.0.1", 80),
        ("100.64.0.1", 80),  # CGNAT
        ("[fd00::1]", 80),  # unique local
        ("[fe80::1]", 80),  # link-local
        ("127.0.0.1", service),  # the Sargs service
        ("127.0.0.1", metrics),  # the gateway's own metrics
        ("127.0.0.1", env.gw.port),  # the gateway itself
        (socket.gethostname(), port),  # a name that resolves inside (/etc/hosts)
    ]


async def test_targets_listen_when_asked_directly(env: Env) -> None:
    """Control: the attack would land if the gateway relayed it."""
    async with aiohttp.ClientSession() as session:
        for url in (
            f"http://127.0.0.1:{env.inside.port}/control",
            f"{env.service.url}/healthz",
            f"http://127.0.0.1:{env.metrics_port}/metrics",
        ):
            async with session.get(url) as r:
                assert r.status < 500, url
    assert env.inside.paths() == ["/control"]


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_inside_destinations_are_refused_however_spelled(env: Env, scheme: str) -> None:
    for host, port in inside_targets(env):
        url = f"{scheme}://{host}:{port}/secret"
        answer = await curl(env.gw, url, user=ANNA, extra=("--insecure",))
        assert _refused(answer.status), (url, answer)
        # Addresses are refused at CONNECT; a name is judged when the tunnel's connection
        # opens (the tunnel was accepted, then closed before a byte left).
        assert answer.connect_status in (0, 403) or answer.status == 0, (url, answer)
    assert env.inside.seen == []
    assert env.site.seen == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_forged_audit_events_never_reach_the_service(env: Env, protocol: str) -> None:
    """A relayed POST /api/v1/events would write back-dated entries into the audit chain."""
    before = audit.head(env.service.store)
    batch = (
        b'{"gateway": "forged", "events": [{"id": "forged-1", "kind": "block", '
        b'"at": "2020-01-01T00:00:00Z", "user": "boss", "platform": "x"}]}'
    )
    for host in ("127.0.0.1", "localhost", "[::1]", "2130706433"):
        port = env.service.url.rsplit(":", 1)[1]
        for scheme in ("http", "https"):
            answer = await curl(
                env.gw, f"{scheme}://{host}:{port}/api/v1/events", user=ANNA, method="POST",
                protocol=protocol, headers={"Content-Type": "application/json"}, data=batch,
                extra=("--insecure",),
            )
            assert _refused(answer.status), (host, scheme, answer)
    assert audit.head(env.service.store) == before


async def test_aiohttp_client_is_refused_too(env: Env) -> None:
    async with aiohttp.ClientSession() as session, session.get(
        f"http://127.0.0.1:{env.inside.port}/x", proxy=env.gw.proxy_url,
        headers={"Proxy-Authorization": basic(*ANNA)},  # plain http: aiohttp sends it so
    ) as r:
        assert r.status == 403
        payload = await r.json()
        assert payload["error"] == "destination"
    assert env.inside.seen == []


async def test_the_listed_exception_still_works(env: Env) -> None:
    """IT's list (here: the stand-in platform) is honoured, and only for its port."""
    async with aiohttp.ClientSession() as session, session.get(
        "https://www.linkedin.com/feed/", proxy=env.gw.proxy_url,
        proxy_headers={"Proxy-Authorization": basic(*ANNA)}, ssl=env.gw.ssl_context(),
        headers={"Accept": "text/html"},
    ) as r:
        assert r.status == 200
    assert env.site.paths() == ["/feed/"]

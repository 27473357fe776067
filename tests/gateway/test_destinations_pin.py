"""DNS rebinding: after judging the addresses a name resolves to, the gateway dials the
address it judged, not whatever the name resolves to a moment later — for hosts outside
the catalog and for plain-HTTP catalog hosts alike. Catalog hosts over TLS keep their name
(mitmproxy reuses connections by it); an inside host reached by a rebound name cannot pass
the upstream certificate check for the platform's name.

The resolver here answers a public address once, then an inside one (what a rebinding DNS
server does); mitmproxy's own connection objects go through the hook.
"""

from __future__ import annotations

import ipaddress

import pytest
from mitmproxy import connection
from mitmproxy.proxy.server_hooks import ServerConnectionHookData

from proxy.gateway.destinations import DestinationGuard, IPAddress
from proxy.runtime import PolicyState
from tests.support.gateway import EXAMPLE_POLICY

PUBLIC = ipaddress.ip_address("93.184.216.34")
INSIDE = ipaddress.ip_address("10.0.0.5")


class Rebinding(DestinationGuard):
    """Answers PUBLIC to the first lookup, INSIDE to every later one."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        self.lookups += 1
        return [PUBLIC if self.lookups == 1 else INSIDE]


def hook(host: str, port: int, tls: bool) -> ServerConnectionHookData:
    server = connection.Server(address=(host, port))
    server.tls = tls
    client = connection.Client(peername=("127.0.0.1", 50000), sockname=("127.0.0.1", 8080),
                               timestamp_start=0.0)
    return ServerConnectionHookData(server=server, client=client)


@pytest.mark.parametrize(("host", "port", "tls", "pinned"), [
    ("intranet-lookalike.example", 443, True, True),   # outside the catalog: pinned
    ("intranet-lookalike.example", 80, False, True),
    ("x.com", 80, False, True),                        # catalog, plain HTTP: pinned
    ("x.com", 443, True, False),                       # catalog over TLS: by name
])
async def test_the_judged_address_is_the_one_dialled(
    host: str, port: int, tls: bool, pinned: bool
) -> None:
    guard = Rebinding()
    data = hook(host, port, tls)
    await guard.server_connect(data, PolicyState(EXAMPLE_POLICY).current.catalog)
    assert data.server.error is None
    assert data.server.address == ((str(PUBLIC), port) if pinned else (host, port))


async def test_an_inside_answer_is_refused() -> None:
    guard = Rebinding()
    guard.lookups = 1  # the next answer is the inside one
    data = hook("x.com", 80, False)
    await guard.server_connect(data, PolicyState(EXAMPLE_POLICY).current.catalog)
    assert data.server.error is not None
    assert "10.0.0.5" in data.server.error

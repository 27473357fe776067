"""Issue 12, class 3: the Host header / ``:authority`` must name the host that was decided
on — the CONNECT destination and the TLS SNI.

A staff member is blocked on TikTok and allowed on LinkedIn. Through a real gateway, curl
opens ``https://www.linkedin.com/`` (CONNECT and SNI for LinkedIn) and sends
``Host: www.tiktok.com`` — over HTTP/1.1 and HTTP/2, GET and POST; the same with a plain
proxy request, with the SNI and CONNECT disagreeing, and with a port in Host. Each is
refused with 421, the stand-in platform receives nothing, and the refusal is logged and
recorded naming TikTok, the platform the request aimed at.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from tests.security.attack import PROTOCOLS, basic, curl
from tests.support.gateway import FakeSite, Gateway, fake_site, running_gateway

pytestmark = pytest.mark.asyncio(loop_scope="module")

USERS = {"anna": ("anna-pw", ["staff"])}
ANNA = ("anna", "anna-pw")


@dataclass
class Env:
    gw: Gateway
    site: FakeSite


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    async with fake_site() as site, running_gateway(
        tmp_path_factory.mktemp("host"), site.port, users=USERS
    ) as gw:
        yield Env(gw, site)


@pytest.fixture(autouse=True)
def _clear(env: Env) -> None:
    env.site.seen.clear()


def mismatches(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [
        event for r in caplog.records if r.name == "sargs.gateway"
        if (event := getattr(r, "event", {})).get("event") == "host-mismatch"
    ]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_linkedin_tunnel_with_a_tiktok_host_is_refused(
    env: Env, protocol: str, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sargs.gateway")
    # Control: TikTok asked for openly is blocked for staff; LinkedIn is allowed.
    blocked = await curl(env.gw, "https://www.tiktok.com/", user=ANNA, protocol=protocol)
    assert blocked.status == 403
    allowed = await curl(env.gw, "https://www.linkedin.com/", user=ANNA, protocol=protocol)
    assert allowed.status == 200
    env.site.seen.clear()
    answer = await curl(
        env.gw, "https://www.linkedin.com/", user=ANNA, method=method, protocol=protocol,
        headers={"Host": "www.tiktok.com", "Content-Type": "application/json"},
        data=b'{"text": "hi"}' if method == "POST" else None,
    )
    assert answer.status == 421, answer
    assert answer.http_version == ("2" if protocol == "http2" else "1.1")
    assert json.loads(answer.body)["error"] == "host-mismatch"
    assert env.site.seen == []
    (event,) = mismatches(caplog)
    assert event["platform"] == "tiktok"
    assert event["user"] == "anna"


@pytest.mark.parametrize(
    ("url", "headers", "extra"),
    [
        # A plain proxy request: the absolute URL says LinkedIn, Host says TikTok.
        ("http://www.linkedin.com/", {"Host": "www.tiktok.com"}, ()),
        # The tunnel and the request say TikTok, the TLS SNI LinkedIn: curl resolves the
        # name it connects to with --connect-to, so CONNECT goes to LinkedIn.
        ("https://www.tiktok.com/", {},
         ("--connect-to", "www.tiktok.com:443:www.linkedin.com:443")),
        # Same host, another port: mitmproxy would connect to the port in Host.
        ("https://www.linkedin.com/", {"Host": "www.linkedin.com:8443"}, ()),
    ],
)
async def test_other_disagreements_are_refused(
    env: Env, url: str, headers: dict[str, str], extra: tuple[str, ...]
) -> None:
    answer = await curl(env.gw, url, user=ANNA, headers=headers, extra=extra)
    assert answer.status in (421, 403), answer
    assert env.site.seen == []


async def test_a_second_host_header_is_refused(env: Env) -> None:
    """curl sends one Host header; a raw client sends two (servers differ on which wins)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", env.gw.port)
    writer.write(
        b"GET http://www.linkedin.com/ HTTP/1.1\r\nHost: www.linkedin.com\r\n"
        b"Host: www.tiktok.com\r\nProxy-Authorization: " + basic(*ANNA).encode()
        + b"\r\nConnection: close\r\n\r\n"
    )
    await writer.drain()
    head = await reader.readline()
    writer.close()
    assert head.split()[1] in (b"400", b"421"), head
    assert env.site.seen == []


async def test_names_that_agree_pass(env: Env) -> None:
    """Control: case, a trailing dot and the default port are the same host."""
    for host in ("WWW.LinkedIn.com", "www.linkedin.com:443"):
        answer = await curl(
            env.gw, "https://www.linkedin.com/", user=ANNA, headers={"Host": host}
        )
        assert answer.status == 200, (host, answer)
    assert len(env.site.seen) == 2

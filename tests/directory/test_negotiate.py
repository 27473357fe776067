"""Negotiate against a real MIT KDC: a real curl and pyspnego clients, a real aiohttp server
answering ``407 Proxy-Authenticate: Negotiate`` the way the gateway does."""

from __future__ import annotations

import asyncio
import base64
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import spnego
from aiohttp import web

from proxy.directory.negotiate import Negotiator, Refused, split_principal, token_of
from tests.support.kdc import Kerberos


@pytest.fixture
def server_env(kdc: Kerberos, monkeypatch: pytest.MonkeyPatch) -> Kerberos:
    """This process is the server (keytab) and a client holding user@REALM's ticket."""
    for name, value in kdc.env.items():
        monkeypatch.setenv(name, value)
    return kdc


def client_header(host: str = "127.0.0.1") -> str:
    ctx = spnego.client(hostname=host, service="HTTP", protocol="negotiate")
    token = ctx.step()
    assert token is not None
    return "Negotiate " + base64.b64encode(token).decode()


async def test_a_ticket_signs_on_and_cannot_be_replayed(server_env: Kerberos) -> None:
    negotiator = Negotiator([server_env.name], keytab=Path(server_env.keytab))
    header = client_header()
    principal = await negotiator.accept_async(header)
    assert principal.name == f"user@{server_env.name}"
    assert principal.account == "user"
    with pytest.raises(Refused) as replay:
        await negotiator.accept_async(header)  # MIT's replay cache
    assert replay.value.reason == "rejected"
    # Either name the client canonicalises 127.0.0.1 to is accepted.
    assert (await negotiator.accept_async(client_header("localhost"))).account == "user"


async def test_hostile_headers_are_refused(server_env: Kerberos) -> None:
    negotiator = Negotiator([server_env.name])
    ntlm = spnego.client("u", "p", hostname="127.0.0.1", service="HTTP", protocol="ntlm").step()
    assert ntlm is not None
    cases = {
        "Negotiate": "malformed",
        "Negotiate !!!notbase64": "malformed",
        "Negotiate " + "A" * 200_000: "malformed",
        "Negotiate " + base64.b64encode(b"\x60\x00garbage").decode(): "rejected",
        "Negotiate " + base64.b64encode(ntlm).decode(): "unsupported",
    }
    for header, reason in cases.items():
        with pytest.raises(Refused) as refused:
            negotiator.accept(header)
        assert refused.value.reason in (reason, "rejected"), header[:40]
    assert token_of("Basic dXNlcjpwdw==") is None


async def test_a_realm_not_accepted_is_refused(server_env: Kerberos) -> None:
    negotiator = Negotiator(["OTHER.TEST"])
    with pytest.raises(Refused) as refused:
        negotiator.accept(client_header())
    assert refused.value.reason == "wrong-realm"


def test_principal_names() -> None:
    assert split_principal("alice@EXAMPLE.ORG") == ("alice", "EXAMPLE.ORG")
    assert split_principal(r"odd\@name@EXAMPLE.ORG") == (r"odd\@name", "EXAMPLE.ORG")
    with pytest.raises(Refused):
        split_principal("no-realm")
    with pytest.raises(ValueError, match="realm"):
        Negotiator([])


@pytest.fixture
async def proxy_407(server_env: Kerberos) -> AsyncIterator[str]:
    """A tiny proxy-style server: 407 Negotiate until a valid ticket, then who you are."""
    negotiator = Negotiator([server_env.name])

    async def handle(request: web.Request) -> web.Response:
        header = request.headers.get("Proxy-Authorization")
        if header:
            try:
                principal = await negotiator.accept_async(header)
            except Refused as exc:
                return web.Response(status=407, text=exc.reason,
                                    headers={"Proxy-Authenticate": "Negotiate"})
            return web.Response(text=principal.name)
        return web.Response(status=407, headers={"Proxy-Authenticate": "Negotiate"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_curl_signs_on_to_a_proxy_with_its_ticket(
    proxy_407: str, server_env: Kerberos
) -> None:
    ccache = server_env.add_user("carol")
    env = server_env.client_env(ccache)
    cmd = ["curl", "-s", "--max-time", "10", "-x", proxy_407, "--proxy-negotiate", "-U", ":",
           "http://platform.test/"]
    done = await asyncio.to_thread(subprocess.run, cmd, env=env, capture_output=True, text=True)
    assert done.stdout == f"carol@{server_env.name}"
    without = await asyncio.to_thread(
        subprocess.run, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-x", proxy_407,
                         "http://platform.test/"],
        env=env, capture_output=True, text=True,
    )
    assert without.stdout == "407"

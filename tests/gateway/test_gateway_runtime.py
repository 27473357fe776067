"""Hot reload, IP-range identity, and the institution's own CA, through a real gateway."""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from pathlib import Path

import aiohttp
import pytest

from proxy.gateway.addons import install_ca
from proxy.runtime import PolicyState
from proxy.settings import Settings
from tests.support.gateway import Gateway, copy_policy, fake_site, running_gateway, self_signed

PAGE = {"Accept": "text/html", "Sec-Fetch-Dest": "document"}


def login(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Proxy-Authorization": f"Basic {token}"}


async def status(gw: Gateway, url: str, user: str | None = "eve",
                 ctx: ssl.SSLContext | None = None) -> int:
    async with aiohttp.ClientSession() as s, s.get(
        url, proxy=gw.proxy_url, ssl=ctx or gw.ssl_context(), headers=PAGE,
        proxy_headers=login(user, "pw") if user else None,
    ) as r:
        return r.status


async def wait_for_version(state: PolicyState, old: str) -> None:
    for _ in range(200):  # bounded; the watcher polls every 0.05 s in tests
        if state.current.version != old:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the policy was not reloaded")


async def test_hot_reload_applies_a_good_change_and_keeps_the_old_on_a_bad_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = copy_policy(tmp_path)
    roles = directory / "roles.yaml"
    original = roles.read_text()
    async with fake_site() as site, running_gateway(
        tmp_path, site.port, policy=directory, users={"eve": ("pw", ["intern"])}
    ) as gw:
        assert await status(gw, "https://www.linkedin.com/") == 200  # intern: read
        old = gw.state.current.version
        roles.write_text(original.replace("      linkedin: read\n", "      linkedin: block\n"))
        await wait_for_version(gw.state, old)
        assert await status(gw, "https://www.linkedin.com/") == 403

        good = gw.state.current.version
        caplog.set_level(logging.ERROR, logger="sargs.policy")
        roles.write_text(original.replace("      linkedin: read\n", "      linkedin: alow\n"))
        for _ in range(200):
            if any("roles.yaml:" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.05)
        message = next(r.getMessage() for r in caplog.records if "roles.yaml:" in r.getMessage())
        assert "roles.intern.platforms.linkedin" in message
        assert "'alow' is not one of" in message
        assert gw.state.current.version == good  # the previous policy stays in force
        assert await status(gw, "https://www.linkedin.com/") == 403


async def test_ip_range_identity(tmp_path: Path) -> None:
    directory = copy_policy(tmp_path)
    (directory / "identity-test.yaml").write_text(
        "identity:\n"
        "  sources: !replace [ip]\n"
        "  ip_ranges:\n"
        "    - {name: test clients, cidr: 127.0.0.0/8, roles: [intern]}\n"
        "    - {name: loopback host, cidr: 127.0.0.1/32, roles: [expert]}\n"
    )
    async with fake_site() as site, running_gateway(tmp_path, site.port, policy=directory) as gw:
        # no login at all: the address gives intern + expert
        assert await status(gw, "https://x.com/", user=None) == 200      # expert allows
        assert await status(gw, "https://www.tiktok.com/", user=None) == 403  # both block


async def test_institution_ca_signs_the_interception_certificates(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "institution-ca", ca=True)
    confdir = tmp_path / "mitmproxy"
    trusted = install_ca(Settings(ca_cert=cert, ca_key=key, var_dir=tmp_path), confdir)
    assert trusted.read_bytes() == cert.read_bytes()
    async with fake_site() as site, running_gateway(
        tmp_path, site.port, users={"eve": ("pw", ["intern"])}
    ) as gw:
        institution_only = ssl.create_default_context(cafile=str(cert))
        assert await status(gw, "https://www.linkedin.com/", ctx=institution_only) == 200


def test_install_ca_refuses_a_key_that_does_not_match(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path, "a", ca=True)
    _, other_key = self_signed(tmp_path, "b", ca=True)
    with pytest.raises(ValueError, match="is not the private key"):
        install_ca(Settings(ca_cert=cert, ca_key=other_key), tmp_path / "conf")

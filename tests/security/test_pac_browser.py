"""Issue 12: with every gateway down, Chromium following the PAC file reaches a catalog
platform directly by default, and not at all when the file fails closed. The platform is a
local stand-in that counts what reaches it; the gateways are closed ports."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright

from proxy.service.app import create_app
from proxy.settings import Settings
from tests.support.browser import CHROMIUM_ARGS, launch_chromium, serve
from tests.support.gateway import self_signed

pytestmark = pytest.mark.browser


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there once the socket is closed


async def reached(tmp_path: Path, fail_closed: bool) -> tuple[int, str]:
    """How many requests for www.facebook.com reached the stand-in platform, and the error
    the browser showed ("" when the page loaded)."""
    hits: list[str] = []

    async def platform(request: web.Request) -> web.Response:
        hits.append(request.host)
        return web.Response(text="<h1>the platform, unchecked</h1>", content_type="text/html")

    site = web.Application()
    site.router.add_get("/{tail:.*}", platform)
    gateways = [f"127.0.0.1:{closed_port()}", f"127.0.0.1:{closed_port()}"]
    service = create_app(Settings(var_dir=tmp_path / f"var-{fail_closed}", gateways=gateways,
                                  pac_fail_closed=fail_closed))
    cert, key = self_signed(tmp_path, f"platform-{fail_closed}")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    runner = web.AppRunner(site, access_log=None)
    await runner.setup()
    platform_site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await platform_site.start()
    site_port = runner.addresses[0][1]
    async with serve(service) as service_url, async_playwright() as pw:
        resolver = next(a for a in CHROMIUM_ARGS if a.startswith("--host-resolver-rules="))
        args = [a for a in CHROMIUM_ARGS if a != resolver] + [
            f"--proxy-pac-url={service_url}/proxy.pac",
            f"--host-resolver-rules=MAP www.facebook.com 127.0.0.1:{site_port} , "
            "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
        ]
        home = tmp_path / f"home-{fail_closed}"
        home.mkdir()
        browser = await launch_chromium(pw, home, args=args)
        try:
            # facebook.com is HSTS-preloaded: https, the stand-in's certificate accepted.
            page = await browser.new_page(ignore_https_errors=True)
            error = ""
            try:
                await page.goto("https://www.facebook.com/", timeout=15_000)
            except PlaywrightError as exc:
                error = str(exc)
        finally:
            await browser.close()
    await runner.cleanup()
    return len(hits), error


async def test_by_default_a_dead_gateway_means_unchecked(tmp_path: Path) -> None:
    """The control: the bypass the option closes is real."""
    hits, error = await reached(tmp_path, fail_closed=False)
    assert hits >= 1
    assert error == ""


async def test_failing_closed_a_dead_gateway_means_no_platform(tmp_path: Path) -> None:
    hits, error = await reached(tmp_path, fail_closed=True)
    assert hits == 0
    assert "ERR_PROXY_CONNECTION_FAILED" in error



"""The whole temporary-access story in Chromium, through the real gateway and service.

Anna (staff; TikTok is blocked for her role) sees the block page and fills in the request
form; Peter (approver) logs in in another browser context and approves for one hour;
Anna's "My requests" page takes her back to TikTok, which now loads; Peter revokes the
grant; Anna is blocked again. The gateway learns of grants from the service's bundle
(``proxy/gateway/sync.py``), as in production.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page
from pydantic import SecretStr

from proxy.gateway.addons import make_addons
from proxy.gatewaytoken import gateway_token
from proxy.settings import Settings
from tests.support.browser import browser, chromium_home  # noqa: F401 (fixtures)
from tests.support.gateway import Clock, Gateway, fake_site, running_gateway
from tests.support.service import Service, running_service

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

PLATFORM_URL = "https://www.tiktok.com/@ministry"
GATEWAY_USERS = {"anna": ("anna-pw", ["staff"])}


@pytest_asyncio.fixture(loop_scope="session")
async def story(tmp_path: Path) -> AsyncIterator[tuple[Service, Gateway]]:
    (tmp_path / "svc").mkdir()
    (tmp_path / "gw").mkdir()
    async with running_service(tmp_path / "svc", f"sqlite:///{tmp_path / 'svc' / 'sargs.db'}"
                               ) as svc, fake_site() as site:

        def make(settings: Settings, *args: Any, **kwargs: Any) -> list[object]:
            # The token the service generated at its start (no address is trusted).
            token = gateway_token(Settings(var_dir=tmp_path / "svc"))
            wired = settings.model_copy(update={"service_url": svc.url,
                                                "gateway_metrics_port": 0,
                                                "gateway_token": SecretStr(token)})
            return make_addons(wired, *args, **{**kwargs, "grants": None, "sync": True})

        async with running_gateway(
            tmp_path / "gw", site.port, users=GATEWAY_USERS, clock=Clock(datetime.now(UTC)),
            options={"sargs_service_url": svc.url}, make=make,
            # Anna's browser reaches the service through the gateway (no PAC here): the
            # service is inside, so IT lists it.
            allowed=[svc.url.removeprefix("http://")],
        ) as gw:
            yield svc, gw


async def _context(browser: Browser, **kwargs: Any) -> BrowserContext:  # noqa: F811
    ctx = await browser.new_context(ignore_https_errors=True, locale="en-US", **kwargs)
    ctx.set_default_timeout(10_000)
    return ctx


async def _until(page: Page, blocked: bool) -> None:
    """Reload the platform page until it is (not) the block page, like a user would; bounded
    (gateways follow a change within about two seconds)."""
    for _ in range(20):
        if (await page.locator("#sargs-request").count() > 0) == blocked:
            return
        await asyncio.sleep(0.25)
        await page.goto(PLATFORM_URL)
    raise AssertionError(f"the platform page never became {'blocked' if blocked else 'open'}")


async def test_block_request_approve_open_revoke_blocked(
    browser: Browser,  # noqa: F811
    story: tuple[Service, Gateway],
) -> None:
    svc, gw = story
    anna_ctx = await _context(browser, proxy={"server": gw.proxy_url, "username": "anna",
                                              "password": "anna-pw"})
    peter_ctx = await _context(browser)
    try:
        anna = await anna_ctx.new_page()
        # 1. Blocked: the block page, with a link to the request form.
        await anna.goto(PLATFORM_URL)
        link = anna.locator("#sargs-request")
        await link.wait_for()
        assert "Hello from" not in await anna.content()
        await link.click()
        # 2. The service asks her to log in, then shows the form for this platform.
        await anna.fill("#name", "anna")
        await anna.fill("#password", "anna-pw")
        await anna.click("button[type=submit]")
        await anna.wait_for_selector("#request-form")
        assert await anna.input_value("#platform") == "tiktok"
        await anna.check("input[name=access][value=allow]")
        await anna.select_option("#duration", "60")
        await anna.fill("#justification", "Answering citizens' questions during the floods")
        await anna.click("#request-form button[type=submit]")
        await anna.wait_for_selector("#sargs-mine[data-sent]")
        assert "/access/mine?sent=" in anna.url
        status = anna.locator("td.status")
        assert (await status.inner_text()) == "Waiting for an approver"

        # 3. Peter logs in (another browser), sees it in his queue and approves for 1 hour.
        peter = await peter_ctx.new_page()
        await peter.goto(f"{svc.url}/login?next=/approvals")
        await peter.fill("#name", "peter")
        await peter.fill("#password", "peter-pw")
        await peter.click("button[type=submit]")
        section = peter.locator("section.request")
        await section.wait_for()
        assert "Answering citizens" in await section.inner_text()
        assert (await peter.locator("#sargs-badge").inner_text()) == "1"
        await section.locator("select[name=duration]").select_option("60")
        await section.locator("form.approve button").click()
        await peter.wait_for_selector("#sargs-msg")
        assert "Approved" in await peter.locator("#sargs-msg").inner_text()

        # 4. Anna's page learns of it without a reload and takes her back to TikTok.
        await status.filter(has_text="Approved until").wait_for()
        for _ in range(100):  # bounded: ~10 s
            if anna.url == PLATFORM_URL:
                break
            await asyncio.sleep(0.1)
        assert anna.url == PLATFORM_URL
        await _until(anna, blocked=False)
        assert "Hello from www.tiktok.com" in await anna.content()

        # 5. Peter revokes; Anna is blocked again.
        await peter.goto(f"{svc.url}/grants")
        await peter.locator("tr[data-id] button").click()
        await peter.locator("p.notice").filter(has_text="Access revoked").wait_for()
        await _until(anna, blocked=True)
        assert "Hello from" not in await anna.content()
    finally:
        await anna_ctx.close()
        await peter_ctx.close()

"""Chromium (Debian's, headless) signs on to the real gateway with a Kerberos ticket and
reaches a platform page without any prompt; without the ticket it gets the 407."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, async_playwright
from playwright.async_api import Error as PlaywrightError

from tests.directory.test_gateway_negotiate import Stand, stand  # noqa: F401  (fixture)
from tests.support.browser import launch_chromium

pytestmark = [pytest.mark.browser]


@pytest.fixture
async def chromium(tmp_path: Path) -> AsyncIterator[Any]:
    async def launch(*args: str) -> Browser:
        return await launch_chromium(pw, tmp_path / "home", list(args))

    async with async_playwright() as pw:
        yield launch


async def test_chromium_reaches_a_platform_on_its_ticket(
    stand: Stand, chromium: Any  # noqa: F811
) -> None:
    stand.slapd.add_group("press", [stand.slapd.add_user("iris")])
    stand.ticket("iris")  # KRB5CCNAME (and KRB5_CONFIG) reach Chromium's environment
    assert os.environ["KRB5CCNAME"].endswith("iris.cc")
    # The proxy as a switch: Playwright's own proxy option answers 407 itself.
    args = ("--auth-server-allowlist=127.0.0.1,localhost",
            f"--proxy-server={stand.gateway.proxy_url}")
    browser = await chromium(*args)
    try:
        context = await browser.new_context(ignore_https_errors=True)
        page = await context.new_page()
        # Chromium loads its GSSAPI library on the first Negotiate challenge it meets and
        # answers that one "unsupported scheme" (its net log: AUTH_HANDLER_CREATE_RESULT
        # -339), so the very first navigation of a new browser fails; the next one signs on.
        with contextlib.suppress(PlaywrightError):
            await page.goto("https://tiktok.com/")
        response = await page.goto("https://tiktok.com/")
        assert response is not None
        assert response.status == 200
        assert "Hello from tiktok.com" in await page.content()
    finally:
        await browser.close()

    reached = len(stand.site.seen)
    stand.monkeypatch.setenv("KRB5CCNAME", str(stand.kdc.ccaches / "nobody.cc"))  # no ticket
    browser = await chromium(*args)
    try:
        context = await browser.new_context(ignore_https_errors=True)
        page = await context.new_page()
        # Negotiate fails, Basic has no credentials (headless: no prompt): an error page.
        with pytest.raises(PlaywrightError, match="ERR_INVALID_AUTH_CREDENTIALS"):
            await page.goto("https://tiktok.com/")
        with pytest.raises(PlaywrightError):
            await page.goto("https://tiktok.com/")
        assert len(stand.site.seen) == reached  # nothing reached the platform
    finally:
        await browser.close()

"""Ask a superior, end to end with real parts: Chromium through the real gateway on the
stand-in x.com; the guard's review dialog sends the draft (through the gateway's reserved
path, which forwards it to the real service with the user it knows); a reviewer logs in to
the service in another browser, reads the draft and approves it; the author's dialog says
so live; the approval is an allowance bound to exactly that text; then the post goes
through once, and a changed text is still refused.

The gateway's clock is the real one: an allowance is valid from the moment the service
issued it, by the service's clock.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, expect
from pydantic import SecretStr

from proxy.compliance.texthash import text_hash
from proxy.gateway.addons import make_addons
from proxy.runtime import PolicyState
from proxy.settings import Settings
from proxy.store import allowances
from proxy.store import reviews as rv
from tests.sites.platforms import RECEIVED, make_site_app
from tests.support.browser import (  # noqa: F401  (pytest finds fixtures by name)
    browser,
    chromium_home,
    listen,
    next_event,
    serve,
)
from tests.support.gateway import Clock, Gateway, running_gateway
from tests.support.service import DEFAULT_USERS, Service, running_service

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

TOKEN = "gateway-token-for-the-review-story"
DRAFT = "Zvaniet man uz +371 29 123 456 rīt"
EDITOR = "[data-testid=tweetTextarea_0]"
PEOPLE = {**DEFAULT_USERS, "carl": ("carl-pw", ("communicator",), "press", None)}


@dataclass
class Env:
    svc: Service
    gw: Gateway
    sites: Any


@pytest_asyncio.fixture(loop_scope="session")
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    database = f"sqlite:///{tmp_path / 'sargs.db'}"
    async with running_service(tmp_path / "service", database, people=PEOPLE,
                               gateway_token=SecretStr(TOKEN)) as svc:
        settings = Settings(var_dir=tmp_path / "gateway", service_url=svc.url,
                            gateway_token=SecretStr(TOKEN), gateway_id="gw-review",
                            gateway_metrics_port=0)

        def make(_: Settings, state: PolicyState, **kw: Any) -> list[object]:
            return make_addons(settings, state, sync=True, **kw)

        sites = make_site_app(None)  # the gateway injects the guard
        async with serve(sites) as sites_url, running_gateway(
            tmp_path, int(sites_url.rsplit(":", 1)[1]),
            users={"carl": ("carl-pw", ["communicator"])}, make=make,
            clock=Clock(datetime.now(UTC)),
        ) as gw:
            yield Env(svc, gw, sites)


async def _author(browser: Browser, env: Env) -> tuple[BrowserContext, Page]:  # noqa: F811
    ctx = await browser.new_context(
        proxy={"server": env.gw.proxy_url, "username": "carl", "password": "carl-pw"},
        ignore_https_errors=True, locale="lv-LV", viewport={"width": 1000, "height": 800})
    ctx.set_default_timeout(15_000)
    page = await ctx.new_page()
    await page.goto("https://x.com/x")
    await page.wait_for_function("() => !!globalThis.__sargsComposeGuard")
    await listen(page)
    await page.locator(EDITOR).click()
    return ctx, page


async def ask_and_approve(browser: Browser, env: Env) -> tuple[BrowserContext, Page, str]:  # noqa: F811
    ctx, page = await _author(browser, env)
    await page.keyboard.type(DRAFT)
    event = await next_event(page, rule="personal-data")
    assert event["verdict"] == "block"
    # "Ask a superior": the panel's button for the finding's way forward.
    await page.locator("sargs-guard .badge").click()
    await page.locator("sargs-guard button.way[data-way=review]").first.click()
    dialog = page.locator("sargs-review [role=dialog]")
    await expect(dialog).to_contain_text("Jautāt vadītājam")
    await expect(dialog.locator(".quote")).to_have_text(DRAFT)
    assert await asyncio.to_thread(rv.list_reviews, env.svc.store) == []  # nothing sent yet
    await dialog.locator("textarea").fill("Vai drīkst?")
    await dialog.locator("button.send").click()
    # The service checks the text itself (its first check starts the worker pool): slow on
    # a busy machine, never wrong.
    await expect(dialog.locator(".state")).to_contain_text("Nosūtīts pārskatīšanai",
                                                           timeout=30_000)
    (review,) = await asyncio.to_thread(rv.list_reviews, env.svc.store)
    assert (review.user, review.platform, review.status) == ("carl", "x", "pending")

    # The reviewer, in another browser (no proxy), on the service's pages.
    reviewer = await browser.new_context(locale="en-US", viewport={"width": 1000, "height": 800})
    try:
        rp = await reviewer.new_page()
        await rp.goto(f"{env.svc.url}/login?next=/reviews")
        await rp.fill("#name", "peter")
        await rp.fill("#password", "peter-pw")
        await rp.click("button[type=submit]")
        await rp.goto(f"{env.svc.url}/reviews")
        await rp.click(f"a[href='/reviews/{review.id}']")
        await expect(rp.locator("#sargs-draft")).to_have_text(DRAFT, timeout=30_000)
        await expect(rp.locator("#sargs-note")).to_have_text("Vai drīkst?")
        await rp.click("form[action$='/approve'] button")
        await expect(rp.locator("#sargs-msg")).to_contain_text("Approved", timeout=30_000)
    finally:
        await reviewer.close()

    # The author is told live, in their language.
    await expect(dialog.locator(".state")).to_contain_text("Apstiprināts", timeout=30_000)
    (allowance,) = await asyncio.to_thread(allowances.active, env.svc.store)
    assert (allowance.user, allowance.platform, allowance.kind) == ("carl", "x", "review")
    assert allowance.text_hash == text_hash(DRAFT)
    assert (await asyncio.to_thread(rv.draft, env.svc.store,
                                     env.svc.app[_review_key()], review.id)) is None
    return ctx, page, review.id


def _review_key() -> Any:
    from proxy.service.reviews import REVIEW_KEY

    return REVIEW_KEY


async def test_ask_a_superior_reaches_a_reviewer_who_approves(
    browser: Browser, env: Env,  # noqa: F811
) -> None:
    ctx, _page, _ = await ask_and_approve(browser, env)
    await ctx.close()


async def test_approved_post_goes_through_once(browser: Browser, env: Env) -> None:  # noqa: F811
    ctx, page, _ = await ask_and_approve(browser, env)
    try:
        await page.locator("sargs-review button.cancel").click()
        received = env.sites[RECEIVED]
        # A changed text is not the reviewed one: refused, and the approval stays unused.
        await page.locator(EDITOR).click()
        await page.keyboard.press("End")
        await page.keyboard.type("!")
        await page.click("#post")
        await expect(page.locator("#result")).to_contain_text("Sargs")
        assert received == []
        await page.locator(EDITOR).click()
        await page.keyboard.press("End")
        await page.keyboard.press("Backspace")
        await page.evaluate("document.getElementById('result').textContent = ''")
        await page.click("#post")
        await expect(page.locator("#result")).to_have_text("Posted")
        assert [json.loads(r.text())["variables"]["tweet_text"] for r in received] == [DRAFT]
        await page.evaluate("document.getElementById('result').textContent = ''")
        await page.click("#post")  # once only: the same text again is refused
        await expect(page.locator("#result")).to_contain_text("Sargs")
        assert len(received) == 1
    finally:
        await ctx.close()

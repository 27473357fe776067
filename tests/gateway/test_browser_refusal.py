"""Chromium through the real gateway: when the gateway refuses a post, the guard on the
page shows its own explanation (extension/guard/refusal.js, proxy/gateway/lastrefusal.py),
not the stand-in platform's generic "Something went wrong"."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page

from tests.sites.platforms import RECEIVED, make_site_app
from tests.support.browser import browser, chromium_home, listen, next_event, serve  # noqa: F401
from tests.support.gateway import Clock, Gateway, running_gateway

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SATURDAY = datetime(2026, 11, 28, 11, 0, tzinfo=ZoneInfo("Europe/Riga"))
USERS = {"carl": ("carl-pw", ["communicator"]), "dina": ("dina-pw", ["communicator"])}
PHONE = "+371 29 123 456"
DRAFT = f"Zvaniet man uz {PHONE} rīt"
EDITOR = "[data-testid=tweetTextarea_0]"
BOX = "sargs-guard .refusal"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def env(tmp_path_factory: pytest.TempPathFactory
              ) -> AsyncIterator[tuple[Gateway, web.Application]]:
    tmp: Path = tmp_path_factory.mktemp("browser-refusal")
    sites = make_site_app(None)
    async with serve(sites) as sites_url:
        port = int(sites_url.rsplit(":", 1)[1])
        async with running_gateway(tmp, port, users=USERS, clock=Clock(SATURDAY)) as gw:
            yield gw, sites


async def new_context(browser: Browser, gw: Gateway, user: str,  # noqa: F811
                      locale: str = "en-US") -> BrowserContext:
    ctx = await browser.new_context(
        proxy={"server": gw.proxy_url, "username": user, "password": USERS[user][0]},
        ignore_https_errors=True, locale=locale, viewport={"width": 1000, "height": 800})
    ctx.set_default_timeout(10_000)
    return ctx


@pytest_asyncio.fixture(loop_scope="session")
async def context(browser: Browser, env: tuple[Gateway, web.Application]  # noqa: F811
                  ) -> AsyncIterator[BrowserContext]:
    ctx = await new_context(browser, env[0], "carl")
    try:
        yield ctx
    finally:
        await ctx.close()


async def compose(context: BrowserContext, text: str, name: str = "x-generic") -> Page:
    page = await context.new_page()
    await page.goto(f"https://x.com/{name}")
    await page.wait_for_function("() => !!globalThis.__sargsComposeGuard")
    await listen(page)
    await page.locator(EDITOR).click()
    await page.keyboard.type(text)
    await next_event(page)
    return page


async def test_a_refused_post_shows_the_guards_explanation(
    context: BrowserContext, env: tuple[Gateway, web.Application]
) -> None:
    _, sites = env
    sites[RECEIVED].clear()
    page = await compose(context, DRAFT)
    assert not await page.locator(BOX).is_visible()
    await page.click("#post")
    await page.locator("#result").filter(has_text="Something went wrong").wait_for()
    box = page.locator(BOX)
    await box.wait_for()
    assert await box.get_attribute("role") == "alertdialog"
    text = await box.inner_text()
    assert "Sargs did not send this post" in text
    assert "Nothing was published" in text
    assert await box.locator("li[data-rule=personal-data]").count() == 1
    assert await box.locator("li[data-way=edit]").count() == 1
    assert PHONE not in text  # the explanation never repeats the draft
    assert sites[RECEIVED] == []  # and the post never reached the platform
    # Focus moved to the box; Escape closes it.
    await page.keyboard.press("Escape")
    await box.wait_for(state="hidden")


async def test_the_explanation_opens_the_panel_with_the_ways_forward(
    context: BrowserContext, env: tuple[Gateway, web.Application]
) -> None:
    page = await compose(context, DRAFT)
    await page.click("#post")
    box = page.locator(BOX)
    await box.wait_for()
    assert await box.locator("li[data-way=justify]").count() == 1
    await box.get_by_role("button", name="Show these choices").click()
    await box.wait_for(state="hidden")
    panel = page.locator("sargs-guard .panel")
    await panel.wait_for()
    # the phone number's ways, as buttons: a reason, a report, a review (not "post anyway")
    ways = panel.locator("button.way")
    assert {await ways.nth(i).get_attribute("data-way") for i in range(await ways.count())} \
        == {"justify", "report", "review"}


async def test_a_passed_post_or_a_page_load_shows_nothing(
    context: BrowserContext, env: tuple[Gateway, web.Application]
) -> None:
    page = await compose(context, DRAFT)
    await page.click("#post")
    await page.locator(BOX).wait_for()
    # A new page of the same user: the earlier refusal is older than any click there.
    clean = await compose(context, "The library opens at ten tomorrow.", "x")
    await clean.click("#post")
    await clean.locator("#result").filter(has_text="Posted").wait_for()
    await clean.wait_for_timeout(1800)
    assert not await clean.locator(BOX).is_visible()


TITLES = {"en": "Sargs did not send this post", "lv": "Sargs nenosūtīja šo ierakstu",
          "sv": "Sargs skickade inte det här inlägget", "sq": "Sargs nuk e dërgoi këtë postim"}
SCREENS = os.environ.get("SARGS_SCREENSHOTS", "")


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 844)])
@pytest.mark.parametrize("lang", list(TITLES))
async def test_the_explanation_is_in_the_users_language_and_fits(
    browser: Browser, env: tuple[Gateway, web.Application], lang: str,  # noqa: F811
    width: int, height: int
) -> None:
    ctx = await new_context(browser, env[0], "dina", locale=lang)
    try:
        page = await compose(ctx, DRAFT)
        await page.set_viewport_size({"width": width, "height": height})
        await page.click("#post")
        box = page.locator(BOX)
        await box.wait_for()
        assert TITLES[lang] in await box.inner_text()
        rect = await box.bounding_box()
        assert rect is not None
        assert rect["x"] >= 0
        assert rect["x"] + rect["width"] <= width
        assert rect["y"] + rect["height"] <= height
        if SCREENS:
            await page.screenshot(path=str(Path(SCREENS) / f"guard-refusal-{lang}-{width}.png"))
    finally:
        await ctx.close()


async def test_another_user_never_sees_a_refusal_that_is_not_theirs(
    env: tuple[Gateway, web.Application], context: BrowserContext
) -> None:
    gw, _ = env
    page = await compose(context, DRAFT)
    await page.click("#post")
    await page.locator(BOX).wait_for()

    async def last(user: str) -> object:
        token = base64.b64encode(f"{user}:{USERS[user][0]}".encode()).decode()
        async with aiohttp.ClientSession() as s, s.get(
            "https://x.com/__sargs/api/v1/last-refusal", proxy=gw.proxy_url,
            ssl=gw.ssl_context(), proxy_headers={"Proxy-Authorization": f"Basic {token}"},
        ) as r:
            assert r.status == 200
            return json.loads(await r.text())["refusal"]

    mine = await last("carl")
    assert isinstance(mine, dict)
    assert mine["findings"][0]["rule"] == "personal-data"
    assert "start" not in mine["findings"][0]  # no offsets into the text, no text
    assert PHONE not in json.dumps(mine)
    dina = await last("dina")
    assert dina is None or dina["id"] != mine["id"]

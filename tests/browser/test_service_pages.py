"""The service's pages in Chromium, in en, lv, sv and sq, at desktop and phone widths.

Each page must fit the width (no sideways scrolling), say which language it is in, show
names rather than ids, and offer the language switch. With SARGS_SCREENSHOTS=DIR every
page is also saved there (``pages-<page>-<lang>-<width>.png``) to be looked at.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page

from proxy.service.reviews import REVIEW_KEY
from proxy.store import audit, grants, requests, reviews
from tests.support.browser import browser, chromium_home  # noqa: F401 (fixtures)
from tests.support.service import Service, running_service

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SCREENS = os.environ.get("SARGS_SCREENSHOTS", "")
LANGS = ("en", "lv", "sv", "sq")
WIDTHS = ((1280, 900), (390, 844))
PAGES = ("", "guidelines", "ca", "access/request", "access/mine", "approvals", "grants",
         "audit", "dashboard", "sessions", "reviews", "reviews/mine", "proceed?platform=x",
         "no-such-page")
RAW_IDS = ("personal-data", "post-override", "false-positive", "review-approve", "grant-use",
           "duration_minutes", "None")


async def seed(svc: Service) -> None:
    store = svc.store
    now = datetime.now(UTC)

    def run() -> None:
        old = requests.create_request(store, "anna", "tiktok", "allow", 240, "Campaign video",
                                      now=now - timedelta(days=3))
        requests.approve(store, old.id, "rita")
        gone = requests.create_request(store, "anna", "x", "read", 60, "Reading replies",
                                       now=now - timedelta(days=2))
        requests.reject(store, gone.id, "rita", "Use the official account instead")
        requests.create_request(store, "anna", "tiktok", "allow", 90,
                                "Answer questions under the ministry's video today",
                                ticket="IT-2041")
        requests.create_request(store, "cora", "facebook", "read", 480, "Monitoring comments")
        for minutes in (0, 1, 2):
            audit.append(store, "block", at=now - timedelta(minutes=10 - minutes), user="cora",
                         platform="x", details={"rule": "role"})
        for kind, details in [
            ("warn", {"findings": [{"rule": "personal-data", "severity": "warn"}]}),
            ("post-simulated", {"rules": ["offensive"], "severity": "warn", "would": "block"}),
            ("post-override", {"rules": ["personal-data"], "way": "justify",
                               "reason": "public figure's official number",
                               "text_hash": "a" * 64}),
            ("false-positive", {"rules": ["offensive"], "text_hash": "b" * 64}),
            ("review-request", {"rules": ["classified"]}),
            ("review-approve", {"rules": ["classified"]}),
        ]:
            audit.append(store, kind, actor="anna", user="anna", platform="x", details=details)
        reviews.submit(store, svc.app[REVIEW_KEY], user="anna", platform="x",
                       text="Rīt plkst. 10:00 ministre paziņos jauno budžetu. Jautājumi: "
                            "+371 29 123 456.",
                       note="Can this go out before the press conference?",
                       rules=["embargo", "personal-data"])
        live = requests.create_request(store, "hedda", "linkedin", "allow", 480, "Job posting")
        requests.approve(store, live.id, "peter")
        assert grants.list_active(store, now + timedelta(minutes=1))

    await asyncio.to_thread(run)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    tmp: Path = tmp_path_factory.mktemp("pages")
    async with running_service(tmp, f"sqlite:///{tmp / 'sargs.db'}") as service:
        await seed(service)
        yield service


async def context(browser: Browser, width: int, height: int) -> BrowserContext:  # noqa: F811
    ctx = await browser.new_context(viewport={"width": width, "height": height},
                                    locale="en-US", timezone_id="Europe/Stockholm")
    ctx.set_default_timeout(10_000)
    return ctx


async def login(page: Page, base: str, user: str, lang: str) -> None:
    await page.goto(f"{base}/login?lang={lang}")
    await page.fill("#name", user)
    await page.fill("#password", f"{user}-pw")
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/access/mine")


async def fits(page: Page) -> bool:
    return bool(await page.evaluate(
        "() => document.documentElement.scrollWidth <= window.innerWidth + 1"))


async def shot(page: Page, name: str, lang: str, width: int) -> None:
    if SCREENS:
        await page.screenshot(path=str(Path(SCREENS) / f"pages-{name}-{lang}-{width}.png"),
                              full_page=True)


@pytest.mark.parametrize(("width", "height"), WIDTHS)
@pytest.mark.parametrize("lang", LANGS)
async def test_every_page_looks_finished(browser: Browser, svc: Service, lang: str,  # noqa: F811
                                         width: int, height: int) -> None:
    ctx = await context(browser, width, height)
    try:
        page = await ctx.new_page()
        await page.goto(f"{svc.url}/login?lang={lang}")
        assert await page.get_attribute("html", "lang") == lang
        assert await page.locator("nav.langs a").count() == 3  # the other three languages
        assert await fits(page)
        await shot(page, "login", lang, width)
        await login(page, svc.url, "peter", lang)
        for path in PAGES:
            await page.goto(f"{svc.url}/{path}")
            assert await page.get_attribute("html", "lang") == lang, path  # the switch stuck
            assert await fits(page), path
            shown = await page.locator("main").inner_text()
            if path in ("audit", "dashboard", "approvals"):
                assert not [raw for raw in RAW_IDS if raw in shown], (path, shown)
            if path == "no-such-page":  # a 404 page still knows who is logged in
                assert await page.locator("form.logout").count() == 1
            await shot(page, path.replace("/", "-").split("?")[0] or "home", lang, width)
        # The draft a reviewer reads (anna's, sealed until peter opens it).
        await page.goto(f"{svc.url}/reviews")
        await page.locator("li.review a.button").first.click()
        await page.locator("blockquote.draft").wait_for()
        assert await fits(page)
        await shot(page, "review", lang, width)
        # A page a staff member may not open: 403, as a page in their language.
        staff = await ctx.new_page()
        await ctx.clear_cookies()
        await login(staff, svc.url, "anna", lang)
        response = await staff.goto(f"{svc.url}/audit")
        assert response is not None
        assert response.status == 403
        assert await staff.locator("#sargs-error").get_attribute("data-status") == "403"
        assert await fits(staff)
        await shot(staff, "403", lang, width)
    finally:
        await ctx.close()


async def test_times_are_in_the_readers_zone_and_language(browser: Browser,  # noqa: F811
                                                          svc: Service) -> None:
    ctx = await browser.new_context(locale="sv-SE", timezone_id="America/New_York")
    try:
        page = await ctx.new_page()
        await login(page, svc.url, "peter", "sv")
        await page.goto(f"{svc.url}/approvals")  # the zone cookie is set by now
        found = await requests_created(svc)
        local = found.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
        text = await page.locator("main").inner_text()
        assert f"{local:%H:%M}" in text  # New York time, not Riga's
        assert "1 timme 30 minuter" in text  # Anna's 90 minutes, in Swedish
        assert "Tidigare förfrågningar (2)" in text  # her history: approved, rejected
        assert "Use the official account instead" in text
    finally:
        await ctx.close()


async def requests_created(svc: Service) -> datetime:
    found = await asyncio.to_thread(requests.list_requests, svc.store, user="anna",
                                    status="pending")
    return found[0].created_at


async def test_an_unknown_page_is_a_page_for_browsers_and_json_for_scripts(
        browser: Browser, svc: Service) -> None:  # noqa: F811
    ctx = await browser.new_context(locale="lv-LV")
    try:
        page = await ctx.new_page()
        response = await page.goto(f"{svc.url}/nav-tada-lapa")
        assert response is not None
        assert response.status == 404
        assert await page.locator("h1").inner_text() == "Lapa nav atrasta"
        api = await ctx.request.get(f"{svc.url}/nav-tada-lapa",
                                    headers={"Accept": "application/json"})
        assert api.status == 404
        assert "html" not in api.headers.get("content-type", "")
    finally:
        await ctx.close()

"""Chromium through the real gateway, which follows a real service: ways forward in the
guard (issue 16). "Post with a reason" on a phone number lets exactly that text post once;
the same text again, and a changed text, are refused. A rule on trial (simulation) is
shown as "would block" and refuses nothing. The audit log never holds the text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page
from pydantic import SecretStr

from proxy.gateway.addons import make_addons
from proxy.runtime import PolicyState
from proxy.settings import Settings
from proxy.store import audit
from tests.integration.test_refused_post import _eventually
from tests.sites.platforms import RECEIVED, make_site_app
from tests.support.browser import (  # noqa: F401  (pytest finds fixtures by name)
    browser,
    chromium_home,
    listen,
    marks,
    next_event,
    serve,
)
from tests.support.gateway import Clock, copy_policy, running_gateway
from tests.support.service import Service, running_service

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

USERS = {"carl": ("carl-pw", ["communicator"])}
TOKEN = "gateway-token-for-this-test"
PHONE = "+371 29 123 456"
DRAFT = f"Zvaniet man uz {PHONE} rīt"
EDITOR = "textarea.autosuggest-textarea__textarea"  # Mastodon's compose form


@dataclass
class Stand:
    service: Service
    sites: web.Application
    context: BrowserContext


def no_working_hours(example: Path) -> Path:
    """The example policy without working hours: these tests run at any time of day (the
    service and the gateway use the real clock, for allowances), and a personal post in
    working hours would add a working-hours warning and its buttons to every draft."""
    policy = example / "policy.yaml"
    lines = policy.read_text(encoding="utf-8").splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.strip() == "working_hours:")
    end = start + 1
    while lines[end].lstrip().startswith("- {days:"):
        end += 1
    policy.write_text("".join(lines[:start] + lines[end:]), encoding="utf-8")
    return example


@asynccontextmanager
async def stand(browser: Browser, tmp: Path, policy: Path | None = None  # noqa: F811
                ) -> AsyncIterator[Stand]:
    policy = policy or no_working_hours(copy_policy(tmp))
    state = PolicyState(policy)
    database = f"sqlite:///{tmp / 'sargs.db'}"
    sites = make_site_app(None)
    async with running_service(tmp / "service", database, gateway_token=SecretStr(TOKEN),
                               policy=state) as svc, serve(sites) as sites_url:
        settings = Settings(var_dir=tmp / "gateway", service_url=svc.url,
                            gateway_token=SecretStr(TOKEN), gateway_metrics_port=0,
                            policy=policy)

        def make(_: Settings, st: PolicyState, **kw: Any) -> list[object]:
            return make_addons(settings, st, sync=True, **kw)

        async with running_gateway(tmp, int(sites_url.rsplit(":", 1)[1]), users=USERS,
                                   make=make, policy=state, clock=Clock(datetime.now(UTC))
                                   ) as gw:
            ctx = await browser.new_context(
                proxy={"server": gw.proxy_url, "username": "carl", "password": "carl-pw"},
                ignore_https_errors=True, locale="en-US",
                viewport={"width": 1000, "height": 800})
            ctx.set_default_timeout(15_000)
            try:
                yield Stand(svc, sites, ctx)
            finally:
                await ctx.close()


async def compose(ctx: BrowserContext, text: str) -> Page:
    page = await ctx.new_page()
    await page.goto("https://mastodon.social/mastodon")
    await page.wait_for_function("() => !!globalThis.__sargsComposeGuard")
    await listen(page)
    await page.evaluate("""() => document.addEventListener('sargs:proceed',
        (e) => window.__sargsEvents.push({type: 'proceed', ...e.detail, findings: []}), true)""")
    await page.locator(EDITOR).click()
    await page.keyboard.type(text)
    return page


async def post(page: Page) -> str:
    result = page.locator("#result")
    await page.evaluate("() => { document.getElementById('result').textContent = ''; }")
    await page.click("#post")
    await result.filter(has_text="S").wait_for()  # "Posted" or "Sargs did not send…"
    return (await result.text_content()) or ""


async def test_post_with_a_reason_lets_exactly_that_text_through_once(
        browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    async with stand(browser, tmp_path) as s:
        page = await compose(s.context, DRAFT)
        event = await next_event(page, rule="personal-data")
        phone = next(f for f in event["findings"] if f["rule"] == "personal-data")
        assert phone["ways"] == ["justify", "report", "review"]

        # the card on the underline offers the ways; its button opens the form in the panel
        await page.locator("sargs-guard .mark").first.wait_for(state="attached")
        mark = next(m for m in await marks(page) if m["rule"] == "personal-data")
        await page.mouse.move((mark["left"] + mark["right"]) / 2,
                              (mark["top"] + mark["bottom"]) / 2)
        card = page.locator("sargs-guard .card")
        await card.wait_for()
        button = card.get_by_role("button", name="Post with a reason")
        box = await button.bounding_box()
        assert box
        await page.mouse.move(box["x"] + 5, box["y"] + 5, steps=4)  # onto the card
        await button.click()
        area = page.locator("sargs-guard .way-area")
        await area.wait_for()
        reason = area.locator("select.reason")
        await reason.locator("option[value=public-number]").wait_for(state="attached")
        await reason.select_option("public-number")
        await area.get_by_role("button", name="Confirm").click()
        await area.filter(has_text="You may post exactly this text once").wait_for()
        done = await next_event(page, kind="proceed")
        assert done["allowed"] is True
        assert done["rules"] == ["personal-data"]

        assert await post(page) == "Posted"
        received = s.sites[RECEIVED]
        assert len(received) == 1
        assert PHONE in received[0].text()

        # the same text again: refused (the permission was for one post)
        await page.locator(EDITOR).fill(DRAFT)
        assert (await post(page)).startswith("Sargs did not send this post")
        # a changed text: refused
        await page.locator(EDITOR).fill(DRAFT.replace("456", "457"))
        refused = await post(page)
        assert refused.startswith("Sargs did not send this post")
        assert "post with a reason" in refused  # the refusal names the ways forward
        assert len(received) == 1

        def used() -> bool:
            return bool(audit.query(s.service.store, kind="allowance-use"))

        await _eventually(used, within=30)
        entries = audit.query(s.service.store, newest_first=False)
        kinds = [e.kind for e in entries]
        assert kinds.count("post-override") == 1
        override = next(e for e in entries if e.kind == "post-override")
        assert (override.user, override.platform) == ("carl", "mastodon")
        assert override.details["reason"] == "public-number"
        assert all(PHONE not in str(dict(e.details)) for e in entries)
        assert all("Zvaniet" not in str(dict(e.details)) for e in entries)


async def test_rule_on_trial_is_shown_and_recorded_but_never_refuses(
        browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    example = no_working_hours(copy_policy(tmp_path))
    (example / "trial.yaml").write_text(yaml.safe_dump(
        {"compliance": {"rules": {"personal-data": {"mode": "simulate"}}}}))
    async with stand(browser, tmp_path, example) as s:
        page = await compose(s.context, DRAFT)
        event = await next_event(page, rule="personal-data")
        phone = next(f for f in event["findings"] if f["rule"] == "personal-data")
        assert phone["simulated"] is True
        assert event["verdict"] in ("ok", "warn", "info")
        await page.locator("sargs-guard button.badge").click()
        panel = page.locator("sargs-guard .panel")
        await panel.filter(has_text="Trial rule: would block").wait_for()
        assert await panel.locator("button.way").count() == 0  # nothing to get past
        assert await post(page) == "Posted"
        assert len(s.sites[RECEIVED]) == 1

        def recorded() -> bool:
            return bool(audit.query(s.service.store, kind="post-simulated"))

        await _eventually(recorded, within=30)
        (entry,) = audit.query(s.service.store, kind="post-simulated")
        assert entry.details["would"] == "block"
        assert entry.details["rules"] == ["personal-data"]
        assert PHONE not in str(dict(entry.details))


async def test_acknowledge_a_warning_from_the_keyboard(
        browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    insult = "Tu esi idiots, bet labs"  # offensive: warn; acknowledge allowed
    async with stand(browser, tmp_path) as s:
        page = await compose(s.context, insult)
        event = await next_event(page, rule="offensive")
        found = next(f for f in event["findings"] if f["rule"] == "offensive")
        assert found["ways"] == ["acknowledge", "report", "review"]
        await page.keyboard.press("Alt+Shift+S")  # the panel, with focus
        panel = page.locator("sargs-guard .panel")
        await panel.wait_for()
        button = panel.get_by_role("button", name="Post anyway")
        await button.focus()
        await page.keyboard.press("Enter")
        confirm = page.locator("sargs-guard .way-area").get_by_role("button", name="Confirm")
        await confirm.wait_for()
        assert await confirm.evaluate("(b) => b.getRootNode().activeElement === b")
        await page.keyboard.press("Enter")
        done = await next_event(page, kind="proceed")
        assert done["way"] == "acknowledge"
        assert done["allowed"] is True
        (entry,) = audit.query(s.service.store, kind="post-override")
        assert entry.details["way"] == "acknowledge"
        assert "offensive" in entry.details["rules"]  # (and working-hours, in working hours)
        assert "idiots" not in str(dict(entry.details))

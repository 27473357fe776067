"""The compose guard explains each finding where it is (issue 16), in Chromium.

Typing with an input method, the card on hover and on the caret, the panel that quotes
each finding and closes after posting, and the state it shows honestly (read-only, not
checked, no promise of blocking where nothing blocks).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import FloatRect, Locator, Page

from proxy.guardscript import GuardScript
from tests.support.browser import (
    StandinLog,
    event_count,
    listen,
    marks,
    next_event,
    serve,
    standin_check,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

PHONE = "+371 26 555 123"
DRAFT = f"Call me at {PHONE} after lunch"
X = "[data-testid=tweetTextarea_0]"
MASTODON = "textarea.autosuggest-textarea__textarea"
CARD = "sargs-guard .card"
PANEL = "sargs-guard .panel"


async def open_editor(page: Page, url: str, selector: str) -> Locator:
    await page.goto(url)
    await page.wait_for_function("() => !!globalThis.__sargsComposeGuard")
    await listen(page)
    editor = page.locator(selector)
    await editor.click()
    return editor


async def typed(
    page: Page, url: str, selector: str = X, draft: str = DRAFT, rule: str = "personal-data"
) -> Locator:
    editor = await open_editor(page, url, selector)
    await page.keyboard.type(draft)
    await next_event(page, rule=rule)
    await page.locator("sargs-guard .mark").first.wait_for()
    return editor


async def test_no_check_while_an_input_method_composes(
    page: Page, site_url: str, standin: tuple[str, StandinLog]
) -> None:
    url, log = standin
    await open_editor(page, f"{site_url}/mastodon?backend={url}", MASTODON)
    cdp = await page.context.new_cdp_session(page)
    before = len(log.requests)
    # Chromium's own IME path: compositionstart/update, the text shown but not committed.
    for part in ("+371 2", "+371 26 555", f"{PHONE}"):
        await cdp.send("Input.imeSetComposition",
                       {"text": part, "selectionStart": len(part), "selectionEnd": len(part)})
        await page.wait_for_timeout(150)
    await page.wait_for_timeout(700)  # well past the 250 ms pause that would check
    assert len(log.requests) == before
    assert await event_count(page) == 0
    await cdp.send("Input.insertText", {"text": PHONE})  # commits: compositionend
    event = await next_event(page, rule="personal-data")
    assert log.requests[-1]["text"] == PHONE  # the finished word, checked once it was
    assert [r["text"] for r in log.requests[before:]] == [PHONE]
    assert event["verdict"] == "block"


async def test_hovering_an_underline_shows_its_card(page: Page, site_url: str) -> None:
    await typed(page, f"{site_url}/x")
    mark = next(m for m in await marks(page) if m["rule"] == "personal-data")
    card = page.locator(CARD)
    assert not await card.is_visible()
    await page.mouse.move((mark["left"] + mark["right"]) / 2, (mark["top"] + mark["bottom"]) / 2)
    await card.wait_for()
    assert await card.locator(".quote").inner_text() == PHONE  # the words it is about
    text = await card.inner_text()
    assert "Phone number" in text or "phone" in text.lower()
    assert "Not allowed — do not post" in text  # no gateway here: no promise of blocking
    box = await card.bounding_box()
    assert box
    assert box["y"] >= mark["bottom"]  # under the words, not over them
    # The pointer may travel onto the card (to follow its link) without losing it.
    await page.mouse.move(box["x"] + 20, box["y"] + 10, steps=4)
    await page.wait_for_timeout(500)
    assert await card.is_visible()
    await page.mouse.move(5, 5)
    await card.wait_for(state="hidden")


async def test_moving_the_caret_into_underlined_words_shows_their_card(
    page: Page, site_url: str
) -> None:
    editor = await typed(page, f"{site_url}/x")
    card = page.locator(CARD)
    assert not await card.is_visible()  # typing over the words did not pop it up
    for _ in range(len(" after lunch") + 3):
        await page.keyboard.press("ArrowLeft")
    await card.wait_for()
    assert await card.locator(".quote").inner_text() == PHONE
    assert await editor.evaluate("(e) => document.activeElement === e")  # focus stays put
    live = page.locator("sargs-guard [role=status]")
    await live.filter(has_text=PHONE).wait_for()  # screen readers hear the card too
    hot = [m for m in await marks(page) if m["rule"] == "personal-data"]
    assert hot
    assert await page.locator("sargs-guard .mark.hot").count() == len(hot)
    await page.keyboard.press("End")
    await card.wait_for(state="hidden")
    await page.keyboard.press("Home")
    await page.wait_for_timeout(100)
    assert not await card.is_visible()  # "Call" is clean


async def test_the_panel_quotes_each_finding_and_a_focused_one_shows_its_card(
    page: Page, site_url: str, standin_url: str
) -> None:
    draft = f"Ring {PHONE}, you idiot"
    await typed(page, f"{site_url}/facebook?backend={standin_url}", "[data-lexical-editor]", draft)
    await page.keyboard.press("Alt+Shift+S")
    panel = page.locator(PANEL)
    await panel.wait_for()
    quotes = await panel.locator("li .quote").all_inner_texts()
    assert quotes == [PHONE, "idiot"]
    await page.keyboard.press("Tab")  # the panel's Close button, then the first finding
    await page.keyboard.press("Tab")
    await page.locator(CARD).wait_for()
    assert await page.locator(f"{CARD} .quote").inner_text() == PHONE
    await page.keyboard.press("Tab")  # the guideline link of the first, then the second
    await page.keyboard.press("Tab")
    await page.locator(f"{CARD}[data-rule=offensive]").wait_for()
    assert await page.locator(f"{CARD} .quote").inner_text() == "idiot"
    await page.keyboard.press("Escape")
    await panel.wait_for(state="hidden")
    assert not await page.locator(CARD).is_visible()


@pytest.mark.parametrize(("name", "selector"), [("x-post", X), ("mastodon-post", MASTODON)])
async def test_the_panel_closes_after_posting(
    page: Page, site_url: str, standin_url: str, name: str, selector: str
) -> None:
    editor = await typed(page, f"{site_url}/{name}?backend={standin_url}", selector,
                         "See you at lunch, idiot", rule="offensive")
    await page.locator("sargs-guard button.badge").click()
    panel = page.locator(PANEL)
    await panel.wait_for()
    await page.click("#post")
    await page.locator("#result").filter(has_text="Posted").wait_for()
    await panel.wait_for(state="hidden")
    await page.locator("sargs-guard .mark").first.wait_for(state="detached")
    await page.locator("sargs-guard button.badge").wait_for(state="hidden")
    assert await editor.evaluate("(e) => (e.value ?? e.innerText).trim()") == ""


async def test_read_only_is_said_before_typing(page: Page, site_url: str) -> None:
    await open_editor(page, f"{site_url}/x?readonly=1", X)
    status = page.locator("sargs-guard .status")
    await status.filter(has_text="Read-only here").wait_for()
    assert await event_count(page) == 0  # nothing typed, nothing checked: the page said so
    await page.keyboard.type("Hello")
    await next_event(page)
    assert await status.is_visible()


async def test_a_suggestion_is_shown_where_the_rule_has_one(page: Page, site_url: str) -> None:
    # __SARGS_CONFIG__.check replaces the service (the documented surface the extension uses).
    await page.add_init_script("""globalThis.__SARGS_CONFIG__ = {check: async (p) => {
      const i = p.text.indexOf('26 555'); if (i < 0) return {verdict: 'ok', findings: []};
      return {verdict: 'warn', findings: [{rule: 'personal-data', severity: 'warn',
        start: i, end: i + 6, message: 'A private number', guideline: 'Personal data',
        suggestion: 'Give the switchboard: +371 67 000 000'}]}; }};""")
    await typed(page, f"{site_url}/x?backend=", X, "Call 26 555 now")
    mark = (await marks(page))[0]
    await page.mouse.move(mark["left"] + 3, mark["top"] + 3)
    card = page.locator(CARD)
    await card.wait_for()
    assert await card.locator(".suggestion").inner_text() == (
        "Suggestion: Give the switchboard: +371 67 000 000"
    )
    await page.keyboard.press("Alt+Shift+S")  # and in the panel, for keyboard users
    await page.locator(f"{PANEL} .suggestion").filter(has_text="switchboard").wait_for()


def reserved_path_app() -> web.Application:
    """A page whose guard comes from its own /__sargs/ path, as the gateway serves it."""
    script = GuardScript()
    app = web.Application()

    async def page_(request: web.Request) -> web.Response:
        return web.Response(content_type="text/html", text=(
            '<!doctype html><html lang="en"><head><script src="/__sargs/static/compose-guard.js"'
            ' data-backend="/__sargs/" data-platform="x" data-lang="en"></script></head>'
            '<body><div contenteditable="true" role="textbox" style="width:500px;'
            'min-height:80px;border:1px solid #999"><p><br></p></div></body></html>'))

    async def js(request: web.Request) -> web.Response:
        found = script.get()
        assert found
        return web.Response(body=found[0], content_type="text/javascript")

    async def check(request: web.Request) -> web.Response:
        return web.json_response(standin_check((await request.json())["text"]))

    app.router.add_get("/page", page_)
    app.router.add_get("/__sargs/static/compose-guard.js", js)
    app.router.add_post("/__sargs/api/v1/check", check)
    return app


async def test_behind_the_gateway_it_says_blocks_posting(page: Page) -> None:
    async with serve(reserved_path_app()) as url:
        await typed(page, f"{url}/page", "[role=textbox]")
        config = await page.evaluate("() => globalThis.__sargsComposeGuard.config")
        assert config["enforced"] is True
        await page.keyboard.press("Alt+Shift+S")
        panel = page.locator(PANEL)
        await panel.wait_for()
        text = await panel.inner_text()
        assert "Blocks posting" in text
        assert "refused when sent" in text
        assert not await panel.locator("a").count()  # the reserved path serves no pages


async def test_without_the_gateway_it_promises_no_blocking(page: Page, site_url: str) -> None:
    await typed(page, f"{site_url}/x")
    await page.keyboard.press("Alt+Shift+S")
    panel = page.locator(PANEL)
    await panel.wait_for()
    text = await panel.inner_text()
    assert "Blocks posting" not in text
    assert "cannot stop it being posted" in text


SCREENS = os.environ.get("SARGS_SCREENSHOTS", "")  # a directory: keep the screenshots there


def inside(box: FloatRect | None, width: int, height: int) -> bool:
    """Is the whole box on screen (a card cut off at a phone's edge is not)?"""
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width and (
        box["y"] >= 0 and box["y"] + box["height"] <= height
    )


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 844)])
@pytest.mark.parametrize("lang", ["en", "lv"])
async def test_card_and_panel_fit_on_desktop_and_phone(
    page: Page, site_url: str, standin_url: str, width: int, height: int, lang: str
) -> None:
    await page.set_viewport_size({"width": width, "height": height})
    draft = f"Ring {PHONE}, you idiot"
    await typed(page, f"{site_url}/facebook?backend={standin_url}&lang={lang}",
                "[data-lexical-editor]", draft)
    mark = next(m for m in await marks(page) if m["rule"] == "personal-data")
    await page.mouse.move(mark["left"] + 4, mark["top"] + 4)
    card = page.locator(CARD)
    await card.wait_for()
    assert inside(await card.bounding_box(), width, height)
    if SCREENS:
        await page.screenshot(path=str(Path(SCREENS) / f"ext-card-{lang}-{width}.png"))
    await page.mouse.move(1, 1)
    await card.wait_for(state="hidden")
    await page.locator("sargs-guard button.badge").click()
    panel = page.locator(PANEL)
    await panel.wait_for()
    assert inside(await panel.bounding_box(), width, height)
    if SCREENS:
        await page.screenshot(path=str(Path(SCREENS) / f"ext-panel-{lang}-{width}.png"))


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 844)])
async def test_the_card_links_to_the_guideline_in_the_users_language(
    page: Page, site_url: str, service_url: str, width: int, height: int
) -> None:
    await page.set_viewport_size({"width": width, "height": height})
    await typed(page, f"{site_url}/x?lang=lv&account=official", X)
    mark = next(m for m in await marks(page) if m["rule"] == "personal-data")
    await page.mouse.move(mark["left"] + 4, mark["top"] + 4)
    card = page.locator(CARD)
    await card.wait_for()
    assert await card.locator(".quote").inner_text() == PHONE
    assert "Bloķē" not in await card.inner_text()  # no gateway: no promise of blocking
    if SCREENS:
        await page.screenshot(path=str(Path(SCREENS) / f"ext-card-service-lv-{width}.png"))
    link = card.get_by_role("link", name="Lasīt vadlīniju")
    href = await link.get_attribute("href")
    assert href == f"{service_url}guidelines?lang=lv#rule-personal-data"
    await page.goto(href)
    assert await page.locator("html").get_attribute("lang") == "lv"
    clause = page.locator("li:has(#rule-personal-data)")
    assert await clause.locator("h2").inner_text() == "Personas dati"
    assert "VDAR" in await clause.inner_text()  # the policy's own Latvian text
    assert await clause.evaluate("(c) => getComputedStyle(c).boxShadow") != "none"  # :target
    assert inside(await clause.bounding_box(), width, height)  # scrolled to, fully shown
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= width
    if SCREENS:
        await page.screenshot(path=str(Path(SCREENS) / f"ext-guidelines-lv-{width}.png"))
        await page.goto(f"{service_url}guidelines?lang=sq")
        await page.screenshot(path=str(Path(SCREENS) / f"ext-guidelines-top-sq-{width}.png"))


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 844)])
async def test_not_checked_and_read_only_are_visible_on_desktop_and_phone(
    page: Page, site_url: str, width: int, height: int
) -> None:
    await page.set_viewport_size({"width": width, "height": height})
    await open_editor(page, f"{site_url}/mastodon?readonly=1&lang=sv", MASTODON)
    status = page.locator("sargs-guard .status")
    await status.filter(has_text="Endast läsning här").wait_for()
    assert inside(await status.bounding_box(), width, height)
    if SCREENS:
        await page.screenshot(path=str(Path(SCREENS) / f"ext-readonly-sv-{width}.png"))
    await open_editor(page, f"{site_url}/mastodon?lang=sq&backend=http://127.0.0.1:9/", MASTODON)
    await page.keyboard.type("Mirëdita")
    await next_event(page, kind="unavailable")
    await status.filter(has_text="Nuk u kontrollua: Sargs nuk mund të arrihet.").wait_for()
    assert inside(await status.bounding_box(), width, height)
    if SCREENS:
        await page.screenshot(path=str(Path(SCREENS) / f"ext-unreachable-sq-{width}.png"))

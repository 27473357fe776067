"""The compose guard in Chromium on fake platform pages, against a real check service.

``service_url`` is the real service once it answers ``POST /api/v1/check`` (else the
stand-in); tests that pin exact offsets or payloads use the stand-in on purpose.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
from playwright.async_api import Locator, Page

from tests.support.browser import (
    TEXT_RECT_JS,
    StandinLog,
    event_count,
    listen,
    marks,
    next_event,
    overlaps,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

PHONE = "+371 26 555 123"
DRAFT = f"Call me at {PHONE} after lunch"
CLEAN = "The library opens at ten tomorrow morning."

# page -> (editor selector, is it a textarea)
EDITORS: dict[str, tuple[str, bool]] = {
    "x": ("[data-testid=tweetTextarea_0]", False),
    "facebook": ("[data-lexical-editor=true]", False),
    "linkedin": (".ql-editor", False),
    "mastodon": ("textarea.autosuggest-textarea__textarea", True),
    "reddit": ("shreddit-composer [role=textbox]", False),  # inside an open shadow root
    "youtube": ("#contenteditable-root", False),
    "csp": ("[data-lexical-editor=true]", False),
}

TEXT_OF = "(e) => e.localName === 'textarea' ? e.value : e.innerText.replace(/\\n$/, '')"
CARET_OF = """(e) => {
  if (e.localName === 'textarea') return [e.selectionStart, e.selectionEnd];
  const root = e.getRootNode();
  const sel = (root.getSelection && root.getSelection()) || document.getSelection();
  const r = document.createRange();
  r.selectNodeContents(e);
  r.setEnd(sel.focusNode, sel.focusOffset);
  const at = r.toString().length;
  return [at, sel.isCollapsed ? at : -1];
}"""
LIVE = "sargs-guard [role=status]"


def js_index(text: str, part: str) -> tuple[int, int]:
    """UTF-16 offsets of ``part`` in ``text`` (what the browser's string indices are)."""
    i = text.index(part)
    start = len(text[:i].encode("utf-16-le")) // 2
    return start, start + len(part.encode("utf-16-le")) // 2


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def open_editor(page: Page, url: str, selector: str) -> Locator:
    await page.goto(url)
    await page.wait_for_function("() => !!globalThis.__sargsComposeGuard")
    await listen(page)
    editor = page.locator(selector)
    await editor.click()
    return editor


async def text_rect(editor: Locator, needle: str) -> dict[str, float]:
    rect = await editor.evaluate(TEXT_RECT_JS, needle)
    assert rect, f"{needle!r} not found in the editor's text nodes"
    return dict(rect)


async def field_text_rect(editor: Locator, before: str, needle: str) -> dict[str, float]:
    """Where ``needle`` sits in a one-line textarea, measured with a canvas (independent
    of the guard's mirror element)."""
    rect = await editor.evaluate(
        """(e, [before, needle]) => {
          const cs = getComputedStyle(e);
          const ctx = document.createElement('canvas').getContext('2d');
          ctx.font = cs.font;
          const box = e.getBoundingClientRect();
          const left = box.left + e.clientLeft + parseFloat(cs.paddingLeft)
                       + ctx.measureText(before).width;
          const top = box.top + e.clientTop + parseFloat(cs.paddingTop);
          return {left, right: left + ctx.measureText(needle).width,
                  top, bottom: top + parseFloat(cs.lineHeight)};
        }""",
        [before, needle],
    )
    return dict(rect)


def finding(event: dict[str, Any], rule: str) -> dict[str, Any]:
    found = [f for f in event["findings"] if f["rule"] == rule]
    assert found, event
    return dict(found[0])


@pytest.mark.parametrize("name", list(EDITORS))
async def test_a_violation_is_underlined_where_it_was_typed(
    page: Page, site_url: str, name: str, page_errors: list[str]
) -> None:
    selector, is_field = EDITORS[name]
    editor = await open_editor(page, f"{site_url}/{name}", selector)
    await editor.evaluate(
        "(e) => e.addEventListener('sargs:findings', () => { window.__onEditor = true; })"
    )
    await page.keyboard.type(DRAFT)

    event = await next_event(page, rule="personal-data")
    phone = finding(event, "personal-data")
    start, end = js_index(DRAFT, PHONE)
    # The engine may draw the span a little wider or narrower; it must cover the digits.
    assert phone["start"] <= start + 1, phone
    assert phone["end"] >= end - 1, phone
    assert event["verdict"] in ("block", "warn")
    assert await page.evaluate("() => window.__onEditor === true")  # dispatched on the editor

    # The editor holds exactly what was typed, and the caret is where the user left it.
    assert await editor.evaluate(TEXT_OF) == DRAFT
    assert await editor.evaluate(CARET_OF) == [len(DRAFT), len(DRAFT)]

    # The underline sits on the phone number, and never catches the mouse.
    await page.locator("sargs-guard .mark").first.wait_for()
    drawn = [m for m in await marks(page) if m["rule"] == "personal-data"]
    assert drawn
    if is_field:
        target = await field_text_rect(editor, DRAFT[: DRAFT.index(PHONE)], PHONE)
    else:
        target = await text_rect(editor, PHONE)
    assert any(overlaps(m, target) for m in drawn), (drawn, target)
    assert all(m["pointerEvents"] == "none" for m in drawn)
    assert all(abs(m["left"] - target["left"]) < 4 for m in drawn[:1]), (drawn, target)

    # Screen readers hear the message; the badge tells how many findings there are.
    await page.locator(LIVE).filter(has_text=phone["message"]).wait_for()
    badge = page.locator("sargs-guard button.badge")
    assert await badge.is_visible()
    assert "finding" in (await badge.get_attribute("aria-label") or "")
    assert page_errors == []


async def test_a_clean_draft_shows_nothing(page: Page, site_url: str) -> None:
    # An official account: a personal one gets a whole-draft 'working-hours' finding when
    # the suite runs during the institution's working hours.
    editor = await open_editor(page, f"{site_url}/x?account=official", EDITORS["x"][0])
    await page.keyboard.type(CLEAN)
    event = await next_event(page)
    assert event["findings"] == []
    assert event["verdict"] == "ok"
    assert await editor.evaluate(TEXT_OF) == CLEAN
    assert await marks(page) == []
    assert await page.locator(LIVE).text_content() == ""
    assert not await page.locator("sargs-guard button.badge").is_visible()
    assert not await page.locator("sargs-guard .panel").is_visible()


async def test_fixing_the_draft_clears_the_warning(page: Page, site_url: str) -> None:
    editor = await open_editor(
        page, f"{site_url}/facebook?account=official", EDITORS["facebook"][0]
    )
    await page.keyboard.type(DRAFT)
    await next_event(page, rule="personal-data")
    await page.locator("sargs-guard .mark").first.wait_for()
    after = await event_count(page)
    await page.keyboard.press("ControlOrMeta+a")
    await page.keyboard.type(CLEAN)
    event = await next_event(page, after=after)
    while event["findings"]:  # a check of a half-replaced draft may come first
        after = await event_count(page)
        event = await next_event(page, after=after)
    assert await editor.evaluate(TEXT_OF) == CLEAN
    await page.locator("sargs-guard .mark").first.wait_for(state="detached")
    assert not await page.locator("sargs-guard button.badge").is_visible()


async def test_the_panel_is_reachable_by_keyboard(page: Page, site_url: str) -> None:
    editor = await open_editor(page, f"{site_url}/x", EDITORS["x"][0])
    await page.keyboard.type(DRAFT)
    event = await next_event(page, rule="personal-data")
    badge = page.locator("sargs-guard button.badge")
    panel = page.locator("sargs-guard .panel")
    await badge.wait_for()
    assert await badge.get_attribute("aria-expanded") == "false"
    assert await editor.evaluate("(e) => document.activeElement === e")  # focus stays put

    # Tab moves on from the editor (Post button) to the badge.
    for _ in range(5):
        await page.keyboard.press("Tab")
        if await badge.evaluate("(b) => b.getRootNode().activeElement === b"):
            break
    else:
        pytest.fail("Tab never reached the badge")
    await page.keyboard.press("Enter")
    await panel.wait_for()
    assert await badge.get_attribute("aria-expanded") == "true"
    assert await badge.get_attribute("aria-controls") == await panel.get_attribute("id")
    phone = finding(event, "personal-data")
    text = await panel.inner_text()
    assert phone["message"] in text
    assert phone["guideline"] in text
    await page.keyboard.press("Escape")
    await panel.wait_for(state="hidden")
    assert await badge.get_attribute("aria-expanded") == "false"
    assert await badge.evaluate("(b) => b.getRootNode().activeElement === b")

    # From the editor itself: Alt+Shift+S opens the panel and moves focus into it.
    await editor.click()
    await page.keyboard.press("Alt+Shift+S")
    await panel.wait_for()
    assert await panel.evaluate("(p) => p.getRootNode().activeElement === p")
    assert await editor.evaluate(TEXT_OF) == DRAFT


async def test_unreachable_service_says_so_once_and_typing_goes_on(
    page: Page, site_url: str
) -> None:
    backend = f"http://127.0.0.1:{closed_port()}/"
    editor = await open_editor(page, f"{site_url}/x?backend={backend}", EDITORS["x"][0])
    await page.keyboard.type("First words ")
    await next_event(page, kind="unavailable")
    live = page.locator(LIVE)
    await live.filter(has_text="Sargs cannot be reached").wait_for()
    said = await live.text_content()
    # Visible too, not only to screen readers: a line under the editor says so.
    status = page.locator("sargs-guard .status")
    await status.filter(has_text="Not checked: Sargs cannot be reached").wait_for()
    box, line = await editor.bounding_box(), await status.bounding_box()
    assert box
    assert line
    assert line["y"] >= box["y"] + box["height"]  # under it, not over the text
    after = await event_count(page)
    await page.keyboard.type("and more words")
    await next_event(page, kind="unavailable", after=after)
    assert await live.text_content() == said  # not announced again
    assert await editor.evaluate(TEXT_OF) == "First words and more words"
    assert await marks(page) == []
    assert not await page.locator("sargs-guard button.badge").is_visible()


async def test_messages_in_the_users_language(page: Page, site_url: str) -> None:
    backend = f"http://127.0.0.1:{closed_port()}/"
    await open_editor(page, f"{site_url}/x?lang=lv&backend={backend}", EDITORS["x"][0])
    await page.keyboard.type("Labdien")
    await page.locator(LIVE).filter(has_text="Sargs nav sasniedzams").wait_for()


async def test_what_the_service_is_asked(
    page: Page, site_url: str, standin: tuple[str, StandinLog]
) -> None:
    url, log = standin
    before = len(log.requests)
    await open_editor(
        page, f"{site_url}/facebook?backend={url}&lang=sv&account=official", "[data-lexical-editor]"
    )
    await page.keyboard.type("Hej")
    await next_event(page)
    asked = log.requests[before:]
    assert asked
    assert asked[-1] == {
        "text": "Hej",
        "account": "official",
        "platform": "facebook",
        "lang": "sv",
    }
    assert log.preflights > 0  # the page's origin differs from the service's: CORS preflight
    config = await page.evaluate("() => globalThis.__sargsComposeGuard.config")
    assert config["backend"] == url
    assert config["lang"] == "sv"


async def test_backend_defaults_to_where_the_script_came_from(
    page: Page, site_url: str, service_url: str
) -> None:
    await open_editor(page, f"{site_url}/x", EDITORS["x"][0])
    config = await page.evaluate("() => globalThis.__sargsComposeGuard.config")
    assert config["backend"] == service_url
    assert config["platform"] == "x"
    assert config["account"] == "personal"


async def test_offsets_across_paragraphs_and_emoji(
    page: Page, site_url: str, standin_url: str
) -> None:
    editor = await open_editor(
        page, f"{site_url}/facebook?backend={standin_url}", "[data-lexical-editor]"
    )
    await page.keyboard.type("Hello 👋🏽 team")
    await page.keyboard.press("Enter")
    await page.keyboard.type(f"ring {PHONE} or you idiot")
    text = f"Hello 👋🏽 team\nring {PHONE} or you idiot"
    event = await next_event(page, rule="offensive")
    assert [(f["rule"], f["start"], f["end"]) for f in event["findings"]] == [
        ("personal-data", *js_index(text, PHONE)),
        ("offensive", *js_index(text, "idiot")),
    ]
    await page.wait_for_function(
        "() => document.querySelector('sargs-guard').shadowRoot.querySelectorAll('.mark')"
        ".length >= 2"
    )
    drawn = await marks(page)
    for needle, rule in ((PHONE, "personal-data"), ("idiot", "offensive")):
        target = await text_rect(editor, needle)
        assert any(m["rule"] == rule and overlaps(m, target) for m in drawn), (rule, drawn)
    # Paragraphs are the editor's own: two <p>, nothing added by the guard.
    assert await editor.evaluate("(e) => e.querySelectorAll('p').length") == 2
    assert await editor.evaluate("(e) => e.querySelectorAll('*:not(p):not(br)').length") == 0


async def test_caret_and_undo_survive_a_check(page: Page, site_url: str) -> None:
    editor = await open_editor(page, f"{site_url}/mastodon", EDITORS["mastodon"][0])
    await page.keyboard.type(DRAFT)
    await next_event(page, rule="personal-data")
    for _ in range(len(" after lunch")):
        await page.keyboard.press("ArrowLeft")
    at = len(DRAFT) - len(" after lunch")
    after = await event_count(page)
    await page.keyboard.type("!")
    assert await editor.evaluate(TEXT_OF) == DRAFT[:at] + "!" + DRAFT[at:]
    assert await editor.evaluate(CARET_OF) == [at + 1, at + 1]
    await next_event(page, after=after)
    assert await editor.evaluate(CARET_OF) == [at + 1, at + 1]
    await page.keyboard.press("ControlOrMeta+z")
    assert await editor.evaluate(TEXT_OF) == DRAFT  # the browser's undo still has it


async def test_why_elements_are_skipped(page: Page, site_url: str) -> None:
    await page.goto(f"{site_url}/mastodon")
    reasons = await page.evaluate(
        """() => Object.fromEntries(['#search', '#password', '#readonly-note', '#disabled-note',
              '#hidden-note', 'textarea.autosuggest-textarea__textarea', '#post'].map((s) =>
              [s, globalThis.__sargsComposeGuard.why(document.querySelector(s))]))"""
    )
    assert reasons == {
        "#search": ["search"],
        "#password": ["password", "form-field"],
        "#readonly-note": ["read-only"],
        "#disabled-note": ["disabled"],
        "#hidden-note": ["hidden"],
        "textarea.autosuggest-textarea__textarea": [],
        "#post": ["not-a-text-field"],
    }


async def test_injecting_twice_is_harmless(page: Page, site_url: str, service_url: str) -> None:
    editor = await open_editor(page, f"{site_url}/x?twice=1", EDITORS["x"][0])
    await page.add_script_tag(url=f"{service_url}static/compose-guard.js")
    await page.keyboard.type(DRAFT)
    await next_event(page, rule="personal-data")
    await page.locator("sargs-guard .mark").first.wait_for()
    await page.evaluate("() => new Promise((r) => setTimeout(r, 600))")  # any second check
    assert await page.locator("sargs-guard").count() == 1
    assert await event_count(page) == 1
    assert len([m for m in await marks(page) if m["rule"] == "personal-data"]) == 1
    assert await editor.evaluate(TEXT_OF) == DRAFT


async def test_an_editor_that_mounts_later_in_a_single_page_app(page: Page, site_url: str) -> None:
    await page.goto(f"{site_url}/spa")
    await listen(page)
    await page.click("#compose")
    editor = page.locator(".ProseMirror")
    await editor.wait_for()
    assert page.url.endswith("/spa/compose")
    await editor.click()
    await page.keyboard.type(DRAFT)
    event = await next_event(page, rule="personal-data")
    assert finding(event, "personal-data")["end"] > finding(event, "personal-data")["start"]
    target = await text_rect(editor, PHONE)
    await page.locator("sargs-guard .mark").first.wait_for()
    assert any(overlaps(m, target) for m in await marks(page))


async def test_an_editor_in_a_same_origin_iframe(page: Page, site_url: str) -> None:
    await page.goto(f"{site_url}/iframe")
    frame = page.frame_locator("#frame")
    editor = frame.locator("#editor")
    await editor.wait_for()
    await page.wait_for_function(
        "() => !!document.querySelector('#frame').contentWindow.__sargsComposeGuard"
    )
    await listen(page, "#frame")
    await editor.click()
    await page.keyboard.type(DRAFT)
    await next_event(page, rule="personal-data", frame_selector="#frame")
    mark = frame.locator("sargs-guard .mark").first
    await mark.wait_for()
    box = await mark.bounding_box()
    target = await editor.evaluate(
        "(e, n) => { const t = e.querySelector('p').firstChild; const r = document.createRange();"
        " const i = t.data.indexOf(n); r.setStart(t, i); r.setEnd(t, i + n.length);"
        " const b = r.getBoundingClientRect();"
        " return {left: b.left, top: b.top, right: b.right, bottom: b.bottom}; }",
        PHONE,
    )
    assert box is not None
    frame_box = await page.locator("#frame").bounding_box()
    assert frame_box is not None
    # bounding_box() is page-relative; the target rect is relative to the frame's viewport
    shifted = {
        "left": target["left"] + frame_box["x"] + 1,
        "right": target["right"] + frame_box["x"] + 1,
        "top": target["top"] + frame_box["y"] + 1,
        "bottom": target["bottom"] + frame_box["y"] + 1,
    }
    mark_rect = {
        "left": box["x"],
        "top": box["y"],
        "right": box["x"] + box["width"],
        "bottom": box["y"] + box["height"],
    }
    assert overlaps(mark_rect, shifted), (mark_rect, shifted)
    assert await editor.evaluate(TEXT_OF) == DRAFT


async def test_strict_csp_page(page: Page, site_url: str) -> None:
    violations: list[str] = []
    page.on(
        "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
    )
    editor = await open_editor(page, f"{site_url}/csp", EDITORS["csp"][0])
    await page.keyboard.type(DRAFT)
    await next_event(page, rule="personal-data")
    mark = page.locator("sargs-guard .mark").first
    await mark.wait_for()
    # Its styles apply although style-src has no 'unsafe-inline' (constructed stylesheet).
    assert await mark.evaluate("(m) => getComputedStyle(m).borderBottomWidth") == "2px"
    assert violations == []
    assert await editor.evaluate(TEXT_OF) == DRAFT


async def test_stop_removes_everything(page: Page, site_url: str) -> None:
    await open_editor(page, f"{site_url}/x", EDITORS["x"][0])
    await page.keyboard.type(DRAFT)
    await next_event(page, rule="personal-data")
    await page.evaluate("() => globalThis.__sargsComposeGuard.stop()")
    assert await page.locator("sargs-guard").count() == 0
    after = await event_count(page)
    await page.keyboard.type(" again")
    await page.evaluate("() => new Promise((r) => setTimeout(r, 600))")
    assert await event_count(page) == after


async def test_a_finding_about_the_whole_draft_is_listed_not_underlined(
    page: Page, site_url: str, standin_url: str
) -> None:
    await open_editor(page, f"{site_url}/linkedin?backend={standin_url}", EDITORS["linkedin"][0])
    await page.keyboard.type("Lunch plans [hours]")
    event = await next_event(page, rule="working-hours")
    hours = finding(event, "working-hours")
    badge = page.locator("sargs-guard button.badge")
    await badge.wait_for()
    assert await badge.inner_text() == "1"
    assert await marks(page) == []
    await badge.click()
    panel = page.locator("sargs-guard .panel")
    await panel.wait_for()
    assert hours["message"] in await panel.inner_text()


async def test_an_unknown_platform_is_left_to_the_service(
    page: Page, site_url: str, standin: tuple[str, StandinLog]
) -> None:
    url, log = standin
    before = len(log.requests)
    await open_editor(page, f"{site_url}/mastodon?platform=&backend={url}", EDITORS["mastodon"][0])
    await page.keyboard.type("Hello")
    await next_event(page)
    assert "platform" not in log.requests[before:][-1]


async def test_a_relative_backend_is_on_the_pages_own_host(page: Page, site_url: str) -> None:
    await page.goto(f"{site_url}/x?backend=/__sargs/")
    await page.wait_for_function("() => !!globalThis.__sargsComposeGuard")
    config = await page.evaluate("() => globalThis.__sargsComposeGuard.config")
    assert config["backend"] == f"{site_url}/__sargs/"


async def test_a_copy_in_another_world_leaves_the_page_to_the_first(
    page: Page, site_url: str
) -> None:
    # What the extension's isolated world sees when the gateway's copy already runs: the
    # DOM has a <sargs-guard>, the globals are its own.
    await page.add_init_script(
        """new MutationObserver((_, o) => { if (document.documentElement) {
             o.disconnect();
             document.documentElement.append(document.createElement('sargs-guard')); } })
           .observe(document, {childList: true});"""
    )
    await page.goto(f"{site_url}/x")
    await listen(page)
    await page.click(EDITORS["x"][0])
    await page.keyboard.type(DRAFT)
    await page.evaluate("() => new Promise((r) => setTimeout(r, 600))")
    assert await event_count(page) == 0
    assert await page.evaluate("() => globalThis.__sargsComposeGuard === undefined")
    assert await page.locator("sargs-guard").count() == 1


@pytest.mark.parametrize(
    ("lang", "label"), [("lv", "1 konstatējums"), ("sv", "1 anmärkning"), ("sq", "1 gjetje")]
)
async def test_its_own_words_in_four_languages(
    page: Page, site_url: str, standin_url: str, lang: str, label: str
) -> None:
    await open_editor(page, f"{site_url}/x?backend={standin_url}&lang={lang}", EDITORS["x"][0])
    await page.keyboard.type(f"Tel. {PHONE}")
    await next_event(page, rule="personal-data")
    badge = page.locator("sargs-guard button.badge")
    await badge.wait_for()
    assert label in (await badge.get_attribute("aria-label") or "")
    await page.locator(LIVE).filter(has_text=label).wait_for()

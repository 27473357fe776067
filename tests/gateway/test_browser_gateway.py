"""Chromium through the real gateway: the gateway injects the compose guard into fake platform
pages, the guard checks drafts at ``/__sargs/`` on the platform's own host, and posts are
checked on their way out. Plus the gateway's body handling end to end (gzip, br, a large
video, a large page) with a plain HTTP client.

One gateway (every Sargs addon, example policy, Saturday clock) and one fake-platform
server serve the whole module; Chromium is the session's.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import brotli
import pytest
import pytest_asyncio
from aiohttp import web
from mitmproxy import http
from playwright.async_api import Browser, BrowserContext, Page

from proxy import guardscript
from proxy.gateway.addons import make_addons
from tests.sites.platforms import RECEIVED, make_site_app
from tests.support.browser import (  # noqa: F401  (pytest finds fixtures by name)
    TEXT_RECT_JS,
    browser,
    chromium_home,
    listen,
    marks,
    next_event,
    overlaps,
    serve,
)
from tests.support.gateway import Clock, Gateway, running_gateway

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SATURDAY = datetime(2026, 11, 28, 11, 0, tzinfo=ZoneInfo("Europe/Riga"))
USERS = {"carl": ("carl-pw", ["communicator"]), "ines": ("ines-pw", ["intern"])}
PHONE = "+371 29 123 456"
DRAFT = f"Zvaniet man uz {PHONE} rīt"
CLEAN = "The library opens at ten tomorrow morning."
INSULT = "Tu esi idiots, bet labs"
TAG = re.compile(rb'<script src="/__sargs/static/compose-guard\.js"[^>]*></script>')
BIG = 6 * 1024 * 1024  # above the 5 MB injection limit

# page -> (host the browser opens, editor selector, textarea?)
PAGES: dict[str, tuple[str, str, bool]] = {
    "x": ("x.com", "[data-testid=tweetTextarea_0]", False),
    "facebook": ("www.facebook.com", "[data-lexical-editor=true]", False),
    "linkedin": ("www.linkedin.com", ".ql-editor", False),
    "mastodon": ("mastodon.social", "textarea.autosuggest-textarea__textarea", True),
    "reddit": ("www.reddit.com", "shreddit-composer [role=textbox]", False),
    "csp": ("www.facebook.com", "[data-lexical-editor=true]", False),
}
TEXT_OF = "(e) => e.localName === 'textarea' ? e.value : e.innerText.replace(/\\n$/, '')"
WATCH_CSP = """
  window.__csp = [];
  document.addEventListener('securitypolicyviolation',
    (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI), true);
"""


# --- a site with compressed, large and video bodies -----------------------------------------

HTML = (
    "<!DOCTYPE html><html lang=lv><head><meta charset=utf-8><title>Ziņas</title></head>"
    "<body><p>Sveiki, Rīga! Ķirbis ✓ 😀</p></body></html>"
).encode()
VIDEO = bytes(range(256)) * (BIG // 256)


def bodies_app() -> web.Application:
    async def gz(request: web.Request) -> web.Response:
        return web.Response(body=gzip.compress(HTML), headers={
            "Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"})

    async def br(request: web.Request) -> web.Response:
        return web.Response(body=brotli.compress(HTML), headers={
            "Content-Type": "text/html; charset=utf-8", "Content-Encoding": "br"})

    async def video(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        response.content_length = len(VIDEO)
        await response.prepare(request)
        for i in range(0, len(VIDEO), 256 * 1024):
            await response.write(VIDEO[i : i + 256 * 1024])
        return response

    async def big(request: web.Request) -> web.Response:
        page = b"<html><head></head><body>" + b"x" * BIG + b"</body></html>"
        return web.Response(body=page, headers={"Content-Type": "text/html"})

    app = web.Application()
    app.router.add_get("/gz", gz)
    app.router.add_get("/br", br)
    app.router.add_get("/video.mp4", video)
    app.router.add_get("/big", big)
    return app


@dataclass
class Recorder:
    """Last in the chain: whether each response was streamed through (never buffered)."""

    streamed: dict[str, bool] = field(default_factory=dict)

    def response(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            self.streamed[flow.request.path] = bool(flow.response.stream)


@dataclass
class Env:
    gw: Gateway
    sites: web.Application
    recorder: Recorder


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    tmp: Path = tmp_path_factory.mktemp("browser-gateway")
    sites = make_site_app(None)  # pages without the script: the gateway injects it
    recorder = Recorder()

    def make(*args: Any, **kwargs: Any) -> list[object]:
        return [*make_addons(*args, **kwargs), recorder]

    async with serve(sites) as sites_url, serve(bodies_app()) as bodies_url:
        sites_port = int(sites_url.rsplit(":", 1)[1])
        bodies_port = int(bodies_url.rsplit(":", 1)[1])
        routes = {"twitter.com": bodies_port, "video.twimg.com": bodies_port}
        async with running_gateway(
            tmp, sites_port, users=USERS, clock=Clock(SATURDAY), routes=routes, make=make
        ) as gw:
            yield Env(gw, sites, recorder)


@pytest_asyncio.fixture(loop_scope="session")
async def context(browser: Browser, env: Env) -> AsyncIterator[BrowserContext]:  # noqa: F811
    ctx = await browser.new_context(
        proxy={"server": env.gw.proxy_url, "username": "carl", "password": "carl-pw"},
        ignore_https_errors=True,
        locale="en-US",
        viewport={"width": 1000, "height": 800},
    )
    ctx.set_default_timeout(10_000)
    await ctx.add_init_script(WATCH_CSP)
    try:
        yield ctx
    finally:
        await ctx.close()


async def open_page(context: BrowserContext, name: str) -> tuple[Page, list[str]]:
    host = PAGES[name][0]
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    await page.goto(f"https://{host}/{name}")
    await page.wait_for_function("() => !!globalThis.__sargsComposeGuard")
    await listen(page)
    await page.locator(PAGES[name][1]).click()
    return page, errors


@pytest.mark.parametrize("name", list(PAGES))
async def test_injected_guard_warns_at_the_typed_text(
    context: BrowserContext, env: Env, name: str
) -> None:
    page, errors = await open_page(context, name)
    editor = page.locator(PAGES[name][1])
    await page.keyboard.type(DRAFT)
    event = await next_event(page, rule="personal-data")
    assert event["verdict"] == "block"
    phone = next(f for f in event["findings"] if f["rule"] == "personal-data")
    assert DRAFT[phone["start"] : phone["end"]] == PHONE
    assert await editor.evaluate(TEXT_OF) == DRAFT  # the editor holds exactly what was typed
    await page.locator("sargs-guard .mark").first.wait_for()
    if not PAGES[name][2]:  # contenteditable: the underline sits on the phone number
        target = await editor.evaluate(TEXT_RECT_JS, PHONE)
        drawn = [m for m in await marks(page) if m["rule"] == "personal-data"]
        assert any(overlaps(m, target) for m in drawn), (drawn, target)
    # The injected tag: one, with the platform and language the gateway knows.
    tag = page.locator('script[src="/__sargs/static/compose-guard.js"]')
    assert await tag.count() == 1
    platform = {"csp": "facebook"}.get(name, name)
    assert await tag.get_attribute("data-platform") == platform
    # No CSP violation of any kind (the strict nonce page included), no page errors.
    assert await page.evaluate("() => window.__csp") == []
    assert errors == []


async def test_a_read_only_user_is_told_before_typing(
    browser: Browser, context: BrowserContext, env: Env  # noqa: F811
) -> None:
    """An intern may read LinkedIn but not post there: the tag the gateway injects says so
    (``data-readonly``), and the guard says "read-only here" as soon as the editor has
    focus, before a word is typed. A communicator's tag says the opposite; both name the
    service's guidelines page in the page's language."""
    readonly_ctx = await browser.new_context(
        proxy={"server": env.gw.proxy_url, "username": "ines", "password": "ines-pw"},
        ignore_https_errors=True, locale="en-US", viewport={"width": 1000, "height": 800},
    )
    readonly_ctx.set_default_timeout(10_000)
    try:
        page = await readonly_ctx.new_page()
        await page.goto("https://www.linkedin.com/linkedin")
        await page.wait_for_function("() => !!globalThis.__sargsComposeGuard")
        tag = page.locator('script[src="/__sargs/static/compose-guard.js"]')
        assert await tag.get_attribute("data-readonly") == "true"
        guidelines = env.gw.state.current.loaded.policy.institution.service_url
        assert await tag.get_attribute("data-guidelines") == f"{guidelines}/guidelines?lang=en"
        await page.locator(PAGES["linkedin"][1]).click()
        status = page.locator("sargs-guard .status:not([hidden])")
        await status.wait_for(state="visible")
        assert (await status.inner_text()).startswith("Read-only here")
        assert await page.locator(PAGES["linkedin"][1]).evaluate(TEXT_OF) == ""  # not typed
    finally:
        await readonly_ctx.close()
    page = await context.new_page()  # carl, a communicator: may post
    await page.goto("https://www.linkedin.com/linkedin")
    await page.wait_for_function("() => !!globalThis.__sargsComposeGuard")
    tag = page.locator('script[src="/__sargs/static/compose-guard.js"]')
    assert await tag.get_attribute("data-readonly") == "false"
    await page.locator(PAGES["linkedin"][1]).click()
    await page.evaluate("() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 300)))")
    assert await page.locator("sargs-guard .status.readonly:not([hidden])").count() == 0


async def test_strict_csp_page_keeps_its_policy_and_the_guard_runs(
    context: BrowserContext, env: Env
) -> None:
    page = await context.new_page()
    response = await page.goto("https://www.facebook.com/csp")
    assert response is not None
    policy = await response.header_value("content-security-policy") or ""
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce is not None
    assert "'strict-dynamic'" in policy
    assert "__sargs" not in policy  # the page's own nonce is reused: no change at all
    tag = page.locator('script[src="/__sargs/static/compose-guard.js"]')
    assert await tag.evaluate("(s) => s.nonce") == nonce.group(1)
    await page.wait_for_function("() => !!globalThis.__sargsComposeGuard")
    assert await page.evaluate("() => window.__csp") == []
    # Inline script without the nonce is still refused: nothing was loosened.
    await page.evaluate(
        """() => document.body.insertAdjacentHTML('beforeend',
             '<img src="/missing.png" onerror="window.__pwned = 1">')"""
    )
    await page.wait_for_function("() => window.__csp.length > 0")
    assert await page.evaluate("() => window.__pwned") is None
    violations = await page.evaluate("() => window.__csp")
    assert all(v.startswith("script-src") for v in violations), violations


async def test_clean_draft_shows_nothing(context: BrowserContext, env: Env) -> None:
    page, errors = await open_page(context, "x")
    editor = page.locator(PAGES["x"][1])
    await page.keyboard.type(CLEAN)
    event = await next_event(page)
    assert event["findings"] == []
    assert event["verdict"] == "ok"
    assert await editor.evaluate(TEXT_OF) == CLEAN
    assert await marks(page) == []
    assert not await page.locator("sargs-guard button.badge").is_visible()
    assert errors == []


async def test_blocking_post_is_refused_in_the_page(context: BrowserContext, env: Env) -> None:
    env.sites[RECEIVED].clear()
    page, _ = await open_page(context, "x")
    await page.keyboard.type(DRAFT)
    await page.click("#post")
    result = page.locator("#result")
    await result.filter(has_text="Sargs did not send this post").wait_for()
    assert env.sites[RECEIVED] == []  # never reached the platform


async def test_warned_post_arrives_unchanged(context: BrowserContext, env: Env) -> None:
    env.sites[RECEIVED].clear()
    page, _ = await open_page(context, "mastodon")
    await page.keyboard.type(INSULT)
    await next_event(page, rule="offensive")
    await page.click("#post")
    await page.locator("#result").filter(has_text="Posted").wait_for()
    assert len(env.sites[RECEIVED]) == 1
    received = env.sites[RECEIVED][0]
    assert received.path == "/api/v1/statuses"
    assert INSULT in received.text()


# --- bodies end to end (plain HTTP client through the gateway) --------------------------------


def login() -> dict[str, str]:
    token = base64.b64encode(b"carl:carl-pw").decode()
    return {"Proxy-Authorization": f"Basic {token}"}


async def fetch(env: Env, url: str, **headers: str) -> tuple[int, bytes, dict[str, str]]:
    async with aiohttp.ClientSession(auto_decompress=False) as session, session.get(
        url, proxy=env.gw.proxy_url, proxy_headers=login(), ssl=env.gw.ssl_context(),
        headers={"Accept": "text/html", "Sec-Fetch-Dest": "document", **headers},
    ) as response:
        lowered = {k.lower(): v for k, v in response.headers.items()}
        return response.status, await response.read(), lowered


@pytest.mark.parametrize(("path", "decompress"), [("/gz", gzip.decompress),
                                                  ("/br", brotli.decompress)])
async def test_compressed_pages_injected(env: Env, path: str, decompress: Any) -> None:
    status, raw, headers = await fetch(env, f"https://twitter.com{path}",
                                       **{"Accept-Encoding": "gzip, br"})
    assert status == 200
    assert int(headers["content-length"]) == len(raw)
    body = decompress(raw)
    assert len(TAG.findall(body)) == 1
    assert TAG.sub(b"", body) == HTML
    assert b"<head>" + TAG.search(body).group(0) in body  # type: ignore[union-attr]
    assert env.recorder.streamed[path] is False


async def test_large_video_is_streamed_intact(env: Env) -> None:
    status, body, _ = await fetch(env, "https://video.twimg.com/video.mp4",
                                        **{"Sec-Fetch-Dest": "video", "Accept": "*/*"})
    assert status == 200
    assert hashlib.sha256(body).digest() == hashlib.sha256(VIDEO).digest()
    assert env.recorder.streamed["/video.mp4"] is True


async def test_large_page_is_streamed_without_injection(env: Env) -> None:
    status, body, _ = await fetch(env, "https://twitter.com/big")
    assert status == 200
    assert len(body) == BIG + len(b"<html><head></head><body></body></html>")
    assert not TAG.search(body)
    assert env.recorder.streamed["/big"] is True


async def test_reserved_path_answered_by_the_gateway(env: Env) -> None:
    env.sites[RECEIVED].clear()
    status, body, headers = await fetch(env, "https://x.com/__sargs/static/compose-guard.js",
                                        Accept="*/*", **{"Sec-Fetch-Dest": "script"})
    assert status == 200
    assert body == guardscript.join(guardscript.parts())  # extension/guard/*.js, in order
    assert headers["etag"]
    async with aiohttp.ClientSession() as session, session.post(
        "https://x.com/__sargs/api/v1/check", proxy=env.gw.proxy_url, proxy_headers=login(),
        ssl=env.gw.ssl_context(), json={"text": DRAFT, "lang": "sv"},
        headers={"Sec-Fetch-Dest": "empty"},
    ) as response:
        assert response.status == 200
        result = json.loads(await response.read())
    assert result["verdict"] == "block"
    assert [f["rule"] for f in result["findings"]] == ["personal-data"]

"""Shared browser-test parts: Debian's Chromium via Playwright, real aiohttp servers.

Import the fixtures into a ``conftest.py`` to use them::

    from tests.support.browser import (  # noqa: F401  (pytest finds fixtures by name)
        browser, chromium_home, page, service_url, site_app, site_url, standin, standin_url,
    )

All async fixtures here live on the **session** event loop (one Chromium for the whole
run), so tests that use them run on it too: put
``pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]`` in the
test module.

- ``browser``: Chromium (``/usr/bin/chromium``, quiet flags, HOME in a temp dir, every
  host but loopback unresolvable).
- ``page``: a fresh context and page per test (10 s default timeout); ``page_errors``
  lists uncaught page errors.
- ``service_url``: the real service (``create_app(Settings(...))``) on a free port when it
  has ``POST /api/v1/check``, else ``standin_url``. Ends with "/".
- ``standin`` / ``standin_url``: a tiny service that follows the check contract exactly
  with two fixed rules (see ``make_standin_app``) and records what it was asked.
- ``site_app`` / ``site_url``: the fake platforms of ``tests.sites.platforms`` with the
  script injected from ``service_url`` (``site_url`` has no trailing "/").
- ``serve(app)``: async context manager running any aiohttp app on 127.0.0.1; yields its
  base URL ("http://127.0.0.1:PORT").
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Browser, Page, Playwright, async_playwright

from proxy.service import script
from proxy.settings import ROOT, Settings
from tests.sites.platforms import make_site_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
]
SCRIPT_PATH = "static/compose-guard.js"


async def launch_chromium(
    pw: Playwright, home: Path, args: list[str] | None = None, **kwargs: Any
) -> Browser:
    """Debian's Chromium with the flags that keep it quiet on a closed network."""
    env = {k: v for k, v in os.environ.items() if k not in ("HOME", "XDG_CONFIG_HOME")}
    env["HOME"] = str(home)
    return await pw.chromium.launch(
        executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *(args or [])], env=env, **kwargs
    )


@asynccontextmanager
async def serve(app: web.Application, port: int = 0) -> AsyncIterator[str]:
    """Run ``app`` on 127.0.0.1 (a free port by default); yield its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------------------------------
# The stand-in check service: the contract of DESIGN.md, two fixed rules.
# ---------------------------------------------------------------------------------------

STANDIN_RULES: list[tuple[str, str, re.Pattern[str], str, str]] = [
    (
        "personal-data",
        "block",
        re.compile(r"\+371 ?\d{2} ?\d{3} ?\d{3}"),
        "Phone number of a person",
        "Code of conduct 4.2: no personal data",
    ),
    (
        "offensive",
        "warn",
        re.compile(r"\b(?:idiot|idioti|stupid)\b", re.IGNORECASE),
        "Offensive word",
        "Code of conduct 3.1: no offensive content",
    ),
]
STANDIN = web.AppKey("sargs_standin_log", "StandinLog")


@dataclass
class StandinLog:
    """What the stand-in was asked (payloads without text are never needed; tests only)."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    preflights: int = 0


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def standin_check(text: str) -> dict[str, Any]:
    findings = []
    for rule, severity, pattern, message, guideline in STANDIN_RULES:
        for m in pattern.finditer(text):
            findings.append(
                {
                    "rule": rule,
                    "severity": severity,
                    "start": utf16_len(text[: m.start()]),
                    "end": utf16_len(text[: m.end()]),
                    "message": message,
                    "guideline": guideline,
                }
            )
    if "[hours]" in text:  # a finding about the whole draft, like 'working-hours'
        findings.append(
            {
                "rule": "working-hours",
                "severity": "warn",
                "start": 0,
                "end": 0,
                "message": "Personal account during working hours",
                "guideline": "Code of conduct 6.1: private use outside working hours",
            }
        )
    findings.sort(key=lambda f: f["start"])
    order = {"block": 3, "warn": 2, "info": 1}
    verdict = max((f["severity"] for f in findings), key=order.__getitem__, default="ok")
    return {"verdict": verdict, "policy": "standin", "findings": findings}


CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "600",
}


def make_standin_app() -> web.Application:
    app = web.Application()
    app[STANDIN] = StandinLog()

    async def check(request: web.Request) -> web.Response:
        body = await request.json()
        request.app[STANDIN].requests.append(body)
        return web.json_response(standin_check(str(body.get("text", ""))), headers=CORS)

    async def preflight(request: web.Request) -> web.Response:
        request.app[STANDIN].preflights += 1
        return web.Response(status=204, headers=CORS)

    app.router.add_post("/api/v1/check", check)
    app.router.add_route("OPTIONS", "/api/v1/check", preflight)
    script.setup(app)  # /static/compose-guard.js: the guard's parts joined, as the service does
    app.router.add_static("/static/", ROOT / "extension", show_index=False)
    return app


def service_has_check(app: web.Application) -> bool:
    return any(
        r.method == "POST" and r.resource is not None and r.resource.canonical == "/api/v1/check"
        for r in app.router.routes()
    )


# ---------------------------------------------------------------------------------------
# Fixtures (session loop)
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chromium-home")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(chromium_home: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await launch_chromium(pw, chromium_home)
        try:
            yield b
        finally:
            await b.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def standin() -> AsyncIterator[tuple[str, StandinLog]]:
    app = make_standin_app()
    async with serve(app) as url:
        yield url + "/", app[STANDIN]


@pytest.fixture(scope="session")
def standin_url(standin: tuple[str, StandinLog]) -> str:
    return standin[0]


@pytest.fixture(scope="session")
def site_port() -> int:
    """The fake platforms' port, known before the service starts: the service lets their
    origin call the check API (``check_origins``), as it does the real platforms' pages."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def service_url(
    tmp_path_factory: pytest.TempPathFactory, standin_url: str, site_port: int
) -> AsyncIterator[str]:
    """The real service when it can check drafts, else the stand-in."""
    from proxy.service.app import create_app

    var = tmp_path_factory.mktemp("service-var")
    app = create_app(Settings(var_dir=var, check_origins=[f"http://127.0.0.1:{site_port}"]))
    if not service_has_check(app):
        yield standin_url
        return
    async with serve(app) as url:
        yield url + "/"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def site(service_url: str, site_port: int) -> AsyncIterator[tuple[str, web.Application]]:
    app = make_site_app(service_url + SCRIPT_PATH)
    async with serve(app, site_port) as url:
        yield url, app


@pytest.fixture(scope="session")
def site_url(site: tuple[str, web.Application]) -> str:
    return site[0]


@pytest.fixture(scope="session")
def site_app(site: tuple[str, web.Application]) -> web.Application:
    return site[1]


@pytest.fixture
def page_errors() -> list[str]:
    return []


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser, page_errors: list[str]) -> AsyncIterator[Page]:
    context = await browser.new_context(locale="en-US", viewport={"width": 1000, "height": 800})
    context.set_default_timeout(10_000)
    p = await context.new_page()
    p.on("pageerror", lambda exc: page_errors.append(str(exc)))
    try:
        yield p
    finally:
        await context.close()


# ---------------------------------------------------------------------------------------
# Helpers for tests that drive the compose guard
# ---------------------------------------------------------------------------------------

LISTEN_JS = """(frameSelector) => {
  const doc = frameSelector ? document.querySelector(frameSelector).contentDocument : document;
  const win = doc.defaultView;
  if (win.__sargsEvents) return;
  win.__sargsEvents = [];
  doc.addEventListener('sargs:findings', (e) => win.__sargsEvents.push(
    {type: 'findings', findings: e.detail.findings, verdict: e.detail.verdict,
     target: e.composedPath()[0].tagName,
     targetId: e.composedPath()[0].id || e.composedPath()[0].dataset.testid || ''}), true);
  doc.addEventListener('sargs:unavailable', (e) => win.__sargsEvents.push(
    {type: 'unavailable', reason: e.detail.reason}), true);
}"""


async def listen(page: Page, frame_selector: str = "") -> None:
    """Start recording sargs:* events (of the page, or of the frame ``frame_selector``)."""
    await page.evaluate(LISTEN_JS, frame_selector)


async def next_event(
    page: Page,
    *,
    after: int = 0,
    rule: str | None = None,
    kind: str = "findings",
    frame_selector: str = "",
) -> dict[str, Any]:
    """Wait for a recorded event past index ``after`` (of ``kind``; with ``rule`` if given)."""
    handle = await page.wait_for_function(
        """([after, rule, kind, frameSelector]) => {
          const win = frameSelector
            ? document.querySelector(frameSelector).contentWindow : window;
          const list = (win.__sargsEvents || []).slice(after);
          return list.find((e) => e.type === kind &&
            (!rule || e.findings.some((f) => f.rule === rule))) || null;
        }""",
        arg=[after, rule, kind, frame_selector],
    )
    value = await handle.json_value()
    assert isinstance(value, dict)
    return value


async def event_count(page: Page, frame_selector: str = "") -> int:
    return int(
        await page.evaluate(
            """(fs) => ((fs ? document.querySelector(fs).contentWindow : window)
                 .__sargsEvents || []).length""",
            frame_selector,
        )
    )


async def marks(page: Page) -> list[dict[str, Any]]:
    """The underlines the guard drew: rule, offsets and viewport rect of each."""
    result = await page.locator("sargs-guard .mark").evaluate_all(
        """(els) => els.map((m) => { const r = m.getBoundingClientRect();
             return {rule: m.dataset.rule, start: +m.dataset.start, end: +m.dataset.end,
                     left: r.left, top: r.top, right: r.right, bottom: r.bottom,
                     pointerEvents: getComputedStyle(m).pointerEvents}; })"""
    )
    assert isinstance(result, list)
    return result


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    """Do two viewport rects ({left, top, right, bottom}) share some area?"""
    return min(a["right"], b["right"]) > max(a["left"], b["left"]) and min(
        a["bottom"], b["bottom"]
    ) > max(a["top"], b["top"])


TEXT_RECT_JS = """(root, needle) => {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const i = n.data.indexOf(needle);
    if (i >= 0) {
      const range = document.createRange();
      range.setStart(n, i); range.setEnd(n, i + needle.length);
      const r = range.getBoundingClientRect();
      return {left: r.left, top: r.top, right: r.right, bottom: r.bottom};
    }
  }
  return null;
}"""

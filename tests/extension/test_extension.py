"""The unpacked extension in Debian's Chromium: the real manifest, the real service.

A catalog host (draugiem.lv, not on the HSTS preload list) is mapped to the fake
platform site with --host-resolver-rules, so the manifest's own content-script matches
are what puts the compose guard on the page.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from argon2 import PasswordHasher
from playwright.async_api import BrowserContext, Page, async_playwright, expect

from proxy.service import keys
from proxy.service.app import create_app
from proxy.settings import ROOT, Settings
from proxy.store import requests as store_requests
from proxy.store import users
from proxy.store.db import open_store
from tests.sites.platforms import make_site_app
from tests.support.browser import CHROMIUM, listen, next_event, serve

EXTENSION = ROOT / "extension"
HOST = "draugiem.lv"
PASSWORD = "correct horse battery"

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # tests only


@dataclass
class Env:
    context: BrowserContext
    extension_id: str
    service: str  # ends with "/"
    site_port: int

    def url(self, page: str) -> str:
        return f"chrome-extension://{self.extension_id}/{page}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    tmp = tmp_path_factory.mktemp("extension")
    store = open_store(hasher=FAST, url=f"sqlite:///{tmp / 'sargs.db'}")
    users.add_user(store, "anna", PASSWORD, ["staff"])
    req = store_requests.create_request(store, "anna", "tiktok", "read", 120, "campaign")
    store_requests.approve(store, req.id, "boss")
    # The unpacked extension's id is known only once it is loaded: allow any here.
    app = create_app(Settings(var_dir=tmp / "var", extension_origins=["chrome-extension://*"]))
    app[keys.STORE] = store
    async with serve(app) as service, serve(make_site_app(None)) as site:
        site_port = int(site.rsplit(":", 1)[1])
        home = tmp / "home"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in ("HOME", "XDG_CONFIG_HOME")}
        env["HOME"] = str(home)
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                str(tmp / "profile"),
                headless=True,
                executable_path=CHROMIUM,
                env=env,
                locale="en-US",
                http_credentials={"username": "anna", "password": PASSWORD},
                args=[
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-features=HttpsUpgrades",
                    f"--disable-extensions-except={EXTENSION}",
                    f"--load-extension={EXTENSION}",
                    f"--host-resolver-rules=MAP {HOST} 127.0.0.1:{site_port} , "
                    "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
                ],
            )
            context.set_default_timeout(10_000)
            try:
                worker = (context.service_workers or [None])[0] or await context.wait_for_event(
                    "serviceworker"
                )
                extension_id = worker.url.split("/")[2]
                yield Env(context, extension_id, service + "/", site_port)
            finally:
                await context.close()
    store.close()


async def set_backend(env: Env, backend: str, lang: str = "") -> Page:
    """Save the backend through the options page, as a user would."""
    page = await env.context.new_page()
    await page.goto(env.url("options.html"))
    await expect(page.locator("#save")).not_to_have_text("")
    await page.fill("#backend", backend)
    await page.select_option("#lang", lang)
    await page.click("#save")
    # Extension pages forbid eval (their CSP): wait with locators, not wait_for_function.
    await expect(page.locator("#status")).to_have_text(
        re.compile("^(Saved.|Saglabāts.|Sparat.|U ruajt.)$")
    )
    return page


async def test_options_page_saves_the_backend(env: Env) -> None:
    page = await set_backend(env, env.service.rstrip("/"))
    await page.reload()
    await expect(page.locator("#backend")).to_have_value(env.service)  # normalized with "/"
    # Nothing is enforced without a browser policy: every field is editable.
    assert not await page.is_disabled("#backend")
    assert await page.locator(".enforced:visible").count() == 0
    await page.close()


async def test_typing_a_violation_shows_the_warning(env: Env) -> None:
    await (await set_backend(env, env.service)).close()
    page = await env.context.new_page()
    await page.goto(f"http://{HOST}/x")
    await listen(page)
    editor = page.locator("[data-testid=tweetTextarea_0]")
    await editor.click()
    await page.keyboard.type("Call Anna at +371 26 123 456 today")
    event = await next_event(page, rule="personal-data")
    assert event["verdict"] == "block"
    finding = next(f for f in event["findings"] if f["rule"] == "personal-data")
    # The warning is visible to the user: the guard's live region announces it.
    await page.wait_for_function(
        """() => { const host = document.querySelector('sargs-guard');
                   const live = host && host.shadowRoot.querySelector('[role=status]');
                   return live && live.textContent.trim().length > 0; }"""
    )
    assert finding["message"]
    # The editor's text is untouched.
    assert "+371 26 123 456" in await editor.inner_text()
    # The parts ran in the manifest's order as one content script: hovering the underline
    # explains it, promises no blocking (no gateway here) and links to the guidelines.
    mark = page.locator("sargs-guard .mark").first
    await mark.wait_for()
    box = await mark.bounding_box()
    assert box
    await page.mouse.move(box["x"] + 3, box["y"] + 3)
    card = page.locator("sargs-guard .card")
    await expect(card.locator(".quote")).to_have_text("+371 26 123 456")
    await expect(card).to_contain_text("Not allowed — do not post")
    link = card.get_by_role("link")
    assert (await link.get_attribute("href") or "").startswith(f"{env.service}guidelines?lang=")
    await page.close()


async def test_offline_service_never_blocks_typing(env: Env) -> None:
    await (await set_backend(env, "http://127.0.0.1:9/")).close()  # nothing listens there
    page = await env.context.new_page()
    await page.goto(f"http://{HOST}/x")
    await listen(page)
    editor = page.locator("[data-testid=tweetTextarea_0]")
    await editor.click()
    await page.keyboard.type("Call Anna at +371 26 123 456")
    await next_event(page, kind="unavailable")
    assert "+371 26 123 456" in await editor.inner_text()
    popup = await env.context.new_page()
    await popup.goto(env.url("popup.html"))
    await expect(popup.locator("#status")).to_contain_text("Cannot reach the Sargs service")
    await expect(popup.locator("#warns-only")).to_contain_text("cannot stop a post")
    # The page says so too, visibly, under the editor.
    await expect(page.locator("sargs-guard .status")).to_contain_text(
        "Not checked: Sargs cannot be reached"
    )
    await popup.close()
    await page.close()


async def test_popup_shows_my_access_grants_and_guidelines(env: Env) -> None:
    await (await set_backend(env, env.service, lang="lv")).close()
    # Signed in on the service's pages, as the popup's "sign in" link leads (the service
    # never challenges an extension with Basic: the browser's login box would cover it).
    login = await env.context.new_page()
    await login.goto(env.service + "login")
    await login.fill("#name", "anna")
    await login.fill("#password", PASSWORD)
    await login.click("button[type=submit]")
    await login.wait_for_url("**/access/mine")
    await login.close()
    popup = await env.context.new_page()
    await popup.goto(env.url("popup.html"))
    await popup.wait_for_selector("#platforms:not([hidden]) tr[data-platform=tiktok]")
    assert await popup.text_content("#user") == "anna"
    assert await popup.text_content("#roles") == "Darbinieks"
    linkedin = await popup.text_content("tr[data-platform=linkedin] td:nth-child(2)")
    assert linkedin == "drīkst publicēt"
    youtube = await popup.text_content("tr[data-platform=youtube] td:nth-child(2)")
    assert youtube == "tikai skatīt"
    vk = await popup.text_content("tr[data-platform=vk] td:nth-child(2)")
    assert vk == "bloķēts"
    tiktok = await popup.text_content("tr[data-platform=tiktok] td:nth-child(2)")
    assert tiktok is not None
    assert tiktok.startswith("tikai skatīt")
    assert "pagaidu piekļuve līdz" in tiktok  # the approved grant and its expiry
    await popup.wait_for_selector("#guidelines-section:not([hidden])")
    assert "Piekļuve sociālajiem tīkliem" in (await popup.text_content("#guidelines") or "")
    href = await popup.get_attribute("#request-access", "href")
    assert href is not None
    assert href.endswith("/access/request")
    await popup.close()

"""No open redirects: ``next`` and return URLs are read the way browsers read them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest

from proxy.store import requests
from tests.support.service import Service, running_service

FORM = {"platform": "tiktok", "access": "read", "duration": "60",
        "justification": "Monitoring a crisis"}


@pytest.fixture
async def svc(tmp_path: Path, store_url: str) -> AsyncIterator[Service]:
    async with running_service(tmp_path, store_url) as s:
        yield s


@pytest.mark.parametrize("target", [
    "/\t/evil.example/",  # a browser drops the tab: //evil.example/
    "/\n/evil.example/",
    "/\r/evil.example/",
    "/\\evil.example/",  # a browser reads \ as /
    "//evil.example/",
    "https://evil.example/",
    " //evil.example/",
    "/%09/evil.example/\t",
    "\t//evil.example/",
])
async def test_login_next_never_leaves_the_service(svc: Service, target: str) -> None:
    async with svc.client() as anna:
        page = await anna.get("/login?next=" + quote(target, safe=""))
        assert page.status == 200
        assert "evil.example" not in anna.last_page
        r = await anna.post_form("/login", {"name": "anna", "password": "anna-pw",
                                            "next": target})
        assert r.status == 303
        assert r.headers["Location"] == "/access/mine"


async def test_login_next_on_the_service_is_kept(svc: Service) -> None:
    async with svc.client() as anna:
        await anna.get("/login")
        r = await anna.post_form("/login", {"name": "anna", "password": "anna-pw",
                                            "next": "/access/request?platform=tiktok"})
        assert r.headers["Location"] == "/access/request?platform=tiktok"


@pytest.mark.parametrize("url", [
    "https://www.tiktok.com\\@evil.example/",  # urlsplit: tiktok; browsers: evil.example
    "https://www.tiktok.com\\\\@evil.example/",
    "https://www.tiktok.com\t@evil.example/",
    "https://evil.example\\.tiktok.com/",
    "https://user@www.tiktok.com@evil.example/",
    "https://www.tiktok.com@evil.example/",
    "//www.tiktok.com/",
    "javascript:alert(1)//www.tiktok.com/",
    "https://evil.example/www.tiktok.com",
])
async def test_return_url_must_be_a_platform_as_browsers_read_it(svc: Service, url: str
                                                                 ) -> None:
    async with svc.client() as anna:
        await anna.login("anna", "anna-pw")
        await anna.get("/access/request?platform=tiktok&url=" + quote(url, safe=""))
        assert "evil.example" not in anna.last_page
        assert "javascript:" not in anna.last_page
        r = await anna.post_form("/api/v1/exceptions", {**FORM, "url": url})
        assert r.status == 303
        assert "url=" not in r.headers["Location"]
        page = await anna.get(r.headers["Location"])
        assert page.status == 200
        assert "evil.example" not in anna.last_page
    assert len(await asyncio.to_thread(requests.list_requests, svc.store)) == 1


async def test_a_platform_return_url_is_offered_after_the_request(svc: Service) -> None:
    url = "https://www.tiktok.com/@institution/video/1?lang=lv"
    async with svc.client() as anna:
        await anna.login("anna", "anna-pw")
        await anna.get("/access/request?platform=tiktok")
        r = await anna.post_form("/api/v1/exceptions", {**FORM, "url": url})
        await anna.get(r.headers["Location"])
        assert 'href="https://www.tiktok.com/@institution/video/1?lang=lv"' in anna.last_page

"""Login, sessions, CSRF, Origin checks, roles: each bad request is shown to be refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from proxy.service.auth import SESSION_COOKIE
from proxy.service.clients import MAX_FAILURES
from proxy.service.csrf import PRE_COOKIE
from proxy.store import requests, users
from tests.support.service import Service, running_service

FORM = {"platform": "tiktok", "access": "read", "duration": "60",
        "justification": "Monitoring a crisis"}


@pytest.fixture
async def svc(tmp_path: Path, store_url: str) -> AsyncIterator[Service]:
    async with running_service(tmp_path, store_url) as s:
        yield s


async def test_login_sets_a_strict_httponly_cookie_and_logout_ends_it(svc: Service) -> None:
    async with svc.client() as anna:
        r = await anna.login("anna", "anna-pw")
        cookie = r.headers.getall("Set-Cookie")
        session = next(c for c in cookie if c.startswith(SESSION_COOKIE + "="))
        assert "HttpOnly" in session
        assert "SameSite=Strict" in session
        assert "Secure" not in session  # plain http on loopback
        page = await anna.get("/access/mine")
        assert page.status == 200
        assert "anna" in anna.last_page
        r = await anna.post_form("/logout", {})
        assert r.status == 303
        page = await anna.get("/access/mine", allow_redirects=False)
        assert page.status == 303
        assert page.headers["Location"].startswith("/login?next=")


async def test_cookie_is_secure_when_served_over_https(tmp_path: Path, store_url: str) -> None:
    async with running_service(tmp_path, store_url, service_url="https://sargs.example.gov.lv"
                               ) as svc, svc.client() as anna:
        r = await anna.get("/login")
        pre = next(c for c in r.headers.getall("Set-Cookie") if c.startswith(PRE_COOKIE))
        assert "Secure" in pre
        value = pre.split(";", 1)[0].split("=", 1)[1]
        # A browser sends the Secure cookie back over https; say it by hand over loopback.
        r = await anna.post_form("/login", {"name": "anna", "password": "anna-pw"},
                                 origin="https://sargs.example.gov.lv",
                                 headers={"Cookie": f"{PRE_COOKIE}={value}"})
        assert r.status == 303
        session = next(c for c in r.headers.getall("Set-Cookie")
                       if c.startswith(SESSION_COOKIE + "="))
        assert "Secure" in session


@pytest.mark.parametrize("token", ["", "forged-token"])
async def test_login_without_the_right_csrf_token_is_refused(svc: Service, token: str) -> None:
    async with svc.client() as anna:
        await anna.get("/login")
        r = await anna.post_form("/login", {"name": "anna", "password": "anna-pw"},
                                 csrf=token)
        assert r.status == 403
        assert SESSION_COOKIE not in {c.key for c in anna.session.cookie_jar}


@pytest.mark.parametrize("token", ["", "forged-token"])
async def test_form_post_without_the_right_csrf_token_is_refused(svc: Service, token: str
                                                                 ) -> None:
    async with svc.client() as anna:
        await anna.login("anna", "anna-pw")
        await anna.get("/access/request?platform=tiktok")
        r = await anna.post_form("/api/v1/exceptions", FORM, csrf=token)
        assert r.status == 403
        assert "token" in (await r.json())["error"]
        assert await asyncio.to_thread(requests.list_requests, svc.store) == []
        # The same form with the page's token goes through.
        r = await anna.post_form("/api/v1/exceptions", FORM)
        assert r.status == 303
        assert len(await asyncio.to_thread(requests.list_requests, svc.store)) == 1


async def test_a_session_token_does_not_work_for_another_session(svc: Service) -> None:
    async with svc.client() as anna, svc.client() as peter:
        await anna.login("anna", "anna-pw")
        await anna.get("/access/request")
        await peter.login("peter", "peter-pw")
        r = await peter.post_form("/api/v1/exceptions", FORM, csrf=anna.csrf)
        assert r.status == 403


@pytest.mark.parametrize("origin", ["https://evil.example", "null"])
async def test_cross_origin_posts_are_refused_even_with_a_token(svc: Service, origin: str
                                                                ) -> None:
    async with svc.client() as anna:
        await anna.login("anna", "anna-pw")
        await anna.get("/access/request")
        r = await anna.post_form("/api/v1/exceptions", FORM, origin=origin)
        assert r.status == 403
        assert "cross-site" in (await r.json())["error"]
        r = await anna.post_form("/api/v1/exceptions", FORM, origin=None,
                                 headers={"Referer": "https://evil.example/page"})
        assert r.status == 403
        assert await asyncio.to_thread(requests.list_requests, svc.store) == []


async def test_json_api_with_a_session_needs_the_csrf_header(svc: Service) -> None:
    body = {**FORM, "duration": 60}
    async with svc.client() as anna:
        await anna.login("anna", "anna-pw")
        await anna.get("/access/mine")
        url = svc.url + "/api/v1/exceptions"
        r = await anna.session.post(url, json=body)
        assert r.status == 403
        r = await anna.session.post(url, json=body, headers={"X-CSRF-Token": anna.csrf})
        assert r.status == 201


async def test_basic_auth_for_api_clients_and_a_challenge_when_missing(svc: Service) -> None:
    async with aiohttp.ClientSession() as s:
        r = await s.get(svc.url + "/api/v1/exceptions/mine")
        assert r.status == 401
        assert r.headers["WWW-Authenticate"].startswith("Basic")
        r = await s.get(svc.url + "/api/v1/exceptions/mine",
                        headers=svc.basic("anna", "wrong"))
        assert r.status == 401
        r = await s.get(svc.url + "/api/v1/exceptions/mine", headers=svc.basic("anna"))
        assert r.status == 200
        assert (await r.json()) == {"requests": []}


async def test_staff_calling_approver_endpoints_gets_403(svc: Service) -> None:
    made = await asyncio.to_thread(requests.create_request, svc.store, "cora", "x", "allow",
                                   60, "campaign")
    async with aiohttp.ClientSession() as s:
        auth = svc.basic("anna")
        for method, path in [("GET", "/api/v1/exceptions?status=pending"),
                             ("POST", f"/api/v1/exceptions/{made.id}/approve"),
                             ("POST", f"/api/v1/exceptions/{made.id}/reject"),
                             ("GET", "/api/v1/grants"),
                             ("POST", "/api/v1/grants/nope/revoke"),
                             ("GET", "/approvals"), ("GET", "/grants"), ("GET", "/audit"),
                             ("GET", "/audit.csv"), ("GET", "/dashboard")]:
            r = await s.request(method, svc.url + path, headers=auth, json={"reason": "x"})
            assert r.status == 403, (method, path, r.status)
    async with svc.client() as anna:
        await anna.login("anna", "anna-pw")
        await anna.get("/access/mine")
        r = await anna.post_form(f"/approvals/{made.id}/approve", {"duration": "60"})
        assert r.status == 403
    found = await asyncio.to_thread(requests.get_request, svc.store, made.id)
    assert found is not None
    assert found.status == "pending"


async def test_self_approval_is_refused_and_not_offered(svc: Service) -> None:
    own = await asyncio.to_thread(requests.create_request, svc.store, "peter", "tiktok",
                                  "read", 60, "research")
    async with svc.client() as peter:
        await peter.login("peter", "peter-pw")
        page = await peter.get("/approvals")
        assert page.status == 200
        assert own.id not in peter.last_page  # not offered
        r = await peter.post_form(f"/approvals/{own.id}/approve", {"duration": "60"})
        assert r.status == 303
        assert "msg_self" in r.headers["Location"]
    async with aiohttp.ClientSession() as s:
        r = await s.post(f"{svc.url}/api/v1/exceptions/{own.id}/approve",
                         headers=svc.basic("peter"), json={})
        assert r.status == 403
        assert "own" in (await r.json())["error"]
    found = await asyncio.to_thread(requests.get_request, svc.store, own.id)
    assert found is not None
    assert found.status == "pending"


async def test_failed_logins_are_rate_limited_and_audited(svc: Service) -> None:
    async with svc.client() as mallory:
        for _ in range(MAX_FAILURES):
            await mallory.get("/login")
            r = await mallory.post_form("/login", {"name": "anna", "password": "guess"})
            assert r.status == 401
        await mallory.get("/login")
        r = await mallory.post_form("/login", {"name": "anna", "password": "anna-pw"})
        assert r.status == 429  # even the right password waits now
        assert int(r.headers["Retry-After"]) > 0
    from proxy.store import audit

    failed = await asyncio.to_thread(audit.query, svc.store, kind="login-failed")
    assert len(failed) == MAX_FAILURES
    assert all("guess" not in str(e.details) for e in failed)


async def test_a_tampered_or_outdated_session_is_not_accepted(svc: Service) -> None:
    async with svc.client() as anna:
        await anna.login("anna", "anna-pw")
        cookie = next(c for c in anna.session.cookie_jar if c.key == SESSION_COOKIE)
        body, _, mac = cookie.value.partition(".")
        forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac
        async with aiohttp.ClientSession() as other:
            r = await other.get(svc.url + "/api/v1/exceptions/mine",
                                headers={"Cookie": f"{SESSION_COOKIE}={forged}"})
            assert r.status == 401
            r = await other.get(svc.url + "/api/v1/exceptions/mine",
                                headers={"Cookie": f"{SESSION_COOKIE}={cookie.value}"})
            assert r.status == 200
        # Changing the password ends existing sessions.
        assert (await anna.get("/access/mine")).status == 200
        await asyncio.to_thread(users.set_password, svc.store, "anna", "new-pw")
        r = await anna.get("/access/mine", allow_redirects=False)
        assert r.status == 303

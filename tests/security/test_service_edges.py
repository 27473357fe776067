"""The service's edges: HSTS over https, /metrics behind its token, no extension trusted by
default, no login box over the extension's popup, and short answers (never a traceback)
for malformed headers."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from proxy.service import metricsauth
from tests.support.service import Service, running_service

EXT = "chrome-extension://abcdefghijklmnopabcdefghijklmnop"


@pytest.fixture
async def svc(tmp_path: Path, store_url: str) -> AsyncIterator[Service]:
    async with running_service(tmp_path, store_url, trusted_proxies=["127.0.0.1"]) as s:
        yield s


async def test_hsts_when_served_over_https(tmp_path: Path, store_url: str) -> None:
    async with running_service(tmp_path, store_url, service_url="https://sargs.example.lv"
                               ) as svc, aiohttp.ClientSession() as s:
        for path in ("/login", "/healthz", "/no-such-page", "/api/v1/me"):
            r = await s.get(svc.url + path, allow_redirects=False)
            assert r.headers["Strict-Transport-Security"] == "max-age=31536000", path


async def test_no_hsts_over_plain_http(svc: Service) -> None:
    async with aiohttp.ClientSession() as s:
        r = await s.get(svc.url + "/login")
        assert "Strict-Transport-Security" not in r.headers


async def test_metrics_need_the_token(svc: Service) -> None:
    token = metricsauth.load_token(svc.settings)
    assert (svc.settings.var_dir / "metrics.token").stat().st_mode & 0o777 == 0o600
    async with aiohttp.ClientSession() as s:
        for headers in ({}, {"Authorization": "Bearer wrong"},
                        {"Authorization": f"Basic {token}"}, svc.basic("ada")):
            r = await s.get(svc.url + "/metrics", headers=headers)
            assert r.status == 401
            assert "WWW-Authenticate" not in r.headers
            assert "sargs_" not in await r.text()
        r = await s.get(svc.url + "/metrics", headers={"Authorization": f"Bearer {token}"})
        assert r.status == 200
        assert "sargs_requests_pending" in await r.text()


async def test_no_extension_is_trusted_by_default(svc: Service) -> None:
    async with aiohttp.ClientSession() as s:
        r = await s.get(svc.url + "/api/v1/me", headers={"Origin": EXT, **svc.basic("anna")})
        assert r.status == 200
        assert "Access-Control-Allow-Origin" not in r.headers
        r = await s.options(svc.url + "/api/v1/me", headers={
            "Origin": EXT, "Access-Control-Request-Method": "GET"})
        assert r.status == 403


async def test_signed_out_extension_gets_json_401_without_a_challenge(
        tmp_path: Path, store_url: str) -> None:
    async with running_service(tmp_path, store_url, extension_origins=[EXT]) as svc, \
            aiohttp.ClientSession() as s:
        r = await s.get(svc.url + "/api/v1/me", headers={"Origin": EXT})
        assert r.status == 401
        assert "WWW-Authenticate" not in r.headers
        assert r.headers["Access-Control-Allow-Origin"] == EXT
        assert "error" in await r.json()
        # curl and scripts still get the challenge.
        r = await s.get(svc.url + "/api/v1/me")
        assert r.headers["WWW-Authenticate"].startswith("Basic realm=")


BAD_HEADERS = [
    {"Referer": "http://["},
    {"Origin": "http://["},
    {"Referer": "http://[::1"},
    {"Authorization": "Basic ###"},
    {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()},
    {"Authorization": "Bearer"},
    {"Authorization": "Basic"},
    {"X-Forwarded-For": "not-an-address, [::1"},
    {"Forwarded": 'for="[zz', "X-Forwarded-For": ","},
    {"Accept-Language": "x" * 4000},
    {"Accept-Language": ";q=;;,,*-*"},
    {"Cookie": "sargs_session=\"unterminated"},
    {"Cookie": "sargs_session=" + "a" * 4000},
    {"Cookie": "sargs_session=; sargs_pre=%%%"},
    {"Content-Type": "multipart/form-data"},
    {"Content-Type": "application/x-www-form-urlencoded; charset=klingon"},
]


@pytest.mark.parametrize("headers", BAD_HEADERS, ids=[str(i) for i in range(len(BAD_HEADERS))])
async def test_malformed_headers_get_short_answers(svc: Service, headers: dict[str, str],
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    async with aiohttp.ClientSession() as s:
        for method, path in (("GET", "/access/mine"), ("POST", "/login"),
                             ("POST", "/api/v1/exceptions"), ("GET", "/api/v1/me"),
                             ("POST", "/logout"), ("GET", "/login?next=/")):
            r = await s.request(method, svc.url + path, headers={"Accept": "text/html",
                                                                 **headers},
                                data=b"name=a&password=b" if method == "POST" else None,
                                allow_redirects=False)
            body = await r.read()
            assert r.status < 500, (method, path, r.status, body[:300])
            assert b"Traceback" not in body
            assert len(body) < 20_000
    await asyncio.sleep(0.05)
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert errors == [], [rec.getMessage() for rec in errors]

"""Issue 12: a web page elsewhere cannot make a staff member's browser run checks.

The check API takes JSON only (so a cross-site call is always preflighted) and the
preflight names only the origins that need it: never ``*``. Attacked on a real service on
127.0.0.1; "no check ran" is read from the service's own /metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from proxy.service import keys, metricsauth
from proxy.service.app import create_app
from proxy.settings import ROOT, Settings

EXAMPLE = ROOT / "policies" / "institutions" / "example"
EVIL = "https://evil.example"
DRAFT = b'{"text": "Call me at +371 26 555 123"}'


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> TestClient:
    settings = Settings(policy=EXAMPLE, var_dir=tmp_path,
                        extension_origins=["chrome-extension://abcdefghijklmnopabcdefghijklmnop"],
                        check_origins=["https://intranet.example.gov.lv"])
    client: TestClient = await aiohttp_client(create_app(settings))
    return client


async def checks_answered(client: TestClient) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    token = metricsauth.load_token(client.server.app[keys.SETTINGS])
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200
    text = await response.text()
    return sum(s.value for f in text_string_to_metric_families(text)
               for s in f.samples if s.name == "sargs_checks_total")


@pytest.mark.parametrize("kind", ["text/plain", "form", "multipart", "none", "latin-1",
                                  "json-lookalike"])
async def test_a_simple_cross_site_post_is_refused_before_any_check(
    client: TestClient, kind: str
) -> None:
    before = await checks_answered(client)
    headers = {"Origin": EVIL}
    data: Any = DRAFT
    if kind == "text/plain":
        headers["Content-Type"] = "text/plain"
    elif kind == "form":
        data = {"text": "Call me at +371 26 555 123"}  # application/x-www-form-urlencoded
    elif kind == "multipart":
        data = FormData()
        data.add_field("text", DRAFT.decode(), content_type="application/json")
    elif kind == "none":
        headers["Content-Type"] = ""
    elif kind == "latin-1":
        headers["Content-Type"] = "application/json; charset=latin-1"
    else:
        headers["Content-Type"] = "text/plain; x=application/json"
    resp = await client.post("/api/v1/check", data=data, headers=headers)
    assert resp.status == 415
    assert "application/json" in (await resp.json())["error"]
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert await checks_answered(client) == before  # nothing was checked
    # The same draft as JSON from a page the service knows is checked (and counted).
    ok = await client.post("/api/v1/check", data=DRAFT, headers={
        "Content-Type": "application/json; charset=UTF-8", "Origin": "https://x.com"})
    assert ok.status == 200
    assert await checks_answered(client) == before + 1


PREFLIGHT = {"Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "content-type"}


@pytest.mark.parametrize("origin", [
    EVIL,
    "null",  # sandboxed frames, file: pages
    "http://www.facebook.com",  # not https: anyone on the path could be that page
    "https://www.facebook.com:8443",
    "https://evilfacebook.com",
    "https://facebook.com.evil.example",
    "https://WWW.FACEBOOK.COM",
    "https://www.facebook.com/",
    "https://user@www.facebook.com",
    "https://intranet.example.gov.lv.evil.example",
    "chrome-extension://otherextensionidotherextension",
])
async def test_a_preflight_from_elsewhere_gets_no_allow_headers(
    client: TestClient, origin: str
) -> None:
    for path in ("/api/v1/check", "/api/v1/policy/summary"):
        resp = await client.options(path, headers={"Origin": origin, **PREFLIGHT})
        assert resp.status == 403
        assert not any(h.lower().startswith("access-control-allow") for h in resp.headers)
    resp = await client.post("/api/v1/check", data=DRAFT,
                             headers={"Origin": origin, "Content-Type": "application/json"})
    assert "Access-Control-Allow-Origin" not in resp.headers  # its page cannot read it


@pytest.mark.parametrize("origin", [
    "https://www.facebook.com",
    "https://x.com",
    "https://m.youtube.com",
    "https://www.linkedin.com",
    "https://intranet.example.gov.lv",
    "chrome-extension://abcdefghijklmnopabcdefghijklmnop",
])
async def test_the_platforms_and_the_extension_are_answered_by_name(
    client: TestClient, origin: str
) -> None:
    resp = await client.options("/api/v1/check", headers={"Origin": origin, **PREFLIGHT})
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == origin
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    answer = await client.post("/api/v1/check", data=DRAFT,
                               headers={"Origin": origin, "Content-Type": "application/json"})
    assert answer.status == 200
    assert answer.headers["Access-Control-Allow-Origin"] == origin
    assert (await answer.json())["verdict"] == "block"

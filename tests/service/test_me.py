"""/api/v1/me and /api/v1/guidelines: what the extension popup shows, and who may read it."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from argon2 import PasswordHasher

from proxy.service import keys
from proxy.service.app import create_app
from proxy.service.me import allowed_origin
from proxy.settings import Settings
from proxy.store import requests as store_requests
from proxy.store import users
from proxy.store.db import Store, open_store

EXT = "chrome-extension://abcdefghijklmnopabcdefghijklmnop"

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # tests only


def basic(name: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(hasher=FAST, url=f"sqlite:///{tmp_path / 'sargs.db'}")
    users.add_user(s, "anna", "correct horse battery", ["staff"])
    users.add_user(s, "boss", "another long secret", ["head"])
    yield s
    s.close()


@pytest.fixture
async def client(aiohttp_client, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    if not hasattr(keys, "STORE"):
        monkeypatch.setattr(keys, "STORE", web.AppKey("store", object), raising=False)
    app = create_app(Settings(var_dir=tmp_path, service_url="https://sargs.example.lv",
                              extension_origins=[EXT]))
    app[keys.STORE] = store
    return await aiohttp_client(app)


async def test_me_needs_a_login(client) -> None:
    resp = await client.get("/api/v1/me")
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Basic realm=")
    wrong = await client.get("/api/v1/me", headers=basic("anna", "wrong password!"))
    assert wrong.status == 401


async def test_me_shows_roles_access_and_grants(client, store: Store) -> None:
    request = store_requests.create_request(store, "anna", "tiktok", "read", 90, "campaign")
    store_requests.approve(store, request.id, "boss")
    resp = await client.get(
        "/api/v1/me?lang=lv", headers=basic("anna", "correct horse battery")
    )
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-store"
    me = await resp.json()
    assert me["user"] == "anna"
    assert me["roles"] == [{"id": "staff", "name": "Darbinieks"}]
    by_id = {p["id"]: p for p in me["platforms"]}
    assert by_id["linkedin"]["action"] == "allow"
    assert by_id["linkedin"]["can_post"] is True
    assert by_id["youtube"]["action"] == "read"
    assert by_id["youtube"]["can_post"] is False
    assert by_id["vk"]["action"] == "block"  # denied for everyone
    assert by_id["vk"]["rule"] == "deny"
    # tiktok is blocked for staff, but the approved request lifts it to read until expiry.
    assert by_id["tiktok"]["action"] == "read"
    assert by_id["tiktok"]["rule"] == "grant"
    assert by_id["tiktok"]["grant"]["expires_at"] == me["grants"][0]["expires_at"]
    assert me["grants"][0]["platform"] == "tiktok"
    assert me["request_access_url"] == "https://sargs.example.lv/access/request"


async def test_guidelines_in_each_language(client) -> None:
    titles = {}
    for lang in ("en", "lv", "sv", "sq"):
        data = await (await client.get(f"/api/v1/guidelines?lang={lang}")).json()
        assert data["lang"] == lang
        titles[lang] = {g["id"]: g["title"] for g in data["guidelines"]}
    assert titles["en"]["access"] == "Access to social media"
    assert titles["lv"]["access"] == "Piekļuve sociālajiem tīkliem"
    assert titles["sv"]["access"] == "Tillgång till sociala medier"
    assert titles["sq"]["access"] == "Qasja në mediat sociale"
    negotiated = await (await client.get(
        "/api/v1/guidelines", headers={"Accept-Language": "sv-SE,sv;q=0.9"})).json()
    assert negotiated["lang"] == "sv"


async def test_cors_only_for_extension_origins_with_credentials(client) -> None:
    ok = await client.get("/api/v1/me", headers={
        "Origin": EXT, **basic("anna", "correct horse battery")})
    assert ok.headers["Access-Control-Allow-Origin"] == EXT
    assert ok.headers["Access-Control-Allow-Credentials"] == "true"
    # A web page must not read who is signed in.
    evil = await client.get("/api/v1/me", headers={
        "Origin": "https://evil.example", **basic("anna", "correct horse battery")})
    assert "Access-Control-Allow-Origin" not in evil.headers
    preflight = await client.options("/api/v1/me", headers={
        "Origin": EXT, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert preflight.status == 204
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    refused = await client.options("/api/v1/me", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert refused.status == 403
    assert "Access-Control-Allow-Origin" not in refused.headers
    # The 401 for a missing login is readable by the extension (it says "sign in"), and
    # carries no challenge: the browser would put its own login box over the popup.
    anon = await client.get("/api/v1/me", headers={"Origin": EXT})
    assert anon.status == 401
    assert anon.headers["Access-Control-Allow-Origin"] == EXT
    assert "WWW-Authenticate" not in anon.headers
    assert (await anon.json())["error"]


@pytest.mark.parametrize(
    ("origin", "allowed", "expected"),
    [
        (EXT, [], False),  # no list: no extension
        ("moz-extension://1b2c3d4e-aaaa-bbbb-cccc-1234567890ab", [], False),
        ("https://x.com", [], False),
        ("null", [], False),
        ("chrome-extension://abc/evil", [], False),
        (EXT, [EXT], True),
        ("chrome-extension://otherotherotherotherotherother00", [EXT], False),
        ("moz-extension://1b2c3d4e-aaaa", ["moz-extension://*"], True),
    ],
)
def test_allowed_origin(origin: str, allowed: list[str], expected: bool) -> None:
    assert allowed_origin(origin, allowed) is expected

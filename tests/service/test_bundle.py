"""The grant bundle, its change stream and gateway events, on a real aiohttp service and a
real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher
from pydantic import SecretStr

from proxy.service import keys
from proxy.service.app import create_app
from proxy.settings import Settings
from proxy.store import audit, grants
from proxy.store import requests as rq
from proxy.store.db import Store, open_store

TOKEN = "gateway-secret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url, hasher=FAST)
    yield s
    s.close()


async def _client(aiohttp_client: Any, store: Store, tmp_path: Path, token: str) -> TestClient:
    settings = Settings(var_dir=tmp_path / "var", database_url=str(store.url),
                        gateway_token=SecretStr(token))
    app = create_app(settings)
    app[keys.STORE] = store
    client: TestClient = await aiohttp_client(app)
    return client


@pytest.fixture
async def client(store: Store, tmp_path: Path, aiohttp_client: Any) -> TestClient:
    # ``store`` first: fixtures end in reverse order, so the app stops before the database
    # is dropped.
    return await _client(aiohttp_client, store, tmp_path, TOKEN)


def _grant(store: Store, user: str = "ivo", platform: str = "facebook", minutes: int = 60,
           now: datetime | None = None) -> grants.Grant:
    made = rq.create_request(store, user, platform, "allow", minutes, "crisis communication",
                             now=now)
    return rq.approve(store, made.id, "olga", now=now)[1]


async def _json(resp: ClientResponse) -> Any:
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def _events(resp: ClientResponse) -> AsyncIterator[dict[str, Any]]:
    """Server-sent ``version`` events, each with a 5 s bound."""
    event, data = "", ""
    while True:
        raw = await asyncio.wait_for(resp.content.readline(), 5)
        assert raw, "stream ended"
        line = raw.decode().rstrip("\n")
        if line.startswith("event:"):
            event = line.partition(":")[2].strip()
        elif line.startswith("data:"):
            data = line.partition(":")[2].strip()
        elif not line and event:
            if event == "version":
                yield json.loads(data)
            event, data = "", ""


async def test_gateways_need_the_token(client: TestClient) -> None:
    for path in ("/api/v1/bundle", "/api/v1/bundle/events?after=0&wait=0"):
        assert (await client.get(path)).status == 401
        wrong = await client.get(path, headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401
        assert "Bearer" in wrong.headers["WWW-Authenticate"]
    refused = await client.post("/api/v1/events", json={"gateway": "g", "events": []})
    assert refused.status == 401
    assert (await client.get("/api/v1/bundle", headers=AUTH)).status == 200


async def test_without_a_configured_token_the_generated_one_is_required(
    store: Store, tmp_path: Path, aiohttp_client: Any
) -> None:
    client = await _client(aiohttp_client, store, tmp_path, "")
    assert (await client.get("/api/v1/bundle")).status == 401  # loopback proves nothing
    generated = (tmp_path / "var" / "gateway.token").read_text().strip()
    auth = {"Authorization": f"Bearer {generated}"}
    assert (await client.get("/api/v1/bundle", headers=auth)).status == 200


async def test_bundle_lists_active_grants_with_version_and_etag(
    client: TestClient, store: Store
) -> None:
    empty = await client.get("/api/v1/bundle", headers=AUTH)
    body = await _json(empty)
    assert body["grants"] == []
    assert body["policy"].startswith("2026.11-example")
    grant = _grant(store)
    resp = await client.get("/api/v1/bundle", headers=AUTH)
    body = await _json(resp)
    assert body["version"] == grants.current_sequence(store)
    assert body["grants"] == [{"id": grant.id, "user": "ivo", "platform": "facebook",
                               "action": "allow", "expires_at": grant.expires_at.isoformat()}]
    etag = resp.headers["ETag"]
    assert etag != empty.headers["ETag"]
    same = await client.get("/api/v1/bundle", headers={**AUTH, "If-None-Match": etag})
    assert same.status == 304
    grants.revoke(store, grant.id, "olga", "done")
    after = await client.get("/api/v1/bundle", headers={**AUTH, "If-None-Match": etag})
    assert (await _json(after))["grants"] == []
    assert after.headers["ETag"] != etag


async def test_stream_announces_changes_made_on_another_node(
    client: TestClient, store: Store
) -> None:
    resp = await client.get("/api/v1/bundle/events", headers=AUTH)
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    stream = _events(resp)
    first = await anext(stream)
    assert first["version"] == grants.current_sequence(store)
    # Written straight to the database, as another service node would.
    await asyncio.to_thread(_grant, store)
    latest = grants.current_sequence(store)  # the request and its approval: two changes
    seen = [first["version"]]
    async with asyncio.timeout(10):
        while seen[-1] < latest:  # announced as the node sees them: one or both
            seen.append((await anext(stream))["version"])
    assert seen == sorted(set(seen))  # only ever forward
    assert seen[-1] == latest
    resp.close()


async def test_long_poll_answers_when_the_version_moves(
    client: TestClient, store: Store
) -> None:
    now = grants.current_sequence(store)
    idle = await _json(await client.get(f"/api/v1/bundle/events?after={now}&wait=0.3",
                                        headers=AUTH))
    assert idle["version"] == now  # nothing changed: the current version after the wait
    waiting = asyncio.ensure_future(
        client.get(f"/api/v1/bundle/events?after={now}&wait=20", headers=AUTH))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await asyncio.to_thread(_grant, store)
    moved = await _json(await asyncio.wait_for(waiting, 10))
    assert moved["version"] > now


async def test_bad_query_is_422_naming_the_field(client: TestClient) -> None:
    resp = await client.get("/api/v1/bundle/events?after=-1", headers=AUTH)
    assert resp.status == 422
    assert "after" in (await resp.json())["error"]


def _event(i: int, kind: str = "block") -> dict[str, Any]:
    return {"id": f"evt-{i}", "kind": kind, "at": "2026-11-23T10:00:00+02:00",
            "user": "ivo", "platform": "tiktok",
            "details": {"rule": "role", "request": "page", "path": "/"}}


async def test_events_are_recorded_exactly_once(client: TestClient, store: Store) -> None:
    batch = {"gateway": "gw-1", "events": [_event(1), _event(2, "warn"), _event(3, "grant-use")]}
    first = await _json(await client.post("/api/v1/events", json=batch, headers=AUTH))
    assert first == {"received": 3, "new": 3}
    # The acknowledgement was lost; the gateway sends the same batch again, plus one.
    batch["events"].append(_event(4))
    again = await _json(await client.post("/api/v1/events", json=batch, headers=AUTH))
    assert again == {"received": 4, "new": 1}
    entries = [e for e in audit.query(store) if e.kind in ("block", "warn", "grant-use")]
    assert sorted(e.details["event_id"] for e in entries) == ["evt-1", "evt-2", "evt-3", "evt-4"]
    assert {e.actor for e in entries} == {"gw-1"}


async def test_large_batches_are_accepted(client: TestClient, store: Store) -> None:
    batch = {"gateway": "gw-1", "events": [_event(i) for i in range(1000)]}
    assert len(json.dumps(batch)) > Settings().max_body_bytes  # beyond the usual API limit
    got = await _json(await client.post("/api/v1/events", json=batch, headers=AUTH))
    assert got == {"received": 1000, "new": 1000}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "approve"}, "events.0.kind"),  # gateways cannot forge approvals
        ({"at": "2026-11-23T10:00:00"}, "events.0.at"),  # no time zone
        ({"id": ""}, "events.0.id"),
        ({"details": {"text": "a draft"}}, "details"),  # never draft text
    ],
)
async def test_bad_events_are_refused_naming_the_field(
    client: TestClient, store: Store, change: dict[str, Any], field: str
) -> None:
    batch = {"gateway": "gw-1", "events": [{**_event(1), **change}]}
    resp = await client.post("/api/v1/events", json=batch, headers=AUTH)
    assert resp.status == 422
    assert field in json.dumps(await resp.json())
    assert [e for e in audit.query(store) if e.kind == "block"] == []


async def test_expired_grants_are_marked_audited_and_announced(
    client: TestClient, store: Store
) -> None:
    resp = await client.get("/api/v1/bundle/events", headers=AUTH)
    stream = _events(resp)
    first = await anext(stream)
    # Approved 61 minutes ago for an hour: due now.
    grant = await asyncio.to_thread(
        _grant, store, now=datetime.now(UTC) - timedelta(minutes=61))
    versions = [first["version"]]
    for _ in range(5):  # the approval, then the expiry (bounded)
        versions.append((await anext(stream))["version"])
        got = grants.get_grant(store, grant.id)
        # The expiry is in the store before its announcement reaches the stream: wait
        # for the announcement too.
        if got is not None and got.status == "expired" and (
            versions[-1] == grants.current_sequence(store)
        ):
            break
    got = grants.get_grant(store, grant.id)
    assert got is not None
    assert got.status == "expired"
    assert [e.grant_id for e in audit.query(store, kind="expire")] == [grant.id]
    assert versions[-1] == grants.current_sequence(store)
    body = await _json(await client.get("/api/v1/bundle", headers=AUTH))
    assert body["grants"] == []
    resp.close()


async def test_a_failed_proxy_login_is_recorded_as_every_failed_login_is(
    client: TestClient, store: Store
) -> None:
    """Whatever else a gateway puts in a ``login-failed`` event (a password, by mistake
    or by a forged gateway), the entry holds the name, address, ``via`` and count only."""
    event = {"id": "evt-login", "kind": "login-failed", "at": "2026-11-23T10:00:00+02:00",
             "user": "carl", "details": {"address": "10.1.2.3", "count": 2,
                                         "password": "hunter2", "gateway": "gw-1"}}
    got = await _json(await client.post(
        "/api/v1/events", json={"gateway": "gw-1", "events": [event]}, headers=AUTH))
    assert got == {"received": 1, "new": 1}
    [entry] = [e for e in audit.query(store) if e.kind == "login-failed"]
    assert (entry.user, entry.actor) == ("carl", "gw-1")
    assert dict(entry.details) == {"address": "10.1.2.3", "via": "gateway", "count": 2,
                                   "event_id": "evt-login"}
    bad = {**event, "id": "evt-bad", "details": {"count": 1}}  # no address
    resp = await client.post("/api/v1/events", json={"gateway": "gw-1", "events": [bad]},
                             headers=AUTH)
    assert resp.status == 422
    assert "details" in json.dumps(await resp.json())

"""Staff requests: the API, the form, "My requests" in the user's language, e-mail."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa

from proxy.store import requests
from tests.support.service import Service, running_service

GOOD = {"platform": "tiktok", "access": "read", "duration": 120,
        "justification": "Monitoring the flood crisis", "ticket": "INC-42"}


@pytest.fixture
async def svc(tmp_path: Path, store_url: str) -> AsyncIterator[Service]:
    async with running_service(tmp_path, store_url) as s:
        yield s


async def _post(svc: Service, body: object, user: str = "anna") -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as s:
        r = await s.post(svc.url + "/api/v1/exceptions", json=body, headers=svc.basic(user))
        await r.read()
        return r


async def test_a_request_is_acknowledged_once_stored(svc: Service) -> None:
    r = await _post(svc, GOOD)
    assert r.status == 201
    body = await r.json()
    assert body["status"] == "pending"
    stored = await asyncio.to_thread(requests.get_request, svc.store, body["id"])
    assert stored is not None
    assert (stored.user, stored.platform, stored.access, stored.duration_minutes,
            stored.ticket) == ("anna", "tiktok", "read", 120, "INC-42")
    async with aiohttp.ClientSession() as s:
        mine = await (await s.get(svc.url + "/api/v1/exceptions/mine",
                                  headers=svc.basic("anna"))).json()
        others = await (await s.get(svc.url + "/api/v1/exceptions/mine",
                                    headers=svc.basic("cora"))).json()
        theirs = await s.get(f"{svc.url}/api/v1/exceptions/{body['id']}",
                             headers=svc.basic("cora"))
    assert [m["id"] for m in mine["requests"]] == [body["id"]]
    assert others["requests"] == []
    assert theirs.status == 404  # not hers, and she decides nothing


@pytest.mark.parametrize(("change", "field"), [
    ({"justification": "  "}, "justification"),
    ({"justification": None}, "justification"),
    ({"access": "post"}, "access"),
    ({"duration": 0}, "duration"),
    ({"duration": 25 * 60}, "duration"),  # staff may have at most 24 h
    ({"platform": "myspace"}, "platform"),
    ({"platform": "vk"}, "platform"),  # blocked for everyone: no grant possible
    ({"surprise": 1}, "surprise"),
])
async def test_bad_requests_get_422_naming_the_field(svc: Service, change: dict[str, object],
                                                     field: str) -> None:
    body = {**GOOD, **change}
    body = {k: v for k, v in body.items() if v is not None}
    r = await _post(svc, body)
    assert r.status == 422
    answer = await r.json()
    assert field in [d["field"] for d in answer["details"]]
    assert await asyncio.to_thread(requests.list_requests, svc.store) == []


async def test_the_cap_follows_the_requesters_roles(svc: Service) -> None:
    r = await _post(svc, {**GOOD, "duration": 7 * 24 * 60}, user="cora")  # communicator: 168 h
    assert r.status == 201


async def test_a_request_the_store_cannot_take_is_not_acknowledged(svc: Service) -> None:
    with svc.store.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE grants"))
        conn.execute(sa.text("DROP TABLE requests"))
    r = await _post(svc, GOOD)
    assert r.status == 503
    assert "NOT sent" in (await r.json())["error"]


async def test_the_form_from_the_block_page_and_my_requests_in_latvian(svc: Service) -> None:
    url = "https://www.tiktok.com/@ministry/video/1"
    async with svc.client(**{"Accept-Language": "lv"}) as anna:
        r = await anna.get(f"/access/request?platform=tiktok&url={url}")
        assert r.status == 200  # redirected to the login page first
        assert "Pieteikties" in anna.last_page
        await anna.post_form("/login", {"name": "anna", "password": "anna-pw",
                                        "next": f"/access/request?platform=tiktok&url={url}"})
        r = await anna.get(f"/access/request?platform=tiktok&url={url}")
        assert "Pieprasīt pagaidu piekļuvi" in anna.last_page
        assert 'value="tiktok" selected' in anna.last_page
        r = await anna.post_form("/api/v1/exceptions", {
            "platform": "tiktok", "access": "allow", "duration": "custom", "custom_hours": "1.5",
            "justification": "Kampaņa", "ticket": "", "url": url})
        assert r.status == 303
        assert r.headers["Location"].startswith("/access/mine?sent=")
        r = await anna.get(r.headers["Location"])
        assert "Gaida apstiprinātāju" in anna.last_page
        assert "1 stunda 30 minūšu" in anna.last_page  # Babel: the user's language
    stored = await asyncio.to_thread(requests.list_requests, svc.store)
    assert [(s.access, s.duration_minutes) for s in stored] == [("allow", 90)]


async def test_form_errors_are_shown_on_the_form(svc: Service) -> None:
    async with svc.client(**{"Accept-Language": "sv"}) as anna:
        await anna.login("anna", "anna-pw")
        await anna.get("/access/request")
        r = await anna.post_form("/api/v1/exceptions", {
            "platform": "x", "access": "allow", "duration": "custom", "custom_hours": "48",
            "justification": "Valkampanj"})
        assert r.status == 422
        assert "Rätta följande fält" in anna.last_page
        assert "För mycket: högst 1 dygn" in anna.last_page  # in Swedish, as a duration
        assert "Input should" not in anna.last_page  # not pydantic's English
        assert "Valkampanj" in anna.last_page  # what was typed stays


async def test_my_requests_show_decisions_in_the_users_language(svc: Service) -> None:
    made = await asyncio.to_thread(requests.create_request, svc.store, "anna", "x", "allow",
                                   60, "campaign")
    await asyncio.to_thread(requests.reject, svc.store, made.id, "peter", "Ej nödvändigt")
    async with svc.client(**{"Accept-Language": "sv"}) as anna:
        await anna.login("anna", "anna-pw")
        await anna.get("/access/mine")
        assert "Avslagen: Ej nödvändigt" in anna.last_page


# --- e-mail through a tiny local SMTP sink ------------------------------------------------


@dataclass
class Sink:
    port: int = 0
    messages: list[bytes] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


@contextlib.asynccontextmanager
async def smtp_sink() -> AsyncIterator[Sink]:
    """Enough SMTP for aiosmtplib: EHLO, MAIL, RCPT, DATA, QUIT."""
    sink = Sink()

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 sink ESMTP\r\n")
        for _ in range(100):  # bounded
            line = await reader.readline()
            if not line:
                break
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(b"250 sink\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                data = await reader.readuntil(b"\r\n.\r\n")
                sink.messages.append(data[:-5])
                sink.arrived.set()
                writer.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(session, "127.0.0.1", 0)
    sink.port = server.sockets[0].getsockname()[1]
    try:
        yield sink
    finally:
        server.close()
        await server.wait_closed()


async def _next_mail(sink: Sink, count: int) -> list[bytes]:
    for _ in range(200):  # bounded: ~10 s
        if len(sink.messages) >= count:
            return sink.messages
        sink.arrived.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sink.arrived.wait(), 0.05)
    return sink.messages


async def test_approvers_and_the_requester_get_e_mail(tmp_path: Path, store_url: str) -> None:
    async with smtp_sink() as sink, running_service(
            tmp_path, store_url, smtp_host="127.0.0.1", smtp_port=sink.port) as svc:
        r = await _post(svc, GOOD)
        request_id = (await r.json())["id"]
        mails = await _next_mail(sink, 2)  # peter and rita may decide staff requests
        recipients = sorted(str(message_from_bytes(m, policy=policy.default)["To"])
                            for m in mails)
        assert recipients == ["peter@example.gov.lv", "rita@example.gov.lv"]
        async with aiohttp.ClientSession() as s:
            r = await s.post(f"{svc.url}/api/v1/exceptions/{request_id}/approve",
                             json={"duration": 60}, headers=svc.basic("peter"))
            assert r.status == 200
        mails = await _next_mail(sink, 3)
        decision = message_from_bytes(mails[2], policy=policy.default)
        assert decision["To"] == "anna@example.gov.lv"
        assert "approved" in str(decision["Subject"])
        text = decision.get_body().get_content()  # type: ignore[union-attr]
        assert "apstiprināta" in text  # every language, Latvian included
        assert "Monitoring the flood crisis" not in text  # no justification in mail

"""Review before posting through the real service: an author sends a draft, a reviewer the
policy names reads it (opened only for them) and approves or returns it; the approval is an
allowance bound to exactly that text; the draft is sealed at rest and gone after the
decision; nobody else reads the state; e-mails carry a link, never the draft."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from email import message_from_bytes, policy
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa

from proxy.compliance.texthash import text_hash
from proxy.service.bundle import GATEWAY_TOKEN
from proxy.service.reviews import USER_HEADER
from proxy.store import allowances, audit
from proxy.store import reviews as rv
from tests.service.test_access_api import _next_mail, smtp_sink
from tests.support.service import Service, running_service

DRAFT = "Ministre paziņos lēmumu rīt. Zvaniet man: +371 2912 3456."
NOTE = "Vai drīkst publicēt šodien?"


@pytest.fixture
async def svc(tmp_path: Path, store_url: str) -> AsyncIterator[Service]:
    async with running_service(tmp_path, store_url) as s:
        yield s


async def _send(svc: Service, who: str = "anna", text: str = DRAFT, **extra: object
                ) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as s:
        r = await s.post(f"{svc.url}/api/v1/reviews", headers=svc.basic(who),
                         json={"text": text, "platform": "x", "note": NOTE,
                               "rules": ["made-up"], **extra})
        await r.read()
        return r


def _raw(svc: Service, review_id: str) -> dict[str, object]:
    with svc.store.read() as conn:
        return dict(conn.execute(sa.text("SELECT * FROM reviews WHERE id = :i"),
                                 {"i": review_id}).mappings().one())


async def test_ask_review_approve_and_allowance(svc: Service) -> None:
    r = await _send(svc)
    assert r.status == 201, await r.text()
    made = await r.json()
    rid = made["id"]
    assert made["status"] == "pending"
    assert made["reviewers"] >= 2
    # At rest: sealed, nothing readable; the service's own findings, not the page's.
    raw = _raw(svc, rid)
    assert raw["sealed"] is not None
    assert b"2912" not in bytes(raw["sealed"])
    assert "made-up" not in raw["rules"]  # type: ignore[operator]
    assert "personal-data" in raw["rules"]  # type: ignore[operator]
    assert (svc.settings.var_dir / "review.key").exists()

    async with svc.client() as peter:
        await peter.login("peter", "peter-pw")
        await peter.get("/reviews")
        assert f'href="/reviews/{rid}"' in peter.last_page
        assert DRAFT not in peter.last_page  # the queue does not show drafts
        await peter.get(f"/reviews/{rid}")
        assert "Ministre paziņos lēmumu rīt." in peter.last_page
        assert NOTE in peter.last_page
        assert "+371 2912 3456" in peter.last_page  # the finding's words, quoted
        r = await peter.post_form(f"/reviews/{rid}/approve", {"comment": "Labi."})
        assert r.status == 303
        assert r.headers["Location"] == "/reviews?msg=msg_approved"
        await peter.get(f"/reviews/{rid}")
        assert "Ministre" not in peter.last_page  # gone

    raw = _raw(svc, rid)
    assert raw["sealed"] is None
    assert raw["status"] == "approved"
    active = await asyncio.to_thread(allowances.active, svc.store)
    assert [(a.user, a.platform, a.kind, a.text_hash) for a in active] == [
        ("anna", "x", "review", text_hash(DRAFT))]
    async with aiohttp.ClientSession() as s:
        r = await s.get(f"{svc.url}/api/v1/reviews/{rid}",
                        headers={**svc.basic("anna"), "Accept-Language": "lv"})
        state = await r.json()
    assert state["status"] == "approved"
    assert state["allowance"]["id"] == active[0].id
    assert state["allowance"]["text_hash"] == text_hash(DRAFT)
    assert "Apstiprināja peter" in state["message"]
    kinds = [e.kind for e in sorted(audit.query(svc.store), key=lambda e: e.seq)
             if e.kind.startswith("review-")]
    assert kinds == ["review-request", "review-approve"]
    assert all(DRAFT not in str(e.details) for e in audit.query(svc.store))


async def test_return_needs_a_comment_and_the_author_reads_it(svc: Service) -> None:
    rid = (await (await _send(svc)).json())["id"]
    async with svc.client() as rita:
        await rita.login("rita", "rita-pw")
        await rita.get(f"/reviews/{rid}")
        r = await rita.post_form(f"/reviews/{rid}/return", {"comment": "  "})
        assert r.headers["Location"] == f"/reviews/{rid}?msg=msg_comment"
        assert _raw(svc, rid)["status"] == "pending"
        await rita.get(f"/reviews/{rid}")
        r = await rita.post_form(f"/reviews/{rid}/return", {"comment": "Bez telefona."})
        assert r.headers["Location"] == "/reviews?msg=msg_returned"
    assert _raw(svc, rid)["sealed"] is None
    async with svc.client() as anna:
        await anna.login("anna", "anna-pw")
        await anna.get("/reviews/mine")
        assert "Bez telefona." in anna.last_page
    assert await asyncio.to_thread(allowances.active, svc.store) == []


async def test_only_the_author_reads_the_state_and_scopes_hold(svc: Service) -> None:
    rid = (await (await _send(svc)).json())["id"]
    async with aiohttp.ClientSession() as s:
        for who in ("peter", "cora"):
            r = await s.get(f"{svc.url}/api/v1/reviews/{rid}", headers=svc.basic(who))
            assert r.status == 404
        # anna is no reviewer; hedda (head) reviews communicators, not staff.
        r = await s.get(f"{svc.url}/reviews", headers=svc.basic("anna"))
        assert r.status == 403
        r = await s.post(f"{svc.url}/api/v1/reviews/{rid}/approve", json={},
                         headers=svc.basic("hedda"))
        assert r.status == 403
        # cora's draft (communicator) goes to hedda; nobody approves their own.
        rid2 = (await (await _send(svc, "cora")).json())["id"]
        r = await s.post(f"{svc.url}/api/v1/reviews/{rid2}/approve", json={},
                         headers=svc.basic("cora"))
        assert r.status == 403
        r = await s.post(f"{svc.url}/api/v1/reviews/{rid2}/approve", json={"comment": ""},
                         headers=svc.basic("hedda"))
        assert r.status == 200, await r.text()
        r = await s.post(f"{svc.url}/api/v1/reviews/{rid2}/return",
                         json={"comment": "late"}, headers=svc.basic("peter"))
        assert r.status == 409
    assert _raw(svc, rid)["status"] == "pending"


async def test_gateway_vouches_for_the_user_only_with_its_token(svc: Service) -> None:
    token = svc.app[GATEWAY_TOKEN].decode()
    body = {"text": DRAFT, "platform": "x"}
    async with aiohttp.ClientSession() as s:
        r = await s.post(f"{svc.url}/api/v1/reviews", json=body,
                         headers={USER_HEADER: "anna"})
        assert r.status == 401
        r = await s.post(f"{svc.url}/api/v1/reviews", json=body,
                         headers={USER_HEADER: "anna", "Authorization": "Bearer wrong"})
        assert r.status == 401
        r = await s.post(f"{svc.url}/api/v1/reviews", json=body,
                         headers={USER_HEADER: "nobody", "Authorization": f"Bearer {token}"})
        assert r.status == 401
        r = await s.post(f"{svc.url}/api/v1/reviews", json=body,
                         headers={USER_HEADER: "anna", "Authorization": f"Bearer {token}"})
        assert r.status == 201
        rid = (await r.json())["id"]
        r = await s.get(f"{svc.url}/api/v1/reviews/{rid}",
                        headers={USER_HEADER: "anna", "Authorization": f"Bearer {token}"})
        assert (await r.json())["status"] == "pending"
    assert (await asyncio.to_thread(rv.get, svc.store, rid)).user == "anna"  # type: ignore[union-attr]


async def test_session_posts_need_the_csrf_token(svc: Service) -> None:
    async with svc.client() as anna:
        await anna.login("anna", "anna-pw")
        r = await anna.session.post(f"{svc.url}/api/v1/reviews",
                                    json={"text": DRAFT, "platform": "x"},
                                    headers={"Origin": svc.url})
        assert r.status == 403
        await anna.get("/reviews/mine")
        r = await anna.session.post(f"{svc.url}/api/v1/reviews",
                                    json={"text": DRAFT, "platform": "x"},
                                    headers={"Origin": svc.url, "X-CSRF-Token": anna.csrf})
        assert r.status == 201
    assert len(await asyncio.to_thread(rv.list_reviews, svc.store)) == 1


@pytest.mark.parametrize(("body", "field"), [
    ({"text": "", "platform": "x"}, "text"),
    ({"text": "hi", "platform": "nowhere"}, "platform"),
    ({"text": "hi", "platform": "x", "note": "n" * 1001}, "note"),
    ({"text": "hi", "platform": "x", "extra": 1}, "extra"),
])
async def test_bad_input_names_the_field_and_stores_nothing(svc: Service, body: dict[str, object],
                                                            field: str) -> None:
    async with aiohttp.ClientSession() as s:
        r = await s.post(f"{svc.url}/api/v1/reviews", json=body, headers=svc.basic("anna"))
        assert r.status == 422
        assert field in (await r.json())["error"]
    assert await asyncio.to_thread(rv.list_reviews, svc.store) == []


async def test_reviewers_get_a_link_by_e_mail_never_the_draft(tmp_path: Path,
                                                              store_url: str) -> None:
    async with smtp_sink() as sink, running_service(
            tmp_path, store_url, smtp_host="127.0.0.1", smtp_port=sink.port) as svc:
        rid = (await (await _send(svc)).json())["id"]
        mails = await _next_mail(sink, 2)
        parsed = [message_from_bytes(m, policy=policy.default) for m in mails]
        assert sorted(str(m["To"]) for m in parsed) == ["peter@example.gov.lv",
                                                         "rita@example.gov.lv"]
        for m in parsed:
            body = m.get_body().get_content()  # type: ignore[union-attr]
            assert f"/reviews/{rid}" in body
            assert "2912" not in body
            assert "Ministre" not in body
            assert NOTE not in body
        async with aiohttp.ClientSession() as s:
            await s.post(f"{svc.url}/api/v1/reviews/{rid}/return", json={"comment": "no"},
                         headers=svc.basic("peter"))
        mails = await _next_mail(sink, 3)
        told = message_from_bytes(mails[2], policy=policy.default)
        assert told["To"] == "anna@example.gov.lv"
        assert "returned" in told.get_body().get_content()  # type: ignore[union-attr]


async def test_a_hostile_draft_is_shown_as_text(svc: Service) -> None:
    hostile = '<img src=x onerror="alert(1)"><script>alert(2)</script> {{ 7*7 }}'
    rid = (await (await _send(svc, text=hostile)).json())["id"]
    async with svc.client() as peter:
        await peter.login("peter", "peter-pw")
        r = await peter.get(f"/reviews/{rid}")
        assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    page = peter.last_page
    assert "<script>alert(2)" not in page
    assert "<img src=x" not in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "{{ 7*7 }}" in page  # not evaluated

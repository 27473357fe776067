"""Approvers: queue with badge, approve (clock starts at approval), reject, revoke, lapse,
policy scopes, two approvers at once, audit page and CSV."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from proxy.service.housekeeping import lapse_now, prune_now
from proxy.store import audit, auditverify, grants, requests
from tests.support.service import Service, running_service


@pytest.fixture
async def svc(tmp_path: Path, store_url: str) -> AsyncIterator[Service]:
    async with running_service(tmp_path, store_url) as s:
        yield s


async def _ask(svc: Service, user: str = "anna", platform: str = "tiktok", minutes: int = 120,
               at: datetime | None = None) -> str:
    made = await asyncio.to_thread(requests.create_request, svc.store, user, platform, "allow",
                                   minutes, f"needed by {user}", now=at)
    return made.id


async def test_queue_badge_and_approval_starting_at_approval(svc: Service) -> None:
    asked_at = datetime.now(UTC) - timedelta(hours=3)
    first = await _ask(svc, at=asked_at)
    await _ask(svc, platform="snapchat")
    async with svc.client() as peter:
        await peter.login("peter", "peter-pw")
        await peter.get("/approvals")
        assert 'id="sargs-badge"' in peter.last_page
        assert '>2</span>' in peter.last_page
        assert "needed by anna" in peter.last_page
        r = await peter.post_form(f"/approvals/{first}/approve", {"duration": "60"})
        assert r.status == 303
        assert r.headers["Location"] == "/approvals?msg=msg_approved"
        await peter.get(r.headers["Location"])
        assert "Access starts now" in peter.last_page
        assert '>1</span>' in peter.last_page
    decided = await asyncio.to_thread(requests.get_request, svc.store, first)
    assert decided is not None
    assert decided.status == "approved"
    grant = await asyncio.to_thread(grants.get_grant, svc.store, decided.grant_id or "")
    assert grant is not None
    assert grant.starts_at == decided.decided_at
    assert grant.expires_at - grant.starts_at == timedelta(hours=1)
    assert grant.starts_at > asked_at + timedelta(hours=2)  # not from the request's time


async def test_approving_longer_than_the_cap_is_refused(svc: Service) -> None:
    rid = await _ask(svc)
    async with aiohttp.ClientSession() as s:
        r = await s.post(f"{svc.url}/api/v1/exceptions/{rid}/approve",
                         json={"duration": 25 * 60}, headers=svc.basic("peter"))
        assert r.status == 422
        assert (await r.json())["details"][0]["field"] == "duration"
        r = await s.post(f"{svc.url}/api/v1/exceptions/{rid}/approve",
                         json={"duration": 24 * 60}, headers=svc.basic("peter"))
        assert r.status == 200
        assert (await r.json())["status"] == "approved"


async def test_reject_with_reason_and_revoke(svc: Service) -> None:
    a, b = await _ask(svc), await _ask(svc, platform="x")
    async with svc.client() as rita:
        await rita.login("rita", "rita-pw")
        await rita.get("/approvals")
        r = await rita.post_form(f"/approvals/{a}/reject", {"reason": ""})
        assert r.headers["Location"].endswith("msg_reason")
        r = await rita.post_form(f"/approvals/{a}/reject", {"reason": "Not work related"})
        assert r.headers["Location"].endswith("msg_rejected")
        r = await rita.post_form(f"/approvals/{b}/approve", {"duration": "60"})
        await rita.get("/grants")
        decided = await asyncio.to_thread(requests.get_request, svc.store, b)
        assert decided is not None
        assert decided.grant_id in rita.last_page
        r = await rita.post_form(f"/grants/{decided.grant_id}/revoke", {"reason": "done"})
        assert r.headers["Location"].endswith("msg_revoked")
        await rita.get("/grants")
        assert decided.grant_id not in rita.last_page
    async with aiohttp.ClientSession() as s:
        mine = await (await s.get(svc.url + "/api/v1/exceptions/mine",
                                  headers=svc.basic("anna"))).json()
    status = {m["id"]: (m["status"], m["reason"]) for m in mine["requests"]}
    assert status == {a: ("rejected", "Not work related"), b: ("revoked", None)}
    kinds = [e.kind for e in await asyncio.to_thread(audit.query, svc.store,
                                                     newest_first=False)]
    assert {"reject", "approve", "revoke"} <= set(kinds)


async def test_when_one_approver_acts_the_other_sees_it_is_done(svc: Service) -> None:
    rid = await _ask(svc)
    async with svc.client() as peter, svc.client() as rita:
        await peter.login("peter", "peter-pw")
        await rita.login("rita", "rita-pw")
        await peter.get("/approvals")
        await rita.get("/approvals")
        assert rid in peter.last_page
        assert rid in rita.last_page
        r = await peter.post_form(f"/approvals/{rid}/approve", {"duration": "60"})
        assert r.headers["Location"].endswith("msg_approved")
        r = await rita.post_form(f"/approvals/{rid}/reject", {"reason": "no"})
        assert r.headers["Location"].endswith("msg_done")
        # What rita's page polls: the request is gone from the queue, and says who decided.
        queue = await (await rita.session.get(svc.url + "/api/v1/exceptions?status=pending")
                       ).json()
        assert queue["requests"] == []
        one = await (await rita.session.get(f"{svc.url}/api/v1/exceptions/{rid}")).json()
        assert (one["status"], one["decided_by"]) == ("approved", "peter")


async def test_approval_policy_scopes(svc: Service) -> None:
    """Example policy: approvers decide staff requests; communicators' go to the head."""
    cora = await _ask(svc, user="cora", platform="tiktok")
    async with aiohttp.ClientSession() as s:
        listed = await (await s.get(svc.url + "/api/v1/exceptions",
                                    headers=svc.basic("peter"))).json()
        assert cora not in [r["id"] for r in listed["requests"]]
        r = await s.post(f"{svc.url}/api/v1/exceptions/{cora}/approve", json={},
                         headers=svc.basic("peter"))
        assert r.status == 403
        r = await s.post(f"{svc.url}/api/v1/exceptions/{cora}/approve", json={},
                         headers=svc.basic("hedda"))  # the head: named by role in the policy
        assert r.status == 200


async def test_pending_requests_lapse(svc: Service) -> None:
    old = await _ask(svc, at=datetime.now(UTC) - timedelta(hours=73))
    fresh = await _ask(svc)
    lapsed = await lapse_now(svc.app)
    assert [r.id for r in lapsed] == [old]
    found = await asyncio.to_thread(requests.get_request, svc.store, fresh)
    assert found is not None
    assert found.status == "pending"
    async with aiohttp.ClientSession() as s:
        mine = await (await s.get(svc.url + "/api/v1/exceptions/mine",
                                  headers=svc.basic("anna"))).json()
    assert {m["id"]: m["status"] for m in mine["requests"]}[old] == "lapsed"


async def test_audit_page_filters_and_csv(svc: Service) -> None:
    rid = await _ask(svc)
    await asyncio.to_thread(requests.reject, svc.store, rid, "peter", "=HYPERLINK(evil)")
    async with svc.client() as peter:
        await peter.login("peter", "peter-pw")
        await peter.get("/audit?kind=reject")
        assert "=HYPERLINK(evil)" in peter.last_page  # escaped text, shown as is
        assert "peter rejected anna&#39;s request for TikTok: =HYPERLINK(evil)" in peter.last_page
        assert 'data-kind="request"' not in peter.last_page
        await peter.get("/audit?kind=request&user=anna")
        assert 'data-kind="request"' in peter.last_page
        assert "anna asked for read and post on TikTok for 2 hours." in peter.last_page
        r = await peter.get("/audit.csv?kind=reject")
        assert r.headers["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(await r.text())))
    assert [row["kind"] for row in rows] == ["reject"]
    assert rows[0]["request_id"] == rid
    assert rows[0]["actor"] == "peter"


async def test_audit_retention_prunes_old_entries_and_keeps_the_chain(
        tmp_path: Path, store_url: str) -> None:
    async with running_service(tmp_path, store_url, audit_retention_days=30) as svc:
        await _ask(svc)
        before = await asyncio.to_thread(audit.count, svc.store)
        assert before >= 2
        # Forty days later, everything written today is past retention.
        result = await prune_now(svc.app, now=datetime.now(UTC) + timedelta(days=40))
        assert result is not None
        assert result.pruned == before
        left = await asyncio.to_thread(audit.query, svc.store, limit=1000)
        assert [e.kind for e in left] == ["checkpoint"]
        await _ask(svc, user="bruno")
        report = await asyncio.to_thread(auditverify.verify, svc.store)
        assert report.problems == []


async def test_no_retention_keeps_everything(svc: Service) -> None:
    await _ask(svc)
    assert await prune_now(svc.app, now=datetime.now(UTC) + timedelta(days=4000)) is None

"""Login limits and records behind a load balancer: the real client address, believed only
from trusted proxies; every failed login (form or Basic) in the audit log, never the
password."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from proxy.service.clients import MAX_FAILURES, MAX_FAILURES_PER_ADDRESS
from proxy.store import audit
from tests.support.service import Service, running_service


async def _fail_form(svc: Service, name: str, forwarded: str | None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    async with svc.client(**headers) as c:
        await c.get("/login")
        r = await c.post_form("/login", {"name": name, "password": "guess-1234"})
        return r.status


async def _failures(svc: Service) -> list[audit.AuditEntry]:
    return await asyncio.to_thread(audit.query, svc.store, kind="login-failed", limit=500)


async def test_a_guesser_behind_the_balancer_does_not_lock_out_the_rest(
        tmp_path: Path, store_url: str) -> None:
    async with running_service(tmp_path, store_url, trusted_proxies=["127.0.0.1/32"]) as svc:
        # One machine sprays names until its own address is limited.
        statuses = [await _fail_form(svc, f"user{i}", "10.0.0.66")
                    for i in range(MAX_FAILURES_PER_ADDRESS + 1)]
        assert statuses[:MAX_FAILURES_PER_ADDRESS] == [401] * MAX_FAILURES_PER_ADDRESS
        assert statuses[-1] == 429
        # A colleague behind the same balancer logs in as usual.
        async with svc.client(**{"X-Forwarded-For": "10.0.0.7"}) as anna:
            await anna.login("anna", "anna-pw")
        recorded = await _failures(svc)
        assert {e.details["address"] for e in recorded} == {"10.0.0.66"}
        assert max(e.details["count"] for e in recorded) == 1  # one try per name
        assert all(e.details["via"] == "service" for e in recorded)


async def test_spoofed_forwarding_headers_are_ignored_without_trusted_proxies(
        tmp_path: Path, store_url: str) -> None:
    async with running_service(tmp_path, store_url) as svc:
        statuses = [await _fail_form(svc, "anna", f"10.1.{i}.1")
                    for i in range(MAX_FAILURES + 1)]
        assert statuses[-1] == 429  # a new made-up address each time does not help
        recorded = await _failures(svc)
        assert {e.details["address"] for e in recorded} == {"127.0.0.1"}
        assert [e.details["count"] for e in reversed(recorded)] == list(
            range(1, MAX_FAILURES + 1))


async def test_a_client_cannot_choose_its_address_by_prepending(tmp_path: Path,
                                                                store_url: str) -> None:
    async with running_service(tmp_path, store_url, trusted_proxies=["127.0.0.1"]) as svc:
        for i in range(MAX_FAILURES):
            assert await _fail_form(svc, "anna", f"10.9.9.{i}, 10.0.0.66") == 401
        assert await _fail_form(svc, "anna", "10.9.9.99, 10.0.0.66") == 429
        forwarded = 'for=10.9.9.1, for="10.0.0.66:4711"'
        async with svc.client(Forwarded=forwarded) as c:
            await c.get("/login")
            r = await c.post_form("/login", {"name": "anna", "password": "x"})
            assert r.status == 429


async def test_failed_basic_logins_are_limited_and_recorded(tmp_path: Path,
                                                             store_url: str) -> None:
    async with running_service(tmp_path, store_url) as svc, svc.client() as c:
        statuses = []
        for _ in range(MAX_FAILURES + 1):
            r = await c.session.get(svc.url + "/api/v1/exceptions?status=approved",
                                    headers=svc.basic("peter", "wrong-horse"))
            statuses.append(r.status)
        assert statuses == [401] * MAX_FAILURES + [429]
        recorded = await _failures(svc)
        assert len(recorded) == MAX_FAILURES
        assert {(e.user, e.details["via"], e.details["address"]) for e in recorded} == {
            ("peter", "api", "127.0.0.1")}
        text = json.dumps([dict(e.details) for e in recorded])
        assert "wrong-horse" not in text

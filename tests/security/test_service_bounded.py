"""Bounded work per user: a burst of access requests neither piles up pending requests nor
floods approvers' mail."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from proxy.store import requests
from tests.service.test_access_api import _next_mail, smtp_sink
from tests.support.service import running_service

PLATFORMS = ["tiktok", "facebook", "instagram", "x", "youtube", "reddit"]
APPROVERS = 2  # peter and rita may decide anna's requests


async def test_a_burst_of_61_requests_is_bounded(tmp_path: Path, store_url: str) -> None:
    async with smtp_sink() as sink, running_service(
            tmp_path, store_url, smtp_host="127.0.0.1", smtp_port=sink.port,
            max_pending_requests=3) as svc, aiohttp.ClientSession() as s:

        async def ask(i: int) -> int:
            body = {"platform": PLATFORMS[i % len(PLATFORMS)], "access": "read",
                    "duration": 60 + i, "justification": f"burst {i}"}
            r = await s.post(svc.url + "/api/v1/exceptions", json=body,
                             headers=svc.basic("anna"))
            await r.read()
            return r.status

        statuses = await asyncio.gather(*(ask(i) for i in range(61)))
        pending = await asyncio.to_thread(requests.list_requests, svc.store, user="anna",
                                          status="pending")
        assert len(pending) == 3
        assert len({r.platform for r in pending}) == 3
        assert statuses.count(201) >= 3
        assert set(statuses) <= {201, 429}
        # A repeat for a pending platform updates it (the same request, the newer words).
        platform = pending[0].platform
        r = await s.post(svc.url + "/api/v1/exceptions", headers=svc.basic("anna"),
                         json={"platform": platform, "access": "allow", "duration": 30,
                               "justification": "the latest reason"})
        assert r.status == 201
        assert (await r.json())["id"] == pending[0].id
        again = await asyncio.to_thread(requests.get_request, svc.store, pending[0].id)
        assert again is not None
        assert (again.access, again.justification) == ("allow", "the latest reason")
        # One mail per approver per request, however often it was repeated.
        await _next_mail(sink, 3 * APPROVERS)
        await asyncio.sleep(0.5)  # time for any extra mail to arrive
        assert len(sink.messages) == 3 * APPROVERS
        # Over the cap, the answer says why.
        r = await s.post(svc.url + "/api/v1/exceptions", headers=svc.basic("anna"),
                         json={"platform": "threads", "access": "read", "duration": 60,
                               "justification": "one more"})
        assert r.status == 429
        assert "3 pending requests" in (await r.json())["error"]

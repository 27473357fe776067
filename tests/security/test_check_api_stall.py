"""Issue 12: one request must not stall everyone. Long pathological drafts (digits and
spaces, the engine's slowest input) are checked in worker processes under a CPU budget;
the service keeps answering meanwhile. Attacked on a real service on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp

from proxy.service.app import create_app
from proxy.settings import ROOT, Settings
from tests.support.browser import serve

EXAMPLE = ROOT / "policies" / "institutions" / "example"
PATHOLOGICAL = json.dumps({"text": ("2 " * 25_000)[:50_000]}).encode()  # the longest draft
OVER_BUDGET = json.dumps({"text": ("idiot " * 9_000)[:50_000]}).encode()
"""The longest draft of one insult repeated: ≈ 30 ms of CPU, six times the tests' 5 ms
budget (the engine reads "2 2 2 …" in ≈ 6 ms now, too close to it)."""
JSON = {"Content-Type": "application/json"}
CLIENTS = 4
LOAD_SECONDS = 1.5


async def test_health_answers_while_four_clients_send_pathological_drafts(
    tmp_path: Path,
) -> None:
    """On the event loop, each of these checks froze the service for most of a second:
    /healthz was answered only between checks. Now it keeps answering throughout, and so
    are the checks of ordinary posts."""
    app = create_app(Settings(policy=EXAMPLE, var_dir=tmp_path))
    async with serve(app) as base, aiohttp.ClientSession() as session:
        async with session.post(f"{base}/api/v1/check", json={"text": "warm-up"}) as r:
            assert r.status == 200  # workers started, engine built
        stop_at = time.monotonic() + LOAD_SECONDS
        statuses: list[int] = []

        async def client() -> None:
            while True:
                async with session.post(f"{base}/api/v1/check", data=PATHOLOGICAL,
                                        headers=JSON) as r:
                    statuses.append(r.status)
                    await r.read()
                if time.monotonic() >= stop_at:
                    return

        load = [asyncio.create_task(client()) for _ in range(CLIENTS)]
        await asyncio.sleep(0.1)  # the drafts are in
        answered = 0
        while not all(t.done() for t in load):
            async with session.get(f"{base}/healthz") as r:
                assert r.status == 200
            # A post as people write it is not queued behind the long drafts either.
            async with session.post(f"{base}/api/v1/check",
                                    json={"text": "Call me at +371 26 555 123"}) as r:
                assert r.status == 200
                assert (await r.json())["verdict"] == "block"
            answered += 1
        await asyncio.gather(*load)
    # Checks over the budget are answered too (503); none is left hanging.
    assert statuses
    assert set(statuses) <= {200, 503}
    # A few per check at most when checks ran on the loop; hundreds now.
    assert answered >= 10 * len(statuses), (answered, len(statuses))


async def test_a_check_over_its_budget_is_answered_503_and_the_next_one_works(
    tmp_path: Path,
) -> None:
    app = create_app(Settings(policy=EXAMPLE, var_dir=tmp_path, check_seconds=0.005))
    async with serve(app) as base, aiohttp.ClientSession() as session:
        async with session.post(f"{base}/api/v1/check", data=OVER_BUDGET, headers=JSON) as r:
            assert r.status == 503
            assert "longer than its budget" in (await r.json())["error"]
            assert r.headers["Retry-After"] == "1"
        async with session.post(f"{base}/api/v1/check",
                                json={"text": "Call me at +371 26 555 123"}) as r:
            assert r.status == 200
            assert (await r.json())["verdict"] == "block"


async def test_a_body_over_the_cap_is_refused_unread(tmp_path: Path) -> None:
    app = create_app(Settings(policy=EXAMPLE, var_dir=tmp_path))
    async with serve(app) as base, aiohttp.ClientSession() as session:
        huge = json.dumps({"text": "2 " * 40_000}).encode()  # over 64 KiB
        async with session.post(f"{base}/api/v1/check", data=huge, headers=JSON) as r:
            assert r.status == 413
        async with session.post(f"{base}/api/v1/check", json={"text": "hello"}) as r:
            assert r.status == 200


async def test_a_flood_past_the_queue_is_refused_at_once() -> None:
    """More checks than the pool may queue: the surplus is answered 503 at once instead
    of piling up work (and memory) behind the busy workers."""
    from proxy.checkpool import QUEUE_PER_WORKER, CheckPool, CheckUnavailable
    from proxy.compliance.model import CheckRequest
    from proxy.runtime import PolicyState

    state = PolicyState(EXAMPLE)
    workers = 1
    pool = CheckPool(lambda: state.current, workers=workers)
    try:
        draft = CheckRequest(text="Call me at +371 26 555 123")
        results: list[Any] = await asyncio.gather(
            *(pool.check(draft) for _ in range(workers * QUEUE_PER_WORKER["short"] + 3)),
            return_exceptions=True)
    finally:
        await pool.close()
    refused = [r for r in results if isinstance(r, CheckUnavailable)]
    assert len(refused) == 3
    checked = [r for r in results if r not in refused]
    assert [r.verdict for r in checked] == ["block"] * workers * QUEUE_PER_WORKER["short"], results


# --- the same at the gateway: its reserved path and posts check in the pool ----------------

GATEWAY_USERS = {"carl": ("carl-pw", ["communicator"])}
RESERVED_CHECK = "https://x.com/__sargs/api/v1/check"


def _login() -> dict[str, str]:
    import base64

    return {"Proxy-Authorization": "Basic " + base64.b64encode(b"carl:carl-pw").decode()}


async def test_gateway_pages_answer_while_four_clients_send_pathological_drafts(
    tmp_path: Path,
) -> None:
    """The gateway's reserved check API used to run the engine on the proxy's own event
    loop: each of these drafts froze every page of every user behind it. Now pages keep
    coming through the gateway while they are checked, and none is left hanging."""
    from tests.support.gateway import fake_site, running_gateway

    async with (
        fake_site() as site,
        running_gateway(tmp_path, site.port, users=GATEWAY_USERS) as gw,
        aiohttp.ClientSession() as session,
    ):
        via = {"proxy": gw.proxy_url, "proxy_headers": _login(), "ssl": gw.ssl_context()}
        async with session.post(RESERVED_CHECK, json={"text": "warm-up"}, **via) as r:
            assert r.status == 200  # workers started, engine built
        stop_at = time.monotonic() + LOAD_SECONDS
        statuses: list[int] = []

        async def client() -> None:
            while True:
                async with session.post(RESERVED_CHECK, data=PATHOLOGICAL, headers=JSON,
                                        **via) as r:
                    statuses.append(r.status)
                    await r.read()
                if time.monotonic() >= stop_at:
                    return

        load = [asyncio.create_task(client()) for _ in range(CLIENTS)]
        await asyncio.sleep(0.1)
        pages = 0
        while not all(t.done() for t in load):
            async with session.get("https://x.com/home", headers={"Accept": "text/html"},
                                   **via) as r:
                assert r.status == 200
                await r.read()
            pages += 1
        await asyncio.gather(*load)
    assert statuses
    assert set(statuses) <= {200, 503}
    assert pages >= 10 * len(statuses), (pages, len(statuses))


async def test_gateway_check_over_its_budget_is_answered_503_and_the_next_one_works(
    tmp_path: Path,
) -> None:
    from tests.support.gateway import fake_site, running_gateway

    async with (
        fake_site() as site,
        running_gateway(tmp_path, site.port, users=GATEWAY_USERS,
                        settings={"check_seconds": 0.005}) as gw,
        aiohttp.ClientSession() as session,
    ):
        via = {"proxy": gw.proxy_url, "proxy_headers": _login(), "ssl": gw.ssl_context()}
        async with session.post(RESERVED_CHECK, data=OVER_BUDGET, headers=JSON, **via) as r:
            assert r.status == 503
            assert "longer than its budget" in (await r.json())["error"]
            assert r.headers["Retry-After"] == "1"
        async with session.post(RESERVED_CHECK, json={"text": "Call me at +371 26 555 123"},
                                **via) as r:
            assert r.status == 200
            assert (await r.json())["verdict"] == "block"
    assert site.seen == []  # the reserved path never reaches the platform

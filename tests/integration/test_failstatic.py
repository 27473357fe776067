"""Fail-static: a gateway that loses the service keeps enforcing the last bundle (also
after a restart, from its disk cache), keeps its events in the on-disk spool, and delivers
them exactly once when the service is back."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from proxy.service.app import create_app
from proxy.settings import Settings
from proxy.store import audit, open_store
from proxy.store import requests as rq
from tests.support.gateway import fake_site
from tests.support.nodes import Node, start_node, stop_node

pytestmark = pytest.mark.slow

TOKEN = "fail-static-token"
PROXY_AUTH = "Basic " + base64.b64encode(b"ivo:ivo-password-1").decode()

AUDIT_KEY = "5a" * 32  # the audit key of the stores these tests open themselves


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def service(database: str, var_dir: Path, port: int) -> AsyncIterator[None]:
    settings = Settings(var_dir=var_dir, database_url=database, gateway_token=SecretStr(TOKEN))
    runner = web.AppRunner(create_app(settings), access_log=None, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
    try:
        yield
    finally:
        await runner.cleanup()


async def status(session: aiohttp.ClientSession, gw: Node, host: str,
                 accept: str = "application/json") -> int:
    ctx = ssl.create_default_context(cafile=str(gw.ca_cert))
    async with session.get(f"https://{host}/", proxy=gw.url, ssl=ctx,
                           proxy_headers={"Proxy-Authorization": PROXY_AUTH},
                           headers={"Accept": accept}) as resp:
        await resp.read()
        return resp.status


async def until(session: aiohttp.ClientSession, gw: Node, host: str, expected: int,
                within: float) -> None:
    loop = asyncio.get_running_loop()
    deadline, seen = loop.time() + within, None
    while loop.time() < deadline:
        seen = await status(session, gw, host)
        if seen == expected:
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"{host} answered {seen}, not {expected}, within {within} s")


def spooled(gw_dir: Path) -> int:
    return sum(len(p.read_text().splitlines())
               for p in (gw_dir / "gateway" / "spool").glob("*.jsonl"))


def grant(database: str, platform: str, minutes: int, ago: timedelta = timedelta()) -> datetime:
    store = open_store(database, migrate=False, audit_key=AUDIT_KEY)
    try:
        made = rq.create_request(store, "ivo", platform, "allow", minutes, "research")
        return rq.approve(store, made.id, "olga", now=datetime.now(UTC) - ago)[1].expires_at
    finally:
        store.close()


def blocks_of(database: str, gateway: str) -> list[str]:
    store = open_store(database, migrate=False, audit_key=AUDIT_KEY)
    try:
        return [e.details["event_id"] for e in audit.query(store, kind="block")
                if e.actor == gateway]
    finally:
        store.close()


async def test_gateway_keeps_enforcing_and_spooling_without_the_service(
    store_url: str, tmp_path: Path
) -> None:
    open_store(store_url).close()  # migrated
    port = _free_port()
    service_url = f"http://127.0.0.1:{port}"
    gw_dir = tmp_path / "gw"
    users = json.dumps({"ivo": ["ivo-password-1", ["intern"]]})

    async with fake_site() as site, aiohttp.ClientSession() as session:
        args = ("--service-url", service_url, "--token", TOKEN, "--site-port", str(site.port),
                "--users", users, "--id", "gw-static")
        gw = await start_node("gateway", gw_dir, *args)
        try:
            async with service(store_url, tmp_path / "svc", port):
                await asyncio.to_thread(grant, store_url, "facebook", 60)
                # Instagram: a grant that runs out 8 s from now.
                expires_at = await asyncio.to_thread(
                    grant, store_url, "instagram", 1, timedelta(seconds=52))
                await until(session, gw, "facebook.com", 200, 2)
                await until(session, gw, "instagram.com", 200, 2)
            # Refusals from before the first bundle arrived were delivered at once.
            baseline = await asyncio.to_thread(blocks_of, store_url, "gw-static")
            # The service is gone. Enforcement goes on; refusals are spooled.
            assert await status(session, gw, "facebook.com") == 200
            assert await status(session, gw, "tiktok.com") == 403
            for _ in range(3):
                assert await status(session, gw, "tiktok.com", "text/html") == 403
            await stop_node(gw)  # a clean stop flushes the spool to disk
            first_run = spooled(gw_dir)
            assert first_run >= 4  # 3 page refusals + 1 API refusal (+ grant uses)

            # Restarted without the service: the cached bundle is enforced at once.
            gw = await start_node("gateway", gw_dir, *args)
            assert await status(session, gw, "facebook.com") == 200
            assert await status(session, gw, "tiktok.com", "text/html") == 403
            assert await status(session, gw, "youtube.com") == 200  # intern: read
            # The instagram grant stops at its expiry, no service needed.
            remaining = (expires_at - datetime.now(UTC)).total_seconds()
            await until(session, gw, "instagram.com", 403, max(remaining, 0) + 2)
            assert datetime.now(UTC) >= expires_at
            assert blocks_of(store_url, "gw-static") == baseline  # nothing could be delivered

            # The service is back: everything spooled arrives, once.
            async with service(store_url, tmp_path / "svc", port):
                delivered: list[str] = []
                for _ in range(100):  # bounded: delivery retries back off to at most 5 s
                    await asyncio.sleep(0.1)
                    if spooled(gw_dir) == 0:
                        delivered = await asyncio.to_thread(blocks_of, store_url, "gw-static")
                        if len(delivered) - len(baseline) >= 6:
                            break
                assert spooled(gw_dir) == 0
                # 3 + 1 before the restart, 1 tiktok page and 1 instagram refusal after.
                assert len(delivered) - len(baseline) >= 6
                assert len(set(delivered)) == len(delivered)  # none twice
                await asyncio.sleep(0.5)  # nothing arrives a second time later
                assert sorted(await asyncio.to_thread(blocks_of, store_url, "gw-static")) == \
                    sorted(delivered)
                uses = await asyncio.to_thread(_grant_uses, store_url)
                assert uses >= 1
        finally:
            await stop_node(gw)


def _grant_uses(database: str) -> int:
    store = open_store(database, migrate=False, audit_key=AUDIT_KEY)
    try:
        return len(audit.query(store, kind="grant-use"))
    finally:
        store.close()

"""Issue 12: the service trusts no address. A forged event relayed to the service from its
own host (what an open proxy on the same machine would do) is refused and writes nothing;
``sargs run`` with defaults still connects its gateway to its service with the token it
generated."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from proxy.service import keys
from proxy.service.app import create_app
from proxy.settings import ROOT, Settings
from proxy.store import audit
from proxy.store.db import Store, open_store

FORGED = {"gateway": "gw", "events": [{
    "id": "forged-1", "kind": "grant-use", "at": "2020-01-01T00:00:00+00:00",
    "user": "director", "platform": "x", "details": {"note": "back-dated"}}]}


@pytest.fixture
def store(store_url: str) -> Any:
    s = open_store(store_url)
    yield s
    s.close()


async def _service(aiohttp_client: Any, store: Store, var: Path) -> TestClient:
    app = create_app(Settings(var_dir=var, database_url=str(store.url)))  # no token set
    app[keys.STORE] = store
    client: TestClient = await aiohttp_client(app)  # a real server on 127.0.0.1
    return client


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer wrong-token-of-sufficient-length-000000"},
    {"Authorization": "Basic Z3c6Z3c="},
    {"X-Forwarded-For": "127.0.0.1"},
], ids=["none", "empty", "wrong", "basic", "forwarded-for"])
async def test_loopback_without_the_token_is_refused_and_nothing_is_recorded(
    store: Store, aiohttp_client: Any, tmp_path: Path, headers: dict[str, str]
) -> None:
    # ``store`` first: fixtures end in reverse order, so the service stops before the store.
    client = await _service(aiohttp_client, store, tmp_path / "var")
    before = audit.count(store)
    refused = await client.post("/api/v1/events", json=FORGED, headers=headers)
    assert refused.status == 401
    for path in ("/api/v1/bundle", "/api/v1/bundle/events?after=0&wait=0"):
        assert (await client.get(path, headers=headers)).status == 401
    assert audit.count(store) == before
    assert audit.query(store, user="director") == []


async def test_the_generated_token_is_made_once_private_and_accepted(
    store: Store, aiohttp_client: Any, tmp_path: Path
) -> None:
    client = await _service(aiohttp_client, store, tmp_path / "var")
    path = tmp_path / "var" / "gateway.token"
    assert path.stat().st_mode & 0o777 == 0o600
    token = path.read_text().strip()
    assert len(token) >= 32
    auth = {"Authorization": f"Bearer {token}"}
    accepted = await client.post("/api/v1/events", json=FORGED, headers=auth)
    assert accepted.status == 200, await accepted.text()
    assert [e.user for e in audit.query(store, kind="grant-use")] == ["director"]
    # A second service on the same var dir (another process, a restart) uses the same one.
    again = await _service(aiohttp_client, store, tmp_path / "var")
    assert (await again.get("/api/v1/bundle", headers=auth)).status == 200
    assert path.read_text().strip() == token


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_sargs_run_defaults_connect_gateway_and_service_with_the_generated_token(
    tmp_path: Path,
) -> None:
    """No SARGS_GATEWAY_TOKEN: a refused page at the gateway still becomes an audit entry
    in the service (the gateway's events reach it with the token from VAR_DIR)."""
    gateway, service = _free_port(), _free_port()
    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SARGS_")}
    env.update(SARGS_VAR_DIR=str(var), SARGS_GATEWAY_METRICS_PORT="0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "proxy.cli.main", "run", "--demo-users",
         "--listen", f"127.0.0.1:{gateway}", "--service", f"127.0.0.1:{service}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.stdout is not None
    try:
        seen = []
        for _ in range(400):
            line = proc.stdout.readline()
            seen.append(line)
            if not line or "Stop with Ctrl-C" in line:
                break
        match = re.search(r"staff-demo / (\S+)", "".join(seen))
        assert match, "".join(seen)
        login = base64.b64encode(f"staff-demo:{match.group(1)}".encode()).decode()

        async def blocked_page() -> int:
            async with aiohttp.ClientSession() as session, session.get(
                "http://vk.com/", proxy=f"http://127.0.0.1:{gateway}",
                headers={"Proxy-Authorization": f"Basic {login}"},
            ) as r:
                return r.status

        assert asyncio.run(blocked_page()) == 403
        store = open_store(f"sqlite:///{var / 'sargs.db'}")
        try:
            deadline = time.monotonic() + 20
            while not audit.query(store, kind="block", platform="vk"):
                assert time.monotonic() < deadline, "the gateway's event never reached the service"
                time.sleep(0.2)
        finally:
            store.close()
        assert (var / "gateway.token").stat().st_mode & 0o777 == 0o600
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()

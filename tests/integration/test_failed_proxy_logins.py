"""Wrong proxy passwords at a gateway, followed to what an auditor and an on-call person
see: each failure is a ``login-failed`` entry in the audit log (``sargs audit list``: the
name tried, the client address, ``via: gateway``, the count; never the password), and
counts in ``sargs_gateway_login_failures_total`` on the gateway's own /metrics.

Real parts only: a listening mitmproxy with the Sargs add-ons as ``sargs run`` builds them
(the event spool delivering to the service), the real service with a SQLite store, the
CLI as a child process.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from proxy.gateway.addons import make_addons
from proxy.runtime import PolicyState
from proxy.settings import ROOT, Settings
from tests.integration.test_refused_post import _eventually, _free_port, _sample
from tests.support.gateway import Clock, fake_site, running_gateway
from tests.support.service import running_service

TOKEN = "gateway-token-for-this-test"
USERS = {"carl": ("carl-pw", ["communicator"])}
GUESSES = ["Winter2026!", "hunter2-guess", "carl-pw-wrong"]


def _audit_list(database: str) -> tuple[list[dict[str, Any]], str]:
    """``sargs audit list --kind login-failed --json``: the entries and the raw output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SARGS_")}
    env["SARGS_DATABASE_URL"] = database
    done = subprocess.run(
        [sys.executable, "-m", "proxy.cli.main", "audit", "list", "--kind", "login-failed",
         "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines() if line], done.stdout


async def test_wrong_proxy_passwords_are_audited_and_counted_never_stored(
    tmp_path: Path,
) -> None:
    database = f"sqlite:///{tmp_path / 'sargs.db'}"
    metrics_port = _free_port()
    async with running_service(tmp_path / "service", database,
                               gateway_token=SecretStr(TOKEN)) as svc:
        settings = Settings(var_dir=tmp_path / "gateway", service_url=svc.url,
                            gateway_token=SecretStr(TOKEN), gateway_id="gw-logins",
                            gateway_metrics_port=metrics_port)

        def make(_: Settings, state: PolicyState, **kw: Any) -> list[object]:
            return make_addons(settings, state, sync=True, **kw)

        async with (
            fake_site() as site,
            running_gateway(tmp_path, site.port, users=USERS, make=make,
                            clock=Clock(datetime.now(UTC))) as gw,
            aiohttp.ClientSession() as session,
        ):
            for guess in GUESSES:
                login = base64.b64encode(f"carl:{guess}".encode()).decode()
                with pytest.raises(aiohttp.ClientHttpProxyError) as refused:
                    await session.get("https://www.linkedin.com/feed/", proxy=gw.proxy_url,
                                      ssl=gw.ssl_context(),
                                      proxy_headers={"Proxy-Authorization": f"Basic {login}"})
                assert refused.value.status == 407  # at CONNECT: nothing decrypted or relayed
            assert site.seen == []

            async with session.get(f"http://127.0.0.1:{metrics_port}/metrics") as resp:
                text = await resp.text()
            assert (_sample(text, "sargs_gateway_login_failures_total", outcome="wrong")
                    or 0) >= len(GUESSES)

            entries: list[dict[str, Any]] = []
            raw = ""

            def delivered() -> bool:
                nonlocal raw
                entries[:], raw = _audit_list(database)
                return len(entries) >= len(GUESSES)

            await _eventually(delivered, within=30)
    assert len(entries) == len(GUESSES)
    assert sorted(e["details"]["count"] for e in entries) == [1, 2, 3]
    for entry in entries:
        assert (entry["kind"], entry["user"], entry["actor"]) == (
            "login-failed", "carl", "gw-logins")
        assert entry["details"]["via"] == "gateway"
        assert entry["details"]["address"] == "127.0.0.1"
    for guess in GUESSES:
        assert guess not in raw  # never the password

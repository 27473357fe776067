"""A post refused for its content, followed from the browser's request to everything an
auditor and an on-call person look at: the audit log (``sargs audit list``, run against
the same store), the gateway's findings metric (scraped from its port) and the dashboard.

Real parts only: a listening mitmproxy with the Sargs add-ons as ``sargs run`` builds them,
the real service app with a real SQLite store, the stand-in platform site, the CLI as a
child process. The draft text must appear nowhere.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from proxy.gateway.addons import make_addons
from proxy.runtime import PolicyState
from proxy.settings import ROOT, Settings
from tests.support.gateway import Clock, fake_site, running_gateway
from tests.support.service import running_service

PHONE = "Zvaniet man uz +371 29 123 456 rīt"  # personal data: refused
TOKEN = "gateway-token-for-this-test"
USERS = {"carl": ("carl-pw", ["communicator"])}
PROXY_LOGIN = {"Proxy-Authorization": "Basic " + base64.b64encode(b"carl:carl-pw").decode()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


async def _eventually(check: Callable[[], bool], within: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


def _audit_list(database: str) -> list[dict[str, Any]]:
    """``sargs audit list --kind block --json``, as an auditor runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SARGS_")}
    env["SARGS_DATABASE_URL"] = database
    done = subprocess.run(
        [sys.executable, "-m", "proxy.cli.main", "audit", "list", "--kind", "block", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines() if line]


async def test_a_refused_post_reaches_the_audit_log_the_metric_and_the_dashboard(
    tmp_path: Path,
) -> None:
    database = f"sqlite:///{tmp_path / 'sargs.db'}"
    metrics_port = _free_port()
    async with running_service(tmp_path / "service", database,
                               gateway_token=SecretStr(TOKEN)) as svc:
        settings = Settings(var_dir=tmp_path / "gateway", service_url=svc.url,
                            gateway_token=SecretStr(TOKEN), gateway_id="gw-e2e",
                            gateway_metrics_port=metrics_port)

        def make(_: Settings, state: PolicyState, **kw: Any) -> list[object]:
            return make_addons(settings, state, sync=True, **kw)

        async with (
            fake_site() as site,
            running_gateway(tmp_path, site.port, users=USERS, make=make,
                            clock=Clock(datetime.now(UTC))) as gw,
            aiohttp.ClientSession() as session,
        ):
            body = json.dumps({"variables": {"tweet_text": PHONE}}).encode()
            for _ in range(5):
                async with session.post(
                    "https://x.com/i/api/graphql/abc/CreateTweet", data=body,
                    headers={"Content-Type": "application/json", "Accept": "application/json",
                             "Sec-Fetch-Dest": "empty"},
                    proxy=gw.proxy_url, ssl=gw.ssl_context(), proxy_headers=PROXY_LOGIN,
                ) as resp:
                    assert resp.status == 403
                    payload = await resp.json(content_type=None)
                    assert payload["error"] == "refused"
            assert site.seen == []  # the platform never saw any of them

            # The metric, scraped from the gateway's own port.
            async with session.get(f"http://127.0.0.1:{metrics_port}/metrics") as resp:
                text = await resp.text()
            assert _sample(text, "sargs_gateway_findings_total", rule="personal-data",
                           severity="block") == 5
            assert _sample(text, "sargs_gateway_decisions_total", platform="x",
                           outcome="refused") == 5

            # The audit log, through the CLI, once the gateway delivered its spool.
            entries: list[dict[str, Any]] = []

            def delivered() -> bool:
                entries[:] = _audit_list(database)
                return len(entries) >= 5

            await _eventually(delivered, within=30)
        assert len(entries) == 5
        for entry in entries:
            assert (entry["kind"], entry["user"], entry["platform"]) == ("block", "carl", "x")
            details = entry["details"]
            assert details["gateway"] == "gw-e2e"
            assert details["allowed"] is False
            assert {f["rule"] for f in details["findings"]} >= {"personal-data"}
            assert "block" in {f["severity"] for f in details["findings"]}
            assert "123 456" not in json.dumps(entry)  # never the draft

        # The dashboard: a row (and a line) for blocks under the finding's rule.
        async with svc.client() as peter:
            await peter.login("peter", "peter-pw")
            resp = await peter.get("/dashboard")
            assert resp.status == 200
            page = peter.last_page
        assert "<tr><td>Blocked · Personal data</td><td class=\"num\">5</td></tr>" in page
        assert PHONE not in page

"""Gateway metrics: decisions by action and platform, findings by rule, latency, gauges."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from mitmproxy import http
from mitmproxy.options import Options
from mitmproxy.test import taddons, tflow
from mitmproxy.tools.dump import DumpMaster
from prometheus_client.parser import text_string_to_metric_families

from proxy.gateway.flowinfo import Hit, info
from proxy.gateway.metrics import GatewayMetrics
from proxy.policy.decide import Decision, Rule
from proxy.policy.model import Action


def sample(metrics_text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(metrics_text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


def decision(platform: str, action: Action, allowed: bool) -> Decision:
    return Decision(allowed, action, platform, Rule.role, "test")


def decided(flow: http.HTTPFlow, d: Decision, *hits: Hit, refused: str | None = None
            ) -> http.HTTPFlow:
    """``flow`` as the access add-on (and the post check) leave it."""
    record = info(flow)
    record.decision, record.platform = d, d.platform
    record.findings = list(hits)
    record.refused = refused
    return flow


async def test_counts_each_decided_flow_once_by_platform_action_and_outcome() -> None:
    m = GatewayMetrics()
    with taddons.context(m):
        for _ in range(3):
            f = decided(tflow.tflow(resp=True), decision("x", Action.allow, True))
            m.response(f)
            m.error(f)  # a flow ending in response, then error, still counts once
        m.response(decided(tflow.tflow(resp=True), decision("tiktok", Action.block, False)))
        m.error(decided(tflow.tflow(err=True), decision("x", Action.read, True)))
        untouched = tflow.tflow(resp=True)  # not a platform: no decision, not counted
        m.response(untouched)
    text = m.registry_text()
    assert sample(text, "sargs_gateway_decisions_total", platform="x", action="allow",
                  outcome="allowed") == 3
    assert sample(text, "sargs_gateway_decisions_total", platform="tiktok", action="block",
                  outcome="refused") == 1
    assert sample(text, "sargs_gateway_decisions_total", platform="x", action="read") == 1
    assert sample(text, "sargs_gateway_request_duration_seconds_count", platform="x") == 4


def test_a_post_refused_for_its_content_counts_as_refused_with_its_findings() -> None:
    m = GatewayMetrics()
    allowed = decision("facebook", Action.allow, True)
    m.response(decided(
        tflow.tflow(resp=True), allowed,
        Hit("personal-id", "block"), Hit("offensive", "warn"), Hit("personal-id", "block"),
        refused="content",
    ))
    m.response(decided(tflow.tflow(resp=True), allowed, Hit("offensive", "warn")))
    text = m.registry_text()
    assert sample(text, "sargs_gateway_findings_total", rule="personal-id", severity="block") == 2
    assert sample(text, "sargs_gateway_findings_total", rule="offensive", severity="warn") == 2
    assert sample(text, "sargs_gateway_decisions_total", platform="facebook", action="allow",
                  outcome="refused") == 1
    assert sample(text, "sargs_gateway_decisions_total", platform="facebook", action="allow",
                  outcome="allowed") == 1


def test_bundle_age_and_spool_depth() -> None:
    m = GatewayMetrics()
    age = sample(m.registry_text(), "sargs_gateway_bundle_age_seconds")
    assert age is not None
    assert age != age
    m.bundle_loaded(time.time() - 120)
    age = sample(m.registry_text(), "sargs_gateway_bundle_age_seconds")
    assert age is not None
    assert 119 <= age < 600
    m.spool_depth.set(7)
    assert sample(m.registry_text(), "sargs_gateway_spool_depth") == 7


def test_link_gauges_start_unset_and_follow_what_sync_reports() -> None:
    m = GatewayMetrics()
    assert sample(m.registry_text(), "sargs_gateway_stream_connected") == 0
    assert sample(m.registry_text(), "sargs_gateway_last_sync_timestamp_seconds") == 0
    m.stream_connected.set(1)
    m.synced(1_800_000_000.0)
    assert sample(m.registry_text(), "sargs_gateway_stream_connected") == 1
    assert sample(m.registry_text(), "sargs_gateway_last_sync_timestamp_seconds") == 1.8e9


def test_registries_are_separate() -> None:
    a, b = GatewayMetrics(), GatewayMetrics()
    a.response(decided(tflow.tflow(resp=True), decision("x", Action.allow, True)))
    assert sample(b.registry_text(), "sargs_gateway_decisions_total") is None


class _Decide:
    """Stands in for the access addon: every request to the fake site is decided 'read'."""

    def request(self, flow: http.HTTPFlow) -> None:
        info(flow).decision = Decision(
            True, Action.read, "x", Rule.role, "test", "staff", None,
            datetime.now(UTC),
        )


@pytest.fixture
async def site() -> AsyncIterator[int]:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    yield runner.addresses[0][1]
    await runner.cleanup()


async def test_served_on_its_own_loopback_port_not_through_the_proxy(
    site: int, tmp_path: Path
) -> None:
    opts = Options(listen_host="127.0.0.1", listen_port=0, confdir=str(tmp_path))
    master = DumpMaster(opts, with_termlog=False, with_dumper=False)
    metrics = GatewayMetrics(host="127.0.0.1", port=0)
    master.addons.add(_Decide(), metrics)
    opts.update(connection_strategy="lazy")
    task = asyncio.create_task(master.run())
    proxyserver = master.addons.get("proxyserver")
    try:
        for _ in range(200):
            if proxyserver.listen_addrs() and metrics.port:
                break
            await asyncio.sleep(0.02)
        proxy_port = proxyserver.listen_addrs()[0][1]
        assert metrics.port
        assert metrics.port != proxy_port
        async with aiohttp.ClientSession() as session:
            for _ in range(2):
                async with session.get(
                    f"http://127.0.0.1:{site}/", proxy=f"http://127.0.0.1:{proxy_port}"
                ) as resp:
                    assert await resp.text() == "hello"
            async with session.get(f"http://127.0.0.1:{metrics.port}/metrics") as resp:
                assert resp.status == 200
                text = await resp.text()
        assert sample(text, "sargs_gateway_decisions_total", platform="x", action="read",
                      outcome="allowed") == 2
        assert sample(text, "sargs_gateway_request_duration_seconds_count", platform="x") == 2
    finally:
        await proxyserver.servers.update([])
        master.shutdown()
        await task
    # Stopped with the gateway.
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"http://127.0.0.1:{metrics.port}/metrics")


def test_a_clock_stepping_back_counts_zero_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    m = GatewayMetrics()
    f = decided(tflow.tflow(resp=True), decision("x", Action.allow, True))
    f.request.timestamp_start = time.time() + 3600
    m.response(f)
    text = m.registry_text()
    assert sample(text, "sargs_gateway_request_duration_seconds_bucket", le="0.005") == 1
    assert sample(text, "sargs_gateway_request_duration_seconds_sum") == 0


def test_a_new_decision_object_with_the_same_labels_counts_in_the_same_series() -> None:
    m = GatewayMetrics()
    for _ in range(3):  # (grants make a new Decision per request)
        m.response(decided(tflow.tflow(resp=True), decision("x", Action.allow, True)))
    text = m.registry_text()
    assert sample(text, "sargs_gateway_decisions_total", platform="x") == 3
    assert len([line for line in text.splitlines()
                if line.startswith("sargs_gateway_decisions_total{")]) == 1

"""Gateway metrics: decisions by action and platform, findings by rule, latency, gauges."""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
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

from proxy import series
from proxy.gateway.metrics import LATENCY_BUCKETS, GatewayMetrics
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


async def test_counts_each_decided_flow_once_by_platform_action_and_outcome() -> None:
    m = GatewayMetrics()
    with taddons.context(m):
        for _ in range(3):
            f = tflow.tflow(resp=True)
            f.metadata["sargs.decision"] = decision("x", Action.allow, True)
            m.response(f)
            m.response(f)  # the same flow seen twice still counts once
        refused = tflow.tflow(resp=True)
        refused.metadata["sargs.decision"] = decision("tiktok", Action.block, False)
        m.response(refused)
        failed = tflow.tflow(err=True)
        failed.metadata["sargs.decision"] = decision("x", Action.read, True)
        m.error(failed)
        untouched = tflow.tflow(resp=True)  # not a platform: no decision, not counted
        m.response(untouched)
    text = m.registry_text()
    assert sample(text, "sargs_gateway_decisions_total", platform="x", action="allow",
                  outcome="allowed") == 3
    assert sample(text, "sargs_gateway_decisions_total", platform="tiktok", action="block",
                  outcome="refused") == 1
    assert sample(text, "sargs_gateway_decisions_total", platform="x", action="read") == 1
    assert sample(text, "sargs_gateway_request_duration_seconds_count", platform="x") == 4


def test_findings_by_rule_from_objects_and_dicts() -> None:
    class Finding:
        def __init__(self, rule: str, severity: str) -> None:
            self.rule, self.severity = rule, severity

    m = GatewayMetrics()
    f = tflow.tflow(resp=True)
    f.metadata["sargs.decision"] = decision("facebook", Action.allow, False)
    f.metadata["sargs.findings"] = [
        Finding("personal-data", "block"),
        {"rule": "offensive", "severity": "warn"},
        {"rule": "personal-data", "severity": "block"},
    ]
    m.response(f)
    text = m.registry_text()
    assert sample(text, "sargs_gateway_findings_total", rule="personal-data", severity="block") == 2
    assert sample(text, "sargs_gateway_findings_total", rule="offensive", severity="warn") == 1


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


def test_registries_are_separate() -> None:
    a, b = GatewayMetrics(), GatewayMetrics()
    f = tflow.tflow(resp=True)
    f.metadata["sargs.decision"] = decision("x", Action.allow, True)
    a.response(f)
    assert sample(b.registry_text(), "sargs_gateway_decisions_total") is None


class _Decide:
    """Stands in for the access addon: every request to the fake site is decided 'read'."""

    def request(self, flow: http.HTTPFlow) -> None:
        flow.metadata["sargs.decision"] = Decision(
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


def _reference(observations: list[tuple[Decision, float, list[dict[str, str]]]]) -> str:
    """What prometheus_client's own Counter and Histogram expose for ``observations``
    (the metrics before they became plain numbers behind a collector)."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

    from proxy.gateway.metrics import DECISIONS, FINDINGS, LATENCY, LATENCY_BUCKETS

    registry = CollectorRegistry()
    decisions = Counter(*DECISIONS, registry=registry)
    findings = Counter(*FINDINGS, registry=registry)
    latency = Histogram(*LATENCY, buckets=LATENCY_BUCKETS, registry=registry)
    Gauge("sargs_gateway_bundle_age_seconds",
          "Seconds since the policy bundle in force was loaded (NaN: never).",
          registry=registry).set(float("nan"))
    Gauge("sargs_gateway_spool_depth", "Events waiting in the on-disk spool for the service.",
          registry=registry).set(3)
    for d, seconds, found in observations:
        outcome = "allowed" if d.allowed else "refused"
        decisions.labels(d.platform, d.action, outcome).inc()
        child = latency.labels(d.platform)
        for f in found:
            findings.labels(f["rule"], f.get("severity", "unknown")).inc()
        child.observe(seconds)
    return generate_latest(registry).decode()


def test_exposition_is_what_prometheus_client_metrics_give(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])  # _created and latency alike
    allow, block = decision("x", Action.allow, True), decision("tiktok", Action.block, False)
    observations = [
        (allow, 0.001, []),
        (allow, 0.007, []),
        (block, 0.3, [{"rule": "a", "severity": "warn"}, {"rule": "b"}]),
        (allow, 40.0, [{"rule": "a", "severity": "warn"}]),  # past the last bound: +Inf
        (decision("x", Action.read, True), 0.0, []),
        (allow, 30.0, []),
    ]
    m = GatewayMetrics()
    measured = []
    for d, seconds, found in observations:
        f = tflow.tflow(resp=True)
        f.metadata["sargs.decision"] = d
        f.metadata["sargs.findings"] = found
        f.request.timestamp_start = clock[0]
        clock[0] += seconds
        m.response(f)
        measured.append((d, clock[0] - f.request.timestamp_start, found))
        clock[0] += 1.0
    m.spool_depth.set(3)
    clock[0] = 1000.0
    expected = _reference(measured)
    # created times: the reference's are all 1000.0, ours when each series first counted
    created = re.compile(r"^(\S+_created(?:\{[^}]*\})?) \S+$", re.MULTILINE)
    assert created.sub(r"\1 T", m.registry_text()) == created.sub(r"\1 T", expected)
    assert "_created" in expected


def test_a_clock_stepping_back_counts_zero_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    m = GatewayMetrics()
    f = tflow.tflow(resp=True)
    f.metadata["sargs.decision"] = decision("x", Action.allow, True)
    f.request.timestamp_start = time.time() + 3600
    m.response(f)
    text = m.registry_text()
    assert sample(text, "sargs_gateway_request_duration_seconds_bucket", le="0.005") == 1
    assert sample(text, "sargs_gateway_request_duration_seconds_sum") == 0


def test_a_new_decision_object_with_the_same_labels_counts_in_the_same_series() -> None:
    m = GatewayMetrics()
    for _ in range(3):  # (grants make a new Decision per request)
        f = tflow.tflow(resp=True)
        f.metadata["sargs.decision"] = decision("x", Action.allow, True)
        m.response(f)
    text = m.registry_text()
    assert sample(text, "sargs_gateway_decisions_total", platform="x") == 3
    assert len([line for line in text.splitlines()
                if line.startswith("sargs_gateway_decisions_total{")]) == 1


def test_scrapes_from_another_thread_while_counting() -> None:
    m = GatewayMetrics()
    stop = threading.Event()
    failures: list[BaseException] = []

    def scrape() -> None:
        while not stop.is_set():
            try:
                text = m.registry_text()
                count = sample(text, "sargs_gateway_request_duration_seconds_count",
                               platform="p0")
                inf = sample(text, "sargs_gateway_request_duration_seconds_bucket",
                             platform="p0", le="+Inf")
                assert count == inf
            except BaseException as exc:  # reported by the main thread
                failures.append(exc)
                return

    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        for i in range(3000):  # new series appear while a scrape walks them
            f = tflow.tflow(resp=True)
            f.metadata["sargs.decision"] = decision(f"p{i % 300}", Action.allow, True)
            m.response(f)
    finally:
        stop.set()
        scraper.join()
    assert not failures, failures
    assert sample(m.registry_text(), "sargs_gateway_decisions_total", platform="p0") == 10


@pytest.mark.parametrize("seconds", [0.0, *LATENCY_BUCKETS, 0.0051, 29.9, 30.0001, 1e9])
def test_latency_buckets_as_histogram_observe_counts_them(seconds: float) -> None:
    from prometheus_client import CollectorRegistry, Histogram

    reference = Histogram("h", "h", buckets=LATENCY_BUCKETS, registry=CollectorRegistry())
    reference.observe(seconds)
    ours = series.Observed(LATENCY_BUCKETS)
    ours.observe(seconds)
    cumulative = list(itertools.accumulate(ours.counts))
    expected = [s.value for s in reference.collect()[0].samples if s.name == "h_bucket"]
    assert cumulative == expected
    assert ours.sum == seconds

"""Prometheus metrics of the gateway, served on their own loopback port (never the proxy's).

A mitmproxy addon. It counts each decided flow once, when it ends (``response`` or
``error``), from what the access addon left in ``flow.metadata["sargs.decision"]`` (a
``proxy.policy.decide.Decision``) and, for posts, the findings the post check left in
``flow.metadata["sargs.findings"]`` (findings with ``rule`` and ``severity``, objects or
dicts). Other parts set the gauges they own:

    metrics = master.addons.get("gatewaymetrics")
    metrics.bundle_loaded(time.time())      # the policy bundle in force was fetched/loaded
    metrics.spool_depth.set(len(spool))     # events waiting for the service

Metric names (``sargs_gateway_*``) are listed in docs/deployment.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any
from wsgiref.simple_server import WSGIServer

from mitmproxy import http
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

from proxy.settings import Settings

log = logging.getLogger("sargs.gateway.metrics")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_COUNTED = "sargs.metrics.counted"


def _field(item: Any, name: str) -> str:
    value = item.get(name) if isinstance(item, dict) else getattr(item, name, None)
    return str(value) if value is not None else "unknown"


class GatewayMetrics:
    """Decisions, findings, latency, bundle age and spool depth, in one registry.

    ``port=None`` keeps the metrics in memory only (tests, or when another part serves
    them); ``port=0`` picks a free port (read ``.port`` once running).
    """

    name = "gatewaymetrics"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.registry = registry or CollectorRegistry()
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._bundle_loaded_at: float | None = None
        self._bound: dict[tuple[str, str, bool], tuple[Any, Any]] = {}
        self.decisions = Counter(
            "sargs_gateway_decisions",
            "Requests to catalog platforms by decided access level and outcome.",
            ["platform", "action", "outcome"],
            registry=self.registry,
        )
        self.findings = Counter(
            "sargs_gateway_findings",
            "Findings of the server-side post check, by rule and severity.",
            ["rule", "severity"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "sargs_gateway_request_duration_seconds",
            "From the request's first byte to the end of the gateway's answer, per platform.",
            ["platform"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.bundle_age = Gauge(
            "sargs_gateway_bundle_age_seconds",
            "Seconds since the policy bundle in force was loaded (NaN: never).",
            registry=self.registry,
        )
        self.bundle_age.set_function(self._bundle_age)
        self.spool_depth = Gauge(
            "sargs_gateway_spool_depth",
            "Events waiting in the on-disk spool for the service.",
            registry=self.registry,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> GatewayMetrics:
        """Served on ``gateway_metrics_host:gateway_metrics_port`` (port 0: not served)."""
        return cls(settings.gateway_metrics_host, settings.gateway_metrics_port or None)

    # --- gauges other parts set ---------------------------------------------------------

    def bundle_loaded(self, at: float | None = None) -> None:
        """Record that the policy bundle in force was loaded (or fetched) at ``at``."""
        self._bundle_loaded_at = time.time() if at is None else at

    def _bundle_age(self) -> float:
        if self._bundle_loaded_at is None:
            return float("nan")
        return max(0.0, time.time() - self._bundle_loaded_at)

    def observe_findings(self, findings: Iterable[Any]) -> None:
        for finding in findings:
            self.findings.labels(_field(finding, "rule"), _field(finding, "severity")).inc()

    # --- mitmproxy hooks ------------------------------------------------------------------

    def running(self) -> None:
        if self.port is None or self._server is not None:
            return
        try:
            self._server, self._thread = start_http_server(
                self.port, addr=self.host, registry=self.registry
            )
        except OSError as exc:  # metrics are not worth refusing to proxy
            log.error("gateway metrics not served on %s:%d: %s", self.host, self.port, exc)
            return
        self.port = self._server.server_port
        log.info("gateway metrics on http://%s:%d/metrics", self.host, self.port)

    def done(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = self._thread = None

    def response(self, flow: http.HTTPFlow) -> None:
        self._count(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._count(flow)

    def _count(self, flow: http.HTTPFlow) -> None:
        metadata = flow.metadata
        decision = metadata.get("sargs.decision")
        if decision is None or _COUNTED in metadata:
            return
        metadata[_COUNTED] = True
        counter, latency = self._children(decision)
        counter.inc()
        findings = metadata.get("sargs.findings")
        if findings:
            self.observe_findings(findings)
        started = flow.request.data.timestamp_start
        if started:
            latency.observe(max(0.0, time.time() - started))

    def _children(self, decision: Any) -> tuple[Any, Any]:
        """The decision counter's and latency histogram's children for this decision,
        bound once per (platform, action, outcome): ``labels()`` per request costs more
        than the count itself."""
        allowed = bool(getattr(decision, "allowed", False))
        key = (_field(decision, "platform"), _field(decision, "action"), allowed)
        children = self._bound.get(key)
        if children is None:
            platform, action, _ = key
            children = (
                self.decisions.labels(platform, action, "allowed" if allowed else "refused"),
                self.latency.labels(platform),
            )
            if len(self._bound) < 4096:  # platforms × actions: a few dozen in practice
                self._bound[key] = children
        return children

    def registry_text(self) -> str:
        """The exposition text, as a scrape would see it."""
        return generate_latest(self.registry).decode()

"""Prometheus metrics of the gateway, served on their own loopback port (never the proxy's).

A mitmproxy add-on. It counts each decided flow once, when it ends (``response`` or
``error``), from the flow record (:mod:`proxy.gateway.flowinfo`): the access decision, and
for posts the findings of the post check (rule and severity, never text). A post refused
for its content counts as ``outcome="refused"``. Other parts set the gauges they own:

    metrics = master.addons.get("gatewaymetrics")
    metrics.bundle_loaded(time.time())      # the policy bundle in force was fetched/loaded
    metrics.synced(time.time())             # the service confirmed the bundle is current
    metrics.stream_connected.set(1)         # the grant stream is up
    metrics.spool_depth.set(len(spool))     # events waiting for the service

Metric names (``sargs_gateway_*``) are listed in docs/deployment.md; the alerts built on
them in docs/scaling.md.
"""

from __future__ import annotations

import logging
import threading
import time
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

from proxy.gateway.flowinfo import peek
from proxy.settings import Settings

log = logging.getLogger("sargs.gateway.metrics")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class GatewayMetrics:
    """Decisions, findings, latency and the link to the service, in one registry.

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
        self.decisions = Counter(
            "sargs_gateway_decisions",
            "Requests to catalog platforms by decided access level and outcome.",
            ("platform", "action", "outcome"), registry=self.registry,
        )
        self.findings = Counter(
            "sargs_gateway_findings",
            "Findings of the server-side post check, by rule and severity (a rule in "
            "simulation: simulated-block, simulated-warn).",
            ("rule", "severity"), registry=self.registry,
        )
        self.latency = Histogram(
            "sargs_gateway_request_duration_seconds",
            "From the request's first byte to the end of the gateway's answer, per platform.",
            ("platform",), buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        # Label children, bound once per label values (platforms × actions × outcomes and
        # rules × severities come from the policy: bounded).
        self._decision_series: dict[tuple[str, str, str], Counter] = {}
        self._latency_series: dict[str, Histogram] = {}
        self._finding_series: dict[tuple[str, str], Counter] = {}
        self.bundle_age = Gauge(
            "sargs_gateway_bundle_age_seconds",
            "Seconds since the policy bundle in force was loaded (NaN: never). Grows while "
            "nothing changes: not a health signal (alert on the last sync instead).",
            registry=self.registry,
        )
        self.bundle_age.set_function(self._bundle_age)
        self.stream_connected = Gauge(
            "sargs_gateway_stream_connected",
            "1 while the grant stream from the service is connected, else 0.",
            registry=self.registry,
        )
        self.last_sync = Gauge(
            "sargs_gateway_last_sync_timestamp_seconds",
            "Unix time the service last confirmed that the bundle in force is current "
            "(a bundle pulled, or the stream's heartbeat); 0: never.",
            registry=self.registry,
        )
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

    def synced(self, at: float | None = None) -> None:
        """Record that the service confirmed the bundle in force at ``at``."""
        self.last_sync.set(time.time() if at is None else at)

    def _bundle_age(self) -> float:
        if self._bundle_loaded_at is None:
            return float("nan")
        return max(0.0, time.time() - self._bundle_loaded_at)

    # --- mitmproxy hooks ------------------------------------------------------------------

    def running(self) -> None:
        if self.port is None or self._server is not None:
            return
        try:
            self._server, self._thread = start_http_server(
                self.port, addr=self.host, registry=self.registry
            )
        except OSError as exc:  # metrics are not worth refusing to proxy
            log.error("gateway metrics not served", extra={"event": {
                "event": "metrics-unavailable", "host": self.host, "port": self.port,
                "error": str(exc)}})
            return
        self.port = self._server.server_port
        log.info("gateway metrics served", extra={"event": {
            "event": "metrics-served", "url": f"http://{self.host}:{self.port}/metrics"}})

    def done(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = self._thread = None

    def response(self, flow: http.HTTPFlow) -> None:
        """Count the flow's decision, findings and latency, once per flow (a flow may end
        in ``response`` and then ``error``)."""
        record = peek(flow)
        if record is None or record.decision is None or record.counted:
            return
        record.counted = True
        decision = record.decision
        allowed = decision.allowed and record.refused is None
        labels = (decision.platform, decision.action.value, "allowed" if allowed else "refused")
        counter = self._decision_series.get(labels)
        if counter is None:
            counter = self._decision_series[labels] = self.decisions.labels(*labels)
        counter.inc()
        for hit in record.findings:
            key = (hit.rule, f"simulated-{hit.severity}" if hit.simulated else hit.severity)
            found = self._finding_series.get(key)
            if found is None:
                found = self._finding_series[key] = self.findings.labels(*key)
            found.inc()
        started = flow.request.timestamp_start
        if started:
            latency = self._latency_series.get(decision.platform)
            if latency is None:
                latency = self._latency_series[decision.platform] = self.latency.labels(
                    decision.platform)
            latency.observe(max(0.0, time.time() - started))  # (0 after a clock step back)

    error = response

    def registry_text(self) -> str:
        """The exposition text, as a scrape would see it."""
        return generate_latest(self.registry).decode()

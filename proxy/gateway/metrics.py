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

Per-request counts are lock-free series (``proxy/series.py``, shared with the service),
not prometheus_client's ``Counter`` and ``Histogram``: those take a lock per
``inc``/``observe`` and the histogram walks its buckets in Python, which cost more per
request than everything else here. The exposition is the same.
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any
from wsgiref.simple_server import WSGIServer

from mitmproxy import http
from prometheus_client import CollectorRegistry, Gauge, generate_latest, start_http_server

from proxy import series
from proxy.settings import Settings

log = logging.getLogger("sargs.gateway.metrics")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_COUNTED = "sargs.metrics.counted"
_BOUND_MAX = 4096
"""Most decision objects remembered with their series (the access addon reuses a few
dozen; a decision with a grant is new each time)."""

_Family = tuple[str, str, tuple[str, ...]]
"""Name, help text, label names."""
DECISIONS: _Family = (
    "sargs_gateway_decisions",
    "Requests to catalog platforms by decided access level and outcome.",
    ("platform", "action", "outcome"),
)
FINDINGS: _Family = (
    "sargs_gateway_findings",
    "Findings of the server-side post check, by rule and severity.",
    ("rule", "severity"),
)
LATENCY: _Family = (
    "sargs_gateway_request_duration_seconds",
    "From the request's first byte to the end of the gateway's answer, per platform.",
    ("platform",),
)


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
        self.decisions = series.Counter(*DECISIONS)
        """(platform, action, outcome) → count."""
        self.findings = series.Counter(*FINDINGS)
        """(rule, severity) → count."""
        self.latency = series.Histogram(*LATENCY, LATENCY_BUCKETS)
        """(platform,) → latency histogram."""
        self._bound: dict[int, tuple[object, series.Count, series.Observed]] = {}
        """id(decision) → (that decision, its series); the decision kept so its id stays
        its own."""
        series.register(self.registry, self.decisions, self.findings, self.latency)
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
            self.findings.labels(_field(finding, "rule"), _field(finding, "severity")).value += 1

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
        """Count the flow's decision, findings and latency, once per flow (a flow may end
        in ``response`` and then ``error``, or be seen twice)."""
        metadata = flow.metadata
        decision = metadata.get("sargs.decision")
        if decision is None or _COUNTED in metadata:
            return
        metadata[_COUNTED] = True
        bound = self._bound.get(id(decision))
        if bound is None or bound[0] is not decision:
            bound = self._bind(decision)
        bound[1].value += 1
        findings = metadata.get("sargs.findings")
        if findings:
            self.observe_findings(findings)
        started = flow.request.data.timestamp_start
        if started:
            elapsed = time.time() - started
            if elapsed < 0.0:  # (a clock step back)
                elapsed = 0.0
            latency = bound[2]  # Observed.observe, inlined: this runs per request
            latency.counts[bisect_left(latency.bounds, elapsed)] += 1
            latency.sum += elapsed

    error = response

    def _bind(self, decision: Any) -> tuple[object, series.Count, series.Observed]:
        """The decision's counter and latency series, found once per decision object (the
        access addon hands out the same few decisions again and again) and created once
        per (platform, action, outcome): building label keys per request costs more than
        the count itself."""
        platform = _field(decision, "platform")
        allowed = bool(getattr(decision, "allowed", False))
        key = (platform, _field(decision, "action"), "allowed" if allowed else "refused")
        count = self.decisions.labels(*key)
        latency = self.latency.labels(platform)
        bound = (decision, count, latency)
        if len(self._bound) >= _BOUND_MAX:  # decisions with grants are new objects
            self._bound.clear()
        self._bound[id(decision)] = bound
        return bound

    def registry_text(self) -> str:
        """The exposition text, as a scrape would see it."""
        return generate_latest(self.registry).decode()

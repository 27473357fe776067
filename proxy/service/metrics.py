"""Prometheus ``GET /metrics`` of the service.

- ``sargs_service_request_duration_seconds{method, route, status}``: every request, by
  route pattern (``/api/v1/requests/{id}``), never by raw path (bounded label values).
- ``sargs_checks_total{verdict}`` and ``sargs_findings_total{rule, severity}``: counted
  by the check handler from its result as it answers 200 (``ServiceMetrics.observe_check``:
  the draft text is never looked at; the answer is not parsed again).
- ``sargs_grants_active`` and ``sargs_requests_pending``: counted in the store at scrape
  time (every service node reports the same shared numbers).
- ``sargs_policy_info{version}``: the policy in force.

Each app has its own ``CollectorRegistry`` (several apps can run in one process). Other
parts may add async ``refreshers`` that set their own gauges before each scrape.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from proxy.compliance.model import CheckResult
from proxy.service import keys

log = logging.getLogger("sargs.service.metrics")

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Refresher = Callable[[web.Application], Awaitable[None]]


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        # Bounded label values: verdicts, rule ids × severities, route patterns × statuses.
        self.latency = Histogram(
            "sargs_service_request_duration_seconds",
            "Time to answer a request, by method, route pattern and status.",
            ("method", "route", "status"), buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.checks = Counter(
            "sargs_checks", "Draft checks answered, by verdict.", ("verdict",),
            registry=self.registry,
        )
        self.findings = Counter(
            "sargs_findings", "Findings of draft checks, by rule and severity.",
            ("rule", "severity"), registry=self.registry,
        )
        self.grants_active = Gauge(
            "sargs_grants_active", "Temporary access grants in force now.",
            registry=self.registry,
        )
        self.requests_pending = Gauge(
            "sargs_requests_pending", "Access requests waiting for an approver.",
            registry=self.registry,
        )
        self.policy_info = Gauge(
            "sargs_policy_info", "The policy version in force (value 1).", ["version"],
            registry=self.registry,
        )
        self.refreshers: list[Refresher] = [refresh_policy, refresh_store_counts]
        # Label children, bound once per label values and kept.
        self._verdicts: dict[str, Counter] = {}
        self._findings: dict[tuple[str, str], Counter] = {}
        self._routes: dict[tuple[str, str, int], Histogram] = {}

    def observe_check(self, result: CheckResult) -> None:
        """Count one answered check: its verdict and each finding's rule and severity."""
        verdict = self._verdicts.get(result.verdict)
        if verdict is None:
            verdict = self._verdicts[result.verdict] = self.checks.labels(result.verdict)
        verdict.inc()
        for finding in result.findings:
            key = (finding.rule, finding.severity.value)
            found = self._findings.get(key)
            if found is None:
                found = self._findings[key] = self.findings.labels(*key)
            found.inc()

    def observe_request(self, request: web.Request, status: int, seconds: float) -> None:
        """One answered request, by its route's pattern (``pipeline.py``)."""
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "(unmatched)"
        key = (request.method, route, status)
        observed = self._routes.get(key)
        if observed is None:
            observed = self.latency.labels(request.method, route, str(status))
            if len(self._routes) < 4096:  # routes × methods × statuses: bounded
                self._routes[key] = observed
        observed.observe(seconds)


METRICS = web.AppKey("sargs.metrics", ServiceMetrics)


async def refresh_policy(app: web.Application) -> None:
    metrics = app[METRICS]
    metrics.policy_info.clear()
    metrics.policy_info.labels(app[keys.POLICY].current.version).set(1)


def store_counts(store: Any, now: datetime | None = None) -> tuple[int, int]:
    """(grants in force, requests pending) in a ``proxy.store`` Store."""
    from proxy.store import grants, requests

    active = len(grants.list_active(store, now or datetime.now(UTC)))
    return active, requests.count_requests(store, status="pending")


async def refresh_store_counts(app: web.Application) -> None:
    key = getattr(keys, "STORE", None)  # the store is opened by the service when configured
    store = app.get(key) if key is not None else None
    if store is None:
        return
    metrics = app[METRICS]
    try:
        active, pending = await asyncio.to_thread(store_counts, store)
    except Exception:  # a scrape must still answer when the database does not
        log.exception("cannot count grants and requests for /metrics")
        return
    metrics.grants_active.set(active)
    metrics.requests_pending.set(pending)


def observe(request: web.Request, status: int, seconds: float) -> None:
    """One answered request (``pipeline.py``: the final status, errors included)."""
    request.app[METRICS].observe_request(request, status, seconds)


async def metrics_handler(request: web.Request) -> web.Response:
    app = request.app
    metrics = app[METRICS]
    for refresh in metrics.refreshers:
        await refresh(app)
    response = web.Response(body=generate_latest(metrics.registry))
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def setup(app: web.Application) -> None:
    app[METRICS] = ServiceMetrics()
    app.router.add_get("/metrics", metrics_handler)

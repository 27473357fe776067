"""The service's Prometheus /metrics: latency by route, checks and findings, grants, requests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from proxy.runtime import PolicyState
from proxy.service import keys, metrics, metricsauth
from proxy.service.app import create_app
from proxy.settings import Settings
from proxy.store import requests as store_requests
from proxy.store.db import open_store


def sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


async def scrape(client) -> str:
    token = metricsauth.load_token(client.server.app[keys.SETTINGS])
    resp = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    return str(await resp.text())


async def test_latency_by_route_pattern_and_status(aiohttp_client, tmp_path: Path) -> None:
    client = await aiohttp_client(create_app(Settings(var_dir=tmp_path)))
    for _ in range(3):
        assert (await client.get("/healthz")).status == 200
    assert (await client.get("/no/such/page/1234")).status == 404
    text = await scrape(client)
    assert sample(text, "sargs_service_request_duration_seconds_count", method="GET",
                  route="/healthz", status="200") == 3
    # Unknown paths share one label value: scanners cannot blow up the series count.
    assert sample(text, "sargs_service_request_duration_seconds_count", route="(unmatched)",
                  status="404") == 1
    assert "/no/such/page/1234" not in text
    version = PolicyState(Settings().policy).current.version
    assert sample(text, "sargs_policy_info", version=version) == 1


async def test_checks_and_findings_counted_as_answered(aiohttp_client, tmp_path: Path) -> None:
    client = await aiohttp_client(create_app(Settings(var_dir=tmp_path)))
    sunday = "2026-11-22T12:00:00+02:00"  # outside working hours: no draft-wide finding
    drafts = ["You idiot, write to jane.doe@gmail.com", "Open day on Friday.",
              "idiot", "Call jane.doe@gmail.com, idiot"]
    verdicts: dict[str, int] = {}
    findings: dict[tuple[str, str], int] = {}
    for draft in drafts:
        resp = await client.post("/api/v1/check", json={"text": draft, "at": sunday})
        assert resp.status == 200
        answer = await resp.json()
        verdicts[answer["verdict"]] = verdicts.get(answer["verdict"], 0) + 1
        for f in answer["findings"]:
            findings[f["rule"], f["severity"]] = findings.get((f["rule"], f["severity"]), 0) + 1
    # Refused checks are not counted.
    assert (await client.post("/api/v1/check", json={"text": "idiot", "lang": "de"})).status == 422
    assert (await client.post("/api/v1/check", data=b"{nope",
                              headers={"Content-Type": "application/json"})).status == 400

    assert verdicts["ok"] == 1
    assert sum(verdicts.values()) == 4
    assert findings[("offensive", "warn")] == 3
    assert findings[("personal-data", "block")] == 2
    text = await scrape(client)
    for verdict, count in verdicts.items():
        assert sample(text, "sargs_checks_total", verdict=verdict) == count
    assert sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "sargs_checks_total") == 4
    for (rule, severity), count in findings.items():
        assert sample(text, "sargs_findings_total", rule=rule, severity=severity) == count
    assert sample(text, "sargs_service_request_duration_seconds_count", method="POST",
                  route="/api/v1/check", status="200") == 4
    assert sample(text, "sargs_service_request_duration_seconds_count", method="POST",
                  route="/api/v1/check", status="422") == 1
    assert "jane.doe" not in text
    assert "idiot" not in text


async def test_grants_active_and_requests_pending_from_the_store(
    aiohttp_client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'sargs.db'}")
    try:
        now = datetime.now(UTC)
        first = store_requests.create_request(store, "anna", "x", "allow", 60, "press event")
        store_requests.create_request(store, "anna", "tiktok", "read", 60, "campaign")
        store_requests.create_request(store, "janis", "x", "read", 30, "research")
        store_requests.approve(store, first.id, "boss")
        assert metrics.store_counts(store, now + timedelta(minutes=1)) == (1, 2)
        assert metrics.store_counts(store, now + timedelta(hours=2)) == (0, 2)

        if not hasattr(keys, "STORE"):
            monkeypatch.setattr(keys, "STORE", web.AppKey("store", object), raising=False)
        app = create_app(Settings(var_dir=tmp_path))
        app[keys.STORE] = store
        client = await aiohttp_client(app)
        text = await scrape(client)
        assert sample(text, "sargs_grants_active") == 1
        assert sample(text, "sargs_requests_pending") == 2
    finally:
        store.close()


async def test_each_app_has_its_own_registry(aiohttp_client, tmp_path: Path) -> None:
    one = await aiohttp_client(create_app(Settings(var_dir=tmp_path)))
    two = await aiohttp_client(create_app(Settings(var_dir=tmp_path)))
    await one.get("/healthz")
    assert sample(await scrape(two), "sargs_service_request_duration_seconds_count",
                  route="/healthz") is None

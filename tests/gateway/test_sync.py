"""The gateway side of grant distribution: bundle parsing, the in-memory grant source, the
disk cache, the event spool, which decisions become events, and delivery to a real
service (exactly once, also when an acknowledgement is lost)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from proxy.gateway import spool as spool_module
from proxy.gateway.flowinfo import FlowInfo, Hit
from proxy.gateway.sync import (
    Bundle,
    BundleCache,
    BundleGrants,
    EventMaker,
    GatewaySync,
    Spool,
    parse_bundle,
)
from proxy.policy.decide import Decision, Grant, RequestKind, Rule, Subject
from proxy.policy.model import Action
from proxy.service import keys
from proxy.service.app import create_app
from proxy.settings import Settings
from proxy.store import audit, open_store
from proxy.store import requests as rq
from proxy.store.db import Store

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TOKEN = "sync-test-token"


def _grant(user: str = "ivo", platform: str = "facebook", minutes: int = 60) -> Grant:
    return Grant(f"g-{user}-{platform}", user, platform, Action.allow,
                 T0 + timedelta(minutes=minutes))


# --- bundle ---------------------------------------------------------------------------------


def test_parse_bundle_round_trip() -> None:
    data = {"version": 7, "policy": "p1", "digest": "abc", "grants": [
        {"id": "g1", "user": "ivo", "platform": "x", "action": "read",
         "expires_at": "2026-11-23T12:00:00+02:00"}]}
    bundle = parse_bundle(data, '"7-abc"')
    assert bundle.version == 7
    assert bundle.grants[0].action is Action.read
    assert bundle.grants[0].expires_at == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert bundle.etag == '"7-abc"'


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([], "bundle"),
        ({"grants": []}, "version"),
        ({"version": -1, "grants": []}, "version"),
        ({"version": 1}, "grants"),
        ({"version": 1, "grants": [{"id": "g"}]}, "grants[0].user"),
        ({"version": 1, "grants": [{"id": "g", "user": "u", "platform": "x", "action": "allow",
                                     "expires_at": "2026-11-23T12:00:00"}]},
         "grants[0].expires_at"),
    ],
)
def test_parse_bundle_names_the_bad_field(data: Any, field: str) -> None:
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_bundle(data)


def test_grants_stop_at_their_expiry_without_any_service() -> None:
    now = [T0]
    grants = BundleGrants(lambda: now[0])
    grants.apply(Bundle(1, "p", "d", (_grant(minutes=30), _grant(platform="x", minutes=90))))
    assert [g.platform for g in grants.active("ivo")] == ["facebook", "x"]
    assert grants.active("anna") == ()
    now[0] = T0 + timedelta(minutes=30)  # expires_at is exclusive
    assert [g.platform for g in grants.active("ivo")] == ["x"]
    grants.apply(Bundle(2, "p", "d", ()))  # revoked
    assert grants.active("ivo") == ()


def test_cache_survives_a_restart_and_ignores_garbage(tmp_path: Path) -> None:
    cache = BundleCache(tmp_path / "gateway" / "bundle.json")
    assert cache.load() is None
    bundle = Bundle(5, "p", "d", (_grant(),), '"5-d"')
    cache.save(bundle)
    assert BundleCache(cache.path).load() == bundle
    assert [p.name for p in cache.path.parent.iterdir()] == ["bundle.json"]  # no temp files
    cache.path.write_text("{not json")
    assert cache.load() is None


# --- spool ----------------------------------------------------------------------------------


def _event(i: int) -> dict[str, Any]:
    return {"id": f"e{i}", "kind": "block", "at": T0.isoformat(), "user": "ivo",
            "platform": "tiktok", "details": {"rule": "role"}}


def test_spool_keeps_events_on_disk_across_restarts(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    for i in range(3):
        spool.add(_event(i))
    assert spool.depth == 3
    assert spool.flush() == 3
    spool.add(_event(3))
    spool.flush()
    assert spool.depth == 4
    again = Spool(tmp_path / "spool")  # a restarted gateway
    assert again.depth == 4
    again.add(_event(4))
    again.flush()
    segments = again.sealed()
    assert len(segments) == 1  # the old segment is sealed; the new one is active
    assert [e["id"] for e in Spool.read(segments[0])] == ["e0", "e1", "e2", "e3"]


def test_a_line_torn_by_a_crash_is_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.add(_event(1))
    spool.flush()
    segment = next((tmp_path / "spool").glob("*.jsonl"))
    with open(segment, "a") as f:
        f.write('{"id": "e2", "kind": "blo')  # the power went out here
    again = Spool(tmp_path / "spool")
    assert again.depth == 1
    assert [e["id"] for e in Spool.read(segment)] == ["e1"]


def test_a_full_spool_drops_and_counts(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", max_events=2)
    assert [spool.add(_event(i)) for i in range(4)] == [True, True, False, False]
    assert spool.dropped == 2
    assert spool.depth == 2


def test_a_batch_is_one_write_and_one_fsync_and_delivered_from_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path / "spool")
    for i in range(300):
        spool.add(_event(i))
    assert spool.buffered == 300
    assert list((tmp_path / "spool").glob("*.jsonl")) == []  # nothing written per event
    fsyncs: list[int] = []
    real_fsync = os.fsync

    def counted_fsync(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counted_fsync)
    assert spool.flush() == 300
    assert len(fsyncs) == 2  # the segment, once; its directory, once (a new file)
    spool.add(_event(300))
    spool.flush()
    assert len(fsyncs) == 3  # the same segment again: no new file
    [segment] = (tmp_path / "spool").glob("*.jsonl")
    assert len(Spool.read(segment)) == 301  # on disk, should the gateway stop now

    def no_reading(path: Path) -> list[dict[str, Any]]:
        raise AssertionError("read back from disk")

    monkeypatch.setattr(Spool, "read", staticmethod(no_reading))
    active, events = spool.pending()
    assert active == segment
    assert [e["id"] for e in events] == [f"e{i}" for i in range(301)]
    spool.delivered(segment, 200)  # the first batches acknowledged, then a failure
    assert spool.depth == 101
    assert [e["id"] for e in spool.pending()[1]] == [f"e{i}" for i in range(200, 301)]
    spool.add(_event(301))  # the next batch is already waiting: the segment is reused
    spool.delivered(segment, 101)
    assert spool.depth == 1
    assert segment.read_bytes() == b""
    spool.flush()
    assert len(fsyncs) == 4  # no new file, no directory fsync
    assert [e["id"] for e in spool.pending()[1]] == ["e301"]
    assert segment.read_bytes().count(b"\n") == 1
    spool.delivered(segment, 1)  # nothing waits: the segment is deleted
    assert spool.depth == 0
    assert list((tmp_path / "spool").glob("*.jsonl")) == []
    assert spool.pending() == (None, [])


def test_a_full_segment_is_sealed_and_read_from_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool_module, "SEGMENT_EVENTS", 2)
    spool = Spool(tmp_path / "spool")
    for i in range(3):
        spool.add(_event(i))
        spool.flush()
    [sealed] = spool.sealed()
    assert [e["id"] for e in Spool.read(sealed)] == ["e0", "e1"]
    assert [e["id"] for e in spool.pending()[1]] == ["e2"]
    assert spool.depth == 3
    spool.remove(sealed)
    assert spool.depth == 1


# --- which decisions become events ----------------------------------------------------------

IVO = Subject("ivo", frozenset({"intern"}))


def _decision(allowed: bool, rule: Rule = Rule.default, grant: str | None = None) -> Decision:
    return Decision(allowed, Action.allow if allowed else Action.block, "tiktok", rule,
                    "reason", "intern", grant)


def _make(maker: EventMaker, decision: Decision, kind: RequestKind,
          findings: list[Hit] | None = None, refused: str | None = None
          ) -> dict[str, Any] | None:
    record = FlowInfo(subject=IVO, platform=decision.platform, kind=kind, decision=decision,
                      findings=findings or [], refused=refused)
    return maker.make(record, host="tiktok.com", path="/@someone?q=secret", policy="p1",
                      at=T0)


def test_refusals_become_block_events_without_query_strings() -> None:
    maker = EventMaker("gw-1", clock=lambda: 0.0)
    event = _make(maker, _decision(False), RequestKind.page)
    assert event is not None
    assert event["kind"] == "block"
    assert event["user"] == "ivo"
    assert event["details"]["path"] == "/@someone"
    assert event["details"]["gateway"] == "gw-1"
    assert "secret" not in json.dumps(event)
    # Page loads are reported every time; their API calls once a minute.
    assert _make(maker, _decision(False), RequestKind.page) is not None
    assert _make(maker, _decision(False), RequestKind.api) is not None
    assert _make(maker, _decision(False), RequestKind.api) is None


def test_allowed_requests_are_events_only_for_grants_and_findings() -> None:
    clock = [0.0]
    maker = EventMaker("gw-1", clock=lambda: clock[0])
    assert _make(maker, _decision(True), RequestKind.page) is None
    used = _make(maker, _decision(True, Rule.grant, "g1"), RequestKind.page)
    assert used is not None
    assert used["kind"] == "grant-use"
    assert used["details"]["grant"] == "g1"
    assert _make(maker, _decision(True, Rule.grant, "g1"), RequestKind.page) is None
    clock[0] = 61.0
    assert _make(maker, _decision(True, Rule.grant, "g1"), RequestKind.page) is not None
    warned = _make(maker, _decision(True), RequestKind.post, [Hit("partisan", "warn")])
    assert warned is not None
    assert warned["kind"] == "warn"
    assert warned["details"]["findings"] == [{"rule": "partisan", "severity": "warn"}]
    refused = _make(maker, _decision(True), RequestKind.post,
                    [Hit("personal-data", "block"), Hit("partisan", "warn")], "content")
    assert refused is not None
    assert refused["kind"] == "block"
    # Blocked for its content: the dashboard counts it under the findings' rules, not
    # under the access clause that let the post through.
    assert "rule" not in refused["details"]
    assert refused["details"]["allowed"] is False
    assert [f["rule"] for f in refused["details"]["findings"]] == ["personal-data", "partisan"]
    unreadable = _make(maker, _decision(True), RequestKind.post, [], "unreadable")
    assert unreadable is not None
    assert unreadable["details"]["rule"] == "unreadable"


# --- against a real service -----------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'sargs.db'}")
    yield s
    s.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def running_service(store: Store, tmp_path: Path, port: int) -> AsyncIterator[None]:
    settings = Settings(var_dir=tmp_path / "svc", database_url=str(store.url),
                        gateway_token=SecretStr(TOKEN))
    app = create_app(settings)
    app[keys.STORE] = store
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
    try:
        yield
    finally:
        await runner.cleanup()


async def _eventually(check: Any, within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def _blocks(store: Store) -> list[str]:
    return sorted(e.details["event_id"] for e in audit.query(store, kind="block", limit=1000))


def _segments(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "gw" / "gateway" / "spool").glob("*.jsonl"))


async def test_follows_grants_and_delivers_spooled_events_exactly_once(
    store: Store, tmp_path: Path
) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    sync = GatewaySync(url, tmp_path / "gw", token=TOKEN, gateway="gw-t")
    await sync.start()
    try:
        for i in range(3):  # the service is not there yet
            sync.record(_event(i))
        await _eventually(lambda: len(_segments(tmp_path)) == 1)
        assert sync.spool_depth == 3
        kept = {p.name: p.read_bytes() for p in _segments(tmp_path)}
        async with running_service(store, tmp_path, port):
            await _eventually(lambda: sync.version is not None)
            made = await asyncio.to_thread(rq.create_request, store, "ivo", "facebook",
                                           "allow", 30, "research")
            await asyncio.to_thread(rq.approve, store, made.id, "olga")
            await _eventually(lambda: bool(sync.grants.active("ivo")), within=2.0)
            await _eventually(lambda: sync.spool_depth == 0)
            assert _blocks(store) == ["e0", "e1", "e2"]
            assert _segments(tmp_path) == []
        assert BundleCache(tmp_path / "gw" / "gateway" / "bundle.json").load() is not None
    finally:
        await sync.stop()

    # A crash after the service acknowledged but before the segment was deleted: the
    # restarted gateway sends it again; the service records nothing twice.
    spool_dir = tmp_path / "gw" / "gateway" / "spool"
    for name, data in kept.items():
        (spool_dir / name).write_bytes(data)
    restarted = GatewaySync(url, tmp_path / "gw", token=TOKEN, gateway="gw-t")
    assert restarted.spool_depth == 3
    assert [g.user for g in restarted.grants.bundle.grants] == ["ivo"]  # type: ignore[union-attr]
    await restarted.start()
    try:
        async with running_service(store, tmp_path, port):
            await _eventually(lambda: restarted.spool_depth == 0)
            assert restarted.delivered == 3
            assert _blocks(store) == ["e0", "e1", "e2"]
    finally:
        await restarted.stop()


async def test_a_wrong_token_delivers_nothing_and_keeps_the_events(
    store: Store, tmp_path: Path
) -> None:
    port = _free_port()
    sync = GatewaySync(f"http://127.0.0.1:{port}", tmp_path / "gw", token="wrong",
                       gateway="gw-t")
    async with running_service(store, tmp_path, port):
        await sync.start()
        try:
            sync.record(_event(1))
            await _eventually(lambda: len(_segments(tmp_path)) == 1)
            await asyncio.sleep(0.3)
            assert sync.version is None
            assert sync.spool_depth == 1
            assert _blocks(store) == []
        finally:
            await sync.stop()


async def test_in_the_gateway_refusals_are_spooled_and_counted_in_metrics(
    tmp_path: Path,
) -> None:
    import aiohttp

    from proxy.gateway.addons import make_addons
    from proxy.gateway.metrics import GatewayMetrics
    from proxy.runtime import PolicyState
    from tests.support.gateway import fake_site, running_gateway

    dead = f"http://127.0.0.1:{_free_port()}"  # no service: everything stays spooled
    settings = Settings(var_dir=tmp_path / "var", service_url=dead, gateway_metrics_port=0,
                        gateway_id="gw-in-process")

    def make(_: Settings, state: PolicyState, **kw: Any) -> list[object]:
        return make_addons(settings, state, **kw)

    users = {"ivo": ("pw", ["intern"])}
    async with fake_site() as site, running_gateway(tmp_path, site.port, users=users,
                                                    make=make) as gw:
        sync = gw.master.addons.get("sargssync")
        metrics = gw.master.addons.get("gatewaymetrics")
        assert isinstance(sync, GatewaySync)
        assert isinstance(metrics, GatewayMetrics)
        assert gw.access.grants is sync.grants
        async with aiohttp.ClientSession() as session:
            for _ in range(2):
                async with session.get(
                    "https://tiktok.com/", proxy=gw.proxy_url, ssl=gw.ssl_context(),
                    proxy_headers={"Proxy-Authorization": "Basic aXZvOnB3"},  # ivo:pw
                    headers={"Accept": "text/html"},
                ) as resp:
                    assert resp.status == 403
        await _eventually(lambda: len(list(
            (tmp_path / "var" / "gateway" / "spool").glob("*.jsonl"))) == 1)
        assert sync.spool_depth == 2
        assert "sargs_gateway_spool_depth 2.0" in metrics.registry_text()
        assert site.paths() == []
    events = [e for p in (tmp_path / "var" / "gateway" / "spool").glob("*.jsonl")
              for e in Spool.read(p)]
    assert [(e["kind"], e["user"], e["platform"]) for e in events] == [
        ("block", "ivo", "tiktok")] * 2
    assert {e["details"]["gateway"] for e in events} == {"gw-in-process"}

"""The gateway's link to the service (a mitmproxy add-on): it follows the grant bundle
(:mod:`proxy.gateway.bundle`) and delivers the event spool (:mod:`proxy.gateway.spool`).

The service is the single writer; a gateway only follows it (docs/scaling.md):

- **Bundle.** ``GET /api/v1/bundle`` returns ``{version, policy, digest, grants: [{id,
  user, platform, action, expires_at}]}`` with an ETag; ``version`` is the store's change
  sequence. ``GET /api/v1/bundle/events`` (server-sent events) announces every new version;
  on each announcement the gateway pulls the bundle again. Lost connection: reconnect with
  exponential backoff and jitter (0.1 s … 5 s), pulling once on every reconnect.
- **Grants in memory.** ``BundleGrants`` is the access addon's ``GrantSource``: a dict
  user → grants, swapped in one assignment. Expiry is evaluated here, at decision time,
  from ``expires_at``: an expired grant never applies, with or without the service.
- **Fail-static.** Every bundle is written to ``VAR_DIR/gateway/bundle.json`` (atomic:
  temporary file, fsync, rename). A gateway that starts without the service enforces that.
- **Events.** Decisions that matter (refusals, refused or warned posts, uses of a grant)
  become events with a random id, appended to an on-disk spool
  (``VAR_DIR/gateway/spool/*.jsonl``, fsync'd in batches) and delivered in order to
  ``POST /api/v1/events``. A segment file is deleted only after the service acknowledged
  all of it; the service records each event id once, so a batch sent twice (an
  acknowledgement lost to a crash) is still recorded exactly once.

The gateway authenticates with ``Authorization: Bearer SARGS_GATEWAY_TOKEN``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from mitmproxy import ctx, http

from proxy.gateway.bundle import (
    Bundle,
    BundleAllowances,
    BundleCache,
    BundleGrants,
    atomic_write,
    parse_bundle,
)
from proxy.gateway.flowinfo import peek
from proxy.gateway.metrics import GatewayMetrics
from proxy.gateway.spool import EventMaker, Spool
from proxy.settings import Settings

__all__ = ["Bundle", "BundleCache", "BundleGrants", "EventMaker", "GatewaySync", "Spool",
           "parse_bundle"]

log = logging.getLogger("sargs.gateway.sync")

BUNDLE_PATH = "/api/v1/bundle"
EVENTS_STREAM_PATH = "/api/v1/bundle/events"
EVENTS_PATH = "/api/v1/events"

BACKOFF_MIN, BACKOFF_MAX = 0.1, 5.0
"""Seconds between reconnection attempts (doubling, with jitter)."""
STREAM_READ_TIMEOUT = 30.0
"""The service sends a heartbeat every 10 s; silence this long means the stream is dead."""
FLUSH_INTERVAL = 0.2
"""At most this long between an event and its fsync to the spool."""
FLUSH_EVENTS = 1000
"""A batch this large is written out at once, without waiting for ``FLUSH_INTERVAL``."""
DELIVERY_BATCH = 500
"""Events per ``POST /api/v1/events`` (the service accepts up to 1000)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class GatewaySync:
    """Follows the service's bundle and delivers the event spool (a mitmproxy addon).

    Usable without mitmproxy too: ``await sync.start()`` … ``await sync.stop()``.
    ``grants`` is the ``GrantSource`` to give the access addon.
    """

    name = "sargssync"

    def __init__(
        self,
        service_url: str,
        var_dir: Path,
        *,
        token: str = "",
        gateway: str = "gateway",
        now: Callable[[], datetime] = _utcnow,
        policy_version: Callable[[], str] | None = None,
    ) -> None:
        self.service_url = service_url.rstrip("/")
        self.token = token
        self.gateway = gateway
        self.now = now
        self.policy_version = policy_version
        base = var_dir / "gateway"
        self.grants = BundleGrants(now)
        self.allowances = BundleAllowances(now)
        """Permissions to post one text once (``posts.py`` takes them)."""
        self.cache = BundleCache(base / "bundle.json")
        self.spool = Spool(base / "spool")
        self.events = EventMaker(gateway)
        self.metrics: GatewayMetrics | None = None
        """The gateway's metrics (found when mitmproxy runs): the link's gauges."""
        self._connected = False
        self.delivered = 0
        self.on_bundle: Callable[[Bundle], None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        cached = self.cache.load()
        if cached is not None:  # enforce the last known grants before anything else
            self.grants.apply(cached)
            self.allowances.apply(cached)
            log.info("enforcing the cached bundle until the service answers", extra={"event": {
                "event": "bundle-cached", "version": cached.version,
                "grants": len(cached.grants)}})

    @classmethod
    def from_settings(cls, settings: Settings, *, now: Callable[[], datetime] = _utcnow,
                      policy_version: Callable[[], str] | None = None) -> GatewaySync:
        return cls(settings.public_service_url, settings.var_dir,
                   token=settings.gateway_token.get_secret_value(),
                   gateway=settings.gateway_name, now=now, policy_version=policy_version)

    @property
    def version(self) -> int | None:
        bundle = self.grants.bundle
        return bundle.version if bundle is not None else None

    @property
    def spool_depth(self) -> int:
        return self.spool.depth

    @property
    def connected(self) -> bool:
        """Whether the event stream from the service is up."""
        return self._connected

    @connected.setter
    def connected(self, value: bool) -> None:
        self._connected = value
        if self.metrics is not None:
            self.metrics.stream_connected.set(1 if value else 0)

    def _synced(self) -> None:
        """The service just confirmed the bundle in force (pulled, or heard on the stream)."""
        if self.metrics is not None:
            self.metrics.synced()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._tasks:
            return
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers["User-Agent"] = f"sargs-gateway/{self.gateway}"
        self._session = aiohttp.ClientSession(headers=headers)
        self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._follow()), loop.create_task(self._deliver())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await asyncio.to_thread(self.spool.flush)
        if self._session is not None:
            await self._session.close()
            self._session = None
        self.connected = False

    # mitmproxy hooks
    def running(self) -> None:
        metrics = ctx.master.addons.get("gatewaymetrics")  # type: ignore[no-untyped-call]
        if isinstance(metrics, GatewayMetrics):
            self.metrics = metrics
            if self.grants.bundle is not None:
                metrics.bundle_loaded()
            metrics.spool_depth.set_function(lambda: self.spool.depth)
            metrics.stream_connected.set(1 if self.connected else 0)
        asyncio.get_running_loop().create_task(self.start())

    async def done(self) -> None:
        await self.stop()

    def response(self, flow: http.HTTPFlow) -> None:
        """Spool an event for a decided flow that matters, once per flow (a flow may end
        in ``response`` and then ``error``)."""
        record = peek(flow)
        if record is None or record.decision is None or record.recorded:
            return
        record.recorded = True
        decision = record.decision
        if (decision.allowed and record.refused is None and decision.grant is None
                and not record.findings):
            return  # allowed by role, nothing found: never an event (EventMaker.make)
        policy = self.policy_version() if self.policy_version is not None else ""
        event = self.events.make(record, host=record.host or flow.request.pretty_host,
                                 path=flow.request.path, policy=policy, at=self.now())
        if event is not None:
            self.record(event)

    error = response

    # -- events ----------------------------------------------------------------------------

    def record(self, event: dict[str, Any]) -> None:
        """Spool an event: appended to the in-memory batch, which the delivery task writes
        out every ``FLUSH_INTERVAL`` (sooner once ``FLUSH_EVENTS`` are waiting)."""
        spool = self.spool
        if not spool.add(event):
            if spool.dropped in (1, 10, 100, 1000):
                log.error("event spool full: events dropped", extra={"event": {
                    "event": "spool-full", "max_events": spool.max_events,
                    "dropped": spool.dropped}})
        elif spool.buffered == FLUSH_EVENTS:
            self._wake.set()

    def login_failed(self, failure: dict[str, Any]) -> None:
        """Spool a failed proxy login (``Identifier.on_failure``): the user name tried, the
        client address and the limiter's count; the password never reaches this point. The
        service records it as a ``login-failed`` audit entry (``via: gateway``)."""
        self.record(self.events.login_failed(
            user=failure.get("user"), address=str(failure.get("address", "")),
            count=int(failure.get("count", 1)), at=self.now()))

    # -- following the bundle --------------------------------------------------------------

    async def call(self, method: str, path: str, *, user: str, body: bytes | None = None,
                   headers: dict[str, str] | None = None, seconds: float = 15.0
                   ) -> tuple[int, bytes]:
        """One request to the service for ``user`` on this gateway's session (its token;
        the user in ``X-Sargs-User``, which the service believes only with the token):
        ``(status, body)`` within ``seconds``. Raises ``aiohttp.ClientError``,
        ``TimeoutError`` or ``OSError`` when the service cannot be reached, ``RuntimeError``
        before ``start``."""
        session = self._session_or_fail()
        async with session.request(
                method, self.service_url + path, data=body, allow_redirects=False,
                headers={"X-Sargs-User": user, **(headers or {})},
                timeout=aiohttp.ClientTimeout(total=seconds)) as answer:
            return answer.status, await answer.read()

    def _session_or_fail(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("GatewaySync is not started")
        return self._session

    async def pull(self, *, force: bool = False) -> bool:
        """Fetch the bundle; apply and cache it when new. Returns whether it changed."""
        session = self._session_or_fail()
        current = self.grants.bundle
        headers = {"If-None-Match": current.etag} if current is not None and current.etag else {}
        async with session.get(self.service_url + BUNDLE_PATH, headers=headers,
                               timeout=aiohttp.ClientTimeout(total=10)) as resp:
            if resp.status == 304:
                return False
            resp.raise_for_status()
            bundle = parse_bundle(await resp.json(), resp.headers.get("ETag", ""))
        if current is not None and bundle.version < current.version and not force:
            return False  # an older read (a lagging node behind a load balancer)
        self.grants.apply(bundle)
        self.allowances.apply(bundle)
        await asyncio.to_thread(self.cache.save, bundle)
        if self.metrics is not None:
            self.metrics.bundle_loaded()
        if self.on_bundle is not None:
            self.on_bundle(bundle)
        log.info("bundle applied", extra={"event": {
            "event": "bundle-applied", "version": bundle.version, "grants": len(bundle.grants)}})
        return True

    async def _follow(self) -> None:
        delay = BACKOFF_MIN
        while True:
            try:
                async for version in self._stream():
                    delay = BACKOFF_MIN
                    current = self.version
                    if current is None or version != current:
                        await self.pull(force=current is not None and version < current)
                    self._synced()
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as exc:
                if isinstance(exc, aiohttp.ClientResponseError) and exc.status == 401:
                    if delay == BACKOFF_MIN:
                        log.error("the service refused this gateway's token: set the same "
                                  "SARGS_GATEWAY_TOKEN on gateways and service nodes",
                                  extra={"event": {"event": "sync-unauthorized",
                                                   "service": self.service_url}})
                elif self.connected or delay == BACKOFF_MIN:
                    log.warning("service unreachable; enforcing the bundle in force",
                                extra={"event": {
                                    "event": "sync-unreachable", "service": self.service_url,
                                    "error": str(exc) or type(exc).__name__,
                                    "version": self.version}})
            finally:
                self.connected = False
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, BACKOFF_MAX)

    async def _stream(self) -> AsyncIterator[int]:
        """Versions announced by the service's event stream (the first is the current one)."""
        session = self._session_or_fail()
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5,
                                        sock_read=STREAM_READ_TIMEOUT)
        async with session.get(self.service_url + EVENTS_STREAM_PATH, timeout=timeout,
                               headers={"Accept": "text/event-stream"}) as resp:
            resp.raise_for_status()
            self.connected = True
            event, data = "message", ""
            async for raw in resp.content:
                line = raw.decode("utf-8").rstrip("\r\n")
                if line.startswith(":"):  # heartbeat: still connected, nothing new
                    self._synced()
                    continue
                if line:
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if name == "event":
                        event = value
                    elif name == "data":
                        data = f"{data}\n{value}" if data else value
                    continue
                if event == "version" and data:
                    version = json.loads(data).get("version")
                    if isinstance(version, int):
                        yield version
                event, data = "message", ""

    # -- delivering events -----------------------------------------------------------------

    async def _deliver(self) -> None:
        delay = BACKOFF_MIN
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FLUSH_INTERVAL)
            self._wake.clear()
            try:
                if self.spool.buffered:
                    await asyncio.to_thread(self.spool.flush)
                if not self.spool.depth:
                    continue
                await self.deliver()
                if delay > BACKOFF_MIN:
                    log.info("event delivery resumed", extra={"event": {
                        "event": "delivery-resumed", "spool_depth": self.spool.depth}})
                delay = BACKOFF_MIN
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                if delay == BACKOFF_MIN:  # once per outage, not at every retry
                    log.warning("event delivery failed; events kept in the spool",
                                extra={"event": {
                                    "event": "delivery-failed",
                                    "error": str(exc) or type(exc).__name__,
                                    "spool_depth": self.spool.depth}})
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, BACKOFF_MAX)

    async def deliver(self) -> int:
        """Send what is spooled, oldest first, and forget it once acknowledged: segments
        from disk (left by an earlier run, or sealed when full), then the active segment's
        events from memory, just as they were written. Raises on the first failure (what
        is left stays spooled; a batch sent twice is recorded once by the service)."""
        sent = 0
        for segment in self.spool.sealed():
            events = await asyncio.to_thread(self.spool.read, segment)
            for start in range(0, len(events), DELIVERY_BATCH):
                await self._post(events[start:start + DELIVERY_BATCH])
            await asyncio.to_thread(self.spool.remove, segment)
            sent += len(events)
            self.delivered += len(events)
        active, events = self.spool.pending()
        if active is None:
            return sent
        done = 0
        try:
            for start in range(0, len(events), DELIVERY_BATCH):
                batch = events[start:start + DELIVERY_BATCH]
                await self._post(batch)
                done += len(batch)
        finally:
            self.spool.delivered(active, done)
            sent += done
            self.delivered += done
        return sent

    async def _post(self, events: list[dict[str, Any]]) -> None:
        session = self._session_or_fail()
        async with session.post(self.service_url + EVENTS_PATH,
                                json={"gateway": self.gateway, "events": events},
                                timeout=aiohttp.ClientTimeout(total=30)) as resp:
            if resp.status == 422:  # the service will never take this batch: keep it aside
                detail = await resp.text()
                log.error("the service refused events; moved aside", extra={"event": {
                    "event": "events-rejected", "count": len(events), "detail": detail}})
                await asyncio.to_thread(self._set_aside, events)
                return
            resp.raise_for_status()

    def _set_aside(self, events: list[dict[str, Any]]) -> None:
        rejected = self.spool.directory / "rejected"
        rejected.mkdir(exist_ok=True)
        name = rejected / f"{int(time.time() * 1000)}-{uuid.uuid4().hex[:8]}.jsonl"
        atomic_write(name, "".join(json.dumps(e) + "\n" for e in events).encode())

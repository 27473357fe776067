"""What gateways need from the service: the grant bundle, its change announcements, and
the endpoint their decision events are delivered to (docs/scaling.md).

- ``GET /api/v1/bundle``: ``{version, policy, digest, generated_at, grants: [{id, user,
  platform, action, expires_at}], allowances: [{id, user, platform, text_hash, kind, rules,
  issued_by, issued_at, expires_at}]}`` — ``version`` is the store's change sequence, read
  in the same transaction as the grants and the unused allowances (``allowances.py``).
  ETag ``"<version>-<digest>"``; ``If-None-Match`` gets 304.
- ``GET /api/v1/bundle/events``: server-sent events. ``event: version`` with ``data:
  {"version": N, "digest": …}`` at once and on every change; a ``: ping`` comment every
  10 s. ``?after=N`` instead long-polls: the answer (JSON ``{"version", "digest"}``) comes
  as soon as the version differs from N, or after ``wait`` seconds (default 25).
- ``POST /api/v1/events``: ``{"gateway": name, "events": [{id, kind, at, user, platform,
  details}]}`` (at most 1000) → 200 ``{"received": n, "new": k}``. Ids already recorded
  are skipped, so a batch sent again is recorded once. A ``login-failed`` event (a wrong
  proxy password at the gateway) is recorded as every failed login is: the name tried,
  ``details`` {address, via: "gateway", count}.

Changes made on any node reach every node through the database: a ``Bundler`` task polls
``current_sequence()`` (one primary-key read) every 250 ms and wakes the waiting streams.
The same task runs ``expire_due`` when the earliest grant's time is up (and every minute
as a safety net), so expiries are audited and announced; gateways do not wait for it,
they compare ``expires_at`` with their clock at every decision.

Gateways authenticate with ``Authorization: Bearer <token>`` (compared in constant time):
``SARGS_GATEWAY_TOKEN``, else the one generated into ``VAR_DIR/gateway.token``
(``proxy/gatewaytoken.py``). No address is trusted, loopback included: a request relayed
to the service from its own host (by the gateway, or by anything else running there)
proves nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from proxy.gatewaytoken import gateway_token
from proxy.runtime import PolicyState
from proxy.service import keys
from proxy.service.errors import json_error
from proxy.store import InvalidInput, Store, StoreError
from proxy.store import events as store_events
from proxy.store import grants as store_grants

log = logging.getLogger("sargs.service.bundle")

POLL_INTERVAL = 0.25
"""Seconds between reads of the change sequence (changes made by other nodes)."""
EXPIRY_SWEEP = 60.0
"""``expire_due`` runs at least this often, besides when the earliest grant is due."""
HEARTBEAT = 10.0
LONG_POLL_WAIT = 25.0
MAX_EVENTS_BODY = 8 * 1024 * 1024
MAX_BATCH = 1000

routes = web.RouteTableDef()


# --- the change watcher ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Version:
    sequence: int
    digest: str

    def json(self) -> dict[str, Any]:
        return {"version": self.sequence, "digest": self.digest}


class Bundler:
    """Knows the current bundle version and wakes everyone waiting for a new one."""

    def __init__(self, store: Store | None = None, policy: PolicyState | None = None, *,
                 poll_interval: float = POLL_INTERVAL) -> None:
        self._store = store
        self._policy = policy
        self.poll_interval = poll_interval
        self.current: Version | None = None
        self.next_expiry: datetime | None = None
        self.closing = asyncio.Event()
        self._changed = asyncio.Event()
        self._cache: tuple[Version, bytes] | None = None
        self._last_sweep = 0.0

    def bind(self, store: Store, policy: PolicyState) -> None:
        self._store, self._policy = store, policy

    @property
    def bound(self) -> bool:
        return self._store is not None

    @property
    def store(self) -> Store:
        assert self._store is not None, "bind() the store first"
        return self._store

    @property
    def policy(self) -> PolicyState:
        assert self._policy is not None, "bind() the policy first"
        return self._policy

    def _announce(self, version: Version) -> None:
        if version != self.current:
            self.current = version
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()

    async def refresh(self) -> bool:
        """Read the change sequence now; announce it when it moved. Returns whether the
        sequence moved."""
        sequence = await asyncio.to_thread(store_grants.current_sequence, self.store)
        version = Version(sequence, self.policy.current.loaded.digest)
        moved = self.current is None or version.sequence != self.current.sequence
        if moved:
            snap = await asyncio.to_thread(store_grants.snapshot, self.store)
            self.next_expiry = min((g.expires_at for g in snap.grants), default=None)
        self._announce(version)
        return moved

    async def sweep(self, now: datetime | None = None) -> int:
        """Mark grants past their expiry as expired (audited; bumps the version)."""
        expired = await asyncio.to_thread(store_grants.expire_due, self.store, now)
        self._last_sweep = asyncio.get_running_loop().time()
        for grant in expired:
            log.info("grant %s of %s on %s expired", grant.id, grant.user, grant.platform)
        return len(expired)

    async def run(self) -> None:
        """Poll for changes until ``closing`` is set; never gives up on database errors.

        Store calls run in threads and are awaited to the end (a cancelled thread call
        would keep its connection past the store's closing)."""
        loop = asyncio.get_running_loop()
        failing = False
        while not self.closing.is_set():
            try:
                moved = await self.refresh()
                now = datetime.now(UTC)
                # A change may bring a grant already past its time (approved late, or
                # clocks apart): sweep after every change, when the earliest is due, and
                # every EXPIRY_SWEEP seconds.
                due = moved or (self.next_expiry is not None and self.next_expiry <= now)
                if due or loop.time() - self._last_sweep >= EXPIRY_SWEEP:
                    if await self.sweep(now):
                        await self.refresh()  # re-reads next_expiry after the bump
                    elif self.next_expiry is not None and self.next_expiry <= now:
                        self.next_expiry = None  # someone else expired it: no hot loop
                if failing:
                    log.info("database reachable again")
                failing = False
            except Exception as exc:
                if not failing:
                    log.error("cannot read the change sequence: %s", exc)
                failing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), self.poll_interval)

    async def wait(self, after: Version | int | None, seconds: float) -> Version | None:
        """The current version once it differs from ``after`` (or None after ``seconds``
        or when the service is closing)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self.closing.is_set():
            current = self.current
            if current is not None and not _same(current, after):
                return current
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            changed = asyncio.ensure_future(self._changed.wait())
            closing = asyncio.ensure_future(self.closing.wait())
            try:
                await asyncio.wait({changed, closing}, timeout=remaining,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (changed, closing):
                    task.cancel()
        return None

    async def body(self) -> tuple[Version, bytes]:
        """The bundle as JSON bytes, read fresh from the store (cached per version)."""
        snap = await asyncio.to_thread(store_grants.snapshot, self.store)
        compiled = self.policy.current
        version = Version(snap.sequence, compiled.loaded.digest)
        cached = self._cache
        if cached is not None and cached[0] == version:
            return cached
        data = {
            "version": snap.sequence,
            "policy": compiled.version,
            "digest": compiled.loaded.digest,
            "generated_at": datetime.now(UTC).isoformat(),
            "grants": [{"id": g.id, "user": g.user, "platform": g.platform,
                        "action": g.action, "expires_at": g.expires_at.isoformat()}
                       for g in snap.grants],
            "allowances": [a.to_json() for a in snap.allowances],
        }
        body = json.dumps(data, separators=(",", ":")).encode()
        self._cache = (version, body)
        return version, body


def _same(current: Version, after: Version | int | None) -> bool:
    if after is None:
        return False
    if isinstance(after, int):
        return current.sequence == after
    return current == after


BUNDLER = web.AppKey("bundler", Bundler)


# --- authentication -------------------------------------------------------------------------


GATEWAY_TOKEN = web.AppKey("sargs.gateway_token", bytes)


def gateway_authorized(request: web.Request) -> bool:
    """The request carries the gateways' bearer token (constant-time compare)."""
    token = request.app[GATEWAY_TOKEN]
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(value.strip().encode(), token)


def _refuse() -> web.Response:
    response = json_error(401, "gateway token missing or wrong (Authorization: Bearer …)")
    response.headers["WWW-Authenticate"] = 'Bearer realm="sargs-gateways"'
    return response


# --- the bundle -----------------------------------------------------------------------------


def _etag(version: Version) -> str:
    return f'"{version.sequence}-{version.digest[:16]}"'


@routes.get("/api/v1/bundle")
async def get_bundle(request: web.Request) -> web.Response:
    if not gateway_authorized(request):
        return _refuse()
    bundler = request.app[BUNDLER]
    if not bundler.bound:
        return json_error(503, "bundle unavailable: this service has no store")
    try:
        version, body = await bundler.body()
    except Exception as exc:  # the database is down: gateways keep what they have
        log.error("bundle unavailable: %s", exc)
        return json_error(503, "bundle unavailable: the database cannot be read")
    etag = _etag(version)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag in {t.strip() for t in request.headers.get("If-None-Match", "").split(",")}:
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type="application/json", headers=headers)


class _After(BaseModel):
    model_config = ConfigDict(extra="ignore")
    after: int | None = Field(default=None, ge=0)
    wait: float = Field(default=LONG_POLL_WAIT, ge=0, le=60)


@routes.get("/api/v1/bundle/events")
async def bundle_events(request: web.Request) -> web.StreamResponse:
    if not gateway_authorized(request):
        return _refuse()
    bundler = request.app[BUNDLER]
    if not bundler.bound:
        return json_error(503, "bundle unavailable: this service has no store")
    query = _After.model_validate(dict(request.query))
    if query.after is not None:  # long-poll
        version = await bundler.wait(query.after, query.wait) or bundler.current
        if version is None:
            return json_error(503, "bundle version unknown yet: the database cannot be read")
        return web.json_response(version.json())
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no"})
    await response.prepare(request)
    sent: Version | None = None
    with contextlib.suppress(ConnectionResetError):  # the gateway went away
        while not bundler.closing.is_set():
            version = await bundler.wait(sent, HEARTBEAT)
            if version is None:
                await response.write(b": ping\n\n")
                continue
            sent = version
            await response.write(f"event: version\ndata: {json.dumps(version.json())}\n\n"
                                 .encode())
    return response


# --- events from gateways -------------------------------------------------------------------


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    kind: Literal["block", "warn", "grant-use", "policy-reload", "login-failed",
                  "allowance-use", "post-simulated"]
    at: AwareDatetime
    user: str | None = Field(default=None, max_length=128)
    platform: str | None = Field(default=None, max_length=64)
    details: dict[str, Any] = Field(default_factory=dict)


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gateway: str = Field(min_length=1, max_length=128)
    events: list[EventIn] = Field(max_length=MAX_BATCH)


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    return body


def _details(event: EventIn) -> dict[str, Any]:
    """A failed proxy login is recorded in the shape every part records one in
    (``audit.record_failed_login``: address, via, count; never a password), whatever else
    the gateway sent."""
    if event.kind != "login-failed":
        return event.details
    address, count = event.details.get("address"), event.details.get("count")
    if not isinstance(address, str) or not isinstance(count, int) or isinstance(count, bool):
        raise InvalidInput("details", "a login-failed event needs address (text) and count")
    return {"address": address[:64], "via": "gateway", "count": count}


@routes.post("/api/v1/events")
async def post_events(request: web.Request) -> web.Response:
    """Record a gateway's batch once per event id; 200 only after the commit."""
    if not gateway_authorized(request):
        return _refuse()
    # Gateways send batches bigger than the API's usual body limit: read with our own.
    batch = EventBatch.model_validate_json(await _read_body(request, MAX_EVENTS_BODY))
    store = request.app.get(keys.STORE)
    if store is None:
        return json_error(503, "events cannot be recorded: this service has no store")
    try:
        items = [store_events.Event(id=e.id, kind=e.kind, at=e.at, user=e.user,
                                    platform=e.platform, actor=batch.gateway,
                                    details=_details(e))
                 for e in batch.events]
        new = await asyncio.to_thread(store_events.record_events, store, items)
    except InvalidInput as exc:
        return json_error(422, f"invalid request: {exc.field}",
                          details=[{"field": exc.field, "message": exc.message}])
    except StoreError as exc:
        return json_error(422, str(exc))
    return web.json_response({"received": len(items), "new": new})


# --- wiring -------------------------------------------------------------------------------


async def _bundler_ctx(app: web.Application) -> AsyncIterator[None]:
    bundler = app[BUNDLER]
    store = app.get(keys.STORE)
    if store is None:  # a service without a store (some tests): no bundle to offer
        log.warning("no store: /api/v1/bundle and /api/v1/events are unavailable")
        yield
        bundler.closing.set()
        return
    bundler.bind(store, app[keys.POLICY])
    task = asyncio.create_task(bundler.run())
    yield
    bundler.closing.set()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await asyncio.wait_for(task, 30)  # lets a running store call finish


async def _closing(app: web.Application) -> None:
    bundler = app.get(BUNDLER)
    if bundler is not None:
        bundler.closing.set()  # end event streams before the server waits for handlers


def setup(app: web.Application) -> None:
    """Routes and the change watcher (needs ``keys.STORE`` set before startup)."""
    app[BUNDLER] = Bundler()
    app[GATEWAY_TOKEN] = gateway_token(app[keys.SETTINGS]).encode()
    app.add_routes(routes)
    app.cleanup_ctx.append(_bundler_ctx)
    app.on_shutdown.append(_closing)

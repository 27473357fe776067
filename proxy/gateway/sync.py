"""The gateway's link to the service: the grant bundle, its disk cache, and the event spool.

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
import os
import random
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from mitmproxy import ctx, http

from proxy.policy.decide import Decision, Grant, RequestKind, Subject
from proxy.policy.model import Action
from proxy.settings import Settings

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
SEGMENT_EVENTS = 10_000
"""An active spool segment is sealed (and a new one started) at this many events."""
MAX_SPOOL_EVENTS = 1_000_000
"""Beyond this many undelivered events new ones are dropped (and counted) to protect the disk."""
REPEAT_SECONDS = 60.0
"""Refused API/media calls and uses of a grant are reported once per this many seconds
per user, platform and clause (a blocked page fires dozens of them); page loads and posts
are reported every time."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --- the bundle (pure) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bundle:
    version: int
    """The service's change sequence when the bundle was read."""
    policy: str
    """The policy version the service runs."""
    digest: str
    grants: tuple[Grant, ...]
    etag: str = ""


def _time(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{field}: expected an ISO-8601 time")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"{field}: needs a time zone")
    return parsed


def parse_bundle(data: Any, etag: str = "") -> Bundle:
    """A bundle from its JSON form; ``ValueError`` naming the field when malformed."""
    if not isinstance(data, Mapping):
        raise ValueError("bundle: expected an object")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError("version: expected a non-negative integer")
    items = data.get("grants")
    if not isinstance(items, list):
        raise ValueError("grants: expected a list")
    grants = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ValueError(f"grants[{i}]: expected an object")
        try:
            grants.append(Grant(
                id=str(item["id"]), user=str(item["user"]), platform=str(item["platform"]),
                action=Action(item["action"]),
                expires_at=_time(item["expires_at"], f"grants[{i}].expires_at"),
            ))
        except KeyError as exc:
            raise ValueError(f"grants[{i}].{exc.args[0]}: missing") from None
    return Bundle(version, str(data.get("policy", "")), str(data.get("digest", "")),
                  tuple(grants), etag)


def grant_json(grant: Grant) -> dict[str, str]:
    return {"id": grant.id, "user": grant.user, "platform": grant.platform,
            "action": str(grant.action), "expires_at": grant.expires_at.isoformat()}


def bundle_json(bundle: Bundle) -> dict[str, Any]:
    return {"version": bundle.version, "policy": bundle.policy, "digest": bundle.digest,
            "grants": [grant_json(g) for g in bundle.grants], "etag": bundle.etag}


class BundleGrants:
    """The grants of the bundle in force, by user: the access addon's ``GrantSource``."""

    def __init__(self, now: Callable[[], datetime] = _utcnow) -> None:
        self.now = now
        self.bundle: Bundle | None = None
        self._by_user: dict[str, tuple[Grant, ...]] = {}

    def apply(self, bundle: Bundle) -> None:
        by_user: dict[str, list[Grant]] = {}
        for grant in bundle.grants:
            by_user.setdefault(grant.user, []).append(grant)
        self._by_user = {user: tuple(gs) for user, gs in by_user.items()}  # one swap
        self.bundle = bundle

    def active(self, user: str) -> Sequence[Grant]:
        grants = self._by_user.get(user)
        if not grants:
            return ()
        now = self.now()
        return tuple(g for g in grants if g.expires_at > now)


class BundleCache:
    """The last bundle on disk, so a restarted gateway enforces it without the service."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Bundle | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return parse_bundle(data, str(data.get("etag", "")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.error("ignoring unreadable bundle cache %s: %s", self.path, exc)
            return None

    def save(self, bundle: Bundle) -> None:
        _atomic_write(self.path, json.dumps(bundle_json(bundle)).encode())


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- the spool -----------------------------------------------------------------------------


class Spool:
    """Undelivered events on disk: JSON lines in numbered segment files, oldest first.

    ``add`` only appends to an in-memory batch (it runs in a hook: O(1), no lock held
    while anything is written). ``flush`` appends the batch to the active segment with one
    write and one fsync (call it from a thread); the events just written stay in memory,
    so ``pending`` hands them to delivery without reading the file back, and ``delivered``
    forgets them (deleting the segment once all of it was acknowledged). Segments left by
    an earlier run, or sealed after a failure, are read from disk (``sealed``, ``read``).
    A restarted gateway never appends to an old segment, so a line torn by a crash can
    only be a segment's last; it is skipped when read.
    """

    def __init__(self, directory: Path, max_events: int = MAX_SPOOL_EVENTS) -> None:
        self.directory = directory
        self.max_events = max_events
        self.dropped = 0
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        """Guards the counters and the batch swap; never held during disk I/O."""
        self._flushing = threading.Lock()
        """One flush at a time (the delivery task's, or the one at stop)."""
        self._buffer: list[dict[str, Any]] = []
        self._writing = 0
        """Events taken from the batch, not yet counted on disk."""
        self._counts: dict[Path, int] = {p: len(self.read(p)) for p in self._segments()}
        self._on_disk = sum(self._counts.values())
        existing = [int(p.stem) for p in self._counts]
        self._next = max(existing, default=0) + 1
        self._active: Path | None = None
        self._memory: list[dict[str, Any]] = []
        """The active segment's undelivered events, as written (delivery reads these)."""

    def _segments(self) -> list[Path]:
        return sorted(p for p in self.directory.glob("*.jsonl") if p.stem.isdigit())

    @property
    def depth(self) -> int:
        """Events waiting for the service (buffered or on disk)."""
        with self._lock:
            return self._on_disk + self._writing + len(self._buffer)

    @property
    def buffered(self) -> int:
        """Events in the in-memory batch, not yet on disk."""
        return len(self._buffer)

    def add(self, event: dict[str, Any]) -> bool:
        """Buffer an event; ``False`` (and counted in ``dropped``) when the spool is full."""
        with self._lock:
            if self._on_disk + self._writing + len(self._buffer) >= self.max_events:
                self.dropped += 1
                return False
            self._buffer.append(event)
            return True

    def flush(self) -> int:
        """Append buffered events to the active segment and fsync it; return how many."""
        with self._flushing:
            with self._lock:
                events, self._buffer = self._buffer, []
                self._writing += len(events)
                active = self._active
                if active is not None and self._counts.get(active, 0) >= SEGMENT_EVENTS:
                    active = None  # sealed: delivered from disk from now on
            if not events:
                return 0
            try:
                new = active is None
                if active is None:
                    active = self.directory / f"{self._next:012d}.jsonl"
                    self._next += 1
                dumps = json.dumps
                data = "".join([dumps(e, separators=(",", ":")) + "\n" for e in events])
                with open(active, "ab") as f:
                    f.write(data.encode())
                    f.flush()
                    os.fsync(f.fileno())
                if new:
                    _fsync_dir(self.directory)
            except BaseException:
                with self._lock:  # not written: back to the front of the batch
                    self._buffer[:0] = events
                    self._writing -= len(events)
                raise
            with self._lock:
                self._writing -= len(events)
                self._on_disk += len(events)
                if active != self._active:
                    self._active, self._memory = active, []
                recreated = not new and active not in self._counts  # removed meanwhile
                self._counts[active] = self._counts.get(active, 0) + len(events)
                self._memory.extend(events)
            if recreated:
                _fsync_dir(self.directory)
            return len(events)

    def seal(self) -> None:
        """Start a new segment on the next flush; the active one is then read from disk."""
        with self._lock:
            self._active, self._memory = None, []

    def sealed(self) -> list[Path]:
        """Segments to deliver from disk, oldest first (all but the active one)."""
        with self._lock:
            return sorted(p for p in self._counts if p != self._active)

    def pending(self) -> tuple[Path | None, list[dict[str, Any]]]:
        """The active segment and its undelivered events, from memory."""
        with self._lock:
            return self._active, list(self._memory)

    def delivered(self, path: Path, count: int) -> None:
        """The first ``count`` pending events of the active segment ``path`` were
        acknowledged: forget them. A segment all delivered is emptied for the next batch
        when more events wait (no new file: no directory fsync), else deleted. Either lost
        to a crash means events sent again, which the service records once."""
        with self._lock:
            if path != self._active or count <= 0:
                return
            del self._memory[:count]
            left = len(self._memory)
            self._on_disk -= self._counts[path] - left
            self._counts[path] = left
            if left:
                return
            if not self._flushing.acquire(blocking=False):  # a flush appends to it now
                self._active = None  # sealed: read from disk later, and sent again
                return
        try:
            with self._lock:
                reuse = bool(self._buffer)
                if not reuse:
                    self._active = None
                    del self._counts[path]
            if reuse:
                os.truncate(path, 0)
            else:
                path.unlink(missing_ok=True)
        finally:
            self._flushing.release()

    @staticmethod
    def read(path: Path) -> list[dict[str, Any]]:
        events = []
        with open(path, "rb") as f:
            for line in f:
                try:
                    event = json.loads(line)
                except ValueError:
                    log.warning("skipping a torn line in %s", path)
                    continue
                if isinstance(event, dict) and isinstance(event.get("id"), str):
                    events.append(event)
        return events

    def remove(self, path: Path) -> None:
        """Forget a delivered segment."""
        with self._lock:
            path.unlink(missing_ok=True)
            self._on_disk -= self._counts.pop(path, 0)
            if path == self._active:
                self._active, self._memory = None, []


# --- which decisions become events (pure) ---------------------------------------------------


def _field(item: Any, name: str) -> str | None:
    value = item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)
    return None if value is None else str(value)


class EventMaker:
    """Turns what the access addon (and the post check) decided about a flow into an event.

    Reported: every refused page load or post, refused API/media calls (once per
    ``REPEAT_SECONDS`` per user, platform and clause), posts with ``warn`` findings, and
    requests allowed only by a grant (once per ``REPEAT_SECONDS`` per grant). Allowed
    requests by role are not events. Details carry rule ids, never text.
    """

    def __init__(self, gateway: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.gateway = gateway
        self.clock = clock
        self._last: dict[tuple[str | None, ...], float] = {}

    def _repeat(self, key: tuple[str | None, ...]) -> bool:
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < REPEAT_SECONDS:
            return True
        if len(self._last) > 50_000:  # bounded: forget entries past their window
            self._last = {k: t for k, t in self._last.items() if now - t < REPEAT_SECONDS}
        self._last[key] = now
        return False

    def make(self, *, decision: Decision, subject: Subject | None, kind: RequestKind | None,
             findings: Iterable[Any], host: str, path: str, policy: str, at: datetime
             ) -> dict[str, Any] | None:
        user = subject.user if subject is not None else None
        found = [{"rule": _field(f, "rule"), "severity": _field(f, "severity")}
                 for f in findings]
        severities = {f["severity"] for f in found}
        request = str(kind) if kind is not None else None
        if not decision.allowed:
            event_kind = "block"
            if kind not in (RequestKind.page, RequestKind.post) and self._repeat(
                    ("block", user, decision.platform, request, str(decision.rule))):
                return None
        elif "block" in severities:
            event_kind = "block"
        elif "warn" in severities:
            event_kind = "warn"
        elif decision.grant is not None:
            event_kind = "grant-use"
            if self._repeat(("grant", user, decision.grant)):
                return None
        else:
            return None
        details: dict[str, Any] = {
            "gateway": self.gateway, "rule": str(decision.rule), "action": str(decision.action),
            "allowed": decision.allowed, "request": request, "host": host,
            "path": path.split("?", 1)[0], "grant": decision.grant, "role": decision.role,
            "policy": policy,
        }
        if found:
            details["findings"] = found
        return {"id": uuid.uuid4().hex, "kind": event_kind, "at": at.isoformat(),
                "user": user, "platform": decision.platform, "details": details}


# --- the addon -----------------------------------------------------------------------------


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
        self.cache = BundleCache(base / "bundle.json")
        self.spool = Spool(base / "spool")
        self.events = EventMaker(gateway)
        self.connected = False
        """Whether the event stream from the service is up."""
        self.delivered = 0
        self.on_bundle: Callable[[Bundle], None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        cached = self.cache.load()
        if cached is not None:  # enforce the last known grants before anything else
            self.grants.apply(cached)
            log.info("enforcing cached bundle version %d (%d grants) until the service answers",
                     cached.version, len(cached.grants))

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
        metrics: Any = ctx.master.addons.get("gatewaymetrics")  # type: ignore[no-untyped-call]
        if metrics is not None:
            previous = self.on_bundle

            def loaded(bundle: Bundle) -> None:
                metrics.bundle_loaded()
                if previous is not None:
                    previous(bundle)

            self.on_bundle = loaded
            if self.grants.bundle is not None:
                metrics.bundle_loaded()
            metrics.spool_depth.set_function(lambda: self.spool.depth)
        asyncio.get_running_loop().create_task(self.start())

    async def done(self) -> None:
        await self.stop()

    def response(self, flow: http.HTTPFlow) -> None:
        self.observe(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self.observe(flow)

    # -- events ----------------------------------------------------------------------------

    def observe(self, flow: http.HTTPFlow) -> None:
        """Spool an event for a decided flow that matters (once per flow)."""
        decision = flow.metadata.get("sargs.decision")
        if not isinstance(decision, Decision) or flow.metadata.get("sargs.sync.seen"):
            return
        flow.metadata["sargs.sync.seen"] = True
        findings = flow.metadata.get("sargs.findings") or ()
        if decision.allowed and decision.grant is None and not findings:
            return  # allowed by role, nothing found: never an event (EventMaker.make)
        policy = self.policy_version() if self.policy_version is not None else ""
        event = self.events.make(
            decision=decision, subject=flow.metadata.get("sargs.identity"),
            kind=flow.metadata.get("sargs.kind"),
            findings=findings,
            host=flow.request.pretty_host, path=flow.request.path,
            policy=policy, at=self.now())
        if event is not None:
            self.record(event)

    def record(self, event: dict[str, Any]) -> None:
        """Spool an event: appended to the in-memory batch, which the delivery task writes
        out every ``FLUSH_INTERVAL`` (sooner once ``FLUSH_EVENTS`` are waiting)."""
        spool = self.spool
        if not spool.add(event):
            if spool.dropped in (1, 10, 100, 1000):
                log.error("event spool full (%d events): %d events dropped",
                          spool.max_events, spool.dropped)
        elif spool.buffered == FLUSH_EVENTS:
            self._wake.set()

    # -- following the bundle --------------------------------------------------------------

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
        await asyncio.to_thread(self.cache.save, bundle)
        if self.on_bundle is not None:
            self.on_bundle(bundle)
        log.info("bundle version %d applied (%d grants)", bundle.version, len(bundle.grants))
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
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as exc:
                if isinstance(exc, aiohttp.ClientResponseError) and exc.status == 401:
                    if delay == BACKOFF_MIN:
                        log.error("the service refused this gateway's token: set the same "
                                  "SARGS_GATEWAY_TOKEN on gateways and service nodes")
                elif self.connected or delay == BACKOFF_MIN:
                    log.warning("service %s unreachable (%s); enforcing bundle %s",
                                self.service_url, exc or type(exc).__name__, self.version)
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
                if line.startswith(":"):
                    continue  # heartbeat
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
                    log.info("event delivery resumed; spool depth %d", self.spool.depth)
                delay = BACKOFF_MIN
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                if delay == BACKOFF_MIN:  # once per outage, not at every retry
                    log.warning("event delivery failed (%s); %d events kept in the spool",
                                exc or type(exc).__name__, self.spool.depth)
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
                log.error("service refused %d events (%s); moved aside", len(events), detail)
                await asyncio.to_thread(self._set_aside, events)
                return
            resp.raise_for_status()

    def _set_aside(self, events: list[dict[str, Any]]) -> None:
        rejected = self.spool.directory / "rejected"
        rejected.mkdir(exist_ok=True)
        name = rejected / f"{int(time.time() * 1000)}-{uuid.uuid4().hex[:8]}.jsonl"
        _atomic_write(name, "".join(json.dumps(e) + "\n" for e in events).encode())

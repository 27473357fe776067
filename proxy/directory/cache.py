"""Directory answers cached per account: at most one directory query per account per TTL.

``GroupCache.resolve(account)`` answers from memory while the entry is fresh; otherwise it
asks the directory in a worker thread (ldap3 is synchronous; the event loop never waits
on the network). Concurrent first requests of one account share one query (single
flight). When the directory cannot be reached:

- an account with a previous answer keeps it (**fail-static**, like the policy bundle):
  the answer is served with ``source="stale"``, the next attempt waits another TTL, a
  warning names the account and the answer's age, ``sargs_directory_failstatic_total``
  counts it and ``sargs_directory_up`` drops to 0;
- an account never seen before gets no answer (``DirectoryUnavailable``; the caller gives
  it no role: fail closed), remembered for ``retry_seconds`` so that a burst of requests
  does not become a burst of connection attempts.

Negative answers (no such account, disabled) are cached for the TTL like positive ones.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from proxy.directory import log_event
from proxy.directory.entries import Account
from proxy.directory.ldap import Directory, DirectoryUnavailable

log = logging.getLogger("sargs.directory")
MAX_ENTRIES = 100_000


class DirectoryMetrics:
    """The directory's Prometheus series (one set per registry)."""

    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        self.lookups = Counter(
            "sargs_directory_lookups", "Directory lookups of an account, by outcome.",
            ["outcome"], registry=registry,
        )
        self.failstatic = Counter(
            "sargs_directory_failstatic",
            "Directory lookups that failed and were answered with the last known groups.",
            registry=registry,
        )
        self.up = Gauge(
            "sargs_directory_up", "1 when the last directory lookup reached the directory.",
            registry=registry,
        )
        self.last_success = Gauge(
            "sargs_directory_last_success_timestamp_seconds",
            "Unix time of the last lookup that reached the directory.", registry=registry,
        )
        self.refused = Counter(
            "sargs_identity_refused",
            "Sign-ons refused, by identity source and reason.", ["source", "reason"],
            registry=registry,
        )
        self._outcomes = {o: self.lookups.labels(o) for o in
                          ("found", "not-found", "disabled", "unavailable")}

    def outcome(self, name: str) -> None:
        self._outcomes[name].inc()


@dataclass(frozen=True, slots=True)
class Resolution:
    account: Account | None
    """None: the directory has no such account."""
    fetched: float
    """``clock`` time of the directory's answer."""
    source: str
    """``directory`` (asked now), ``cache`` (fresh entry) or ``stale`` (fail-static)."""

    def age(self, now: float) -> float:
        return max(0.0, now - self.fetched)


@dataclass(slots=True)
class _Entry:
    account: Account | None
    fetched: float
    refresh_at: float
    reached: bool
    """False: the directory was unreachable and no answer was ever had."""


class GroupCache:
    def __init__(
        self,
        directory: Directory,
        ttl: float,
        *,
        retry_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        metrics: DirectoryMetrics | None = None,
    ) -> None:
        self.directory = directory
        self.ttl = ttl
        self.retry_seconds = retry_seconds
        self.clock = clock
        self.metrics = metrics
        self._entries: dict[str, _Entry] = {}
        self._pending: dict[str, asyncio.Future[Resolution]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, account: str) -> Resolution | None:
        entry = self._entries.get(account)
        if entry is None or not entry.reached:
            return None
        return Resolution(entry.account, entry.fetched, "cache")

    def fresh_for(self, account: str) -> float:
        """Seconds until ``account``'s answer is due for a refresh (0: now, or none)."""
        entry = self._entries.get(account)
        return max(0.0, entry.refresh_at - self.clock()) if entry is not None else 0.0

    async def resolve(self, account: str, principal: str = "") -> Resolution:
        """The directory's answer for ``account``. Raises ``DirectoryUnavailable`` when the
        directory cannot be reached and the account was never resolved."""
        entry = self._entries.get(account)
        if entry is not None and self.clock() < entry.refresh_at:
            if not entry.reached:
                raise DirectoryUnavailable("directory unreachable (retrying later)")
            return Resolution(entry.account, entry.fetched, "cache")
        pending = self._pending.get(account)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Resolution] = asyncio.get_running_loop().create_future()
        self._pending[account] = future
        try:
            result = await self._query(account, principal, entry)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here: waiters re-raise it
            raise
        finally:
            self._pending.pop(account, None)
        future.set_result(result)
        return result

    async def _query(self, account: str, principal: str, entry: _Entry | None) -> Resolution:
        try:
            found = await asyncio.to_thread(self.directory.lookup, account, principal)
        except DirectoryUnavailable as exc:
            now = self.clock()
            if self.metrics:
                self.metrics.outcome("unavailable")
                self.metrics.up.set(0)
            if entry is not None and entry.reached:
                entry.refresh_at = now + self.ttl
                if self.metrics:
                    self.metrics.failstatic.inc()
                log_event(
                    log, logging.WARNING,
                    "directory unreachable; deciding with the last known groups",
                    account=account, age_seconds=round(now - entry.fetched), error=str(exc),
                )
                return Resolution(entry.account, entry.fetched, "stale")
            self._store(account, _Entry(None, now, now + self.retry_seconds, False))
            log_event(
                log, logging.WARNING, "directory unreachable; account never resolved, no role",
                account=account, error=str(exc),
            )
            raise
        now = self.clock()
        if self.metrics:
            self.metrics.up.set(1)
            self.metrics.last_success.set(time.time())
            self.metrics.outcome(
                "not-found" if found is None else "disabled" if found.disabled else "found"
            )
        self._store(account, _Entry(found, now, now + self.ttl, True))
        return Resolution(found, now, "directory")

    def _store(self, account: str, entry: _Entry) -> None:
        self._entries.pop(account, None)
        if len(self._entries) >= MAX_ENTRIES:
            del self._entries[next(iter(self._entries))]  # the least recently refreshed
        self._entries[account] = entry

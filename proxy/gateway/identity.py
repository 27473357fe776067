"""Who is browsing: identity sources for the gateway.

Sources (``policy.identity.sources``) are tried in order:

- ``basic``: a proxy login (``Proxy-Authorization: Basic …``) checked against a
  ``UserDirectory`` (the store's users; an LDAP/AD directory later). A login is verified
  once and then cached for ``policy.identity.login_cache_seconds``, keyed by the sha256 of
  the header value (the password itself is never kept). Failures are cached briefly too,
  to blunt guessing. Verification (argon2, tens of milliseconds) runs in a worker thread,
  never on the event loop. A user changed or removed in the store is seen once the cached
  entry expires: the TTL is the only invalidation (keep it short where that matters).
  A login that is present but wrong is refused (407): it never falls through to the
  address, so the browser asks again.
- ``ip``: the client's source address matched against ``policy.identity.ip_ranges``;
  the roles of every matching range combine.
- ``negotiate``: Kerberos sign-on (``Proxy-Authorization: Negotiate …``), remembered per
  client connection, roles from directory groups (``proxy/gateway/negotiate.py``,
  ``proxy/directory``; docs/identity.md). Only when the gateway has ``negotiate`` set up
  (``SARGS_KERBEROS_REALMS``); otherwise the source is skipped.

When no source identifies the client and ``basic`` or ``negotiate`` is among the sources
(and set up), the gateway asks for a login (407 with one ``Proxy-Authenticate`` per scheme,
in the order of the sources: ``Negotiate``, ``Basic realm="…"``). Otherwise the client is
anonymous (no roles), which the gateway refuses.

Wrong passwords are limited (:class:`LoginLimiter`): per user name and per client
address, ``limit`` failures within ``window`` seconds start a lock that doubles with each
further failure (up to ``cap``); while locked, a login that is not already known good is
answered at once (429 with Retry-After) without asking the directory, so a guesser
cannot make the gateway pay for argon2. Every failure is one JSON line on the
``sargs.auth`` logger (user, client address, count; never the password), goes to
``Identifier.on_failure`` (the event spool, when wired) and counts in
``sargs_gateway_login_failures_total``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import ipaddress
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from mitmproxy import connection
from prometheus_client import Counter

from proxy.directory.negotiate import is_negotiate
from proxy.gateway.negotiate import NegotiateLogins
from proxy.policy.decide import Subject
from proxy.policy.model import Identity

log = logging.getLogger("sargs.auth")

LOGIN_FAILURES = Counter(
    "sargs_gateway_login_failures",
    "Proxy logins refused: a wrong password (wrong) or one not tried because the user or "
    "address is locked after too many (limited).",
    ["outcome"],
    registry=None,  # the gateway's metrics add-on registers it in its own registry
)

FAILURE_CACHE_SECONDS = 2.0
"""How long a failed login stays refused without asking the directory again."""
MAX_CACHED_LOGINS = 20_000


class UserDirectory(Protocol):
    """Checks a user name and password; returns the user's roles, or None when wrong."""

    def verify(self, name: str, password: str) -> frozenset[str] | None: ...


class MemoryDirectory:
    """Users held in memory (tests, demos): ``{name: (password, roles)}``."""

    def __init__(self, users: Mapping[str, tuple[str, Iterable[str]]] | None = None) -> None:
        self.users = {name: (pw, frozenset(roles)) for name, (pw, roles) in (users or {}).items()}
        self.calls = 0

    def add(self, name: str, password: str, roles: Iterable[str]) -> None:
        self.users[name] = (password, frozenset(roles))

    def verify(self, name: str, password: str) -> frozenset[str] | None:
        self.calls += 1
        entry = self.users.get(name)
        if entry is None:
            return None
        import secrets

        if not secrets.compare_digest(entry[0].encode(), password.encode()):
            return None
        return entry[1]


class StoreDirectory:
    """The store's users (argon2 hashes, ``sargs user …``) as a ``UserDirectory``.

    ``verify`` defaults to ``proxy.store.users.verify_password(store, name, password)``,
    which returns a ``User`` (with ``.roles``) or None.
    """

    def __init__(self, store: Any, verify: Callable[[Any, str, str], Any] | None = None) -> None:
        if verify is None:
            from proxy.store.users import verify_password

            verify = verify_password
        self.store = store
        self._verify = verify

    def verify(self, name: str, password: str) -> frozenset[str] | None:
        user = self._verify(self.store, name, password)
        if user is None:
            return None
        return frozenset(user.roles)


# --- pure parsers --------------------------------------------------------------------------


class BasicCredentials(NamedTuple):
    user: str
    password: str


def parse_basic(header: str | None) -> BasicCredentials | None:
    """``Basic dXNlcjpwdw==`` → ``("user", "pw")``; anything else → None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        return None
    return BasicCredentials(user, password)


def client_ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A peer address as an IP (IPv4-mapped IPv6 unwrapped); None when not an address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class IpRanges:
    """``policy.identity.ip_ranges`` compiled; ``roles_for(address)`` combines all matches."""

    def __init__(self, identity: Identity) -> None:
        self._ranges = [
            (ipaddress.ip_network(r.cidr, strict=False), frozenset(r.roles))
            for r in identity.ip_ranges
        ]

    def roles_for(self, address: str) -> frozenset[str]:
        ip = client_ip(address)
        if ip is None:
            return frozenset()
        roles: frozenset[str] = frozenset()
        for network, network_roles in self._ranges:
            if ip.version == network.version and ip in network:
                roles |= network_roles
        return roles


# --- identification ------------------------------------------------------------------------


class Outcome(NamedTuple):
    """A subject, or ``challenge`` (ask for a login) with a reason key for the message."""

    subject: Subject | None
    challenge: str | None = None
    """``login-required`` or ``login-failed`` when the client must (re)authenticate."""
    retry_after: int = 0
    """Seconds until the user or address may try again (too many wrong passwords)."""


@dataclass
class _Tally:
    count: int
    first: float
    until: float = 0.0


class LoginLimiter:
    """Failed logins per user name and per client address, with a doubling lock."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        limit: int = 5,
        window: float = 900.0,
        base: float = 2.0,
        cap: float = 900.0,
        max_entries: int = 50_000,
    ) -> None:
        self.clock = clock
        self.limit, self.window, self.base, self.cap = limit, window, base, cap
        self.max_entries = max_entries
        self._tallies: dict[tuple[str, str], _Tally] = {}

    @staticmethod
    def _keys(user: str | None, address: str) -> list[tuple[str, str]]:
        keys = [("address", address)]
        if user:
            keys.append(("user", user.casefold()))
        return keys

    def locked_for(self, user: str | None, address: str) -> float:
        """Seconds the user or the address must still wait (0: may try now)."""
        now = self.clock()
        waits = [
            tally.until - now
            for key in self._keys(user, address)
            if (tally := self._tallies.get(key)) is not None
        ]
        return max([0.0, *waits])

    def failed(self, user: str | None, address: str) -> int:
        """Count a failure; returns the highest count of the user's and the address's."""
        now = self.clock()
        if len(self._tallies) >= self.max_entries:
            for key in [k for k, t in self._tallies.items()
                        if t.until <= now and now - t.first > self.window]:
                del self._tallies[key]
        highest = 0
        for key in self._keys(user, address):
            tally = self._tallies.get(key)
            if tally is None or (now - tally.first > self.window and tally.until <= now):
                tally = self._tallies[key] = _Tally(0, now)
            tally.count += 1
            if tally.count >= self.limit:
                tally.until = now + min(self.cap, self.base * 2 ** (tally.count - self.limit))
            highest = max(highest, tally.count)
        return highest

    def clear(self) -> None:
        """Forget every failure (an administrator's unlock)."""
        self._tallies.clear()

    def succeeded(self, user: str | None, address: str) -> None:
        """A correct login clears the user's tally (not the address's: one good account
        must not reset a guesser working through others)."""
        if user:
            self._tallies.pop(("user", user.casefold()), None)


ANONYMOUS = Subject(None, frozenset(), "none")


@dataclass
class _Entry:
    expires: float
    subject: Subject | None


def _key(header: str) -> str:
    """The login cache's key: the header's sha256 (the password itself is never kept)."""
    return hashlib.sha256(header.encode("utf-8", "surrogateescape")).hexdigest()


class Identifier:
    """Resolves a request's identity from its proxy login and source address."""

    def __init__(
        self,
        directory: UserDirectory | None,
        clock: Callable[[], float] = time.monotonic,
        failure_seconds: float = FAILURE_CACHE_SECONDS,
        negotiate: NegotiateLogins | None = None,
    ) -> None:
        self.directory = directory
        self.negotiate = negotiate
        self.clock = clock
        self.failure_seconds = failure_seconds
        self._cache: dict[str, _Entry] = {}
        self._pending: dict[str, asyncio.Future[Subject | None]] = {}
        self.generation = 0
        """Bumped by ``clear()``: identities remembered elsewhere from this one are stale."""
        self.limiter = LoginLimiter(clock)
        self.on_failure: Callable[[dict[str, Any]], None] | None = None
        """Called with each failed-login event (user, address, count): the event spool."""

    def clear(self) -> None:
        self._cache.clear()
        self.generation += 1

    def cached_until(self, header: str) -> float:
        """Until when (``clock`` time) the cached outcome of this login holds; 0 if none."""
        entry = self._cache.get(_key(header))
        return entry.expires if entry is not None else 0.0

    async def identify(
        self,
        proxy_authorization: str | None,
        address: str,
        identity: Identity,
        ranges: IpRanges,
        client: connection.Client | None = None,
    ) -> Outcome:
        for source in identity.sources:
            if source == "negotiate":
                if self.negotiate is not None and client is not None:
                    found = await self.negotiate.identify(client, proxy_authorization, address)
                    if isinstance(found, Subject):
                        return Outcome(found)
                    if found is not None:
                        return Outcome(None, found)
                continue
            if source == "basic":
                if not proxy_authorization or is_negotiate(proxy_authorization):
                    continue
                return await self._basic(
                    proxy_authorization, address, identity.login_cache_seconds
                )
            if source == "ip":
                roles = ranges.roles_for(address)
                if roles:
                    return Outcome(Subject(None, roles, "ip"))
        if self.schemes(identity):
            return Outcome(None, "login-required")
        return Outcome(ANONYMOUS)

    async def _basic(self, header: str, address: str, ttl: float) -> Outcome:
        """A Basic login, limited per user and address, failures recorded."""
        entry = self._cache.get(_key(header))
        if entry is not None and entry.expires > self.clock():
            subject = entry.subject  # known already: no directory call, nothing to limit
            return Outcome(subject) if subject is not None else Outcome(None, "login-failed")
        credentials = parse_basic(header)
        user = credentials.user if credentials else None
        wait = self.limiter.locked_for(user, address)
        if wait > 0:
            LOGIN_FAILURES.labels("limited").inc()
            return Outcome(None, "login-limited", max(1, int(wait + 0.999)))
        subject = await self.login(header, ttl)
        if subject is not None:
            self.limiter.succeeded(user, address)
            return Outcome(subject)
        count = self.limiter.failed(user, address)
        LOGIN_FAILURES.labels("wrong").inc()
        event = {"event": "proxy-login-failed", "user": user, "address": address,
                 "count": count}
        log.warning("proxy login failed", extra={"event": event})
        if self.on_failure is not None:
            self.on_failure(event)
        return Outcome(None, "login-failed")
    def schemes(self, identity: Identity) -> tuple[str, ...]:
        """The login schemes a 407 offers, in the order of the sources."""
        return tuple(
            s for s in identity.sources
            if s == "basic" or (s == "negotiate" and self.negotiate is not None)
        )

    async def login(self, header: str, ttl: float) -> Subject | None:
        """The subject of a Basic login header (cached), or None when it is wrong."""
        key = _key(header)
        now = self.clock()
        entry = self._cache.get(key)
        if entry is not None and entry.expires > now:
            return entry.subject
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Subject | None] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            subject = await asyncio.to_thread(self._verify, header)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            self._pending.pop(key, None)
        future.set_result(subject)
        self._store(key, subject, ttl if subject is not None else min(ttl, self.failure_seconds))
        return subject

    def _verify(self, header: str) -> Subject | None:
        credentials = parse_basic(header)
        if credentials is None or self.directory is None:
            return None
        roles = self.directory.verify(credentials.user, credentials.password)
        if roles is None:
            return None
        return Subject(credentials.user, frozenset(roles), "basic")

    def _store(self, key: str, subject: Subject | None, ttl: float) -> None:
        if ttl <= 0:
            return
        now = self.clock()
        if len(self._cache) >= MAX_CACHED_LOGINS:
            for k in [k for k, e in self._cache.items() if e.expires <= now]:
                del self._cache[k]
            while len(self._cache) >= MAX_CACHED_LOGINS:
                del self._cache[next(iter(self._cache))]
        self._cache[key] = _Entry(now + ttl, subject)

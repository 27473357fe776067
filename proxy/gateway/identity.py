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

When no source identifies the client and ``basic`` or ``negotiate`` is among the sources,
the gateway asks for a login (407 with one ``Proxy-Authenticate`` per scheme, in the order
of the sources: ``Negotiate``, ``Basic realm="…"``). Otherwise the client is anonymous (no
roles), which the access decision blocks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import ipaddress
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from mitmproxy import connection

from proxy.directory.negotiate import is_negotiate
from proxy.gateway.negotiate import NegotiateLogins
from proxy.policy.decide import Subject
from proxy.policy.model import Identity

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
                subject = await self.login(proxy_authorization, identity.login_cache_seconds)
                if subject is None:
                    return Outcome(None, "login-failed")
                return Outcome(subject)
            if source == "ip":
                roles = ranges.roles_for(address)
                if roles:
                    return Outcome(Subject(None, roles, "ip"))
        if self.schemes(identity):
            return Outcome(None, "login-required")
        return Outcome(ANONYMOUS)

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
